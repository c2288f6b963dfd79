//! Merging blocks into one (the compactor's vertical compaction).
//!
//! Any number of blocks, overlapping in time or not, become one block: series
//! with equal labels are merged, and samples of one series at the same
//! timestamp are kept once. Replica blocks (the same data ingested by several
//! ingesters) therefore merge into a block no larger than one replica.

use std::path::Path;

use tidemark_model::{Labels, Sample, is_stale_nan};

use super::meta::{BlockCompaction, BlockDesc, BlockMeta};
use super::reader::BlockReader;
use super::writer::{BlockWriter, cut_chunks};
use crate::TsdbError;
use crate::chunk::XorChunk;

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Series in the output block.
    pub series: u64,
    /// Samples read from all inputs (after tombstones).
    pub samples_in: u64,
    /// Samples written.
    pub samples_out: u64,
    /// Samples dropped because an identical sample (same series, timestamp
    /// and value bits) was kept.
    pub duplicates: u64,
    /// Samples dropped because another sample of the same series and
    /// timestamp had a different value (see [`merge_blocks`] for which wins).
    pub conflicts: u64,
}

/// The new block and what the merge did.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    pub meta: BlockMeta,
    pub stats: MergeStats,
}

/// Which of two samples at the same timestamp a merge keeps: a real value
/// over a staleness marker, then the greater value in IEEE total order. The
/// choice does not depend on the order of the input blocks.
fn preferred(a: f64, b: f64) -> f64 {
    match (is_stale_nan(a), is_stale_nan(b)) {
        (true, false) => b,
        (false, true) => a,
        _ => {
            if a.total_cmp(&b).is_ge() {
                a
            } else {
                b
            }
        }
    }
}

/// Merges sorted runs of samples, deduplicating equal timestamps. Each
/// dropped sample counts as a duplicate when its value bits equal the kept
/// value and as a conflict otherwise, so the counts do not depend on the
/// order of the runs either.
fn merge_runs(runs: Vec<Vec<Sample>>, stats: &mut MergeStats) -> Vec<Sample> {
    let mut all: Vec<Sample> = runs.into_iter().flatten().collect();
    stats.samples_in += all.len() as u64;
    all.sort_by_key(|s| s.t);
    let mut out: Vec<Sample> = Vec::with_capacity(all.len());
    let mut i = 0;
    while i < all.len() {
        let t = all[i].t;
        let mut j = i + 1;
        while j < all.len() && all[j].t == t {
            j += 1;
        }
        let group = &all[i..j];
        let kept = group
            .iter()
            .skip(1)
            .fold(group[0].v, |acc, s| preferred(acc, s.v));
        let same = group
            .iter()
            .filter(|s| s.v.to_bits() == kept.to_bits())
            .count() as u64;
        stats.duplicates += same - 1;
        stats.conflicts += group.len() as u64 - same;
        out.push(Sample::new(t, kept));
        i = j;
    }
    stats.samples_out += out.len() as u64;
    out
}

/// Merges `blocks` into one new block under `out_parent`.
///
/// The new block spans from the earliest input `minTime` to the latest
/// `maxTime`, has compaction level one above the highest input level, the
/// union of the inputs' sources, and the inputs as parents. Tombstones of
/// the inputs are applied. A series found in one input only, with
/// non-overlapping chunks and nothing deleted, keeps its chunks byte for
/// byte; other series are decoded, merged and cut into new chunks of
/// about [`super::SAMPLES_PER_CHUNK`] samples as Prometheus cuts them.
///
/// Samples of one series with the same timestamp are kept once; when their
/// values differ, a real value wins over a staleness marker, then the
/// greater value in IEEE total order, and the merge counts a conflict.
pub fn merge_blocks(blocks: &[&BlockReader], out_parent: &Path) -> Result<MergeOutcome, TsdbError> {
    if blocks.is_empty() {
        return Err(TsdbError::InvalidBlockInput {
            reason: "merging needs at least one block".into(),
        });
    }
    let mut entries: Vec<(Labels, usize, u64)> = Vec::new();
    for (bi, b) in blocks.iter().enumerate() {
        for r in b.index().all_postings()? {
            let s = b.series(r)?;
            entries.push((s.labels, bi, r));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));

    let mut stats = MergeStats::default();
    let mut writer = BlockWriter::new();
    let mut i = 0;
    while i < entries.len() {
        let mut j = i + 1;
        while j < entries.len() && entries[j].0 == entries[i].0 {
            j += 1;
        }
        let group = &entries[i..j];
        let labels = group[0].0.clone();
        let chunks = if let [(_, bi, r)] = group {
            merge_single(blocks[*bi], *r, &mut stats)?
        } else {
            let mut runs = Vec::new();
            for (_, bi, r) in group {
                runs.extend(chunk_runs(blocks[*bi], *r)?);
            }
            let merged = merge_runs(runs, &mut stats);
            cut_chunks(&merged)?
        };
        if !chunks.is_empty() {
            stats.series += 1;
            writer.add_chunks(labels, chunks);
        }
        i = j;
    }

    let min_time = blocks.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
    let max_time = blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
    let mut sources: Vec<_> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.sources.iter().copied())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    let parents = blocks
        .iter()
        .map(|b| BlockDesc {
            ulid: b.meta().ulid,
            min_time: b.meta().min_time,
            max_time: b.meta().max_time,
        })
        .collect();
    let level = blocks
        .iter()
        .map(|b| b.meta().compaction.level)
        .max()
        .unwrap_or(0)
        + 1;
    let meta = writer
        .with_time_range(min_time, max_time)
        .with_compaction(BlockCompaction {
            level,
            sources,
            parents,
            ..BlockCompaction::default()
        })
        .write(out_parent)?;
    Ok(MergeOutcome { meta, stats })
}

/// Each chunk of a series as a sorted run of samples, tombstones applied.
fn chunk_runs(block: &BlockReader, r: u64) -> Result<Vec<Vec<Sample>>, TsdbError> {
    let s = block.series(r)?;
    let deleted = block.tombstones().intervals(r);
    let mut runs = Vec::with_capacity(s.chunks.len());
    for m in &s.chunks {
        let mut samples = block.chunks().chunk(m.chunk_ref)?.samples()?;
        if !deleted.is_empty() {
            samples.retain(|x| !deleted.iter().any(|&(a, b)| a <= x.t && x.t <= b));
        }
        runs.push(samples);
    }
    Ok(runs)
}

/// A series present in one block: its chunks as they are when possible.
fn merge_single(
    block: &BlockReader,
    r: u64,
    stats: &mut MergeStats,
) -> Result<Vec<XorChunk>, TsdbError> {
    let s = block.series(r)?;
    let disjoint = s.chunks.windows(2).all(|w| w[0].max_time < w[1].min_time);
    if disjoint && block.tombstones().intervals(r).is_empty() {
        let mut out = Vec::with_capacity(s.chunks.len());
        for m in &s.chunks {
            let c = block.chunks().chunk(m.chunk_ref)?;
            stats.samples_in += c.num_samples() as u64;
            stats.samples_out += c.num_samples() as u64;
            out.push(c);
        }
        return Ok(out);
    }
    let merged = merge_runs(chunk_runs(block, r)?, stats);
    cut_chunks(&merged)
}
