//! Writes a block directory atomically.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tidemark_model::{Labels, Sample};

use super::chunks::{ChunkWriter, DEFAULT_MAX_SEGMENT_SIZE};
use super::index_writer::build_index;
use super::meta::{BlockCompaction, BlockId, BlockMeta, BlockStats, META_FILENAME, META_VERSION};
use super::tombstones::{TOMBSTONES_FILENAME, Tombstones};
use super::{ChunkMeta, INDEX_FILENAME};
use crate::TsdbError;
use crate::chunk::{XorAppender, XorChunk};

/// The number of samples per chunk Prometheus's head aims for.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Collects series and writes them as one Prometheus-format block.
///
/// Series may be added in any order; they are sorted by labels on write.
/// The block is written into `<parent>/<ULID>.tmp-for-creation`, every file
/// and directory is fsynced, and the directory is renamed to
/// `<parent>/<ULID>` last, so a crash never leaves a partial block under a
/// block name. The whole block is held in memory until written.
#[derive(Debug, Default)]
pub struct BlockWriter {
    series: Vec<(Labels, Vec<XorChunk>)>,
    id: Option<BlockId>,
    time_range: Option<(i64, i64)>,
    compaction: Option<BlockCompaction>,
    max_segment_size: Option<u64>,
    chunk_range: Option<i64>,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TsdbError> {
    let mut f = File::create(path).map_err(|e| TsdbError::io(path, e))?;
    f.write_all(bytes).map_err(|e| TsdbError::io(path, e))?;
    f.sync_all().map_err(|e| TsdbError::io(path, e))
}

pub(crate) fn sync_dir(path: &Path) -> Result<(), TsdbError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| TsdbError::io(path, e))
}

impl BlockWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this id instead of a fresh ULID.
    pub fn with_id(mut self, id: BlockId) -> Self {
        self.id = Some(id);
        self
    }

    /// The block's `[min_time, max_time)` (max exclusive); by default the
    /// range of the samples written (last sample + 1).
    pub fn with_time_range(mut self, min_time: i64, max_time: i64) -> Self {
        self.time_range = Some((min_time, max_time));
        self
    }

    /// Compaction lineage; by default level 1 with the block as its own source.
    pub fn with_compaction(mut self, compaction: BlockCompaction) -> Self {
        self.compaction = Some(compaction);
        self
    }

    /// Segment file size limit (512 MiB by default, as Prometheus).
    pub fn with_max_segment_size(mut self, bytes: u64) -> Self {
        self.max_segment_size = Some(bytes);
        self
    }

    /// The chunk range used to cut chunks from samples (2 h by default, as
    /// Prometheus's head; `promtool tsdb create-blocks-from` uses twice its
    /// block duration, 4 h by default).
    pub fn with_chunk_range(mut self, ms: i64) -> Self {
        self.chunk_range = Some(ms);
        self
    }

    /// Adds a series with encoded chunks (empty chunks are dropped). Chunks
    /// must not overlap in time; they are sorted by their first timestamp.
    pub fn add_chunks(&mut self, labels: Labels, chunks: Vec<XorChunk>) {
        self.series.push((labels, chunks));
    }

    /// Adds a series from samples in strictly increasing time order,
    /// cutting chunks as Prometheus's head does ([`cut_chunks`]).
    pub fn add_samples(&mut self, labels: Labels, samples: &[Sample]) -> Result<(), TsdbError> {
        let range = self.chunk_range.unwrap_or(DEFAULT_CHUNK_RANGE);
        let chunks =
            cut_chunks_with_range(samples, range).map_err(|e| TsdbError::InvalidBlockInput {
                reason: format!("series {labels}: {e}"),
            })?;
        self.series.push((labels, chunks));
        Ok(())
    }

    /// Number of series added so far.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Writes the block under `parent` and returns its meta.
    pub fn write(self, parent: &Path) -> Result<BlockMeta, TsdbError> {
        let id = self.id.unwrap_or_default();
        let final_dir = parent.join(id.to_string());
        if final_dir.exists() {
            return Err(TsdbError::InvalidBlockInput {
                reason: format!("block directory {} already exists", final_dir.display()),
            });
        }
        let tmp = parent.join(format!("{id}.tmp-for-creation"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| TsdbError::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| TsdbError::io(&tmp, e))?;
        let result = self.write_into(&tmp, id);
        let meta = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, &final_dir).map_err(|e| TsdbError::io(&final_dir, e))?;
        sync_dir(parent)?;
        Ok(meta)
    }

    fn write_into(mut self, dir: &Path, id: BlockId) -> Result<BlockMeta, TsdbError> {
        self.series.sort_by(|a, b| a.0.cmp(&b.0));
        for w in self.series.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(TsdbError::InvalidBlockInput {
                    reason: format!("series {} added twice", w[0].0),
                });
            }
        }
        let chunks_dir: PathBuf = dir.join("chunks");
        let mut cw = ChunkWriter::new(
            &chunks_dir,
            self.max_segment_size.unwrap_or(DEFAULT_MAX_SEGMENT_SIZE),
        )?;
        let mut stats = BlockStats::default();
        let mut range: Option<(i64, i64)> = None;
        let mut indexed: Vec<(Labels, Vec<ChunkMeta>)> = Vec::with_capacity(self.series.len());
        for (labels, chunks) in self.series {
            let mut timed = Vec::with_capacity(chunks.len());
            for c in chunks {
                let Some((min_t, max_t)) = c.validate()? else {
                    continue;
                };
                timed.push((min_t, max_t, c));
            }
            if timed.is_empty() {
                continue;
            }
            timed.sort_by_key(|x| x.0);
            if let Some(w) = timed.windows(2).find(|w| w[1].0 <= w[0].1) {
                return Err(TsdbError::InvalidBlockInput {
                    reason: format!(
                        "series {labels}: chunk starting at {} overlaps the chunk ending at {}",
                        w[1].0, w[0].1
                    ),
                });
            }
            let mut metas = Vec::with_capacity(timed.len());
            for (min_time, max_time, c) in &timed {
                let chunk_ref = cw.write(c)?;
                stats.num_chunks += 1;
                stats.num_samples += c.num_samples() as u64;
                metas.push(ChunkMeta {
                    min_time: *min_time,
                    max_time: *max_time,
                    chunk_ref,
                });
                range = Some(match range {
                    None => (*min_time, *max_time),
                    Some((a, b)) => (a.min(*min_time), b.max(*max_time)),
                });
            }
            stats.num_series += 1;
            indexed.push((labels, metas));
        }
        cw.finish()?;
        sync_dir(&chunks_dir)?;

        let (min_time, max_time) = match (self.time_range, range) {
            (Some(r), _) => r,
            (None, Some((a, b))) => (a, b.saturating_add(1)),
            (None, None) => {
                return Err(TsdbError::InvalidBlockInput {
                    reason: "a block without samples needs an explicit time range".into(),
                });
            }
        };
        if let (Some((a, b)), Some((lo, hi))) = (range, self.time_range)
            && (a < lo || b >= hi)
        {
            return Err(TsdbError::InvalidBlockInput {
                reason: format!("samples span [{a}, {b}] outside the block range [{lo}, {hi})"),
            });
        }

        let index = build_index(&indexed)?;
        write_file(&dir.join(INDEX_FILENAME), &index)?;
        write_file(
            &dir.join(TOMBSTONES_FILENAME),
            &Tombstones::default().encode(),
        )?;
        let compaction = self.compaction.unwrap_or_else(|| BlockCompaction {
            level: 1,
            sources: vec![id],
            ..BlockCompaction::default()
        });
        let meta = BlockMeta {
            ulid: id,
            min_time,
            max_time,
            stats,
            compaction,
            version: META_VERSION,
            extra: serde_json::Map::new(),
        };
        write_file(&dir.join(META_FILENAME), &meta.to_json()?)?;
        sync_dir(dir)?;
        Ok(meta)
    }
}

/// The head chunk range Prometheus uses by default (2 h), which also bounds
/// chunks: a chunk never spans a multiple of it.
pub const DEFAULT_CHUNK_RANGE: i64 = 2 * 60 * 60 * 1000;

/// The end of the chunk range holding `t` (Go's truncating division, as in
/// Prometheus's `rangeForTimestamp`).
fn range_end(t: i64, range: i64) -> i64 {
    (t / range) * range + range
}

/// Prometheus's estimate, once a chunk holds a quarter of its target, of
/// when to cut it so the rest of the chunk range splits into equal chunks.
fn chunk_end_estimate(start: i64, cur: i64, max: i64) -> i64 {
    let n = (max - start) / ((cur - start + 1) * 4);
    if n <= 1 {
        max
    } else {
        start + (max - start) / n
    }
}

/// Encodes samples (strictly increasing timestamps) into chunks cut the way
/// Prometheus's head cuts them with the default 2 h chunk range; see
/// [`cut_chunks_with_range`].
pub fn cut_chunks(samples: &[Sample]) -> Result<Vec<XorChunk>, TsdbError> {
    cut_chunks_with_range(samples, DEFAULT_CHUNK_RANGE)
}

/// Encodes samples into chunks with the cutting policy of Prometheus 2.x's
/// head: about [`SAMPLES_PER_CHUNK`] samples per chunk, estimated from the
/// time the first quarter took so that chunks of a range come out equal in
/// size, never crossing a multiple of `chunk_range`, and at most twice the
/// target. With the same chunk range, the same samples therefore give the
/// same chunks, byte for byte, as Prometheus writes (checked against
/// `promtool tsdb create-blocks-from`, whose chunk range is 4 h).
pub fn cut_chunks_with_range(
    samples: &[Sample],
    chunk_range: i64,
) -> Result<Vec<XorChunk>, TsdbError> {
    let chunk_range = chunk_range.max(1);
    let mut out = Vec::with_capacity(samples.len().div_ceil(SAMPLES_PER_CHUNK));
    let mut app: Option<XorAppender> = None;
    let mut next_at = i64::MAX;
    let (mut c_min, mut c_max) = (0i64, 0i64);
    for s in samples {
        if let Some(a) = app.as_mut() {
            if s.t == c_max {
                return Err(TsdbError::DuplicateSample { t: s.t });
            }
            if s.t < c_max {
                return Err(TsdbError::OutOfOrderSample {
                    t: s.t,
                    last: c_max,
                });
            }
            let n = a.num_samples();
            if n == SAMPLES_PER_CHUNK / 4 {
                next_at = chunk_end_estimate(c_min, c_max, next_at);
            }
            if (s.t >= next_at || n >= 2 * SAMPLES_PER_CHUNK)
                && let Some(done) = app.take()
            {
                out.push(done.into_chunk());
            }
        }
        let a = app.get_or_insert_with(|| {
            c_min = s.t;
            next_at = range_end(s.t, chunk_range);
            XorAppender::new()
        });
        a.append(s.t, s.v)?;
        c_max = s.t;
    }
    if let Some(a) = app {
        out.push(a.into_chunk());
    }
    Ok(out)
}
