//! Cutting aligned blocks from a tenant's head.

use tidemark_tsdb::{BlockMeta, BlockReader, BlockWriter, Head, TsdbError};
use tracing::info;

use super::{LocalBlock, TenantBlocks};
use std::sync::Arc;

/// Which ranges a cut takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutMode {
    /// Only ranges the head has moved well past: the head spans more than
    /// 1.5 block ranges, as Prometheus compacts its head. Samples may still
    /// arrive for the last half range.
    Ready,
    /// Everything in the head, the newest partial range included
    /// (`POST /ingester/flush`, shutdown). Samples before the end of the
    /// last range cut are refused from then on.
    Flush,
}

/// Cuts aligned `range_ms` blocks from `head` into the tenant's block
/// directory, oldest first, truncating the head and checkpointing its WAL
/// after each block is durable. Returns the metas of the blocks written
/// (a range without samples moves the cut time without a block).
pub(crate) fn cut_tenant(
    head: &Head,
    blocks: &TenantBlocks,
    range_ms: i64,
    mode: CutMode,
) -> Result<Vec<BlockMeta>, TsdbError> {
    let _only_one_cut = blocks.cut_lock.lock();
    let mut written = Vec::new();
    loop {
        let cut_until = blocks.cut_until();
        let (Some(head_min), Some(head_max)) = (head.min_time(), head.max_time()) else {
            break;
        };
        // The head keeps the chunks crossing the last cut time; they are
        // already in a block.
        let min = head_min.max(cut_until);
        if min > head_max {
            break;
        }
        if mode == CutMode::Ready && head_max - min <= range_ms / 2 * 3 {
            break;
        }
        let start = min.div_euclid(range_ms) * range_ms;
        let end = start.saturating_add(range_ms);
        // No append may land in [start, end) once its series are read.
        head.refuse_before(end);
        let mut writer = BlockWriter::new()
            .with_time_range(start, end)
            .with_chunk_range(range_ms);
        for s in head.series_in_range(start, end) {
            writer.add_chunks(s.labels, s.chunks);
        }
        if writer.num_series() > 0 {
            let meta = writer.write(blocks.dir())?;
            let dir = blocks.dir().join(meta.ulid.to_string());
            let reader = BlockReader::open(&dir)?;
            info!(
                tenant = %blocks.tenant(),
                block = %meta.ulid,
                min_time = start,
                max_time = end,
                series = meta.stats.num_series,
                samples = meta.stats.num_samples,
                "cut block from head"
            );
            blocks.add(
                LocalBlock {
                    id: meta.ulid,
                    dir,
                    reader: Arc::new(reader),
                },
                end,
            )?;
            written.push(meta);
        } else {
            blocks.advance(end)?;
        }
        head.truncate(end)?;
    }
    Ok(written)
}

/// At start: drops from a replayed head what the blocks already hold (a
/// crash between writing a block and checkpointing the WAL leaves both),
/// and refuses samples before the cut time from then on.
pub(crate) fn truncate_replayed(head: &Head, blocks: &TenantBlocks) -> Result<(), TsdbError> {
    let cut_until = blocks.cut_until();
    if cut_until == i64::MIN {
        return Ok(());
    }
    if head.min_time().is_some_and(|t| t < cut_until) {
        head.truncate(cut_until)?;
    } else {
        head.refuse_before(cut_until);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_model::{Labels, Matcher, Sample, TenantId};
    use tidemark_tsdb::{HeadOptions, WalOptions};

    const HOUR: i64 = 3_600_000;

    fn fill(head: &Head, from: i64, to: i64) {
        let mut t = from;
        while t < to {
            let batch: Vec<(Labels, Vec<Sample>)> = (0..3)
                .map(|i| {
                    (
                        Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]).unwrap(),
                        vec![Sample::new(t, t as f64)],
                    )
                })
                .collect();
            head.append(&batch).unwrap();
            t += 60_000;
        }
    }

    fn open(dir: &std::path::Path) -> (Head, TenantBlocks) {
        let (head, _) = Head::open(
            &dir.join("wal"),
            HeadOptions::default(),
            WalOptions::default(),
        )
        .unwrap();
        let tb = TenantBlocks::open(TenantId::new("t").unwrap(), dir).unwrap();
        truncate_replayed(&head, &tb).unwrap();
        (head, tb)
    }

    fn all_samples(head: &Head, tb: &TenantBlocks) -> Vec<(String, Vec<Sample>)> {
        let m = [Matcher::equal("__name__", "m")];
        let merged = super::super::merge_series(
            head.select(&m, i64::MIN, i64::MAX),
            tb.select(&m, i64::MIN, i64::MAX).unwrap(),
        );
        merged
            .into_iter()
            .map(|s| (s.labels.to_string(), s.samples))
            .collect()
    }

    #[test]
    fn ready_cut_takes_aligned_ranges_and_leaves_the_last_one_and_a_half() {
        let dir = tempfile::tempdir().unwrap();
        let (head, tb) = open(dir.path());
        fill(&head, HOUR / 2, 5 * HOUR);
        let before = all_samples(&head, &tb);
        let metas = cut_tenant(&head, &tb, 2 * HOUR, CutMode::Ready).unwrap();
        let ranges: Vec<(i64, i64)> = metas.iter().map(|m| (m.min_time, m.max_time)).collect();
        // Head spans 0:30..5:00: [0,2h) is cut; then 2h..5h is 3h - 1min, not > 3h.
        assert_eq!(ranges, vec![(0, 2 * HOUR)]);
        assert_eq!(tb.cut_until(), 2 * HOUR);
        assert_eq!(all_samples(&head, &tb), before, "every sample exactly once");
        // Appends into the cut range are refused.
        let late = head
            .append(&[(
                Labels::from_pairs([("__name__", "m"), ("i", "9")]).unwrap(),
                vec![Sample::new(HOUR, 1.0)],
            )])
            .unwrap();
        assert_eq!(late.samples_refused, 1);
    }

    #[test]
    fn flush_cuts_everything_and_a_restart_keeps_each_sample_once() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let (head, tb) = open(dir.path());
            fill(&head, HOUR / 2, 5 * HOUR);
            let before = all_samples(&head, &tb);
            let metas = cut_tenant(&head, &tb, 2 * HOUR, CutMode::Flush).unwrap();
            assert_eq!(metas.len(), 3);
            assert_eq!(tb.cut_until(), 6 * HOUR);
            assert_eq!(all_samples(&head, &tb), before);
            before
        };
        let (head, tb) = open(dir.path());
        assert_eq!(tb.all().len(), 3);
        assert_eq!(all_samples(&head, &tb), before, "after a restart");
        // A second flush finds nothing new.
        assert!(
            cut_tenant(&head, &tb, 2 * HOUR, CutMode::Flush)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_block_written_before_the_wal_was_checkpointed_is_not_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let (head, tb) = open(dir.path());
            fill(&head, 0, 3 * HOUR);
            let before = all_samples(&head, &tb);
            // Write the block as a cut does, then "crash" before the state
            // file and the WAL truncation.
            let mut w = BlockWriter::new().with_time_range(0, 2 * HOUR);
            for s in head.series_in_range(0, 2 * HOUR) {
                w.add_chunks(s.labels, s.chunks);
            }
            w.write(tb.dir()).unwrap();
            before
        };
        let (head, tb) = open(dir.path());
        assert_eq!(tb.cut_until(), 2 * HOUR);
        assert_eq!(all_samples(&head, &tb), before);
    }
}
