//! WAL tickets: keep each series' samples in the WAL in the order they
//! entered memory when appends run concurrently.
//!
//! An append takes a ticket before committing samples and stamps every
//! series it appends to with it. The ticket stays *pending* until the
//! samples stamped with it are written to the WAL. Another append that
//! meets a series stamped with a pending ticket first writes its own
//! pending samples (renewing its ticket, so nobody waits on it), then waits
//! for that ticket to retire. Nobody waits while holding a pending ticket,
//! so waits always end.
//!
//! Tickets increase, and retirement keeps a watermark below which every
//! ticket is retired, so the common check (a series last appended by a
//! finished append) is one atomic load, without the lock.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

pub(crate) struct Tickets {
    next: AtomicU64,
    pending: Mutex<BTreeSet<u64>>,
    /// Every ticket below this is retired.
    retired_below: AtomicU64,
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets {
            next: AtomicU64::new(1),
            pending: Mutex::new(BTreeSet::new()),
            retired_below: AtomicU64::new(1),
        }
    }
}

impl Tickets {
    /// A new pending ticket, retired when the guard is renewed or dropped.
    pub(crate) fn issue(&self) -> Ticket<'_> {
        Ticket {
            tickets: self,
            id: self.issue_id(),
        }
    }

    fn issue_id(&self) -> u64 {
        let mut pending = self.pending.lock();
        // Issued under the lock so that `retire` never computes a watermark
        // above a ticket being issued.
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        pending.insert(id);
        id
    }

    fn retire(&self, id: u64) {
        let mut pending = self.pending.lock();
        pending.remove(&id);
        let below = pending
            .first()
            .copied()
            .unwrap_or_else(|| self.next.load(Ordering::Relaxed));
        self.retired_below.store(below, Ordering::Release);
    }

    /// Whether samples stamped with `id` may still be missing from the WAL
    /// (0, the stamp of a series never appended to, is always retired).
    pub(crate) fn is_pending(&self, id: u64) -> bool {
        if id < self.retired_below.load(Ordering::Acquire) {
            return false;
        }
        self.pending.lock().contains(&id)
    }

    /// Waits until `id` is retired.
    pub(crate) fn wait(&self, id: u64) {
        let mut spins = 0u32;
        while self.is_pending(id) {
            spins += 1;
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}

/// A pending ticket; retired on drop, error paths included.
pub(crate) struct Ticket<'a> {
    tickets: &'a Tickets,
    pub(crate) id: u64,
}

impl Ticket<'_> {
    /// Retires this ticket (its samples are in the WAL) and continues with
    /// a new one.
    pub(crate) fn renew(&mut self) {
        let new = self.tickets.issue_id();
        self.tickets.retire(self.id);
        self.id = new;
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.tickets.retire(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retirement_out_of_order_keeps_a_correct_watermark() {
        let t = Tickets::default();
        assert!(!t.is_pending(0));
        let a = t.issue();
        let mut b = t.issue();
        let (ida, idb) = (a.id, b.id);
        assert!(t.is_pending(ida) && t.is_pending(idb));
        b.renew();
        assert!(!t.is_pending(idb));
        assert!(t.is_pending(ida));
        assert!(t.is_pending(b.id));
        drop(a);
        assert!(!t.is_pending(ida));
        drop(b);
        assert!(!t.is_pending(idb + 1));
        assert_eq!(
            t.retired_below.load(Ordering::Relaxed),
            t.next.load(Ordering::Relaxed)
        );
    }
}
