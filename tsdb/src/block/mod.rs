//! Prometheus TSDB blocks: write and read the on-disk block format.
//!
//! A block is a directory named by its ULID holding `meta.json`, `index`
//! (format v2), `chunks/000001...` and `tombstones`, exactly as Prometheus
//! 2.x/3.x writes them, so `promtool` and Prometheus read tidemark blocks
//! and tidemark reads theirs. See `docs/tsdb-format.md`.
//!
//! - [`BlockWriter`] sorts series, cuts chunks and writes atomically.
//! - [`BlockReader`] opens a block: meta, symbols, postings, label values,
//!   and [`BlockReader::select`] by label matchers and time range.
//! - [`merge_blocks`] merges overlapping blocks into one, deduplicating
//!   samples (vertical compaction).
//! - Parsing goes through [`ByteSource`], so index and chunks can be read by
//!   ranges from object storage as well as from local files.

mod chunks;
mod codec;
mod index_reader;
mod index_writer;
mod merge;
mod meta;
mod reader;
mod source;
mod tombstones;
mod writer;

pub use chunks::{ChunkReader, ChunkRef, DEFAULT_MAX_SEGMENT_SIZE, segment_file_name};
pub use index_reader::{IndexReader, IndexSeries, Toc};
pub use merge::{MergeOutcome, MergeStats, merge_blocks};
pub use meta::{BlockCompaction, BlockDesc, BlockId, BlockMeta, BlockStats, META_VERSION};
pub use reader::{BlockReader, SeriesSamples};
pub use source::{ByteSource, FileSource, MemSource};
pub use tombstones::Tombstones;
pub use writer::{
    BlockWriter, DEFAULT_CHUNK_RANGE, SAMPLES_PER_CHUNK, cut_chunks, cut_chunks_with_range,
};

/// The name of the index file in a block directory.
pub const INDEX_FILENAME: &str = "index";

/// Where one chunk of a series is and which samples it covers
/// (`min_time..=max_time`, both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub min_time: i64,
    pub max_time: i64,
    pub chunk_ref: ChunkRef,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod merge_tests;
