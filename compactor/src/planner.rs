//! What a compaction cycle does to one tenant, decided from its bucket
//! index alone: a pure function, so every rule is unit-tested without a
//! bucket.
//!
//! Order of work: blocks whose data another block already holds are marked
//! (a compaction that crashed before marking its inputs); overlapping
//! blocks are merged (vertical compaction: the replication factor's copies
//! of a range, or a late block landing in an already compacted range);
//! only when nothing overlaps, complete windows of the next range are
//! compacted (level compaction). Retention and hard deletion are decided on
//! the same index.

use std::collections::{BTreeMap, HashSet};

use tidemark_bucket::{BucketIndex, IndexedBlock};
use tidemark_tsdb::BlockId;

/// Why blocks are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// Blocks overlapping in time (replicas, or late blocks).
    Vertical,
    /// Adjacent blocks filling one window of the next block range.
    Level { range_ms: i64 },
}

/// One merge: these blocks become one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeJob {
    pub kind: MergeKind,
    /// Sorted by min time.
    pub blocks: Vec<BlockId>,
}

/// Everything one cycle should do to a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub merges: Vec<MergeJob>,
    /// Blocks past the tenant's retention.
    pub expired: Vec<BlockId>,
    /// Marked blocks whose deletion delay has passed.
    pub delete: Vec<BlockId>,
}

/// The rules' inputs besides the index.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub index: &'a BucketIndex,
    pub now_ms: i64,
    pub ranges_ms: &'a [i64],
    pub compaction_delay_ms: i64,
    pub deletion_delay_ms: i64,
    pub retention_ms: Option<i64>,
}

/// Decides the cycle's work.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let idx = input.index;
    let marked: HashSet<BlockId> = idx.deletion_marks.iter().map(|m| m.ulid).collect();
    let live: Vec<&IndexedBlock> = idx
        .blocks
        .iter()
        .filter(|b| !marked.contains(&b.ulid))
        .collect();

    let covered = covered_among(&live);
    let live: Vec<&IndexedBlock> = live
        .into_iter()
        .filter(|b| !covered.contains(&b.ulid))
        .collect();

    let expired: Vec<BlockId> = match input.retention_ms {
        Some(r) => live
            .iter()
            .filter(|b| b.max_time <= input.now_ms - r)
            .map(|b| b.ulid)
            .collect(),
        None => Vec::new(),
    };
    let live: Vec<&IndexedBlock> = live
        .into_iter()
        .filter(|b| !expired.contains(&b.ulid))
        .collect();

    let mut merges: Vec<MergeJob> = overlap_groups(&live)
        .into_iter()
        .map(|blocks| MergeJob {
            kind: MergeKind::Vertical,
            blocks,
        })
        .collect();
    if merges.is_empty() {
        merges = level_jobs(&live, input);
    }

    let delete = idx
        .deletion_marks
        .iter()
        .filter(|m| m.deletion_time.saturating_mul(1000) + input.deletion_delay_ms <= input.now_ms)
        .map(|m| m.ulid)
        .collect();
    Plan {
        merges,
        expired,
        delete,
    }
}

/// Unmarked blocks whose sources are all held by another unmarked block:
/// their data is already there, so they are marked for deletion. Of two
/// blocks with equal sources, the one with the greater ULID is kept.
pub fn covered_blocks(index: &BucketIndex) -> Vec<BlockId> {
    let live: Vec<&IndexedBlock> = index
        .blocks
        .iter()
        .filter(|b| index.deletion_mark(b.ulid).is_none())
        .collect();
    covered_among(&live)
}

fn covered_among(live: &[&IndexedBlock]) -> Vec<BlockId> {
    let mut out = Vec::new();
    for a in live {
        let held = live.iter().any(|b| {
            b.ulid != a.ulid
                && a.sources.iter().all(|s| b.sources.binary_search(s).is_ok())
                && (b.sources.len() > a.sources.len() || b.ulid > a.ulid)
        });
        if held {
            out.push(a.ulid);
        }
    }
    out.sort_unstable();
    out
}

/// Groups of two or more blocks connected by overlapping time ranges.
fn overlap_groups(live: &[&IndexedBlock]) -> Vec<Vec<BlockId>> {
    let mut sorted: Vec<&&IndexedBlock> = live.iter().collect();
    sorted.sort_by_key(|b| (b.min_time, b.ulid));
    let mut groups = Vec::new();
    let mut current: Vec<BlockId> = Vec::new();
    let mut current_end = i64::MIN;
    for b in sorted {
        if !current.is_empty() && b.min_time < current_end {
            current.push(b.ulid);
            current_end = current_end.max(b.max_time);
            continue;
        }
        if current.len() > 1 {
            groups.push(std::mem::take(&mut current));
        }
        current = vec![b.ulid];
        current_end = b.max_time;
    }
    if current.len() > 1 {
        groups.push(current);
    }
    groups
}

/// For the smallest range above the first with work to do: windows that
/// ended at least `compaction_delay` ago and hold two or more smaller blocks
/// lying wholly inside them.
fn level_jobs(live: &[&IndexedBlock], input: &PlanInput<'_>) -> Vec<MergeJob> {
    for &range in input.ranges_ms.iter().skip(1) {
        let mut windows: BTreeMap<i64, Vec<&IndexedBlock>> = BTreeMap::new();
        for b in live {
            let start = b.min_time.div_euclid(range) * range;
            if b.max_time - b.min_time < range && b.max_time <= start + range {
                windows.entry(start).or_default().push(b);
            }
        }
        let jobs: Vec<MergeJob> = windows
            .into_iter()
            .filter(|(start, blocks)| {
                blocks.len() > 1 && start + range + input.compaction_delay_ms <= input.now_ms
            })
            .map(|(_, mut blocks)| {
                blocks.sort_by_key(|b| (b.min_time, b.ulid));
                MergeJob {
                    kind: MergeKind::Level { range_ms: range },
                    blocks: blocks.iter().map(|b| b.ulid).collect(),
                }
            })
            .collect();
        if !jobs.is_empty() {
            return jobs;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use tidemark_bucket::DeletionMark;

    use super::*;

    const H: i64 = 3_600_000;
    const RANGES: [i64; 3] = [2 * H, 12 * H, 24 * H];

    fn id(n: u128) -> BlockId {
        BlockId(ulid::Ulid(n))
    }

    fn block(n: u128, mint: i64, maxt: i64, sources: &[u128]) -> IndexedBlock {
        let mut sources: Vec<BlockId> = sources.iter().map(|s| id(*s)).collect();
        sources.sort_unstable();
        IndexedBlock {
            ulid: id(n),
            min_time: mint,
            max_time: maxt,
            level: 1,
            sources,
            size_bytes: 1,
            num_series: 1,
            num_samples: 1,
        }
    }

    fn run(
        blocks: Vec<IndexedBlock>,
        marks: &[(u128, i64)],
        now: i64,
        retention: Option<i64>,
    ) -> Plan {
        let mut index = BucketIndex::empty(now);
        index.blocks = blocks;
        index.deletion_marks = marks
            .iter()
            .map(|(n, t)| DeletionMark {
                ulid: id(*n),
                deletion_time: *t,
                version: 1,
            })
            .collect();
        plan(&PlanInput {
            index: &index,
            now_ms: now,
            ranges_ms: &RANGES,
            compaction_delay_ms: H,
            deletion_delay_ms: 12 * H,
            retention_ms: retention,
        })
    }

    #[test]
    fn replicas_of_a_range_merge_vertically_first() {
        let p = run(
            vec![
                block(1, 0, 2 * H, &[1]),
                block(2, 0, 2 * H, &[2]),
                block(3, 0, 2 * H, &[3]),
                block(4, 2 * H, 4 * H, &[4]),
            ],
            &[],
            100 * H,
            None,
        );
        assert_eq!(p.merges.len(), 1);
        assert_eq!(p.merges[0].kind, MergeKind::Vertical);
        assert_eq!(p.merges[0].blocks, vec![id(1), id(2), id(3)]);
        assert!(p.expired.is_empty() && p.delete.is_empty());
    }

    #[test]
    fn a_late_block_overlapping_a_compacted_one_is_merged_not_refused() {
        let p = run(
            vec![
                block(10, 0, 12 * H, &[1, 2, 3]),
                block(4, 4 * H, 6 * H, &[4]),
            ],
            &[],
            100 * H,
            None,
        );
        assert_eq!(p.merges[0].blocks, vec![id(10), id(4)]);
    }

    #[test]
    fn complete_windows_compact_to_12h_then_24h() {
        let twos: Vec<_> = (0..6)
            .map(|i| block(i + 1, i as i64 * 2 * H, (i as i64 + 1) * 2 * H, &[i + 1]))
            .collect();
        // Window 0..12h ended 10 h before now: compacted.
        let p = run(twos.clone(), &[], 22 * H, None);
        assert_eq!(p.merges.len(), 1);
        assert_eq!(p.merges[0].kind, MergeKind::Level { range_ms: 12 * H });
        assert_eq!(p.merges[0].blocks.len(), 6);
        // Within the compaction delay: wait.
        let p = run(twos, &[], 12 * H + H / 2, None);
        assert!(p.merges.is_empty(), "{p:?}");
        // Two 12 h blocks make a 24 h block.
        let p = run(
            vec![block(7, 0, 12 * H, &[1]), block(8, 12 * H, 24 * H, &[2])],
            &[],
            30 * H,
            None,
        );
        assert_eq!(p.merges[0].kind, MergeKind::Level { range_ms: 24 * H });
        // A lone block covering its window is left alone.
        let p = run(vec![block(9, 0, 24 * H, &[1])], &[], 300 * H, None);
        assert!(p.merges.is_empty());
    }

    #[test]
    fn covered_blocks_are_found_and_not_merged() {
        // A crash after uploading 10 but before marking its inputs 1 and 2.
        let blocks = vec![
            block(1, 0, 2 * H, &[1]),
            block(2, 0, 2 * H, &[2]),
            block(10, 0, 2 * H, &[1, 2]),
        ];
        let mut index = BucketIndex::empty(0);
        index.blocks = blocks.clone();
        assert_eq!(covered_blocks(&index), vec![id(1), id(2)]);
        let p = run(blocks, &[], 100 * H, None);
        assert!(p.merges.is_empty(), "{p:?}");
        // Two results of the same merge (a retried compaction): keep one.
        index.blocks = vec![block(10, 0, 2 * H, &[1, 2]), block(11, 0, 2 * H, &[1, 2])];
        assert_eq!(covered_blocks(&index), vec![id(10)]);
    }

    #[test]
    fn retention_marks_and_delay_deletes() {
        let p = run(
            vec![
                block(1, 0, 2 * H, &[1]),
                block(2, 48 * H, 50 * H, &[2]),
                block(3, 2 * H, 4 * H, &[3]),
            ],
            &[(3, 0)],
            60 * H,
            Some(24 * H),
        );
        // Block 1 is past retention; 3 is already marked and its delay
        // (12 h after t=0) has passed; 2 is young.
        assert_eq!(p.expired, vec![id(1)]);
        assert_eq!(p.delete, vec![id(3)]);
        let p = run(
            vec![block(3, 0, 2 * H, &[3])],
            &[(3, 59 * 3600)],
            60 * H,
            None,
        );
        assert!(p.delete.is_empty(), "mark is 1 h old, delay is 12 h");
    }
}
