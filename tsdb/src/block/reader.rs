//! Opens a block directory and answers label and sample queries.

use std::path::{Path, PathBuf};

use tidemark_model::{Labels, MatchOp, Matcher, Sample};

use super::chunks::{ChunkReader, ChunkRef};
use super::index_reader::{IndexReader, IndexSeries};
use super::meta::BlockMeta;
use super::source::{ByteSource, MemSource};
use super::tombstones::Tombstones;
use super::{ChunkMeta, INDEX_FILENAME};
use crate::TsdbError;
use crate::chunk::XorChunk;
use crate::sorted;

/// A series with its samples in a time range.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A readable block: meta, index, chunks and tombstones.
///
/// Deleted ranges (tombstones) are already removed from what
/// [`BlockReader::select`] returns.
#[derive(Debug)]
pub struct BlockReader {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: Tombstones,
}

impl BlockReader {
    /// Opens `<dir>` (a block directory named by its ULID). The index is
    /// read into memory; chunks are read from the segment files on demand.
    pub fn open(dir: &Path) -> Result<Self, TsdbError> {
        let meta = BlockMeta::read(dir)?;
        let index_src: Box<dyn ByteSource> =
            Box::new(MemSource::read_file(&dir.join(INDEX_FILENAME))?);
        let index = IndexReader::open(index_src)?;
        let chunks = ChunkReader::open_dir(&dir.join("chunks"))?;
        let tombstones = Tombstones::read(dir)?;
        Ok(Self::from_parts(
            dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones,
        ))
    }

    /// Assembles a reader from parts read elsewhere (object storage).
    pub fn from_parts(
        dir: PathBuf,
        meta: BlockMeta,
        index: IndexReader,
        chunks: ChunkReader,
        tombstones: Tombstones,
    ) -> Self {
        BlockReader {
            dir,
            meta,
            index,
            chunks,
            tombstones,
        }
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's `meta.json`.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The index, for direct symbol, postings and series access.
    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    /// The chunk segment reader.
    pub fn chunks(&self) -> &ChunkReader {
        &self.chunks
    }

    /// Deleted ranges.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// The symbol table.
    pub fn symbols(&self) -> &[String] {
        self.index.symbols()
    }

    /// Label names, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        self.index.label_names()
    }

    /// Values of one label name, sorted.
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.index.label_values(name)
    }

    /// Series references with `name="value"`, in label order.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>, TsdbError> {
        self.index.postings(name, value)
    }

    /// Series references selected by all `matchers`, in label order.
    pub fn select_refs(&self, matchers: &[Matcher]) -> Result<Vec<u64>, TsdbError> {
        let mut result: Option<Vec<u64>> = None;
        // Matchers that select series lacking the label go last: they
        // subtract from what the others selected instead of listing values.
        let (positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        for m in positive {
            let values: Vec<&str> = match m.set_matches() {
                Some(set) if m.op == MatchOp::Equal || m.op == MatchOp::Regex => set,
                _ => self
                    .index
                    .label_values(&m.name)
                    .into_iter()
                    .filter(|v| m.matches(v))
                    .collect(),
            };
            let mut union: Vec<u64> = Vec::new();
            for v in values {
                union = sorted::union2(&union, &self.index.postings(&m.name, v)?);
            }
            result = Some(match result {
                None => union,
                Some(r) => sorted::intersect(vec![r, union]),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Ok(Vec::new());
            }
        }
        let mut refs = match result {
            Some(r) => r,
            None => self.index.all_postings()?,
        };
        for m in negative {
            // Series with a value that does not match are removed; series
            // without the label match (the matcher accepts "").
            for v in self.index.label_values(&m.name) {
                if !m.matches(v) {
                    refs = sorted::subtract(&refs, &self.index.postings(&m.name, v)?);
                }
            }
        }
        Ok(refs)
    }

    /// Reads one series (labels and chunk metas).
    pub fn series(&self, series_ref: u64) -> Result<IndexSeries, TsdbError> {
        self.index.series(series_ref)
    }

    /// Samples of one series with `mint <= t <= maxt`, tombstones applied.
    pub fn series_samples(
        &self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
    ) -> Result<SeriesSamples, TsdbError> {
        let s = self.index.series(series_ref)?;
        let metas = overlapping(&s, mint, maxt);
        let refs: Vec<ChunkRef> = metas.iter().map(|m| m.chunk_ref).collect();
        let chunks = self.chunks.chunks(&refs)?;
        self.decode(series_ref, s.labels, &metas, chunks, mint, maxt)
    }

    /// Series matching all `matchers` with their samples in `[mint, maxt]`
    /// (both inclusive), sorted by labels. Series without samples in the
    /// range are left out.
    ///
    /// Chunks are read for a batch of series at a time with
    /// [`ChunkReader::chunks`], so neighbouring chunks come in one read
    /// while memory stays bounded by the batch.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>, TsdbError> {
        let mut out = Vec::new();
        for batch in self.select_refs(matchers)?.chunks(SELECT_BATCH) {
            let mut series = Vec::with_capacity(batch.len());
            let mut refs = Vec::new();
            for &r in batch {
                let s = self.index.series(r)?;
                let metas = overlapping(&s, mint, maxt);
                refs.extend(metas.iter().map(|m| m.chunk_ref));
                series.push((r, s.labels, metas));
            }
            let mut chunks = self.chunks.chunks(&refs)?.into_iter();
            for (r, labels, metas) in series {
                let mine: Vec<XorChunk> = chunks.by_ref().take(metas.len()).collect();
                let s = self.decode(r, labels, &metas, mine, mint, maxt)?;
                if !s.samples.is_empty() {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// The samples of `chunks` (those of `metas`, in order) in
    /// `[mint, maxt]`, tombstones of `series_ref` applied.
    fn decode(
        &self,
        series_ref: u64,
        labels: Labels,
        metas: &[ChunkMeta],
        chunks: Vec<XorChunk>,
        mint: i64,
        maxt: i64,
    ) -> Result<SeriesSamples, TsdbError> {
        let deleted = self.tombstones.intervals(series_ref);
        let mut samples = Vec::new();
        for (m, chunk) in metas.iter().zip(&chunks) {
            let mut it = chunk.iter();
            if let Some(first) = it.seek(mint) {
                samples.extend(
                    std::iter::once(first)
                        .chain(&mut it)
                        .take_while(|x| x.t <= maxt)
                        .filter(|x| !deleted.iter().any(|&(a, b)| a <= x.t && x.t <= b)),
                );
            }
            if let Some(e) = it.take_error() {
                return Err(TsdbError::CorruptBlock {
                    path: self.dir.join("chunks"),
                    offset: m.chunk_ref.0,
                    reason: format!("chunk of series {labels}: {e}"),
                });
            }
        }
        Ok(SeriesSamples { labels, samples })
    }
}

/// Series whose chunks [`BlockReader::select`] reads together.
const SELECT_BATCH: usize = 4096;

/// The chunks of `s` holding samples in `[mint, maxt]`.
fn overlapping(s: &IndexSeries, mint: i64, maxt: i64) -> Vec<ChunkMeta> {
    s.chunks
        .iter()
        .filter(|m| m.max_time >= mint && m.min_time <= maxt)
        .copied()
        .collect()
}
