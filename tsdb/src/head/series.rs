//! In-memory series: closed XOR chunks plus the chunk being appended, and
//! the stripes that hold them.
//!
//! A series lives in the stripe chosen by its labels hash, in a slab slot;
//! its ref encodes the stripe, the slot and the slot's generation, so both
//! lookups (by labels on append, by ref on query) take one stripe lock and
//! no global one, and a lookup by ref is an index.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use tidemark_model::{Labels, Sample};

use super::SeriesRef;
use crate::{XorAppender, XorChunk};

/// log2 of the number of stripes.
pub(crate) const STRIPE_BITS: u32 = 10;
/// Number of stripes: enough that concurrent appenders rarely meet.
pub(crate) const STRIPES: usize = 1 << STRIPE_BITS;

/// Hasher for keys that are already hashes or refs: one multiply mixes the
/// bits enough for `HashMap`'s bucket and control bits.
#[derive(Default, Clone, Copy)]
pub(crate) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 32;
    }
}

pub(crate) type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// Chunking parameters of a head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkOpts {
    pub(crate) samples_per_chunk: usize,
    pub(crate) chunk_range: i64,
}

/// A full chunk and its time range.
pub(crate) struct ClosedChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) chunk: XorChunk,
}

/// Why one sample was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Same timestamp and same value bits as the newest sample: a no-op.
    Duplicate,
    /// Same timestamp, different value.
    DuplicateTimestamp,
    /// Older than the newest sample.
    OutOfOrder { last: i64 },
}

/// One series in the head.
pub(crate) struct MemSeries {
    /// The label set, as appended (its encoded buffer shared with the
    /// caller's `Labels`): reads return a clone of it without spelling
    /// symbols. Appends find the series by `key` and never read it.
    pub(crate) labels: Labels,
    pub(crate) key: SeriesKey,
    chunks: Vec<ClosedChunk>,
    /// The open chunk, inline rather than boxed: every sample appended
    /// goes through it, and a box would be one more cache miss per sample
    /// (it is absent only between a full chunk and the next sample).
    head: Option<XorAppender>,
    last_t: i64,
    last_v: u64,
    /// WAL ticket of the last append that added samples here (0: none);
    /// see `tickets`.
    pub(crate) wal_ticket: u64,
}

/// Fixed bytes of a series besides its chunks and labels: its slab slot, its
/// two map entries (with load-factor slack), and the head appender.
const SERIES_OVERHEAD: usize = std::mem::size_of::<Slot>() + 2 * 24 + 48;
/// Heap bytes of a `Labels` buffer besides its text: the `Arc` counts and
/// the allocator's header.
const LABELS_OVERHEAD: usize = 16 + 8;
const CHUNK_OVERHEAD: usize = std::mem::size_of::<ClosedChunk>();

/// Capacity the appender's buffer has grown to for `len` bytes (it starts
/// at 128 and doubles).
fn appender_capacity(len: usize) -> usize {
    len.max(128).next_power_of_two()
}

impl MemSeries {
    pub(crate) fn new(labels: Labels, key: SeriesKey) -> Self {
        MemSeries {
            labels,
            key,
            chunks: Vec::new(),
            head: None,
            last_t: i64::MIN,
            last_v: 0,
            wal_ticket: 0,
        }
    }

    /// Estimated heap bytes held by this series (struct and labels included).
    pub(crate) fn memory_bytes(&self) -> usize {
        SERIES_OVERHEAD
            + LABELS_OVERHEAD
            + self.labels.byte_size()
            + self.chunks.capacity() * CHUNK_OVERHEAD
            + self
                .chunks
                .iter()
                .map(|c| c.chunk.bytes().len())
                .sum::<usize>()
            + self
                .head
                .as_ref()
                .map_or(0, |h| appender_capacity(h.bytes().len()))
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.head.is_none()
    }

    /// Oldest sample time, if any.
    pub(crate) fn min_time(&self) -> Option<i64> {
        self.chunks
            .first()
            .map(|c| c.min_t)
            .or_else(|| self.head.as_ref().and_then(|h| h.min_time()))
    }

    /// Newest sample time, if any.
    pub(crate) fn max_time(&self) -> Option<i64> {
        (self.last_t != i64::MIN || !self.is_empty()).then_some(self.last_t)
    }

    /// Checks one sample against the newest one without appending it.
    pub(crate) fn check(&self, s: Sample) -> Result<(), Refusal> {
        if self.is_empty() {
            return Ok(());
        }
        if s.t > self.last_t {
            return Ok(());
        }
        if s.t == self.last_t {
            if s.v.to_bits() == self.last_v {
                return Err(Refusal::Duplicate);
            }
            return Err(Refusal::DuplicateTimestamp);
        }
        Err(Refusal::OutOfOrder { last: self.last_t })
    }

    /// Appends one sample; returns the change of [`MemSeries::memory_bytes`].
    pub(crate) fn append(&mut self, s: Sample, opts: ChunkOpts) -> Result<isize, Refusal> {
        self.check(s)?;
        let mut delta: isize = 0;
        let cut = match &self.head {
            Some(h) => {
                h.num_samples() >= opts.samples_per_chunk
                    || h.min_time()
                        .is_some_and(|m| s.t >= range_end(m, opts.chunk_range))
            }
            None => false,
        };
        if cut {
            delta += self.cut_head();
        }
        let head = match &mut self.head {
            Some(h) => h,
            None => {
                delta += appender_capacity(0) as isize;
                self.head.insert(XorAppender::new())
            }
        };
        let before = appender_capacity(head.bytes().len());
        if head.append(s.t, s.v).is_err() {
            // `check` accepted the sample and the chunk holds fewer than
            // `samples_per_chunk` samples, so the appender cannot refuse it.
            return Err(Refusal::OutOfOrder { last: self.last_t });
        }
        delta += appender_capacity(head.bytes().len()) as isize - before as isize;
        let full = head.num_samples() >= opts.samples_per_chunk;
        self.last_t = s.t;
        self.last_v = s.v.to_bits();
        if full {
            // A full chunk takes no more samples: close it now so it is
            // stored at its exact size rather than in a grown buffer.
            delta += self.cut_head();
        }
        Ok(delta)
    }

    /// Closes the head chunk, shrinking its buffer to size.
    fn cut_head(&mut self) -> isize {
        let Some(h) = self.head.take() else {
            return 0;
        };
        let before = appender_capacity(h.bytes().len()) as isize;
        let (Some(min_t), Some(max_t)) = (h.min_time(), h.max_time()) else {
            return -before;
        };
        let cap_before = self.chunks.capacity();
        let mut bytes = h.into_chunk().into_bytes();
        bytes.shrink_to_fit();
        let len = bytes.len() as isize;
        let Ok(chunk) = XorChunk::from_bytes(bytes) else {
            // An appender always produces a valid header.
            return -before;
        };
        self.chunks.push(ClosedChunk {
            min_t,
            max_t,
            chunk,
        });
        let grown = (self.chunks.capacity() - cap_before) * CHUNK_OVERHEAD;
        len - before + grown as isize
    }

    /// Copies the samples in `[mint, maxt]` into `out`.
    pub(crate) fn samples_in(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        for c in &self.chunks {
            if c.max_t < mint || c.min_t > maxt {
                continue;
            }
            push_range(c.chunk.iter(), mint, maxt, out);
        }
        if let Some(h) = &self.head
            && h.max_time().is_some_and(|t| t >= mint)
            && h.min_time().is_some_and(|t| t <= maxt)
        {
            // The appender exposes no borrowing iterator: decode a copy.
            push_range(h.chunk().iter(), mint, maxt, out);
        }
    }

    /// Whether the series has a sample in `[mint, maxt]`.
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        match (self.min_time(), self.max_time()) {
            (Some(a), Some(b)) => a <= maxt && b >= mint,
            _ => false,
        }
    }

    /// Chunks holding exactly the samples in `[mint, maxt)`: closed chunks
    /// inside the range are shared as they are, the others re-encoded.
    pub(crate) fn chunks_in(&self, mint: i64, maxt: i64) -> Vec<XorChunk> {
        let mut out = Vec::new();
        let mut samples = Vec::new();
        for c in &self.chunks {
            if c.max_t < mint || c.min_t >= maxt {
                continue;
            }
            if c.min_t >= mint && c.max_t < maxt {
                out.push(c.chunk.clone());
            } else {
                samples.clear();
                push_range(c.chunk.iter(), mint, maxt - 1, &mut samples);
                out.extend(encode(&samples));
            }
        }
        if let Some(h) = &self.head {
            samples.clear();
            push_range(h.chunk().iter(), mint, maxt - 1, &mut samples);
            out.extend(encode(&samples));
        }
        out
    }

    /// Drops chunks whose samples are all before `before` (the head chunk
    /// too when all of it is). Returns the change of memory bytes and
    /// whether the series is now empty.
    pub(crate) fn truncate(&mut self, before: i64) -> (isize, bool) {
        let mem_before = self.memory_bytes() as isize;
        self.chunks.retain(|c| c.max_t >= before);
        self.chunks.shrink_to_fit();
        if self
            .head
            .as_ref()
            .is_some_and(|h| h.max_time().is_none_or(|t| t < before))
        {
            self.head = None;
        }
        let empty = self.is_empty();
        (self.memory_bytes() as isize - mem_before, empty)
    }
}

/// The end of the aligned chunk range that `t` falls in.
fn range_end(t: i64, range: i64) -> i64 {
    t.div_euclid(range).saturating_add(1).saturating_mul(range)
}

fn push_range(it: impl Iterator<Item = Sample>, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
    for s in it {
        if s.t > maxt {
            break;
        }
        if s.t >= mint {
            out.push(s);
        }
    }
}

fn encode(samples: &[Sample]) -> Option<XorChunk> {
    if samples.is_empty() {
        return None;
    }
    let mut a = XorAppender::new();
    for s in samples {
        // Samples come from one chunk in time order.
        a.append(s.t, s.v).ok()?;
    }
    Some(a.into_chunk())
}

/// Bits of a ref holding the slot index within its stripe.
const SLOT_BITS: u32 = 32;
/// Bits of a ref holding the slot's generation (bumped on every reuse of
/// the slot, so a ref never names two series in one process).
const GEN_MASK: u64 = (1 << (64 - SLOT_BITS - STRIPE_BITS)) - 1;

/// A slot of a stripe's slab.
#[derive(Default)]
struct Slot {
    generation: u64,
    series: Option<MemSeries>,
}

/// The series of one stripe, in a slab indexed by the ref's slot bits, so a
/// lookup by ref is an index, not a hash-map probe.
pub(crate) struct Stripe {
    /// This stripe's index, part of every ref it hands out.
    index: usize,
    slots: Vec<Slot>,
    /// Slots to reuse; may hold slots since filled by replay (skipped).
    free: Vec<u32>,
    /// Series by `SeriesKey::hash`, with their `check`, so that telling
    /// series apart needs nothing beyond the map's own bucket.
    by_hash: MixMap<u64, (u64, SeriesRef)>,
    /// Further series whose `hash` equals one in `by_hash` (their `check`
    /// differs).
    collisions: HashMap<u64, Vec<(u64, SeriesRef)>>,
}

/// `ref = generation << (SLOT_BITS + STRIPE_BITS) | slot << STRIPE_BITS | stripe`
fn split(r: SeriesRef) -> (u64, usize) {
    let slot = ((r.0 >> STRIPE_BITS) & ((1 << SLOT_BITS) - 1)) as usize;
    (r.0 >> (SLOT_BITS + STRIPE_BITS), slot)
}

fn make_ref(generation: u64, slot: usize, stripe: usize) -> SeriesRef {
    SeriesRef(
        ((generation & GEN_MASK) << (SLOT_BITS + STRIPE_BITS))
            | ((slot as u64) << STRIPE_BITS)
            | stripe as u64,
    )
}

impl Stripe {
    pub(crate) fn new(index: usize) -> Self {
        Stripe {
            index,
            slots: Vec::new(),
            free: Vec::new(),
            by_hash: MixMap::default(),
            collisions: HashMap::new(),
        }
    }

    pub(crate) fn get(&self, r: SeriesRef) -> Option<&MemSeries> {
        let (generation, slot) = split(r);
        let s = self.slots.get(slot)?;
        if s.generation != generation {
            return None;
        }
        s.series.as_ref()
    }

    pub(crate) fn get_mut(&mut self, r: SeriesRef) -> Option<&mut MemSeries> {
        let (generation, slot) = split(r);
        let s = self.slots.get_mut(slot)?;
        if s.generation != generation {
            return None;
        }
        s.series.as_mut()
    }

    pub(crate) fn contains(&self, r: SeriesRef) -> bool {
        self.get(r).is_some()
    }

    /// Whether a series with ref `r` could be inserted (its slot is free).
    pub(crate) fn slot_free(&self, r: SeriesRef) -> bool {
        let (_, slot) = split(r);
        self.slots.get(slot).is_none_or(|s| s.series.is_none())
    }

    /// Every series with its ref.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (SeriesRef, &mut MemSeries)> {
        let stripe = self.index;
        self.slots.iter_mut().enumerate().filter_map(move |(i, s)| {
            let generation = s.generation;
            s.series
                .as_mut()
                .map(|m| (make_ref(generation, i, stripe), m))
        })
    }

    /// The series whose labels have this key.
    pub(crate) fn find(&self, key: SeriesKey) -> Option<SeriesRef> {
        let &(check, r) = self.by_hash.get(&key.hash)?;
        if check == key.check {
            return Some(r);
        }
        self.collisions
            .get(&key.hash)?
            .iter()
            .find(|(check, _)| *check == key.check)
            .map(|&(_, r)| r)
    }

    /// Asks the CPU to start loading the slot of `r` (its first two cache
    /// lines, where an append reads and writes), without waiting for it.
    pub(crate) fn prefetch(&self, r: SeriesRef) {
        let (_, slot) = split(r);
        if let Some(s) = self.slots.get(slot) {
            let p: *const Slot = s;
            crate::prefetch::prefetch(p.cast::<u8>());
            crate::prefetch::prefetch(p.cast::<u8>().wrapping_add(64));
        }
    }

    /// A ref for a new series in this stripe (insert it with `insert`).
    pub(crate) fn next_ref(&mut self) -> SeriesRef {
        let stripe = self.index;
        while let Some(slot) = self.free.pop() {
            let s = &self.slots[slot as usize];
            if s.series.is_none() {
                return make_ref(s.generation + 1, slot as usize, stripe);
            }
        }
        self.slots.push(Slot::default());
        make_ref(0, self.slots.len() - 1, stripe)
    }

    /// Inserts a series under `r`, which must come from `next_ref` or, on
    /// replay, name a free slot (`slot_free`).
    pub(crate) fn insert(&mut self, r: SeriesRef, s: MemSeries) {
        let (generation, slot) = split(r);
        while self.slots.len() <= slot {
            // Replay can name slots beyond the end; the gap becomes free.
            self.free.push(self.slots.len() as u32);
            self.slots.push(Slot::default());
        }
        let key = s.key;
        self.slots[slot] = Slot {
            generation,
            series: Some(s),
        };
        match self.by_hash.get(&key.hash) {
            Some(_) => self
                .collisions
                .entry(key.hash)
                .or_default()
                .push((key.check, r)),
            None => {
                self.by_hash.insert(key.hash, (key.check, r));
            }
        }
    }

    pub(crate) fn remove(&mut self, r: SeriesRef) -> Option<MemSeries> {
        let (generation, slot) = split(r);
        let entry = self.slots.get_mut(slot)?;
        if entry.generation != generation {
            return None;
        }
        let s = entry.series.take()?;
        self.free.push(slot as u32);
        let hash = s.key.hash;
        if self.by_hash.get(&hash).is_some_and(|&(_, x)| x == r) {
            self.by_hash.remove(&hash);
            if let Some(more) = self.collisions.get_mut(&hash) {
                if let Some(next) = more.pop() {
                    self.by_hash.insert(hash, next);
                }
                if more.is_empty() {
                    self.collisions.remove(&hash);
                }
            }
        } else if let Some(more) = self.collisions.get_mut(&hash) {
            more.retain(|&(_, x)| x != r);
            if more.is_empty() {
                self.collisions.remove(&hash);
            }
        }
        Some(s)
    }
}

/// A label set's identity within a head: 128 bits of xxh3 over its
/// encoded buffer (one call, no walk of the pairs, no UTF-8 checks; the
/// buffer was validated when it was built). `hash` picks the stripe and
/// the map bucket; series whose `hash` and `check` are both equal are taken
/// to be the same series, without comparing their labels: the comparison
/// touched the stored buffer, a cache miss per sample appended, for
/// nothing but ruling out a collision. By chance two label sets collide
/// with probability 2^-128 per pair (below 1e-20 for a billion series).
/// xxh3 resists no crafted input, but a crafted collision could only merge
/// two series sent by the same tenant: every tenant has a head of its own.
/// Internal to a head and never persisted (unlike
/// `tidemark_model::series_hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesKey {
    pub(crate) hash: u64,
    pub(crate) check: u64,
}

/// The head's key of a label set.
pub(crate) fn series_key(labels: &Labels) -> SeriesKey {
    let h = xxhash_rust::xxh3::xxh3_128(labels.as_ref());
    SeriesKey {
        hash: h as u64,
        check: (h >> 64) as u64,
    }
}

/// The stripe a series of this labels hash lives in.
pub(crate) fn stripe_of_hash(hash: u64) -> usize {
    (hash as usize) & (STRIPES - 1)
}

/// The stripe a ref lives in.
pub(crate) fn stripe_of_ref(r: SeriesRef) -> usize {
    (r.0 as usize) & (STRIPES - 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(hash: u64, check: u64) -> SeriesKey {
        SeriesKey { hash, check }
    }

    #[test]
    fn slots_are_reused_under_a_new_generation() {
        let mut st = Stripe::new(3);
        let a = st.next_ref();
        st.insert(a, MemSeries::new(Labels::empty(), key(1, 1)));
        assert_eq!(stripe_of_ref(a), 3);
        assert!(st.remove(a).is_some());
        assert!(st.remove(a).is_none());
        let b = st.next_ref();
        st.insert(b, MemSeries::new(Labels::empty(), key(2, 2)));
        assert_eq!(split(a).1, split(b).1, "slot reused");
        assert_ne!(a, b, "but never the ref");
        assert!(st.get(a).is_none());
        assert_eq!(st.get(b).unwrap().key, key(2, 2));
        // Replay may name a slot past the end; the gap is reused later.
        let far = make_ref(5, 10, 3);
        assert!(st.slot_free(far));
        st.insert(far, MemSeries::new(Labels::empty(), key(3, 3)));
        assert!(!st.slot_free(far));
        let c = st.next_ref();
        assert!(split(c).1 < 10);
        assert_eq!(st.iter_mut().count(), 2);
    }

    #[test]
    fn series_key_depends_on_the_label_set_only() {
        let a = Labels::from_pairs([("job", "node"), ("a", "bc")]).unwrap();
        let same = Labels::from_pairs([("a", "bc"), ("job", "node")]).unwrap();
        let other = Labels::from_pairs([("ab", "c"), ("job", "node")]).unwrap();
        assert_eq!(series_key(&a), series_key(&same));
        assert_ne!(series_key(&a).hash, series_key(&other).hash);
        assert_ne!(series_key(&a).check, series_key(&other).check);
        assert_ne!(series_key(&a), series_key(&Labels::empty()));
    }

    #[test]
    fn series_with_equal_hashes_are_told_apart_by_their_check() {
        let a = Labels::from_pairs([("job", "a")]).unwrap();
        let b = Labels::from_pairs([("job", "b")]).unwrap();
        let c = Labels::from_pairs([("job", "c")]).unwrap();
        let mut st = Stripe::new(0);
        let (ra, rb, rc) = (st.next_ref(), st.next_ref(), st.next_ref());
        st.insert(ra, MemSeries::new(a, key(7, 1)));
        st.insert(rb, MemSeries::new(b, key(7, 2)));
        st.insert(rc, MemSeries::new(c, key(7, 3)));
        assert_eq!(st.find(key(7, 1)), Some(ra));
        assert_eq!(st.find(key(7, 2)), Some(rb));
        assert_eq!(st.find(key(7, 3)), Some(rc));
        assert_eq!(st.find(key(7, 4)), None);
        assert_eq!(st.find(key(8, 1)), None);
        // Removing the one in the map promotes a collision; the others
        // stay findable.
        assert!(st.remove(ra).is_some());
        assert_eq!(st.find(key(7, 1)), None);
        assert_eq!(st.find(key(7, 2)), Some(rb));
        assert_eq!(st.find(key(7, 3)), Some(rc));
        assert!(st.remove(rc).is_some());
        assert_eq!(st.find(key(7, 2)), Some(rb));
        assert_eq!(st.find(key(7, 3)), None);
    }
}
