//! Decoding XOR chunks: a state machine shared by the sample iterator and
//! the bulk decoder.
//!
//! The hot path reads one 64-bit window per sample for the delta of deltas
//! and, when it fits, the value bits. The bulk decoder keeps the state in
//! locals (nothing escapes), which lets the compiler hold it in registers.

use tidemark_model::Sample;

use super::bstream::BitReader;
use super::xor::HEADER_SIZE;
use crate::TsdbError;

/// Why decoding stopped (corrupt data). Small and `Copy` so the hot path
/// returns it in registers; turned into a message only on failure.
#[derive(Debug, Clone, Copy)]
pub(super) enum Corrupt {
    FirstVarint,
    SecondVarint,
    BadWindow { leading: u32, sig: u32 },
    Overrun { sample: u16, total: u16 },
}

impl Corrupt {
    fn into_error(self) -> TsdbError {
        let reason = match self {
            Corrupt::FirstVarint => "first timestamp varint is too long".to_string(),
            Corrupt::SecondVarint => "second timestamp delta varint is too long".to_string(),
            Corrupt::BadWindow { leading, sig } => format!(
                "value window of {leading} leading zeros and {sig} significant bits exceeds 64 bits"
            ),
            Corrupt::Overrun { sample, total } => {
                format!("data ends inside sample {sample} of {total} announced")
            }
        };
        TsdbError::CorruptChunk { reason }
    }
}

/// Decoder state after some samples.
#[derive(Debug, Clone, Copy)]
struct Decoder<'a> {
    br: BitReader<'a>,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    window_set: bool,
}

/// What an appender needs to continue a chunk.
pub(super) struct ResumeState {
    pub(super) total: u16,
    pub(super) t_delta: u64,
    pub(super) leading: u8,
    pub(super) trailing: u8,
    pub(super) window_set: bool,
    pub(super) bit_position: usize,
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

impl<'a> Decoder<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Decoder {
            br: BitReader::new(bytes, HEADER_SIZE * 8),
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            window_set: false,
        }
    }

    #[inline(always)]
    fn sample(&self) -> Sample {
        Sample {
            t: self.t,
            v: f64::from_bits(self.v),
        }
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

    /// Sample 1: zigzag varint timestamp and raw value bits.
    fn first(&mut self) -> Result<(), Corrupt> {
        let zz = self.read_uvarint().ok_or(Corrupt::FirstVarint)?;
        self.t = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        self.v = self.br.read_bits(64);
        Ok(())
    }

    /// Sample 2: uvarint delta and an XOR value.
    fn second(&mut self) -> Result<(), Corrupt> {
        let d = self.read_uvarint().ok_or(Corrupt::SecondVarint)?;
        self.t_delta = d;
        self.t = self.t.wrapping_add(d as i64);
        self.read_value()
    }

    /// Samples 3 onwards.
    #[inline(always)]
    fn step(&mut self) -> Result<(), Corrupt> {
        let w = self.br.peek64();
        if w >> 62 == 0 {
            // Delta of deltas 0 and an unchanged value: two bits.
            self.br.skip(2);
            self.t = self.t.wrapping_add(self.t_delta as i64);
            return Ok(());
        }
        let (consumed, dod) = match w.leading_ones() {
            0 => (1u32, 0i64),
            1 => (16, sign_extend((w >> 48) & 0x3fff, 14)),
            2 => (20, sign_extend((w >> 44) & 0x1_ffff, 17)),
            3 => (24, sign_extend((w >> 40) & 0xf_ffff, 20)),
            _ => return self.wide_step(),
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

    /// A delta of deltas in the 64-bit bucket (rare).
    #[cold]
    fn wide_step(&mut self) -> Result<(), Corrupt> {
        self.br.skip(4);
        let dod = self.br.read_bits(64) as i64;
        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value()
    }

    /// An XOR value at the current position, general case.
    fn read_value(&mut self) -> Result<(), Corrupt> {
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
                return Err(Corrupt::BadWindow { leading, sig });
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
}

fn total_of(bytes: &[u8]) -> u16 {
    match bytes {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// Appends all samples of `bytes` to `out`; the state stays in locals.
pub(super) fn decode_into(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), TsdbError> {
    let total = total_of(bytes);
    out.reserve(usize::from(total));
    let mut d = Decoder::new(bytes);
    let check = |d: &Decoder<'_>, i: u16| {
        if d.br.overrun() {
            Err(Corrupt::Overrun { sample: i, total })
        } else {
            Ok(())
        }
    };
    let run = |d: &mut Decoder<'_>, out: &mut Vec<Sample>| -> Result<(), Corrupt> {
        if total == 0 {
            return Ok(());
        }
        d.first()?;
        check(d, 0)?;
        out.push(d.sample());
        if total == 1 {
            return Ok(());
        }
        d.second()?;
        check(d, 1)?;
        out.push(d.sample());
        for i in 2..total {
            d.step()?;
            check(d, i)?;
            out.push(d.sample());
        }
        Ok(())
    };
    run(&mut d, out).map_err(Corrupt::into_error)
}

/// Iterator over the samples of a chunk.
///
/// Corrupt data ends the iteration early; [`XorIter::error`] then says why.
/// Readers of untrusted chunks must check it (or use
/// [`super::XorChunk::samples`]).
#[derive(Debug)]
pub struct XorIter<'a> {
    d: Decoder<'a>,
    total: u16,
    read: u16,
    /// Set when corrupt data ended the iteration.
    failed: bool,
    error: Option<TsdbError>,
}

impl<'a> XorIter<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        XorIter {
            d: Decoder::new(bytes),
            total: total_of(bytes),
            read: 0,
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

    /// Decoder state for an appender continuing this chunk (meaningful
    /// after iterating to the end).
    pub(super) fn state(&self) -> ResumeState {
        ResumeState {
            total: self.total,
            t_delta: self.d.t_delta,
            leading: self.d.leading,
            trailing: self.d.trailing,
            window_set: self.d.window_set,
            bit_position: self.d.br.position(),
        }
    }

    /// Moves to the first sample with timestamp `>= t`, at or after the
    /// sample returned last (like Prometheus's `Seek`, a seek never moves
    /// backwards), and returns it. `next()` continues after it.
    pub fn seek(&mut self, t: i64) -> Option<Sample> {
        // The sample returned last is the decoder state itself.
        if self.read > 0 && !self.failed && self.d.t >= t {
            return Some(self.d.sample());
        }
        self.by_ref().find(|s| s.t >= t)
    }

    #[cold]
    fn fail(&mut self, c: Corrupt) -> Option<Sample> {
        self.error = Some(c.into_error());
        self.read = self.total;
        self.failed = true;
        None
    }

    #[cold]
    #[inline(never)]
    fn next_head(&mut self) -> Option<Sample> {
        if self.read >= self.total {
            return None;
        }
        let r = if self.read == 0 {
            self.d.first()
        } else {
            self.d.second()
        };
        if let Err(c) = r {
            return self.fail(c);
        }
        self.finish()
    }

    #[inline(always)]
    fn finish(&mut self) -> Option<Sample> {
        if self.d.br.overrun() {
            return self.fail(Corrupt::Overrun {
                sample: self.read,
                total: self.total,
            });
        }
        self.read += 1;
        Some(self.d.sample())
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        if self.read < 2 || self.read >= self.total {
            return self.next_head();
        }
        if let Err(c) = self.d.step() {
            return self.fail(c);
        }
        self.finish()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.total - self.read)))
    }
}
