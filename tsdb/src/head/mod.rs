//! The head: one tenant's recent samples in memory, indexed for label
//! matching, backed by a write-ahead log.
//!
//! Structure:
//! - **Series** live in 1024 stripes chosen by their labels
//!   hash, each behind its own `RwLock`; a [`SeriesRef`] encodes its stripe,
//!   so an append to an existing series takes one stripe lock and no global
//!   lock. A series holds closed XOR chunks (cut at
//!   [`HeadOptions::samples_per_chunk`] samples or at a chunk-range
//!   boundary, like Prometheus) and the chunk being appended to.
//! - **Index**: a symbol table (every label string once per head) and
//!   inverted postings (name, value -> sorted refs) behind one `RwLock`,
//!   taken for reading to resolve a batch's series and for writing only
//!   when series are created or truncated away.
//! - **WAL** (optional): a batch's new series are logged while the index
//!   write lock is held (so a series record precedes any sample of it) and
//!   its accepted samples as one record afterwards; the append returns only
//!   once that record is written and synced per the [`SyncPolicy`].
//!
//! [`SyncPolicy`]: crate::wal::SyncPolicy

mod append;
mod exemplars;
mod postings;
mod query;
mod series;
mod symbols;
mod tenants;
mod tickets;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicIsize, AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use tidemark_model::{Labels, Sample};

use crate::TsdbError;
use crate::wal::{ReplayStats, Wal, WalOptions, WalRecord};
use postings::Index;
use series::{ChunkOpts, MemSeries, STRIPES, Stripe, series_key, stripe_of_hash, stripe_of_ref};

pub use append::{AppendResult, RefusedSeries};
pub use exemplars::{ExemplarAppend, ExemplarRefusal, SeriesExemplars};
pub use query::{RangeSeries, SeriesSamples};
pub use tenants::TenantHeads;

/// Id of a series within one head. Stable for the life of the series and
/// written to the WAL, so replay restores the same ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesRef(pub u64);

/// Tuning of a head.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Samples after which a chunk is closed. Default 120, like Prometheus.
    pub samples_per_chunk: usize,
    /// Chunks are also closed at multiples of this range (ms), so a block
    /// cut at those boundaries takes whole chunks. Default 2 h.
    pub chunk_range_ms: i64,
    /// On WAL replay, samples before this time are skipped (set it to the
    /// end of the newest block on disk). Default: keep everything.
    pub replay_min_time: i64,
    /// Exemplars kept in memory, for all series together; the oldest is
    /// overwritten when full. 0 turns exemplar storage off. Default
    /// 100 000, Prometheus's `--storage.exemplars.exemplars-limit` default.
    pub max_exemplars: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            samples_per_chunk: 120,
            chunk_range_ms: 2 * 3600 * 1000,
            replay_min_time: i64::MIN,
            max_exemplars: 100_000,
        }
    }
}

impl HeadOptions {
    /// Checks the options; the error names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=u16::MAX as usize).contains(&self.samples_per_chunk) {
            return Err(format!(
                "head.samples_per_chunk: {} is not in 1..=65535",
                self.samples_per_chunk
            ));
        }
        if self.chunk_range_ms <= 0 {
            return Err(format!(
                "head.chunk_range_ms: {} must be positive",
                self.chunk_range_ms
            ));
        }
        Ok(())
    }
}

/// One tenant's in-memory series, postings and (optionally) WAL.
pub struct Head {
    opts: HeadOptions,
    chunk_opts: ChunkOpts,
    index: RwLock<Index>,
    stripes: Box<[RwLock<Stripe>]>,
    wal: Option<Wal>,
    num_series: AtomicUsize,
    /// Estimated bytes of series and chunks (the index counts its own).
    series_bytes: AtomicIsize,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples older than this are refused (set by truncation).
    min_valid_time: AtomicI64,
    /// WAL ordering of a series' samples across concurrent appends.
    tickets: tickets::Tickets,
    exemplars: exemplars::ExemplarStore,
    counters: Counters,
}

/// Cumulative counters behind [`HeadStats`].
#[derive(Default)]
struct Counters {
    samples_appended: AtomicU64,
    samples_duplicate: AtomicU64,
    samples_refused: AtomicU64,
    series_created: AtomicU64,
    series_removed: AtomicU64,
    exemplars_appended: AtomicU64,
    exemplars_refused: AtomicU64,
}

/// A snapshot of a head's gauges and counters, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadStats {
    /// Series now in the head.
    pub series: usize,
    /// [`Head::memory_bytes`].
    pub memory_bytes: usize,
    /// Samples stored since the head was opened (replay not included).
    pub samples_appended: u64,
    /// Exact duplicates accepted as no-ops.
    pub samples_duplicate: u64,
    /// Samples refused (out of order, conflicting duplicate, too old, no labels).
    pub samples_refused: u64,
    /// Series created by appends.
    pub series_created: u64,
    /// Series removed by truncation.
    pub series_removed: u64,
    /// Exemplars in memory now.
    pub exemplars: usize,
    /// Exemplars stored since the head was opened (replay not included).
    pub exemplars_appended: u64,
    /// Exemplars refused (out of order, labels too long, unknown series,
    /// storage off).
    pub exemplars_refused: u64,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("num_series", &self.num_series())
            .field("min_time", &self.min_time())
            .field("max_time", &self.max_time())
            .field("wal", &self.wal)
            .finish()
    }
}

impl Head {
    /// A head without a WAL: nothing survives a restart. For tests and for
    /// callers that have their own durability.
    pub fn new(opts: HeadOptions) -> Result<Head, TsdbError> {
        opts.validate()
            .map_err(|reason| TsdbError::InvalidOptions { reason })?;
        let chunk_opts = ChunkOpts {
            samples_per_chunk: opts.samples_per_chunk,
            chunk_range: opts.chunk_range_ms,
        };
        let max_exemplars = opts.max_exemplars;
        Ok(Head {
            opts,
            chunk_opts,
            index: RwLock::new(Index::default()),
            stripes: (0..STRIPES).map(|i| RwLock::new(Stripe::new(i))).collect(),
            wal: None,
            num_series: AtomicUsize::new(0),
            series_bytes: AtomicIsize::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            tickets: tickets::Tickets::default(),
            exemplars: exemplars::ExemplarStore::new(max_exemplars),
            counters: Counters::default(),
        })
    }

    /// Opens the head whose WAL is in `wal_dir`: replays the WAL (streaming,
    /// one record at a time) to rebuild series and samples, then logs every
    /// later append there.
    pub fn open(
        wal_dir: &Path,
        opts: HeadOptions,
        wal_opts: WalOptions,
    ) -> Result<(Head, ReplayStats), TsdbError> {
        let mut head = Head::new(opts)?;
        let mut remap: HashMap<SeriesRef, SeriesRef> = HashMap::new();
        let min_time = head.opts.replay_min_time;
        let mut refused = 0u64;
        let mut unknown = 0u64;
        let (wal, stats) = Wal::open(wal_dir, wal_opts, |rec| match rec {
            WalRecord::Series { r, labels } => head.replay_series(r, labels, &mut remap),
            WalRecord::Samples { r, samples } => {
                let r = remap.get(&r).copied().unwrap_or(r);
                match head.replay_samples(r, samples, min_time) {
                    Some(n) => refused += n,
                    None => unknown += samples.len() as u64,
                }
            }
            WalRecord::Exemplar { r, exemplar } => {
                head.replay_exemplar(remap.get(&r).copied().unwrap_or(r), exemplar);
            }
        })?;
        if refused > 0 || unknown > 0 {
            tracing::warn!(
                dir = %wal_dir.display(),
                refused,
                unknown_series = unknown,
                "WAL replay skipped samples (older than replay_min_time, out of order, or of unknown series)"
            );
        }
        tracing::info!(
            dir = %wal_dir.display(),
            series = head.num_series(),
            samples = stats.samples,
            torn = stats.torn_records,
            "head replayed from WAL"
        );
        head.wal = Some(wal);
        Ok((head, stats))
    }

    fn replay_series(
        &self,
        r: SeriesRef,
        labels: Labels,
        remap: &mut HashMap<SeriesRef, SeriesRef>,
    ) {
        if labels.is_empty() {
            return;
        }
        let key = series_key(&labels);
        let stripe_idx = stripe_of_hash(key.hash);
        let mut index = self.index.write();
        let mut stripe = self.stripes[stripe_idx].write();
        if let Some(existing) = stripe.find(key) {
            if existing == r {
                remap.remove(&r);
            } else {
                remap.insert(r, existing);
            }
            return;
        }
        let new_ref = if stripe_of_ref(r) == stripe_idx && stripe.slot_free(r) {
            remap.remove(&r);
            r
        } else {
            let n = stripe.next_ref();
            remap.insert(r, n);
            n
        };
        index.add(new_ref, &labels);
        let s = MemSeries::new(labels, key);
        self.series_bytes
            .fetch_add(s.memory_bytes() as isize, Ordering::Relaxed);
        stripe.insert(new_ref, s);
        self.num_series.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends replayed samples; `None` when the series is unknown,
    /// otherwise the number of samples refused.
    fn replay_samples(&self, r: SeriesRef, samples: &[Sample], min_time: i64) -> Option<u64> {
        let mut stripe = self.stripes[stripe_of_ref(r)].write();
        let s = stripe.get_mut(r)?;
        let mut refused = 0;
        let mut delta = 0;
        for smp in samples {
            if smp.t < min_time {
                refused += 1;
                continue;
            }
            match s.append(*smp, self.chunk_opts) {
                Ok(d) => {
                    delta += d;
                    self.min_time.fetch_min(smp.t, Ordering::Relaxed);
                    self.max_time.fetch_max(smp.t, Ordering::Relaxed);
                }
                Err(series::Refusal::Duplicate) => {}
                Err(_) => refused += 1,
            }
        }
        self.series_bytes.fetch_add(delta, Ordering::Relaxed);
        Some(refused)
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> usize {
        self.num_series.load(Ordering::Relaxed)
    }

    /// Oldest sample time, `None` while empty.
    pub fn min_time(&self) -> Option<i64> {
        let t = self.min_time.load(Ordering::Relaxed);
        (t != i64::MAX).then_some(t)
    }

    /// Newest sample time, `None` while empty.
    pub fn max_time(&self) -> Option<i64> {
        let t = self.max_time.load(Ordering::Relaxed);
        (t != i64::MIN).then_some(t)
    }

    /// Estimated heap bytes held by the head: series, chunks, postings,
    /// symbols and exemplars (not the WAL's buffers). Cheap: maintained incrementally, so
    /// it can be checked against a memory limit on every append.
    pub fn memory_bytes(&self) -> usize {
        let series = self.series_bytes.load(Ordering::Relaxed).max(0) as usize;
        series + self.index.read().memory_bytes() + self.exemplars.memory_bytes()
    }

    /// Gauges and cumulative counters, cheap to read.
    pub fn stats(&self) -> HeadStats {
        let c = &self.counters;
        HeadStats {
            series: self.num_series(),
            memory_bytes: self.memory_bytes(),
            samples_appended: c.samples_appended.load(Ordering::Relaxed),
            samples_duplicate: c.samples_duplicate.load(Ordering::Relaxed),
            samples_refused: c.samples_refused.load(Ordering::Relaxed),
            series_created: c.series_created.load(Ordering::Relaxed),
            series_removed: c.series_removed.load(Ordering::Relaxed),
            exemplars: self.exemplars.len(),
            exemplars_appended: c.exemplars_appended.load(Ordering::Relaxed),
            exemplars_refused: c.exemplars_refused.load(Ordering::Relaxed),
        }
    }

    /// Adds one append's outcome to the counters.
    fn count(&self, r: &AppendResult) {
        let c = &self.counters;
        c.samples_appended
            .fetch_add(r.samples_written as u64, Ordering::Relaxed);
        c.samples_duplicate
            .fetch_add(r.samples_duplicate as u64, Ordering::Relaxed);
        c.samples_refused
            .fetch_add(r.samples_refused as u64, Ordering::Relaxed);
        c.series_created
            .fetch_add(r.series_created as u64, Ordering::Relaxed);
    }

    /// The WAL, when the head has one.
    pub fn wal(&self) -> Option<&Wal> {
        self.wal.as_ref()
    }

    /// Whether the series `r` is in the head.
    pub fn contains(&self, r: SeriesRef) -> bool {
        self.stripes[stripe_of_ref(r)].read().contains(r)
    }

    /// Refuses samples before `t` from now on, without dropping anything:
    /// set before a block up to `t` is cut, so no append lands in the range
    /// being written after its series were read.
    pub fn refuse_before(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    /// Drops every sample before `before` (a block now holds them), removes
    /// series left without samples, and refuses samples before `before`
    /// from now on. With a WAL, then checkpoints it so the segments holding
    /// only dropped data are deleted.
    pub fn truncate(&self, before: i64) -> Result<TruncateStats, TsdbError> {
        self.min_valid_time.fetch_max(before, Ordering::AcqRel);
        let mut stats = TruncateStats::default();
        {
            let mut index = self.index.write();
            let mut removed = Vec::new();
            let mut min_t = i64::MAX;
            let mut delta = 0;
            for stripe in self.stripes.iter() {
                let mut stripe = stripe.write();
                let mut empty = Vec::new();
                for (r, s) in stripe.iter_mut() {
                    let (d, is_empty) = s.truncate(before);
                    delta += d;
                    if is_empty && !self.tickets.is_pending(s.wal_ticket) {
                        empty.push(r);
                    } else if let Some(t) = s.min_time() {
                        min_t = min_t.min(t);
                    }
                }
                for r in empty {
                    if let Some(s) = stripe.remove(r) {
                        delta -= s.memory_bytes() as isize;
                        removed.push((r, s.labels));
                    }
                }
            }
            index.remove_many(&removed);
            stats.series_removed = removed.len();
            self.counters
                .series_removed
                .fetch_add(removed.len() as u64, Ordering::Relaxed);
            self.num_series.fetch_sub(removed.len(), Ordering::Relaxed);
            self.series_bytes.fetch_add(delta, Ordering::Relaxed);
            self.min_time.store(min_t, Ordering::Relaxed);
            if min_t == i64::MAX {
                self.max_time.store(i64::MIN, Ordering::Relaxed);
            }
        }
        if let Some(wal) = &self.wal {
            stats.checkpoint = Some(wal.checkpoint(|r| self.contains(r), before)?);
        }
        Ok(stats)
    }
}

/// What [`Head::truncate`] did.
#[derive(Debug, Clone, Default)]
pub struct TruncateStats {
    /// Series removed because no sample was left.
    pub series_removed: usize,
    /// The WAL checkpoint written, when the head has a WAL.
    pub checkpoint: Option<crate::wal::CheckpointStats>,
}
