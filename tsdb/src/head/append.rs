//! Appending batches to the head.
//!
//! One call: (1) key every entry's labels (128-bit xxh3 over the encoded
//! buffer, see `series::SeriesKey`) and group the entries by stripe; under
//! the index read lock, a window of stripes at a time, resolve their series
//! of the batch (prefetching the series' slots), then take each stripe's
//! write lock once and append the samples of the series that exist,
//! encoding the accepted ones into a thread-local WAL buffer; (2) create
//! the missing series under the index write lock, logging their series
//! record to the WAL there; (3) append the entries left over (new series,
//! series removed since they were resolved, or series another call holds,
//! see below); (4) write the buffer as one samples record and wait for it
//! to be durable per the sync policy. Only then does the call return: a
//! sample counted in [`AppendResult::samples_written`] is in the WAL.
//!
//! WAL order per series: series appended to are stamped with the call's WAL
//! ticket, pending until (4) wrote their samples. Step (1) defers a series
//! stamped by another pending call; step (3) waits for it (see
//! [`super::tickets`]), so each series' samples reach the WAL in the order
//! they entered memory and replay never sees them out of order. Nothing
//! waits on a ticket while holding the index lock.

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use tidemark_model::{Labels, Sample};

use super::series::{Refusal, STRIPES, SeriesKey, series_key, stripe_of_hash, stripe_of_ref};
use super::tickets::Ticket;
use super::{Head, MemSeries, SeriesRef};
use crate::TsdbError;
use crate::wal::{RecordType, begin_samples, encode_sample_group, encode_series, finish_frame};

/// Outcome of one append batch. Refusals are per series; the rest of the
/// batch is written regardless (remote write's "write the good, name the
/// bad").
#[derive(Debug, Default)]
pub struct AppendResult {
    /// Samples stored (and durable in the WAL per its policy).
    pub samples_written: usize,
    /// Samples equal to the newest sample of their series (same timestamp,
    /// same value bits): accepted as no-ops, like Prometheus.
    pub samples_duplicate: usize,
    /// Samples refused (out of order, conflicting duplicate, too old).
    pub samples_refused: usize,
    /// Series created by this batch.
    pub series_created: usize,
    /// Series with refused samples, in batch order.
    pub refused: Vec<RefusedSeries>,
}

/// Refused samples of one batch entry.
#[derive(Debug)]
pub struct RefusedSeries {
    /// Position of the entry in the batch.
    pub index: usize,
    /// How many of its samples were refused.
    pub samples: usize,
    /// Why the first of them was refused; names the series.
    pub error: TsdbError,
}

/// Records are split at about this size, far below the WAL's maximum
/// record size, so any batch can be logged and replayed.
const SPLIT_RECORD_BYTES: usize = 8 << 20;
/// Stripes resolved (and their series' slots prefetched) before any of
/// them is appended to.
const RESOLVE_AHEAD: usize = 32;
/// Encoding buffers larger than this are shrunk after use.
const KEEP_BUF_BYTES: usize = 1 << 20;

thread_local! {
    /// WAL encoding buffer, reused across calls on the same thread.
    static WAL_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static SERIES_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static ACCEPTED: RefCell<Vec<Sample>> = const { RefCell::new(Vec::new()) };
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

fn take<T: Default>(key: &'static std::thread::LocalKey<RefCell<T>>) -> T {
    key.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

fn give<T>(key: &'static std::thread::LocalKey<RefCell<T>>, v: T) {
    key.with(|c| *c.borrow_mut() = v);
}

/// Returns an encoding buffer, shrunk so that one huge batch does not pin
/// megabytes per thread.
fn give_buf(key: &'static std::thread::LocalKey<RefCell<Vec<u8>>>, mut v: Vec<u8>) {
    if v.capacity() > KEEP_BUF_BYTES {
        v.clear();
        v.shrink_to(KEEP_BUF_BYTES);
    }
    give(key, v);
}

/// Per-call vectors indexed by batch position, reused across calls on the
/// same thread: a batch of 10 000 entries needs about 250 KB of them, and
/// allocating that anew per call showed in profiles (large allocations
/// consolidate the allocator's free lists).
#[derive(Default)]
struct Scratch {
    /// Series key of each entry.
    keys: Vec<SeriesKey>,
    /// Series of each entry, once resolved.
    refs: Vec<Option<SeriesRef>>,
    /// Entries that need a series (have samples, labels, recent samples).
    eligible: Vec<u32>,
    /// `eligible` ordered by stripe; `starts` bounds each stripe's run.
    order: Vec<u32>,
    starts: Vec<u32>,
    next: Vec<u32>,
}

/// Scratch vectors longer than this are shrunk after use.
const KEEP_SCRATCH_ENTRIES: usize = 1 << 16;

impl Scratch {
    fn clear(&mut self) {
        self.keys.clear();
        self.refs.clear();
        self.eligible.clear();
        self.order.clear();
    }

    fn shrink(&mut self) {
        self.clear();
        self.keys.shrink_to(KEEP_SCRATCH_ENTRIES);
        self.refs.shrink_to(KEEP_SCRATCH_ENTRIES);
        self.eligible.shrink_to(KEEP_SCRATCH_ENTRIES);
        self.order.shrink_to(KEEP_SCRATCH_ENTRIES);
    }

    /// Orders `eligible` by the stripe of their labels hash, batch order
    /// kept within a stripe (a counting sort); stripe `k`'s entries are then
    /// `order[starts[k]..starts[k + 1]]`.
    fn group_by_stripe(&mut self) {
        self.starts.clear();
        self.starts.resize(STRIPES + 1, 0);
        for &i in &self.eligible {
            self.starts[stripe_of_hash(self.keys[i as usize].hash) + 1] += 1;
        }
        for k in 1..self.starts.len() {
            self.starts[k] += self.starts[k - 1];
        }
        self.next.clear();
        self.next.extend_from_slice(&self.starts);
        self.order.clear();
        self.order.resize(self.eligible.len(), 0);
        for &i in &self.eligible {
            let slot = &mut self.next[stripe_of_hash(self.keys[i as usize].hash)];
            self.order[*slot as usize] = i;
            *slot += 1;
        }
    }
}

/// Time range and memory change of one call's appends.
struct BatchAcc {
    delta: isize,
    min_t: i64,
    max_t: i64,
}

impl Default for BatchAcc {
    fn default() -> Self {
        BatchAcc {
            delta: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }
}

/// The samples record being built by one call.
struct PendingRecord {
    buf: Vec<u8>,
    base_t: i64,
    /// WAL position to wait for.
    pos: u64,
}

impl PendingRecord {
    fn reset(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; crate::wal::HEADER_LEN]);
        begin_samples(&mut self.buf, self.base_t);
    }

    fn has_samples(&self) -> bool {
        self.buf.len() > crate::wal::HEADER_LEN + 8
    }
}

impl Head {
    /// Appends a batch of series with their samples, in order per series.
    ///
    /// Returns once every accepted sample is in memory and in the WAL
    /// (synced per the WAL's policy). Bad samples do not fail the batch:
    /// they are counted and reported in [`AppendResult::refused`] with an
    /// error naming the series. `Err` means the WAL failed: nothing of the
    /// batch may be considered acknowledged, and the head refuses further
    /// appends until reopened.
    pub fn append(&self, batch: &[(Labels, Vec<Sample>)]) -> Result<AppendResult, TsdbError> {
        if let Some(wal) = &self.wal {
            wal.check_failed()?;
        }
        let mut result = AppendResult::default();
        let mut scratch = take(&SCRATCH).unwrap_or_default();
        scratch.clear();
        // Entries left for `commit`: series to create, or held by another
        // call's unlogged samples.
        let mut later: Vec<usize> = Vec::new();
        let mut missing: Vec<usize> = Vec::new();
        let min_valid = self.min_valid_time.load(Ordering::Acquire);
        let mut ticket = self.wal.as_ref().map(|_| self.tickets.issue());
        let base_t = batch.iter().find_map(|(_, s)| s.first()).map_or(0, |s| s.t);
        let mut rec = PendingRecord {
            buf: take(&WAL_BUF),
            base_t,
            pos: 0,
        };
        rec.reset();
        let mut accepted = take(&ACCEPTED);
        let mut acc = BatchAcc::default();
        let res = (|| {
            let Scratch {
                keys,
                refs,
                eligible,
                ..
            } = &mut scratch;
            for (i, (labels, samples)) in batch.iter().enumerate() {
                keys.push(series_key(labels));
                refs.push(None);
                if samples.is_empty() {
                    continue;
                }
                if labels.is_empty() {
                    result.samples_refused += samples.len();
                    result.refused.push(RefusedSeries {
                        index: i,
                        samples: samples.len(),
                        error: TsdbError::EmptyLabels,
                    });
                    continue;
                }
                // (Skipped before any truncation: this would be the first
                // touch of the samples, a cache miss, for nothing.)
                if min_valid > i64::MIN
                    && let Some(last) = samples.last()
                    && samples.iter().all(|s| s.t < min_valid)
                {
                    // Nothing to store: do not create a series for it.
                    result.samples_refused += samples.len();
                    result.refused.push(RefusedSeries {
                        index: i,
                        samples: samples.len(),
                        error: TsdbError::HeadOutOfBounds {
                            series: labels.clone(),
                            t: last.t,
                            min_valid,
                        },
                    });
                    continue;
                }
                eligible.push(i as u32);
            }
            scratch.group_by_stripe();
            let Scratch {
                keys,
                refs,
                order,
                starts,
                ..
            } = &mut scratch;
            // Fast path: per window of stripes, resolve all of the batch's
            // series there first, then append, one lock per stripe and
            // phase. Resolving in a tight loop lets the cache misses of
            // consecutive lookups (map probes, prefetched slots) overlap
            // instead of queueing behind each sample's appending. A series
            // removed between the two phases is found missing by `get_mut`
            // and takes the slow path. The index read lock is held,
            // unused, so that no sample of a series being created reaches
            // the WAL before its series record (`create_series` logs it
            // under the write lock), and released before `create_series`.
            // Nothing here waits on another call, so it cannot deadlock
            // with series creation.
            let index = self.index.read();
            let group = |k: usize| &order[starts[k] as usize..starts[k + 1] as usize];
            for window in (0..STRIPES).step_by(RESOLVE_AHEAD) {
                let window = window..(window + RESOLVE_AHEAD).min(STRIPES);
                // Resolve a window of stripes and prefetch their series'
                // slots, then append to them: the slots arrive while the
                // window's other lookups run.
                for k in window.clone() {
                    let entries = group(k);
                    if entries.is_empty() {
                        continue;
                    }
                    let stripe = self.stripes[k].read();
                    for &i in entries {
                        let i = i as usize;
                        refs[i] = stripe.find(keys[i]);
                        if let Some(r) = refs[i] {
                            stripe.prefetch(r);
                        }
                    }
                }
                for k in window {
                    let entries = group(k);
                    if entries.is_empty() {
                        continue;
                    }
                    let mut stripe = self.stripes[k].write();
                    // Entries deferred from this stripe; a series lives in one
                    // stripe, so its entries stay in batch order among these.
                    let deferred_from = later.len();
                    for &i in entries {
                        let i = i as usize;
                        let Some(r) = refs[i] else {
                            missing.push(i);
                            later.push(i);
                            continue;
                        };
                        let Some(s) = stripe.get_mut(r) else {
                            later.push(i);
                            continue;
                        };
                        if self.held_by_other(s, &ticket)
                            || later[deferred_from..].iter().any(|&j| refs[j] == Some(r))
                        {
                            later.push(i);
                            continue;
                        }
                        let (labels, samples) = &batch[i];
                        self.append_series(
                            s,
                            &ticket,
                            i,
                            labels,
                            samples,
                            min_valid,
                            &mut accepted,
                            &mut acc,
                            &mut result,
                        );
                        if self.wal.is_some() && !accepted.is_empty() {
                            encode_sample_group(
                                &mut rec.buf,
                                rec.base_t,
                                r,
                                accepted.iter().copied(),
                            );
                        }
                    }
                    drop(stripe);
                    if rec.buf.len() > SPLIT_RECORD_BYTES {
                        self.flush(&mut rec, &mut ticket)?;
                    }
                }
            }
            drop(index);
            if !missing.is_empty() {
                result.series_created = self.create_series(batch, keys, &missing, refs)?;
            }
            for &i in &later {
                self.commit(
                    batch,
                    keys,
                    refs,
                    i,
                    min_valid,
                    &mut ticket,
                    &mut rec,
                    &mut accepted,
                    &mut acc,
                    &mut result,
                )?;
            }
            self.flush(&mut rec, &mut ticket)
        })();
        // Retires the ticket, on errors too, so no other call waits forever.
        drop(ticket);
        give_buf(&WAL_BUF, rec.buf);
        give(&ACCEPTED, accepted);
        scratch.shrink();
        give(&SCRATCH, Some(scratch));
        self.series_bytes.fetch_add(acc.delta, Ordering::Relaxed);
        if acc.min_t <= acc.max_t {
            self.min_time.fetch_min(acc.min_t, Ordering::Relaxed);
            self.max_time.fetch_max(acc.max_t, Ordering::Relaxed);
        }
        res?;
        if let Some(wal) = &self.wal
            && rec.pos > 0
        {
            wal.wait_durable(rec.pos)?;
        }
        // The fast path goes stripe by stripe: back to batch order.
        result.refused.sort_by_key(|r| r.index);
        self.count(&result);
        Ok(result)
    }

    /// Whether another call holds samples of `s` in memory that are not yet
    /// in the WAL.
    fn held_by_other(&self, s: &MemSeries, ticket: &Option<Ticket<'_>>) -> bool {
        ticket.as_ref().is_some_and(|t| t.id != s.wal_ticket)
            && self.tickets.is_pending(s.wal_ticket)
    }

    /// Appends one entry's samples to its series (stripe lock held by the
    /// caller), leaving the accepted ones in `accepted`.
    #[allow(clippy::too_many_arguments)]
    fn append_series(
        &self,
        s: &mut MemSeries,
        ticket: &Option<Ticket<'_>>,
        i: usize,
        labels: &Labels,
        samples: &[Sample],
        min_valid: i64,
        accepted: &mut Vec<Sample>,
        acc: &mut BatchAcc,
        result: &mut AppendResult,
    ) {
        accepted.clear();
        let mut first_error: Option<TsdbError> = None;
        let mut refused = 0usize;
        for smp in samples {
            if smp.t < min_valid {
                refused += 1;
                first_error.get_or_insert_with(|| TsdbError::HeadOutOfBounds {
                    series: labels.clone(),
                    t: smp.t,
                    min_valid,
                });
                continue;
            }
            match s.append(*smp, self.chunk_opts) {
                Ok(d) => {
                    acc.delta += d;
                    accepted.push(*smp);
                }
                Err(Refusal::Duplicate) => result.samples_duplicate += 1,
                Err(refusal) => {
                    refused += 1;
                    first_error.get_or_insert_with(|| refusal_error(refusal, labels, smp.t));
                }
            }
        }
        if let Some(t) = ticket.as_ref()
            && !accepted.is_empty()
        {
            s.wal_ticket = t.id;
        }
        if let (Some(first), Some(last)) = (accepted.first(), accepted.last()) {
            acc.min_t = acc.min_t.min(first.t);
            acc.max_t = acc.max_t.max(last.t);
            result.samples_written += accepted.len();
        }
        if let Some(error) = first_error {
            result.samples_refused += refused;
            result.refused.push(RefusedSeries {
                index: i,
                samples: refused,
                error,
            });
        }
    }

    /// Encodes the accepted samples of series `r` into the pending record,
    /// writing it out when it grew large.
    fn log_group(
        &self,
        r: SeriesRef,
        accepted: &[Sample],
        rec: &mut PendingRecord,
        ticket: &mut Option<Ticket<'_>>,
    ) -> Result<(), TsdbError> {
        if self.wal.is_none() || accepted.is_empty() {
            return Ok(());
        }
        encode_sample_group(&mut rec.buf, rec.base_t, r, accepted.iter().copied());
        if rec.buf.len() > SPLIT_RECORD_BYTES {
            self.flush(rec, ticket)?;
        }
        Ok(())
    }

    /// The slow path for entry `i`: its series was just created, truncated
    /// away since it was resolved, or held by another call's unlogged
    /// samples (then this call logs its own pending samples and waits).
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        batch: &[(Labels, Vec<Sample>)],
        keys: &[SeriesKey],
        refs: &mut [Option<SeriesRef>],
        i: usize,
        min_valid: i64,
        ticket: &mut Option<Ticket<'_>>,
        rec: &mut PendingRecord,
        accepted: &mut Vec<Sample>,
        acc: &mut BatchAcc,
        result: &mut AppendResult,
    ) -> Result<(), TsdbError> {
        let (labels, samples) = &batch[i];
        let Some(mut r) = refs[i] else { return Ok(()) };
        loop {
            let mut stripe = self.stripes[stripe_of_ref(r)].write();
            let Some(s) = stripe.get_mut(r) else {
                // Truncated away since it was resolved: create it again.
                drop(stripe);
                refs[i] = None;
                result.series_created += self.create_series(batch, keys, &[i], refs)?;
                r = match refs[i] {
                    Some(r) => r,
                    None => return Ok(()),
                };
                continue;
            };
            if self.held_by_other(s, ticket) {
                // Another call has samples of this series in memory but not
                // yet in the WAL: let it write them first.
                let stamp = s.wal_ticket;
                drop(stripe);
                self.flush(rec, ticket)?;
                self.tickets.wait(stamp);
                continue;
            }
            self.append_series(
                s, ticket, i, labels, samples, min_valid, accepted, acc, result,
            );
            break;
        }
        self.log_group(r, accepted, rec, ticket)
    }

    /// Writes the pending samples record to the WAL and renews the ticket
    /// (the series stamped so far are now logged).
    fn flush(
        &self,
        rec: &mut PendingRecord,
        ticket: &mut Option<Ticket<'_>>,
    ) -> Result<(), TsdbError> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        if rec.has_samples() {
            finish_frame(&mut rec.buf, 0, RecordType::Samples);
            let written = wal.log(&rec.buf, 1);
            rec.reset();
            rec.pos = written?;
            if let Some(t) = ticket {
                t.renew();
            }
        }
        Ok(())
    }

    /// Creates the series of the entries `missing` (unless another call
    /// just did), logging their series record while holding the index
    /// write lock, so no sample of them can reach the WAL before it.
    fn create_series(
        &self,
        batch: &[(Labels, Vec<Sample>)],
        keys: &[SeriesKey],
        missing: &[usize],
        refs: &mut [Option<SeriesRef>],
    ) -> Result<usize, TsdbError> {
        let mut index = self.index.write();
        let mut buf = take(&SERIES_BUF);
        buf.clear();
        let mut created = 0;
        let mut bytes = 0isize;
        let mut res = Ok(());
        let start_record = |buf: &mut Vec<u8>| {
            buf.clear();
            buf.extend_from_slice(&[0u8; crate::wal::HEADER_LEN]);
        };
        start_record(&mut buf);
        for &i in missing {
            let (labels, _) = &batch[i];
            let key = keys[i];
            let mut stripe = self.stripes[stripe_of_hash(key.hash)].write();
            if let Some(r) = stripe.find(key) {
                refs[i] = Some(r);
                continue;
            }
            let r = stripe.next_ref();
            index.add(r, labels);
            let s = MemSeries::new(labels.clone(), key);
            bytes += s.memory_bytes() as isize;
            stripe.insert(r, s);
            drop(stripe);
            refs[i] = Some(r);
            created += 1;
            if let Some(wal) = &self.wal {
                encode_series(&mut buf, r, labels);
                if buf.len() > SPLIT_RECORD_BYTES {
                    finish_frame(&mut buf, 0, RecordType::Series);
                    res = res.and(wal.log(&buf, 1).map(|_| ()));
                    start_record(&mut buf);
                }
            }
        }
        self.num_series.fetch_add(created, Ordering::Relaxed);
        self.series_bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(wal) = &self.wal
            && buf.len() > crate::wal::HEADER_LEN
        {
            finish_frame(&mut buf, 0, RecordType::Series);
            res = res.and(wal.log(&buf, 1).map(|_| ()));
        }
        let res = res.map(|()| created);
        drop(index);
        give_buf(&SERIES_BUF, buf);
        res
    }
}

fn refusal_error(r: Refusal, labels: &Labels, t: i64) -> TsdbError {
    match r {
        Refusal::OutOfOrder { last } => TsdbError::HeadOutOfOrder {
            series: labels.clone(),
            t,
            last,
        },
        Refusal::DuplicateTimestamp | Refusal::Duplicate => TsdbError::HeadDuplicateTimestamp {
            series: labels.clone(),
            t,
        },
    }
}
