//! Appending batches to the head.
//!
//! One call: (1) resolve every series of the batch under the index read
//! lock, (2) create the missing ones under the index write lock, logging
//! their series record to the WAL there, (3) append the samples series by
//! series under stripe locks while encoding the accepted ones into a
//! thread-local WAL buffer, (4) write that buffer as one samples record and
//! wait for it to be durable per the sync policy. Only then does the call
//! return: a sample counted in [`AppendResult::samples_written`] is in the WAL.
//!
//! WAL order per series: series appended to in (3) are stamped with the
//! call's WAL ticket, pending until (4) wrote their samples; a concurrent
//! call meeting a pending stamp waits for it (see [`super::tickets`]), so
//! each series' samples reach the WAL in the order they entered memory and
//! replay never sees them out of order.

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use tidemark_model::{Labels, Sample};

use super::series::{Refusal, pairs, pairs_hash, stripe_of_hash, stripe_of_ref};
use super::tickets::Ticket;
use super::{Head, MemSeries, SeriesRef, intern_labels};
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
/// Encoding buffers larger than this are shrunk after use.
const KEEP_BUF_BYTES: usize = 1 << 20;

thread_local! {
    /// WAL encoding buffer, reused across calls on the same thread.
    static WAL_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static SERIES_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static ACCEPTED: RefCell<Vec<Sample>> = const { RefCell::new(Vec::new()) };
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
        let mut refs: Vec<Option<SeriesRef>> = Vec::with_capacity(batch.len());
        let mut hashes: Vec<u64> = Vec::with_capacity(batch.len());
        let mut missing: Vec<usize> = Vec::new();
        let min_valid = self.min_valid_time.load(Ordering::Acquire);
        {
            let mut label_pairs: Vec<(&str, &str)> = Vec::with_capacity(16);
            let mut scratch: Vec<u8> = Vec::with_capacity(512);
            let index = self.index.read();
            for (i, (labels, samples)) in batch.iter().enumerate() {
                label_pairs.clear();
                label_pairs.extend(labels.iter());
                let hash = pairs_hash(&label_pairs, &mut scratch);
                hashes.push(hash);
                if samples.is_empty() {
                    refs.push(None);
                    continue;
                }
                if labels.is_empty() {
                    result.samples_refused += samples.len();
                    result.refused.push(RefusedSeries {
                        index: i,
                        samples: samples.len(),
                        error: TsdbError::EmptyLabels,
                    });
                    refs.push(None);
                    continue;
                }
                if let Some(last) = samples.last()
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
                    refs.push(None);
                    continue;
                }
                let r = self.stripes[stripe_of_hash(hash)].read().find(
                    hash,
                    &label_pairs,
                    &index.symbols,
                );
                if r.is_none() {
                    missing.push(i);
                }
                refs.push(r);
            }
        }
        if !missing.is_empty() {
            result.series_created = self.create_series(batch, &hashes, &missing, &mut refs)?;
        }

        let mut ticket = self.wal.as_ref().map(|_| self.tickets.issue());
        let base_t = batch.iter().find_map(|(_, s)| s.first()).map_or(0, |s| s.t);
        let mut rec = PendingRecord {
            buf: take(&WAL_BUF),
            base_t,
            pos: 0,
        };
        rec.reset();
        let mut accepted = take(&ACCEPTED);
        let res = self.commit(
            batch,
            &hashes,
            &mut refs,
            &mut ticket,
            &mut rec,
            &mut accepted,
            &mut result,
        );
        let res = res.and_then(|()| self.flush(&mut rec, &mut ticket));
        // Retires the ticket, on errors too, so no other call waits forever.
        drop(ticket);
        give_buf(&WAL_BUF, rec.buf);
        give(&ACCEPTED, accepted);
        res?;
        if let Some(wal) = &self.wal
            && rec.pos > 0
        {
            wal.wait_durable(rec.pos)?;
        }
        self.count(&result);
        Ok(result)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        batch: &[(Labels, Vec<Sample>)],
        hashes: &[u64],
        refs: &mut [Option<SeriesRef>],
        ticket: &mut Option<Ticket<'_>>,
        rec: &mut PendingRecord,
        accepted: &mut Vec<Sample>,
        result: &mut AppendResult,
    ) -> Result<(), TsdbError> {
        let min_valid = self.min_valid_time.load(Ordering::Acquire);
        let logging = self.wal.is_some();
        let mut delta = 0isize;
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        for (i, (labels, samples)) in batch.iter().enumerate() {
            let Some(mut r) = refs[i] else { continue };
            let mut first_error: Option<TsdbError> = None;
            let mut refused = 0usize;
            accepted.clear();
            loop {
                let mut stripe = self.stripes[stripe_of_ref(r)].write();
                let Some(s) = stripe.get_mut(r) else {
                    // Truncated away since it was resolved: create it again.
                    drop(stripe);
                    refs[i] = None;
                    result.series_created += self.create_series(batch, hashes, &[i], refs)?;
                    r = match refs[i] {
                        Some(r) => r,
                        None => break,
                    };
                    continue;
                };
                let stamp = s.wal_ticket;
                if ticket.as_ref().is_some_and(|t| t.id != stamp) && self.tickets.is_pending(stamp)
                {
                    // Another call has samples of this series in memory but
                    // not yet in the WAL: let it write them first.
                    drop(stripe);
                    self.flush(rec, ticket)?;
                    self.tickets.wait(stamp);
                    continue;
                }
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
                            delta += d;
                            accepted.push(*smp);
                        }
                        Err(Refusal::Duplicate) => result.samples_duplicate += 1,
                        Err(refusal) => {
                            refused += 1;
                            first_error
                                .get_or_insert_with(|| refusal_error(refusal, labels, smp.t));
                        }
                    }
                }
                if let Some(t) = ticket.as_ref()
                    && !accepted.is_empty()
                {
                    s.wal_ticket = t.id;
                }
                break;
            }
            if let (Some(first), Some(last)) = (accepted.first(), accepted.last()) {
                min_t = min_t.min(first.t);
                max_t = max_t.max(last.t);
                result.samples_written += accepted.len();
                if logging {
                    encode_sample_group(&mut rec.buf, rec.base_t, r, accepted.iter().copied());
                    if rec.buf.len() > SPLIT_RECORD_BYTES {
                        self.flush(rec, ticket)?;
                    }
                }
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
        self.series_bytes.fetch_add(delta, Ordering::Relaxed);
        if min_t <= max_t {
            self.min_time.fetch_min(min_t, Ordering::Relaxed);
            self.max_time.fetch_max(max_t, Ordering::Relaxed);
        }
        Ok(())
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
        hashes: &[u64],
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
            let hash = hashes[i];
            let stripe_idx = stripe_of_hash(hash);
            let mut stripe = self.stripes[stripe_idx].write();
            if let Some(r) = stripe.find(hash, &pairs(labels), &index.symbols) {
                refs[i] = Some(r);
                continue;
            }
            let syms = intern_labels(&mut index.symbols, labels);
            let r = stripe.next_ref();
            let s = MemSeries::new(syms, hash);
            index.add(r, &s.labels);
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
