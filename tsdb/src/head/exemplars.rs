//! Exemplars of one head: a circular buffer of fixed capacity shared by
//! all its series, as Prometheus's exemplar storage, so a tenant's
//! exemplar memory is bounded by one number however many series send
//! them. Each series' exemplars are linked oldest to newest through the
//! buffer; writing into a full buffer overwrites the oldest exemplar of
//! all, which is always the oldest of its series.
//!
//! Exemplars are few next to samples (one per series per scrape at most,
//! usually far fewer), so one mutex guards the store.

use std::collections::{BTreeSet, HashMap};

use parking_lot::Mutex;
use tidemark_model::{EXEMPLAR_MAX_LABEL_CHARS, Exemplar, Labels, Matcher};

use super::series::{series_key, stripe_of_hash, stripe_of_ref};
use super::{Head, SeriesRef};
use crate::TsdbError;
use crate::wal::{HEADER_LEN, RecordType, encode_exemplar, finish_frame};

/// Why one exemplar was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExemplarRefusal {
    /// The store's capacity is 0.
    Disabled,
    /// Names and values together exceed [`EXEMPLAR_MAX_LABEL_CHARS`].
    LabelsTooLong,
    /// Not newer than the newest exemplar of its series.
    OutOfOrder,
    /// The series is not in the head (none of its samples were accepted).
    UnknownSeries,
}

impl ExemplarRefusal {
    /// The reason as a metric label value.
    pub fn reason(self) -> &'static str {
        match self {
            ExemplarRefusal::Disabled => "exemplars_disabled",
            ExemplarRefusal::LabelsTooLong => "exemplar_labels_too_long",
            ExemplarRefusal::OutOfOrder => "exemplar_out_of_order",
            ExemplarRefusal::UnknownSeries => "exemplar_unknown_series",
        }
    }
}

struct Entry {
    series: SeriesRef,
    exemplar: Exemplar,
    /// The next newer exemplar of the same series.
    next: Option<u32>,
}

#[derive(Default)]
struct Ring {
    /// In write order; grows up to the capacity, then wraps at `next`.
    entries: Vec<Entry>,
    /// Slot written next once `entries` is full: the oldest exemplar.
    next: usize,
    /// Oldest and newest slot of each series with exemplars.
    series: HashMap<SeriesRef, (u32, u32)>,
    /// Bytes of the stored exemplars' label buffers.
    label_bytes: usize,
}

/// Bytes per stored exemplar besides its label text: the entry and its
/// share of the per-series map.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + 24;

pub(crate) struct ExemplarStore {
    capacity: usize,
    ring: Mutex<Ring>,
}

/// What adding an exemplar did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    Stored,
    /// Equal to the newest exemplar of its series: a no-op, like Prometheus.
    Duplicate,
}

impl ExemplarStore {
    pub(crate) fn new(capacity: usize) -> Self {
        ExemplarStore {
            capacity: capacity.min(u32::MAX as usize),
            ring: Mutex::new(Ring::default()),
        }
    }

    /// The store, locked: a caller adding several exemplars and logging
    /// them keeps the lock until they are logged, so the WAL holds each
    /// series' exemplars in the order they were stored.
    pub(crate) fn lock(&self) -> ExemplarGuard<'_> {
        ExemplarGuard {
            capacity: self.capacity,
            ring: self.ring.lock(),
        }
    }

    /// Stores `e` for series `r` (see [`ExemplarGuard::add`]).
    #[cfg(test)]
    fn add(&self, r: SeriesRef, e: Exemplar) -> Result<Added, ExemplarRefusal> {
        self.lock().add(r, e)
    }

    /// The exemplars of series `r` with timestamps in `[mint, maxt]`, oldest first.
    pub(crate) fn of_series(&self, r: SeriesRef, mint: i64, maxt: i64) -> Vec<Exemplar> {
        let ring = self.ring.lock();
        let mut out = Vec::new();
        let mut at = ring.series.get(&r).map(|&(oldest, _)| oldest);
        while let Some(slot) = at {
            let entry = &ring.entries[slot as usize];
            if (mint..=maxt).contains(&entry.exemplar.t) {
                out.push(entry.exemplar.clone());
            }
            at = entry.next;
        }
        out
    }

    /// Exemplars stored now.
    pub(crate) fn len(&self) -> usize {
        self.ring.lock().entries.len()
    }

    /// Estimated heap bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        let ring = self.ring.lock();
        ring.entries.capacity() * ENTRY_OVERHEAD + ring.label_bytes
    }
}

/// The locked store.
pub(crate) struct ExemplarGuard<'a> {
    capacity: usize,
    ring: parking_lot::MutexGuard<'a, Ring>,
}

impl ExemplarGuard<'_> {
    /// Stores `e` for series `r`, overwriting the oldest exemplar of all
    /// when full. Refused when not newer than the series' newest one.
    pub(crate) fn add(&mut self, r: SeriesRef, e: Exemplar) -> Result<Added, ExemplarRefusal> {
        let capacity = self.capacity;
        let ring = &mut *self.ring;
        if check(ring, capacity, r, &e)? == Added::Duplicate {
            return Ok(Added::Duplicate);
        }
        let slot = if ring.entries.len() < capacity {
            ring.entries.len()
        } else {
            let slot = ring.next;
            ring.next = (ring.next + 1) % capacity;
            evict(ring, slot);
            slot
        };
        ring.label_bytes += e.labels.byte_size();
        let entry = Entry {
            series: r,
            exemplar: e,
            next: None,
        };
        if slot == ring.entries.len() {
            if ring.entries.len() == ring.entries.capacity() {
                // Doubling, but never past the capacity.
                let more = ring.entries.len().max(4).min(capacity - slot);
                ring.entries.reserve_exact(more);
            }
            ring.entries.push(entry);
        } else {
            ring.entries[slot] = entry;
        }
        let slot = slot as u32;
        match ring.series.get_mut(&r) {
            Some((_, newest)) => {
                let prev = *newest as usize;
                *newest = slot;
                ring.entries[prev].next = Some(slot);
            }
            None => {
                ring.series.insert(r, (slot, slot));
            }
        }
        Ok(Added::Stored)
    }
}

fn check(
    ring: &Ring,
    capacity: usize,
    r: SeriesRef,
    e: &Exemplar,
) -> Result<Added, ExemplarRefusal> {
    if capacity == 0 {
        return Err(ExemplarRefusal::Disabled);
    }
    if e.label_chars() > EXEMPLAR_MAX_LABEL_CHARS {
        return Err(ExemplarRefusal::LabelsTooLong);
    }
    if let Some(&(_, newest)) = ring.series.get(&r) {
        let newest = &ring.entries[newest as usize].exemplar;
        if newest.same_as(e) {
            return Ok(Added::Duplicate);
        }
        if e.t <= newest.t {
            return Err(ExemplarRefusal::OutOfOrder);
        }
    }
    Ok(Added::Stored)
}

/// Unlinks the exemplar in `slot`, the oldest of all and so of its series.
fn evict(ring: &mut Ring, slot: usize) {
    let old = &ring.entries[slot];
    ring.label_bytes -= old.exemplar.labels.byte_size();
    let series = old.series;
    match old.next {
        Some(next) => {
            if let Some((oldest, _)) = ring.series.get_mut(&series) {
                *oldest = next;
            }
        }
        None => {
            ring.series.remove(&series);
        }
    }
}

/// Outcome of one exemplar batch. Refused exemplars do not fail it (as in
/// Prometheus, which logs and counts them).
#[derive(Debug, Default)]
pub struct ExemplarAppend {
    /// Exemplars stored.
    pub written: usize,
    /// Exemplars equal to the newest of their series: no-ops.
    pub duplicate: usize,
    /// Refused exemplars: position of the entry in the batch, and why.
    pub refused: Vec<(usize, ExemplarRefusal)>,
}

/// One series and its exemplars in the queried range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

impl Head {
    /// Stores exemplars of series already in the head (append their samples
    /// first, in the same push). They are written to the WAL, but the call
    /// does not wait for that write to be synced: exemplars are annotations,
    /// bounded by count and overwritten anyway, and the next append's sync
    /// covers them (a kill of the process loses none; a power loss may lose
    /// the newest). `Err` only when the WAL failed.
    pub fn append_exemplars(
        &self,
        batch: &[(Labels, Vec<Exemplar>)],
    ) -> Result<ExemplarAppend, TsdbError> {
        if let Some(wal) = &self.wal {
            wal.check_failed()?;
        }
        let mut out = ExemplarAppend::default();
        // Resolve under the index read lock, as sample appends do: a series
        // found here has its series record in the WAL already.
        let mut resolved: Vec<(usize, SeriesRef)> = Vec::new();
        {
            let _index = self.index.read();
            for (i, (labels, exemplars)) in batch.iter().enumerate() {
                if exemplars.is_empty() {
                    continue;
                }
                let key = series_key(labels);
                match self.stripes[stripe_of_hash(key.hash)].read().find(key) {
                    Some(r) => resolved.push((i, r)),
                    None => out.refused.extend(
                        exemplars
                            .iter()
                            .map(|_| (i, ExemplarRefusal::UnknownSeries)),
                    ),
                }
            }
        }
        let mut buf = vec![0u8; HEADER_LEN];
        let mut store = self.exemplars.lock();
        for &(i, r) in &resolved {
            for e in &batch[i].1 {
                match store.add(r, e.clone()) {
                    Ok(Added::Stored) => {
                        out.written += 1;
                        if self.wal.is_some() {
                            encode_exemplar(&mut buf, r, e);
                        }
                    }
                    Ok(Added::Duplicate) => out.duplicate += 1,
                    Err(why) => out.refused.push((i, why)),
                }
            }
        }
        if let Some(wal) = &self.wal
            && buf.len() > HEADER_LEN
        {
            finish_frame(&mut buf, 0, RecordType::Exemplars);
            wal.log(&buf, 1)?;
        }
        drop(store);
        out.refused.sort_by_key(|&(i, _)| i);
        self.counters
            .exemplars_appended
            .fetch_add(out.written as u64, std::sync::atomic::Ordering::Relaxed);
        self.counters.exemplars_refused.fetch_add(
            out.refused.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(out)
    }

    /// The exemplars in `[mint, maxt]` of the series selected by any of
    /// the matcher sets (each set a conjunction), sorted by series labels.
    /// Series without exemplars in the range are left out.
    pub fn exemplars(
        &self,
        matcher_sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Vec<SeriesExemplars> {
        let refs: BTreeSet<SeriesRef> = {
            let index = self.index.read();
            matcher_sets
                .iter()
                .flat_map(|ms| index.select(ms))
                .collect()
        };
        let mut out = Vec::new();
        for r in refs {
            let Some(labels) = self.stripes[stripe_of_ref(r)]
                .read()
                .get(r)
                .map(|s| s.labels.clone())
            else {
                continue;
            };
            let exemplars = self.exemplars.of_series(r, mint, maxt);
            if !exemplars.is_empty() {
                out.push(SeriesExemplars { labels, exemplars });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Re-stores a replayed exemplar of series `r` (refusals are dropped:
    /// the log may hold exemplars a smaller store no longer keeps).
    pub(super) fn replay_exemplar(&self, r: SeriesRef, e: Exemplar) {
        if self.contains(r) {
            let _ = self.exemplars.lock().add(r, e);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ex(trace: &str, t: i64, v: f64) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", trace)]).unwrap(),
            t,
            v,
        }
    }

    fn times(store: &ExemplarStore, r: u64) -> Vec<i64> {
        store
            .of_series(SeriesRef(r), i64::MIN, i64::MAX)
            .iter()
            .map(|e| e.t)
            .collect()
    }

    #[test]
    fn a_full_store_overwrites_the_oldest_exemplar_of_all() {
        let store = ExemplarStore::new(4);
        store.add(SeriesRef(1), ex("a", 10, 1.0)).unwrap();
        store.add(SeriesRef(2), ex("b", 11, 1.0)).unwrap();
        store.add(SeriesRef(1), ex("c", 20, 2.0)).unwrap();
        store.add(SeriesRef(2), ex("d", 21, 2.0)).unwrap();
        assert_eq!(times(&store, 1), [10, 20]);
        // Full: the next two overwrite series 1's t=10, then series 2's t=11.
        store.add(SeriesRef(3), ex("e", 5, 3.0)).unwrap();
        assert_eq!(times(&store, 1), [20]);
        store.add(SeriesRef(1), ex("f", 30, 3.0)).unwrap();
        assert_eq!(times(&store, 1), [20, 30]);
        assert_eq!(times(&store, 2), [21]);
        assert_eq!(times(&store, 3), [5]);
        assert_eq!(store.len(), 4);
        // Series 1's t=20 and series 2's t=21 go next; series 2 is then gone.
        store.add(SeriesRef(3), ex("g", 6, 3.0)).unwrap();
        store.add(SeriesRef(3), ex("h", 7, 3.0)).unwrap();
        assert_eq!(times(&store, 1), [30]);
        assert_eq!(times(&store, 2), Vec::<i64>::new());
        assert_eq!(times(&store, 3), [5, 6, 7]);
    }

    #[test]
    fn order_duplicates_and_limits_as_prometheus() {
        let store = ExemplarStore::new(10);
        let r = SeriesRef(1);
        assert_eq!(store.add(r, ex("a", 10, 1.0)), Ok(Added::Stored));
        assert_eq!(store.add(r, ex("a", 10, 1.0)), Ok(Added::Duplicate));
        assert_eq!(
            store.add(r, ex("b", 10, 1.0)),
            Err(ExemplarRefusal::OutOfOrder)
        );
        assert_eq!(
            store.add(r, ex("a", 9, 1.0)),
            Err(ExemplarRefusal::OutOfOrder)
        );
        // Another series has an order of its own.
        assert_eq!(store.add(SeriesRef(2), ex("a", 9, 1.0)), Ok(Added::Stored));
        // 8 characters of name plus 120 of value: exactly the limit.
        let at_limit = ex(&"x".repeat(120), 11, 1.0);
        assert_eq!(store.add(r, at_limit), Ok(Added::Stored));
        let over = ex(&"x".repeat(121), 12, 1.0);
        assert_eq!(store.add(r, over), Err(ExemplarRefusal::LabelsTooLong));
        // Characters, not bytes: 120 two-byte characters fit.
        assert_eq!(
            store.add(r, ex(&"é".repeat(120), 13, 1.0)),
            Ok(Added::Stored)
        );
        assert_eq!(times(&store, 1), [10, 11, 13]);
        assert_eq!(
            store.of_series(r, 11, 12).len(),
            1,
            "the range is inclusive and filters"
        );
        let off = ExemplarStore::new(0);
        assert_eq!(off.add(r, ex("a", 1, 1.0)), Err(ExemplarRefusal::Disabled));
    }

    #[test]
    fn memory_follows_what_is_stored() {
        let store = ExemplarStore::new(2);
        let empty = store.memory_bytes();
        store.add(SeriesRef(1), ex("a", 1, 1.0)).unwrap();
        store.add(SeriesRef(1), ex("b", 2, 1.0)).unwrap();
        let full = store.memory_bytes();
        assert!(full > empty);
        // Overwriting keeps the estimate bounded.
        for t in 3..100 {
            store.add(SeriesRef(1), ex("c", t, 1.0)).unwrap();
        }
        assert_eq!(store.memory_bytes(), full);
    }
}
