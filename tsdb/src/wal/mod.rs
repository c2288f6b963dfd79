//! The write-ahead log of one tenant's head.
//!
//! A directory of numbered segment files (at most
//! [`WalOptions::segment_size`] bytes each, like Prometheus's 128 MiB) holding
//! checksummed records of series (ref + labels) and samples (ref, t, v); see
//! `docs/tsdb-head-wal.md` for the byte layout. One append batch becomes one write
//! of its framed records.
//!
//! Durability: an append batch is acknowledged once its records are written
//! to the file and the [`SyncPolicy`] is satisfied. With
//! [`SyncPolicy::Batch`] the append returns after an fsync that covers it;
//! concurrent appenders share fsyncs (group commit: records written while
//! an fsync is in flight are made durable by the next single fsync, see
//! `durable.rs`), and [`WalStats::fsyncs`] against
//! [`WalStats::synced_appends`] shows how many batches one fsync covers. With
//! [`SyncPolicy::Interval`] a background thread fsyncs every interval; a
//! process crash loses nothing (the data is in the page cache) but a machine
//! crash or power loss can lose up to one interval of acknowledged writes.
//!
//! After a block is cut, [`Wal::checkpoint`] rewrites the older segments into
//! a checkpoint holding only the series still alive and the samples not yet
//! in a block, then deletes those segments. [`Wal::open`] replays the newest
//! checkpoint and the segments after it, streaming one record at a time.

mod checkpoint;
mod durable;
#[cfg(test)]
mod group_commit_tests;
mod record;
mod replay;
mod segment;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tidemark_model::{Exemplar, Labels, Sample};

use crate::TsdbError;
use crate::head::SeriesRef;
use durable::Durability;

pub use checkpoint::CheckpointStats;
pub(crate) use record::{
    HEADER_LEN, RecordType, begin_samples, encode_exemplar, encode_sample_group, encode_series,
    finish_frame,
};
pub use replay::{RepairReport, ReplayStats};
use segment::{segment_name, sync_dir};

/// When appended records are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Fsync before acknowledging every append batch (concurrent batches
    /// share one fsync). Nothing acknowledged is lost, even on power loss.
    Batch,
    /// Fsync every interval from a background thread. Appends are
    /// acknowledged once written to the file, so a process crash loses
    /// nothing, but a machine crash loses up to one interval of writes.
    Interval(Duration),
}

/// Options of one WAL directory.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Size after which a new segment file is started. Default 128 MiB.
    pub segment_size: u64,
    /// Fsync policy. Default [`SyncPolicy::Batch`].
    pub sync: SyncPolicy,
    /// On corruption before the end of the log, truncate the log at the bad
    /// record and delete every later segment instead of refusing to open.
    /// Everything after the corruption is lost (reported in
    /// [`ReplayStats::repaired`] and logged). Default `false`.
    pub repair: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 128 << 20,
            sync: SyncPolicy::Batch,
            repair: false,
        }
    }
}

impl WalOptions {
    /// Checks the options; the error names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_size < (64 << 10) {
            return Err(format!(
                "wal.segment_size: {} is below the minimum of 64 KiB",
                self.segment_size
            ));
        }
        if let SyncPolicy::Interval(d) = self.sync
            && d.is_zero()
        {
            return Err("wal.sync: the fsync interval must be positive".to_string());
        }
        Ok(())
    }
}

/// A record read back during replay.
#[derive(Debug)]
pub enum WalRecord<'a> {
    /// A series was created with this ref.
    Series { r: SeriesRef, labels: Labels },
    /// Samples appended to the series `r`, in append order.
    Samples { r: SeriesRef, samples: &'a [Sample] },
    /// An exemplar of the series `r`.
    Exemplar { r: SeriesRef, exemplar: Exemplar },
}

/// Counters of a WAL since it was opened, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records written (a batch is usually one series and one samples record).
    pub records_written: u64,
    /// Bytes written, framing included.
    pub bytes_written: u64,
    /// Fsync calls on segment files.
    pub fsyncs: u64,
    /// Total time spent in those fsyncs.
    pub fsync_nanos: u64,
    /// Appends acknowledged under [`SyncPolicy::Batch`], each after an fsync
    /// covering it. Fewer `fsyncs` than these means group commit shared
    /// fsyncs between concurrent appends.
    pub synced_appends: u64,
    /// Log bytes known durable (fsynced); `bytes_written` minus this is
    /// what a machine crash could lose right now.
    pub synced_bytes: u64,
    /// Segment files started.
    pub segments_created: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Segment files deleted after a checkpoint.
    pub segments_deleted: u64,
    /// Torn final records truncated when the WAL was opened.
    pub torn_records_truncated: u64,
}

#[derive(Default)]
struct Counters {
    records_written: AtomicU64,
    bytes_written: AtomicU64,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    synced_appends: AtomicU64,
    segments_created: AtomicU64,
    checkpoints: AtomicU64,
    segments_deleted: AtomicU64,
    torn_records_truncated: AtomicU64,
}

/// The segment being appended to.
struct Writer {
    file: Arc<File>,
    segment: u32,
    /// Bytes in the current segment.
    seg_offset: u64,
    /// Bytes written over the life of this `Wal`, across segments: the
    /// position that fsyncs are tracked against.
    written: u64,
}

/// Forces a segment file's data to stable storage: `File::sync_data`, or a
/// test's stand-in that observes or fails fsyncs.
type FsyncFn = Box<dyn Fn(&File) -> std::io::Result<()> + Send + Sync>;

struct Shared {
    dir: PathBuf,
    opts: WalOptions,
    writer: Mutex<Writer>,
    /// The durable watermark and group commit of fsyncs.
    durable: Durability,
    fsync: FsyncFn,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    counters: Counters,
    checkpoint_lock: Mutex<()>,
}

/// The write-ahead log of one head. Cheap to share by reference; every
/// method takes `&self` and is safe to call from many threads.
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Option<IntervalSyncer>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("opts", &self.shared.opts)
            .finish()
    }
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, replaying every record
    /// into `on_record` first, in log order. A torn final record is
    /// truncated; corruption before the end fails with
    /// [`TsdbError::WalCorruption`] unless [`WalOptions::repair`] is set.
    /// New records go to a fresh segment after the replayed ones.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        on_record: impl FnMut(WalRecord<'_>),
    ) -> Result<(Wal, ReplayStats), TsdbError> {
        Wal::open_with_fsync(dir, opts, on_record, Box::new(|f: &File| f.sync_data()))
    }

    /// [`Wal::open`] with the fsync of segment files replaced (tests).
    fn open_with_fsync(
        dir: &Path,
        opts: WalOptions,
        on_record: impl FnMut(WalRecord<'_>),
        fsync: FsyncFn,
    ) -> Result<(Wal, ReplayStats), TsdbError> {
        opts.validate()
            .map_err(|reason| TsdbError::InvalidOptions { reason })?;
        std::fs::create_dir_all(dir).map_err(|e| TsdbError::io(dir, e))?;
        let (stats, next_segment) = replay::replay(dir, &opts, on_record)?;
        let (file, path) = create_segment(dir, next_segment)?;
        sync_dir(dir)?;
        tracing::debug!(dir = %dir.display(), segment = %path.display(), "WAL opened");
        let counters = Counters::default();
        counters.segments_created.store(1, Ordering::Relaxed);
        counters
            .torn_records_truncated
            .store(stats.torn_records, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                segment: next_segment,
                seg_offset: 0,
                written: 0,
            }),
            durable: Durability::default(),
            fsync,
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            counters,
            checkpoint_lock: Mutex::new(()),
            opts,
        });
        let syncer = match shared.opts.sync {
            SyncPolicy::Interval(every) => Some(IntervalSyncer::start(Arc::clone(&shared), every)?),
            SyncPolicy::Batch => None,
        };
        Ok((Wal { shared, syncer }, stats))
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The options the WAL was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.shared.opts
    }

    /// Writes framed records (built with the `record` encoders) in one write
    /// and returns the log position after them, for [`Wal::wait_durable`].
    /// The records of one call never span segments.
    pub(crate) fn log(&self, records: &[u8], count: u64) -> Result<u64, TsdbError> {
        self.shared.check_failed()?;
        if records.len() > record::MAX_RECORD_LEN + record::HEADER_LEN {
            // Replay would refuse it; callers split their records well below.
            return Err(TsdbError::WalFailed {
                dir: self.shared.dir.clone(),
                reason: format!("record of {} bytes exceeds the maximum", records.len()),
            });
        }
        let mut w = self.shared.writer.lock();
        if w.seg_offset > 0 && w.seg_offset + records.len() as u64 > self.shared.opts.segment_size {
            self.shared.rotate(&mut w)?;
        }
        if let Err(e) = (&*w.file).write_all(records) {
            let path = self.shared.dir.join(segment_name(w.segment));
            return Err(self.shared.fail(TsdbError::io(path, e)));
        }
        w.seg_offset += records.len() as u64;
        w.written += records.len() as u64;
        let c = &self.shared.counters;
        c.records_written.fetch_add(count, Ordering::Relaxed);
        c.bytes_written
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(w.written)
    }

    /// Applies the sync policy to everything up to `pos`: with
    /// [`SyncPolicy::Batch`], returns once an fsync covering `pos` finished.
    pub(crate) fn wait_durable(&self, pos: u64) -> Result<(), TsdbError> {
        match self.shared.opts.sync {
            SyncPolicy::Batch => {
                self.shared.sync_to(pos)?;
                let c = &self.shared.counters;
                c.synced_appends.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            SyncPolicy::Interval(_) => Ok(()),
        }
    }

    /// Fails when an earlier write or fsync failed.
    pub(crate) fn check_failed(&self) -> Result<(), TsdbError> {
        self.shared.check_failed()
    }

    /// Fsyncs everything written so far, whatever the policy.
    pub fn sync(&self) -> Result<(), TsdbError> {
        let pos = self.shared.writer.lock().written;
        self.shared.sync_to(pos)
    }

    /// Counters since the WAL was opened.
    pub fn stats(&self) -> WalStats {
        let c = &self.shared.counters;
        WalStats {
            records_written: c.records_written.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            fsync_nanos: c.fsync_nanos.load(Ordering::Relaxed),
            synced_appends: c.synced_appends.load(Ordering::Relaxed),
            synced_bytes: self.shared.durable.synced(),
            segments_created: c.segments_created.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            segments_deleted: c.segments_deleted.load(Ordering::Relaxed),
            torn_records_truncated: c.torn_records_truncated.load(Ordering::Relaxed),
        }
    }

    /// Rewrites every segment before the current one into a checkpoint that
    /// keeps the series records for which `keep` is true and the samples of
    /// those series at or after `mint`, then deletes those segments and older
    /// checkpoints. Call it after a block covering everything before `mint`
    /// was written and the head truncated. Appends continue meanwhile, into
    /// a new segment.
    pub fn checkpoint(
        &self,
        keep: impl Fn(SeriesRef) -> bool,
        mint: i64,
    ) -> Result<CheckpointStats, TsdbError> {
        let _one_at_a_time = self.shared.checkpoint_lock.lock();
        let last = {
            let mut w = self.shared.writer.lock();
            if w.seg_offset > 0 {
                self.shared.rotate(&mut w)?;
            }
            w.segment.checked_sub(1)
        };
        let Some(last) = last else {
            return Ok(CheckpointStats::default());
        };
        let stats = checkpoint::run(&self.shared.dir, last, &keep, mint)?;
        let c = &self.shared.counters;
        c.checkpoints.fetch_add(1, Ordering::Relaxed);
        c.segments_deleted
            .fetch_add(stats.segments_deleted, Ordering::Relaxed);
        Ok(stats)
    }

    /// Fsyncs and stops the interval syncer. Dropping the WAL does the same
    /// but can only log an fsync error.
    pub fn close(mut self) -> Result<(), TsdbError> {
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
        self.sync()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
        if !self.shared.failed.load(Ordering::Relaxed)
            && let Err(e) = self.sync()
        {
            tracing::error!(dir = %self.shared.dir.display(), error = %e, "final WAL fsync failed");
        }
    }
}

impl Shared {
    fn check_failed(&self) -> Result<(), TsdbError> {
        if self.failed.load(Ordering::Acquire) {
            let reason = self
                .failure
                .lock()
                .clone()
                .unwrap_or_else(|| "unknown".to_string());
            return Err(TsdbError::WalFailed {
                dir: self.dir.clone(),
                reason,
            });
        }
        Ok(())
    }

    /// Marks the WAL failed: after a failed write the file may end in a
    /// partial record, so nothing may be appended behind it.
    fn fail(&self, e: TsdbError) -> TsdbError {
        tracing::error!(dir = %self.dir.display(), error = %e, "WAL write failed; refusing further writes");
        *self.failure.lock() = Some(e.to_string());
        self.failed.store(true, Ordering::Release);
        e
    }

    /// Starts the next segment; the finished one is fsynced first so that
    /// only the current segment can ever hold unsynced data.
    fn rotate(&self, w: &mut Writer) -> Result<(), TsdbError> {
        let old = self.dir.join(segment_name(w.segment));
        let start = Instant::now();
        if let Err(e) = (self.fsync)(&w.file) {
            return Err(self.fail(TsdbError::io(old, e)));
        }
        self.note_fsync(start);
        let next = w.segment + 1;
        let (file, _) = create_segment(&self.dir, next).map_err(|e| self.fail(e))?;
        sync_dir(&self.dir).map_err(|e| self.fail(e))?;
        w.file = Arc::new(file);
        w.segment = next;
        w.seg_offset = 0;
        // Everything before the new segment is durable now.
        self.durable.advance(w.written);
        self.counters
            .segments_created
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn note_fsync(&self, start: Instant) {
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .fsync_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Returns once an fsync covering everything up to `pos` completed,
    /// sharing fsyncs with concurrent callers (group commit).
    fn sync_to(&self, pos: u64) -> Result<(), TsdbError> {
        self.durable
            .wait_for(pos, || self.check_failed(), || self.fsync_written())
    }

    /// Fsyncs the current segment and returns the log position it made
    /// durable: everything written before the call (earlier segments were
    /// fsynced when they were finished).
    fn fsync_written(&self) -> Result<u64, TsdbError> {
        let (file, target, segment) = {
            let w = self.writer.lock();
            (Arc::clone(&w.file), w.written, w.segment)
        };
        let start = Instant::now();
        if let Err(e) = (self.fsync)(&file) {
            let path = self.dir.join(segment_name(segment));
            return Err(self.fail(TsdbError::io(path, e)));
        }
        self.note_fsync(start);
        Ok(target)
    }
}

fn create_segment(dir: &Path, index: u32) -> Result<(File, PathBuf), TsdbError> {
    let path = dir.join(segment_name(index));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| TsdbError::io(&path, e))?;
    Ok((file, path))
}

/// The background fsync thread of [`SyncPolicy::Interval`], stopped and
/// joined when the WAL closes.
struct IntervalSyncer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl IntervalSyncer {
    fn start(shared: Arc<Shared>, every: Duration) -> Result<Self, TsdbError> {
        let dir = shared.dir.clone();
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("wal-fsync".to_string())
            .spawn(move || {
                let (lock, cv) = &*stop2;
                let mut stopped = lock.lock();
                while !*stopped {
                    cv.wait_for(&mut stopped, every);
                    if *stopped {
                        break;
                    }
                    parking_lot::MutexGuard::unlocked(&mut stopped, || {
                        let pos = shared.writer.lock().written;
                        if let Err(e) = shared.sync_to(pos) {
                            tracing::error!(dir = %shared.dir.display(), error = %e, "interval WAL fsync failed");
                        }
                    });
                }
            });
        let h = handle.map_err(|e| TsdbError::io(dir, e))?;
        Ok(IntervalSyncer {
            stop,
            handle: Some(h),
        })
    }

    fn stop(mut self) {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock() = true;
            cv.notify_all();
        }
        if let Some(h) = self.handle.take()
            && h.join().is_err()
        {
            tracing::error!("WAL fsync thread panicked");
        }
    }
}
