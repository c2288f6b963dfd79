//! Bit streams, most significant bit first, as Prometheus's `bstream`.

/// Appends bits to a byte vector, MSB first, byte for byte like
/// Prometheus's Go `bstream`.
///
/// The Go writer has one quirk that shows in the encoded bytes: writing a
/// whole byte at a byte boundary leaves an empty trailing byte (its `count`
/// of free bits stays 8), so a chunk whose last field ends on such a write
/// carries one extra zero byte. Readers ignore it; reproducing it makes
/// tidemark's chunks byte-identical to Prometheus's.
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    pub(crate) buf: Vec<u8>,
    /// Free bits in the last byte of `buf`, 0..=8 (8: an empty last byte).
    free: u32,
}

impl BitWriter {
    pub(crate) fn new(buf: Vec<u8>) -> Self {
        BitWriter { buf, free: 0 }
    }

    /// Continues writing after `bit_len` bits of `buf`. Bits after the end
    /// are cleared; an empty trailing byte (as Go leaves) is kept.
    pub(crate) fn resume(mut buf: Vec<u8>, bit_len: usize) -> Self {
        let used_bytes = bit_len.div_ceil(8);
        let rem = (bit_len % 8) as u32;
        if rem == 0 && buf.len() > used_bytes && buf[used_bytes] == 0 {
            buf.truncate(used_bytes + 1);
            return BitWriter { buf, free: 8 };
        }
        buf.truncate(used_bytes);
        let free = if rem == 0 { 0 } else { 8 - rem };
        if let Some(last) = buf.last_mut().filter(|_| free > 0) {
            *last &= 0xffu8 << free;
        }
        BitWriter { buf, free }
    }

    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes the low `n` bits of `v` (`n` in 0..=64).
    ///
    /// The bytes are the plain MSB-first packing; Go's quirk only decides
    /// whether an empty byte follows: its `writeBits` writes whole bytes
    /// first, and a whole byte written at a byte boundary leaves one, so a
    /// write of a multiple of 8 bits starting on a boundary ends with it.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let aligned = self.free == 0 || self.free == 8;
        let mut v = v << (64 - n);
        let mut rem = n;
        if self.free > 0 {
            let take = rem.min(self.free);
            if let Some(last) = self.buf.last_mut() {
                *last |= ((v >> (64 - take)) as u8) << (self.free - take);
            }
            v = if take == 64 { 0 } else { v << take };
            rem -= take;
            self.free -= take;
        }
        while rem >= 8 {
            self.buf.push((v >> 56) as u8);
            v <<= 8;
            rem -= 8;
        }
        if rem > 0 {
            self.buf.push((v >> 56) as u8);
            self.free = 8 - rem;
        }
        if aligned && n.is_multiple_of(8) {
            self.buf.push(0);
            self.free = 8;
        }
    }

    /// Writes a whole byte, as Go's `writeByte`.
    #[inline]
    pub(crate) fn write_byte(&mut self, b: u8) {
        self.write_bits(u64::from(b), 8);
    }
}

/// Reads bits MSB first from a byte slice.
///
/// Reads past the end yield zero bits instead of failing on every call: the
/// caller checks [`BitReader::overrun`] once per decoded sample, which keeps
/// the hot path free of per-read bounds branches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos }
    }

    /// Bit position from the start of the data.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Whether reads went past the end of the data.
    #[inline]
    pub(crate) fn overrun(&self) -> bool {
        self.pos > self.data.len() * 8
    }

    /// The next 64 bits (zero-padded past the end), without consuming them.
    /// At least 57 of them are real stream bits when not near the end.
    #[inline(always)]
    pub(crate) fn peek64(&self) -> u64 {
        let byte = self.pos >> 3;
        let word = if let Some(s) = self.data.get(byte..byte + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        } else {
            self.tail_word(byte)
        };
        word << (self.pos & 7)
    }

    #[cold]
    fn tail_word(&self, byte: usize) -> u64 {
        let mut a = [0u8; 8];
        if let Some(s) = self.data.get(byte..) {
            let n = s.len().min(8);
            a[..n].copy_from_slice(&s[..n]);
        }
        u64::from_be_bytes(a)
    }

    #[inline(always)]
    pub(crate) fn skip(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Reads `n` bits (0..=64) as the low bits of the result.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u32) -> u64 {
        if n == 0 {
            0
        } else if n <= 56 {
            let v = self.peek64() >> (64 - n);
            self.pos += n as usize;
            v
        } else {
            let hi = self.peek64() >> 32;
            self.pos += 32;
            let rest = n - 32;
            let lo = self.peek64() >> (64 - rest);
            self.pos += rest as usize;
            (hi << rest) | lo
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_on_unaligned_fields() {
        let mut w = BitWriter::new(Vec::new());
        let fields: &[(u64, u32)] = &[
            (1, 1),
            (0b101, 3),
            (u64::MAX, 64),
            (0x1234, 14),
            (0, 5),
            (0xdead_beef_cafe, 57),
            (3, 2),
        ];
        for &(v, n) in fields {
            w.write_bits(v, n);
        }
        let mut r = BitReader::new(&w.buf, 0);
        for &(v, n) in fields {
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            assert_eq!(r.read_bits(n), v & mask, "field of {n} bits");
        }
        assert!(!r.overrun());
        let total: u32 = fields.iter().map(|f| f.1).sum();
        assert_eq!(w.buf.len(), (total as usize).div_ceil(8));
    }

    #[test]
    fn whole_bytes_at_a_boundary_leave_an_empty_byte_like_go() {
        let mut w = BitWriter::new(Vec::new());
        w.write_bits(0xab, 8);
        assert_eq!(w.buf, vec![0xab, 0x00]);
        w.write_bit(true);
        assert_eq!(w.buf, vec![0xab, 0x80], "the empty byte is filled next");
        w.write_bits(0xcd, 8);
        assert_eq!(w.buf, vec![0xab, 0xe6, 0x80], "unaligned: no extra byte");
        let r = BitWriter::resume(vec![0xab, 0x00], 8);
        assert_eq!((r.buf.as_slice(), r.free), (&[0xab, 0x00][..], 8));
    }

    #[test]
    fn resume_clears_bits_after_the_end() {
        let mut w = BitWriter::new(vec![0xff, 0xff]);
        w.free = 0;
        let mut w = BitWriter::resume(std::mem::take(&mut w.buf), 11);
        assert_eq!(w.buf, vec![0xff, 0b1110_0000]);
        w.write_bits(0b01, 2);
        assert_eq!(w.buf, vec![0xff, 0b1110_1000]);
    }

    #[test]
    fn reading_past_the_end_is_detected() {
        let data = [0xffu8];
        let mut r = BitReader::new(&data, 0);
        assert_eq!(r.read_bits(8), 0xff);
        assert!(!r.overrun());
        assert_eq!(r.read_bits(3), 0);
        assert!(r.overrun());
    }
}
