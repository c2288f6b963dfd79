//! The per-tenant bucket index: `<tenant>/bucket-index.json`.
//!
//! Queriers read one small object instead of listing the bucket and reading
//! every `meta.json`. The compactor rebuilds it from the bucket (see
//! [`crate::Bucket::rebuild_index`]) after every change it makes, so it is
//! at most one compaction cycle behind the bucket.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tidemark_tsdb::{BlockId, BlockMeta};

use crate::BucketError;

/// The format version written in the index.
pub const INDEX_VERSION: u32 = 1;

/// Every whole block of a tenant and every deletion mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketIndex {
    pub version: u32,
    /// When the index was built, in ms since the epoch.
    pub updated_at: i64,
    /// Sorted by `min_time`, then ULID.
    pub blocks: Vec<IndexedBlock>,
    pub deletion_marks: Vec<DeletionMark>,
}

/// What a querier or the compactor needs to know about a block without
/// reading its `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedBlock {
    pub ulid: BlockId,
    /// Inclusive, ms.
    pub min_time: i64,
    /// Exclusive, ms (as in `meta.json`).
    pub max_time: i64,
    /// Compaction level: 1 for a block cut from a head.
    pub level: u32,
    /// The level-1 blocks whose data this block holds.
    pub sources: Vec<BlockId>,
    /// Total bytes of the block's files.
    pub size_bytes: u64,
    pub num_series: u64,
    pub num_samples: u64,
}

/// `<tenant>/<ULID>/deletion-mark.json`: the block is deleted for good once
/// `deletion_time` is older than the compactor's deletion delay. Same JSON
/// as Thanos and Mimir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionMark {
    #[serde(rename = "id")]
    pub ulid: BlockId,
    /// Seconds since the epoch.
    pub deletion_time: i64,
    pub version: u32,
}

impl IndexedBlock {
    /// The index entry for a block, given its total size.
    pub fn from_meta(meta: &BlockMeta, size_bytes: u64) -> Self {
        let mut sources = meta.compaction.sources.clone();
        if sources.is_empty() {
            sources.push(meta.ulid);
        }
        sources.sort_unstable();
        IndexedBlock {
            ulid: meta.ulid,
            min_time: meta.min_time,
            max_time: meta.max_time,
            level: meta.compaction.level,
            sources,
            size_bytes,
            num_series: meta.stats.num_series,
            num_samples: meta.stats.num_samples,
        }
    }

    /// Whether the block holds samples in `mint..=maxt`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && self.max_time > mint
    }
}

impl BucketIndex {
    /// An index of no blocks.
    pub fn empty(now_ms: i64) -> Self {
        BucketIndex {
            version: INDEX_VERSION,
            updated_at: now_ms,
            blocks: Vec::new(),
            deletion_marks: Vec::new(),
        }
    }

    pub fn from_json(bytes: &[u8], key: &str) -> Result<Self, BucketError> {
        let idx: BucketIndex = serde_json::from_slice(bytes).map_err(|e| BucketError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        if idx.version != INDEX_VERSION {
            return Err(BucketError::Corrupt {
                key: key.to_string(),
                reason: format!("unsupported bucket index version {}", idx.version),
            });
        }
        Ok(idx)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of numbers and strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The deletion mark of a block, if it has one.
    pub fn deletion_mark(&self, id: BlockId) -> Option<&DeletionMark> {
        self.deletion_marks.iter().find(|m| m.ulid == id)
    }

    /// Whether the data of level-1 block `id` is in the bucket: the block
    /// itself, or a block compacted from it.
    pub fn holds_source(&self, id: BlockId) -> bool {
        self.blocks
            .iter()
            .any(|b| b.ulid == id || b.sources.binary_search(&id).is_ok())
    }

    /// Blocks with samples in `mint..=maxt`, marked or not.
    pub fn blocks_in_range(&self, mint: i64, maxt: i64) -> Vec<&IndexedBlock> {
        self.blocks
            .iter()
            .filter(|b| b.overlaps(mint, maxt))
            .collect()
    }

    /// The blocks a query over `mint..=maxt` should read: blocks in range,
    /// minus those marked for deletion whose sources are all held by an
    /// unmarked block (replaced by a compaction). Replica blocks of one
    /// range still overlap, so readers must merge samples by timestamp.
    pub fn queryable_blocks(&self, mint: i64, maxt: i64) -> Vec<&IndexedBlock> {
        let live_sources: HashSet<BlockId> = self
            .blocks
            .iter()
            .filter(|b| self.deletion_mark(b.ulid).is_none())
            .flat_map(|b| b.sources.iter().copied())
            .collect();
        self.blocks_in_range(mint, maxt)
            .into_iter()
            .filter(|b| {
                self.deletion_mark(b.ulid).is_none()
                    || !b.sources.iter().all(|s| live_sources.contains(s))
            })
            .collect()
    }

    /// Sorts blocks and marks into their canonical order.
    pub(crate) fn normalize(&mut self) {
        self.blocks.sort_by_key(|b| (b.min_time, b.ulid));
        self.deletion_marks.sort_by_key(|m| m.ulid);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn block(id: u128, mint: i64, maxt: i64, sources: &[u128]) -> IndexedBlock {
        let mut sources: Vec<BlockId> = sources.iter().map(|s| BlockId(ulid::Ulid(*s))).collect();
        sources.sort_unstable();
        IndexedBlock {
            ulid: BlockId(ulid::Ulid(id)),
            min_time: mint,
            max_time: maxt,
            level: 1,
            sources,
            size_bytes: 10,
            num_series: 1,
            num_samples: 1,
        }
    }

    #[test]
    fn compacted_parents_are_not_queried_but_replicas_are() {
        let mut idx = BucketIndex::empty(0);
        // Two replica blocks 1 and 2, compacted into 3; 4 is a replica not yet compacted.
        idx.blocks = vec![
            block(1, 0, 100, &[1]),
            block(2, 0, 100, &[2]),
            block(3, 0, 100, &[1, 2]),
            block(4, 0, 100, &[4]),
            block(5, 100, 200, &[5]),
        ];
        for id in [1, 2, 4] {
            idx.deletion_marks.push(DeletionMark {
                ulid: BlockId(ulid::Ulid(id)),
                deletion_time: 0,
                version: 1,
            });
        }
        let ids = |v: Vec<&IndexedBlock>| v.iter().map(|b| b.ulid.0.0).collect::<Vec<_>>();
        // 4 is marked (by retention, say) but nothing replaces it: still read.
        assert_eq!(ids(idx.queryable_blocks(0, 99)), vec![3, 4]);
        assert_eq!(ids(idx.queryable_blocks(100, 150)), vec![5]);
        assert_eq!(ids(idx.blocks_in_range(99, 100)).len(), 5);
        assert!(idx.holds_source(BlockId(ulid::Ulid(2))));
        assert!(!idx.holds_source(BlockId(ulid::Ulid(9))));
        let back = BucketIndex::from_json(&idx.to_json(), "k").unwrap();
        assert_eq!(back, idx);
    }
}
