//! Prometheus XOR float chunks (Gorilla encoding with millisecond timestamps).
//!
//! The byte layout is exactly the one of Prometheus's `tsdb/chunkenc/xor.go`,
//! so chunks move between tidemark and Prometheus blocks without re-encoding:
//!
//! ```text
//! ┌──────────────────┬──────────────────────┬────────────┬─────────────────────────────┐
//! │ num samples (u16 │ first t (varint) +   │ 2nd: delta │ samples 3..n: delta-of-     │
//! │ big endian)      │ first v (64 raw bits)│ t uvarint +│ delta t buckets, then XOR   │
//! │                  │                      │ XOR value  │ value                       │
//! └──────────────────┴──────────────────────┴────────────┴─────────────────────────────┘
//! ```
//!
//! Delta-of-delta buckets: `0` (dod = 0), `10` + 14 bits, `110` + 17 bits,
//! `1110` + 20 bits, `1111` + 64 bits. A bucket of `n` bits holds
//! `-(2^(n-1) - 1) ..= 2^(n-1)`. Values: `0` when equal to the previous value;
//! `10` + meaningful bits when the XOR fits the previous leading/trailing zero
//! window; `11` + 5 bits leading zeros + 6 bits meaningful bit count (0 meaning
//! 64) + meaningful bits otherwise. Values are stored as raw bits, so every NaN
//! payload (including the staleness marker) survives bit-exact.

use tidemark_model::Sample;

use super::bstream::{BitReader, BitWriter};
use crate::TsdbError;

/// The most samples one chunk can count in its 2-byte header.
pub const MAX_SAMPLES_PER_CHUNK: usize = u16::MAX as usize;

const HEADER_SIZE: usize = 2;

/// An encoded XOR chunk: the exact bytes Prometheus stores (header included).
#[derive(Clone, PartialEq, Eq)]
pub struct XorChunk {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for XorChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XorChunk")
            .field("num_samples", &self.num_samples())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl XorChunk {
    /// Wraps encoded bytes (for example read from a block). Only the header is
    /// checked here; corruption further in is reported by
    /// [`XorIter::error`], [`XorChunk::samples`] or [`XorChunk::validate`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TsdbError> {
        if bytes.len() < HEADER_SIZE {
            return Err(TsdbError::CorruptChunk {
                reason: format!("{} bytes is shorter than the 2-byte header", bytes.len()),
            });
        }
        let chunk = XorChunk { bytes };
        if chunk.num_samples() > 0 && chunk.bytes.len() < HEADER_SIZE + 9 {
            return Err(TsdbError::CorruptChunk {
                reason: format!(
                    "{} samples announced but only {} bytes",
                    chunk.num_samples(),
                    chunk.bytes.len()
                ),
            });
        }
        Ok(chunk)
    }

    /// The encoded bytes, header included, as written to chunk segment files.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Number of samples, from the header (no decoding).
    pub fn num_samples(&self) -> usize {
        usize::from(u16::from_be_bytes([self.bytes[0], self.bytes[1]]))
    }

    /// Iterates the samples in timestamp order.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(&self.bytes)
    }

    /// Decodes all samples, failing on corrupt data.
    pub fn samples(&self) -> Result<Vec<Sample>, TsdbError> {
        let mut out = Vec::with_capacity(self.num_samples());
        self.decode_into(&mut out)?;
        Ok(out)
    }

    /// Appends all samples to `out`, failing on corrupt data (samples
    /// decoded before the corruption stay in `out`).
    pub fn decode_into(&self, out: &mut Vec<Sample>) -> Result<(), TsdbError> {
        let mut it = self.iter();
        out.reserve(self.num_samples());
        out.extend(&mut it);
        match it.take_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Decodes the whole chunk and returns its first and last timestamps
    /// (`None` for an empty chunk).
    pub fn validate(&self) -> Result<Option<(i64, i64)>, TsdbError> {
        let mut it = self.iter();
        let first = it.next();
        let mut last = first;
        for s in &mut it {
            last = Some(s);
        }
        if let Some(e) = it.take_error() {
            return Err(e);
        }
        Ok(first.zip(last).map(|(a, b)| (a.t, b.t)))
    }
}

/// Encodes samples into a new XOR chunk.
///
/// Timestamps must strictly increase: an older timestamp is refused with
/// [`TsdbError::OutOfOrderSample`], an equal one with
/// [`TsdbError::DuplicateSample`], and the chunk is left unchanged.
#[derive(Debug, Clone)]
pub struct XorAppender {
    w: BitWriter,
    num: u16,
    min_t: i64,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

/// Leading-zero count meaning "no window yet": the next XOR always writes one.
const NO_LEADING: u8 = 0xff;

impl XorAppender {
    /// An appender for an empty chunk.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0, 0]);
        XorAppender {
            w: BitWriter::new(buf),
            num: 0,
            min_t: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: NO_LEADING,
            trailing: 0,
        }
    }

    /// Continues appending to an existing chunk (for example the last chunk
    /// of a series replayed from disk). The whole chunk is decoded once to
    /// recover the encoder state.
    pub fn from_chunk(chunk: XorChunk) -> Result<Self, TsdbError> {
        let mut it = chunk.iter();
        let mut first = None;
        let mut last = None;
        for s in &mut it {
            first.get_or_insert(s);
            last = Some(s);
        }
        if let Some(e) = it.take_error() {
            return Err(e);
        }
        let (leading, trailing) = if it.window_set {
            (it.leading, it.trailing)
        } else {
            (NO_LEADING, 0)
        };
        let (t_delta, bit_len) = (it.t_delta, it.br.position());
        let num = it.total;
        drop(it);
        Ok(XorAppender {
            w: BitWriter::resume(chunk.into_bytes(), bit_len),
            num,
            min_t: first.map_or(0, |s| s.t),
            t: last.map_or(0, |s| s.t),
            v: last.map_or(0, |s| s.v.to_bits()),
            t_delta,
            leading,
            trailing,
        })
    }

    /// Number of samples appended so far.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// Timestamp of the first sample (`None` while empty).
    pub fn min_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.min_t)
    }

    /// Timestamp of the last sample (`None` while empty).
    pub fn max_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// The encoded bytes so far (a valid chunk at every point).
    pub fn bytes(&self) -> &[u8] {
        &self.w.buf
    }

    /// A copy of the chunk as encoded so far.
    pub fn chunk(&self) -> XorChunk {
        XorChunk {
            bytes: self.w.buf.clone(),
        }
    }

    /// Finishes the chunk.
    pub fn into_chunk(self) -> XorChunk {
        XorChunk { bytes: self.w.buf }
    }

    /// Appends one sample; see the type docs for the ordering rules.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), TsdbError> {
        if self.num > 0 {
            if t == self.t {
                return Err(TsdbError::DuplicateSample { t });
            }
            if t < self.t {
                return Err(TsdbError::OutOfOrderSample { t, last: self.t });
            }
        }
        if usize::from(self.num) >= MAX_SAMPLES_PER_CHUNK {
            return Err(TsdbError::ChunkFull {
                max: MAX_SAMPLES_PER_CHUNK,
            });
        }
        let vb = v.to_bits();
        let mut t_delta = 0;
        match self.num {
            0 => {
                let zz = ((t << 1) ^ (t >> 63)) as u64;
                write_uvarint(&mut self.w, zz);
                self.w.write_bits(vb, 64);
                self.min_t = t;
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                write_uvarint(&mut self.w, t_delta);
                self.write_value(vb);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.w.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.w.write_bits(0b1110, 4);
                    self.w.write_bits(dod as u64, 20);
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                }
                self.write_value(vb);
            }
        }
        self.t = t;
        self.v = vb;
        self.t_delta = t_delta;
        self.num += 1;
        self.w.buf[..HEADER_SIZE].copy_from_slice(&self.num.to_be_bytes());
        Ok(())
    }

    fn write_value(&mut self, vb: u64) {
        let delta = vb ^ self.v;
        if delta == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        // At most 31 leading zeros fit the 5-bit field.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_LEADING && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write_bits(delta >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.write_bit(true);
        self.w.write_bits(u64::from(leading), 5);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // 64 significant bits do not fit 6 bits; 0 stands for 64 (0 itself
        // never occurs: a zero XOR takes the branch above).
        self.w.write_bits(u64::from(sig) & 0x3f, 6);
        self.w.write_bits(delta >> trailing, sig);
    }
}

/// Whether `x` fits a delta-of-delta bucket of `nbits` (Prometheus's range,
/// asymmetric: `-(2^(n-1) - 1) ..= 2^(n-1)`).
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

fn write_uvarint(w: &mut BitWriter, mut x: u64) {
    while x >= 0x80 {
        w.write_byte((x as u8) | 0x80);
        x >>= 7;
    }
    w.write_byte(x as u8);
}

/// Iterator over the samples of a chunk.
///
/// Corrupt data ends the iteration early; [`XorIter::error`] then says why.
/// Readers of untrusted chunks must check it (or use [`XorChunk::samples`]).
#[derive(Debug)]
pub struct XorIter<'a> {
    br: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    window_set: bool,
    /// Set when corrupt data ended the iteration.
    failed: bool,
    error: Option<TsdbError>,
}

impl<'a> XorIter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let total = match bytes {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        XorIter {
            br: BitReader::new(bytes, HEADER_SIZE * 8),
            total,
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            window_set: false,
            failed: false,
            error: None,
        }
    }

    /// Why iteration stopped early, if the chunk is corrupt.
    pub fn error(&self) -> Option<&TsdbError> {
        self.error.as_ref()
    }

    /// Takes the corruption error, if any.
    pub fn take_error(&mut self) -> Option<TsdbError> {
        self.error.take()
    }

    /// Moves to the first sample with timestamp `>= t`, at or after the
    /// sample returned last (like Prometheus's `Seek`, a seek never moves
    /// backwards), and returns it. `next()` continues after it.
    pub fn seek(&mut self, t: i64) -> Option<Sample> {
        // The sample returned last is the decoder state itself.
        if self.read > 0 && !self.failed && self.t >= t {
            return Some(Sample {
                t: self.t,
                v: f64::from_bits(self.v),
            });
        }
        self.by_ref().find(|s| s.t >= t)
    }

    fn fail(&mut self, reason: String) -> Option<Sample> {
        self.error = Some(TsdbError::CorruptChunk { reason });
        self.read = self.total;
        self.failed = true;
        None
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for _ in 0..10 {
            let b = self.br.read_bits(8);
            x |= (b & 0x7f) << shift;
            if b < 0x80 {
                return Some(x);
            }
            shift += 7;
        }
        None
    }

    #[inline(always)]
    fn read_value(&mut self) -> Result<(), BadWindow> {
        let w = self.br.peek64();
        if w >> 63 == 0 {
            self.br.skip(1);
            return Ok(());
        }
        let (leading, sig) = if (w >> 62) & 1 == 0 {
            self.br.skip(2);
            (
                u32::from(self.leading),
                64 - u32::from(self.leading) - u32::from(self.trailing),
            )
        } else {
            let leading = ((w >> 57) & 0x1f) as u32;
            let mut sig = ((w >> 51) & 0x3f) as u32;
            if sig == 0 {
                sig = 64;
            }
            self.br.skip(13);
            if leading + sig > 64 {
                return Err(BadWindow { leading, sig });
            }
            self.leading = leading as u8;
            self.trailing = (64 - leading - sig) as u8;
            self.window_set = true;
            (leading, sig)
        };
        let bits = self.br.read_bits(sig);
        self.v ^= bits << (64 - leading - sig);
        Ok(())
    }

    /// Decodes sample 3 onwards from the window `w` at the current
    /// position: the delta of deltas and, when the window still holds them,
    /// the value bits, so most samples take one or two loads.
    #[inline(always)]
    fn read_dod_and_value(&mut self, w: u64) -> Result<(), BadWindow> {
        let (consumed, dod) = match w.leading_ones() {
            0 => (1u32, 0i64),
            1 => (16, sign_extend((w >> 48) & 0x3fff, 14)),
            2 => (20, sign_extend((w >> 44) & 0x1_ffff, 17)),
            3 => (24, sign_extend((w >> 40) & 0xf_ffff, 20)),
            _ => return self.read_wide_dod_and_value(),
        };
        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        // At least 57 - 24 = 33 bits of `w` are still stream bits.
        let v = w << consumed;
        if v >> 63 == 0 {
            self.br.skip(consumed + 1);
            return Ok(());
        }
        if (v >> 62) & 1 == 0 {
            if self.window_set {
                let trailing = u32::from(self.trailing);
                let sig = 64 - u32::from(self.leading) - trailing;
                if consumed + 2 + sig <= 57 {
                    let bits = (v << 2) >> (64 - sig);
                    self.br.skip(consumed + 2 + sig);
                    self.v ^= bits << trailing;
                    return Ok(());
                }
            }
        } else {
            // A new window: 5 bits of leading zeros, 6 of length, then bits.
            let leading = ((v >> 57) & 0x1f) as u32;
            let sig = ((v >> 51) & 0x3f) as u32;
            if sig != 0 && consumed + 13 + sig <= 57 && leading + sig <= 64 {
                let trailing = 64 - leading - sig;
                let bits = (v << 13) >> (64 - sig);
                self.br.skip(consumed + 13 + sig);
                self.leading = leading as u8;
                self.trailing = trailing as u8;
                self.window_set = true;
                self.v ^= bits << trailing;
                return Ok(());
            }
        }
        self.br.skip(consumed);
        self.read_value()
    }

    #[cold]
    fn read_wide_dod_and_value(&mut self) -> Result<(), BadWindow> {
        self.br.skip(4);
        let dod = self.br.read_bits(64) as i64;
        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value()
    }

    /// The first two samples (varint encoded) and the end of the chunk.
    #[cold]
    #[inline(never)]
    fn next_head(&mut self) -> Option<Sample> {
        if self.read >= self.total {
            return None;
        }
        if self.read == 0 {
            let Some(zz) = self.read_uvarint() else {
                return self.fail("first timestamp varint is too long".into());
            };
            self.t = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
            self.v = self.br.read_bits(64);
        } else {
            let Some(d) = self.read_uvarint() else {
                return self.fail("second timestamp delta varint is too long".into());
            };
            self.t_delta = d;
            self.t = self.t.wrapping_add(d as i64);
            if let Err(r) = self.read_value() {
                return self.fail(r.to_string());
            }
        }
        self.finish_sample()
    }

    #[inline(always)]
    fn finish_sample(&mut self) -> Option<Sample> {
        if self.br.overrun() {
            return self.fail_overrun();
        }
        self.read += 1;
        Some(Sample {
            t: self.t,
            v: f64::from_bits(self.v),
        })
    }

    #[cold]
    fn fail_overrun(&mut self) -> Option<Sample> {
        let n = self.read;
        let total = self.total;
        self.fail(format!("data ends inside sample {n} of {total} announced"))
    }
}

/// A value window that does not fit 64 bits (corrupt data). Small and
/// `Copy` so the decoding hot path returns it in registers.
#[derive(Debug, Clone, Copy)]
struct BadWindow {
    leading: u32,
    sig: u32,
}

impl std::fmt::Display for BadWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "value window of {} leading zeros and {} significant bits exceeds 64 bits",
            self.leading, self.sig
        )
    }
}

/// Reads an `n`-bit delta-of-delta: values above `2^(n-1)` are negative.
#[inline(always)]
fn sign_extend(bits: u64, n: u32) -> i64 {
    if bits > (1u64 << (n - 1)) {
        bits as i64 - (1i64 << n)
    } else {
        bits as i64
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        if self.read < 2 || self.read >= self.total {
            return self.next_head();
        }
        let w = self.br.peek64();
        if w >> 62 == 0 {
            // Delta of deltas 0 and an unchanged value: regular scrapes of
            // a value that did not move, two bits.
            self.br.skip(2);
            self.t = self.t.wrapping_add(self.t_delta as i64);
        } else if let Err(r) = self.read_dod_and_value(w) {
            return self.fail(r.to_string());
        }
        self.finish_sample()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.total - self.read);
        (0, Some(left))
    }
}

#[cfg(test)]
#[path = "xor_tests.rs"]
mod tests;
