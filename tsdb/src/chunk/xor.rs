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

use super::bstream::BitWriter;
pub use super::xor_iter::XorIter;
use crate::TsdbError;

/// The most samples one chunk can count in its 2-byte header.
pub const MAX_SAMPLES_PER_CHUNK: usize = u16::MAX as usize;

pub(super) const HEADER_SIZE: usize = 2;

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
        super::xor_iter::decode_into(&self.bytes, out)
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
        let st = it.state();
        let (leading, trailing) = if st.window_set {
            (st.leading, st.trailing)
        } else {
            (NO_LEADING, 0)
        };
        let (t_delta, bit_len) = (st.t_delta, st.bit_position);
        let num = st.total;
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

#[cfg(test)]
#[path = "xor_tests.rs"]
mod tests;
