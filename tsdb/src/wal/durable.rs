//! Group commit: how far the log is durable, and who fsyncs next.
//!
//! The log position (bytes written over the life of a `Wal`) up to which an
//! fsync has completed is a watermark that only moves forward. An appender
//! whose records end at `pos` is acknowledged only once the watermark is at
//! or past `pos`. When it is not, the first waiter becomes the *leader*: it
//! notes how much was written, fsyncs (no lock held, so others keep writing
//! meanwhile), moves the watermark to what it noted and wakes everybody.
//! The others (*followers*) sleep on a condvar; the ones the fsync covered
//! return, and of the rest one leads the next fsync, which covers every
//! record written while the previous one was in flight. So with N
//! concurrent appenders an fsync makes up to about N batches durable, and a
//! lone appender still pays exactly one fsync per batch.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::TsdbError;

/// The durable watermark and the leader slot of group commit.
#[derive(Default)]
pub(super) struct Durability {
    /// Log position up to which an fsync has completed.
    synced: AtomicU64,
    /// Whether a leader's fsync is in flight.
    leading: Mutex<bool>,
    /// Signalled whenever a leader finishes (or the watermark moves).
    done: Condvar,
}

impl Durability {
    /// Log position known durable.
    pub(super) fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Records that everything up to `pos` is durable (an fsync outside
    /// [`Durability::wait_for`], e.g. of a finished segment) and wakes the
    /// waiters it covers.
    pub(super) fn advance(&self, pos: u64) {
        self.synced.fetch_max(pos, Ordering::AcqRel);
        // Taken so that a follower between its check and its wait cannot
        // miss the wake-up.
        let _g = self.leading.lock();
        self.done.notify_all();
    }

    /// Returns once everything up to `pos` is durable; `Ok` is never
    /// returned before an fsync covering `pos` completed. When no fsync is
    /// in flight, the caller runs `fsync`, which must make durable at least
    /// everything written before it was called and return that position.
    /// `failed` is checked before leading or waiting again, so that after
    /// a failed fsync every waiter not yet covered fails too.
    pub(super) fn wait_for(
        &self,
        pos: u64,
        failed: impl Fn() -> Result<(), TsdbError>,
        fsync: impl Fn() -> Result<u64, TsdbError>,
    ) -> Result<(), TsdbError> {
        loop {
            if self.synced() >= pos {
                return Ok(());
            }
            {
                let mut leading = self.leading.lock();
                loop {
                    if self.synced() >= pos {
                        return Ok(());
                    }
                    failed()?;
                    if !*leading {
                        *leading = true;
                        break;
                    }
                    self.done.wait(&mut leading);
                }
            }
            let lead = Lead(self);
            let covered = fsync()?;
            self.synced.fetch_max(covered, Ordering::AcqRel);
            drop(lead);
            // Checked again at the top: the position is only trusted
            // through the watermark.
        }
    }
}

/// The leader slot while an fsync runs; released (waking the followers)
/// on every exit, errors and panics included, so nobody waits forever.
struct Lead<'a>(&'a Durability);

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        *self.0.leading.lock() = false;
        self.0.done.notify_all();
    }
}
