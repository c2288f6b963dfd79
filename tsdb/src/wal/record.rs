//! WAL records: framing (type, length, CRC32C) and the series and samples
//! payloads.
//!
//! ```text
//! record  := type:u8 len:u32le crc:u32le payload[len]
//!            crc = CRC32C(type, len, payload)
//! series  := { ref:uvarint nlabels:uvarint { nlen:uvarint name vlen:uvarint value }* }*
//! samples := base_t:i64le { ref:uvarint n:uvarint { dt:varint v:u64le }*n }*
//!            dt is the zig-zag difference to the previous timestamp of the same
//!            group (the first one to base_t)
//! exemplars := { ref:uvarint t:i64le v:u64le nlabels:uvarint { nlen:uvarint name vlen:uvarint value }* }*
//! ```
//!
//! Type 0 never occurs, so a zero-filled tail is recognisable; types 4 and up
//! are reserved for later record kinds (histograms, tombstones).

use tidemark_model::{Exemplar, Labels, Sample};

use crate::head::SeriesRef;

/// Bytes before the payload: type, length, checksum.
pub(crate) const HEADER_LEN: usize = 9;

/// Largest payload accepted when reading; a larger length is corruption.
pub(crate) const MAX_RECORD_LEN: usize = 64 << 20;

/// Record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordType {
    Series = 1,
    Samples = 2,
    Exemplars = 3,
}

impl RecordType {
    pub(crate) fn from_byte(b: u8) -> Option<RecordType> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
            3 => Some(RecordType::Exemplars),
            _ => None,
        }
    }
}

/// The checksum of a record: header type and length, then the payload.
pub(crate) fn checksum(typ: u8, len: u32, payload: &[u8]) -> u32 {
    let mut head = [0u8; 5];
    head[0] = typ;
    head[1..5].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&head), payload)
}

/// Writes one framed record into `buf`: reserve the header, let `fill`
/// append the payload, then complete the header.
#[cfg(test)]
pub(crate) fn frame(buf: &mut Vec<u8>, typ: RecordType, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    fill(buf);
    finish_frame(buf, start, typ);
}

/// Completes the header of a record whose payload starts at `start + HEADER_LEN`.
pub(crate) fn finish_frame(buf: &mut [u8], start: usize, typ: RecordType) {
    let payload_len = buf.len() - start - HEADER_LEN;
    // Records are bounded well below 4 GiB by the append batch size; a batch
    // that large is refused before encoding.
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    let crc = checksum(typ as u8, len, &buf[start + HEADER_LEN..]);
    buf[start] = typ as u8;
    buf[start + 1..start + 5].copy_from_slice(&len.to_le_bytes());
    buf[start + 5..start + 9].copy_from_slice(&crc.to_le_bytes());
}

#[inline]
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push((x as u8) | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, ((x << 1) ^ (x >> 63)) as u64);
}

/// Appends one series entry to a series payload.
pub(crate) fn encode_series(buf: &mut Vec<u8>, r: SeriesRef, labels: &Labels) {
    put_uvarint(buf, r.0);
    put_labels(buf, labels);
}

/// Appends one exemplar of series `r` to an exemplars payload.
pub(crate) fn encode_exemplar(buf: &mut Vec<u8>, r: SeriesRef, e: &Exemplar) {
    put_uvarint(buf, r.0);
    buf.extend_from_slice(&e.t.to_le_bytes());
    buf.extend_from_slice(&e.v.to_bits().to_le_bytes());
    put_labels(buf, &e.labels);
}

fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for (n, v) in labels.iter() {
        put_uvarint(buf, n.len() as u64);
        buf.extend_from_slice(n.as_bytes());
        put_uvarint(buf, v.len() as u64);
        buf.extend_from_slice(v.as_bytes());
    }
}

/// Starts a samples payload whose timestamps are stored relative to `base_t`.
pub(crate) fn begin_samples(buf: &mut Vec<u8>, base_t: i64) {
    buf.extend_from_slice(&base_t.to_le_bytes());
}

/// Appends one group of samples of one series to a samples payload.
pub(crate) fn encode_sample_group(
    buf: &mut Vec<u8>,
    base_t: i64,
    r: SeriesRef,
    samples: impl ExactSizeIterator<Item = Sample>,
) {
    put_uvarint(buf, r.0);
    put_uvarint(buf, samples.len() as u64);
    let mut prev = base_t;
    for s in samples {
        put_varint(buf, s.t.wrapping_sub(prev));
        buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
        prev = s.t;
    }
}

/// Why a payload could not be decoded.
pub(crate) type DecodeError = &'static str;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err("varint overflows 64 bits");
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
            if shift > 63 {
                return Err("varint overflows 64 bits");
            }
        }
    }

    fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn fixed8(&mut self) -> Result<[u8; 8], DecodeError> {
        let end = self.pos.checked_add(8).ok_or("truncated payload")?;
        let b = self.buf.get(self.pos..end).ok_or("truncated payload")?;
        self.pos = end;
        let mut out = [0u8; 8];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(n).map_err(|_| "length out of range")?;
        let end = self.pos.checked_add(n).ok_or("length out of range")?;
        let b = self.buf.get(self.pos..end).ok_or("truncated string")?;
        self.pos = end;
        Ok(b)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.uvarint()?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| "label is not UTF-8")
    }

    /// A label count and that many name/value pairs; `pairs` is scratch.
    fn labels(&mut self, pairs: &mut Vec<(&'a str, &'a str)>) -> Result<Labels, DecodeError> {
        let n = self.uvarint()?;
        if n > 10_000 {
            return Err("implausible label count");
        }
        pairs.clear();
        for _ in 0..n {
            let name = self.str()?;
            let value = self.str()?;
            pairs.push((name, value));
        }
        Labels::from_pairs(pairs.iter().copied()).map_err(|_| "duplicate label")
    }
}

/// Decodes a series payload, calling `f` for every entry.
pub(crate) fn decode_series(
    payload: &[u8],
    mut f: impl FnMut(SeriesRef, Labels),
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    while !c.done() {
        let r = SeriesRef(c.uvarint()?);
        let labels = c.labels(&mut pairs)?;
        f(r, labels);
    }
    Ok(())
}

/// Decodes an exemplars payload, calling `f` for every exemplar.
pub(crate) fn decode_exemplars(
    payload: &[u8],
    mut f: impl FnMut(SeriesRef, Exemplar),
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    while !c.done() {
        let r = SeriesRef(c.uvarint()?);
        let t = i64::from_le_bytes(c.fixed8()?);
        let v = f64::from_bits(u64::from_le_bytes(c.fixed8()?));
        let labels = c.labels(&mut pairs)?;
        f(r, Exemplar { labels, t, v });
    }
    Ok(())
}

/// Decodes a samples payload, calling `f` once per group with the samples
/// of one series. `scratch` is reused between groups so replay allocates
/// nothing per sample.
pub(crate) fn decode_samples(
    payload: &[u8],
    scratch: &mut Vec<Sample>,
    mut f: impl FnMut(SeriesRef, &[Sample]),
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let base_t = i64::from_le_bytes(c.fixed8()?);
    while !c.done() {
        let r = SeriesRef(c.uvarint()?);
        let n = c.uvarint()?;
        // Each sample takes at least 9 bytes: a bound that refuses garbage
        // counts before they turn into huge allocations.
        if n > (payload.len() / 9) as u64 {
            return Err("sample count larger than the record");
        }
        scratch.clear();
        let mut prev = base_t;
        for _ in 0..n {
            let t = prev.wrapping_add(c.varint()?);
            let v = f64::from_bits(u64::from_le_bytes(c.fixed8()?));
            scratch.push(Sample { t, v });
            prev = t;
        }
        f(r, scratch);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tidemark_model::STALE_NAN;

    #[test]
    fn series_roundtrip() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "node")]).unwrap();
        let b = Labels::from_pairs([("x", "é")]).unwrap();
        let mut buf = Vec::new();
        encode_series(&mut buf, SeriesRef(7), &a);
        encode_series(&mut buf, SeriesRef(1 << 40), &b);
        let mut got = Vec::new();
        decode_series(&buf, |r, l| got.push((r, l))).unwrap();
        assert_eq!(got, vec![(SeriesRef(7), a), (SeriesRef(1 << 40), b)]);
    }

    #[test]
    fn exemplars_roundtrip() {
        let a = Exemplar {
            labels: Labels::from_pairs([("trace_id", "abc123")]).unwrap(),
            t: -5,
            v: f64::NAN,
        };
        let b = Exemplar {
            labels: Labels::empty(),
            t: 1 << 50,
            v: 2.5,
        };
        let mut buf = Vec::new();
        encode_exemplar(&mut buf, SeriesRef(9), &a);
        encode_exemplar(&mut buf, SeriesRef(1 << 41), &b);
        let mut got = Vec::new();
        decode_exemplars(&buf, |r, e| got.push((r, e))).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, SeriesRef(9));
        assert!(got[0].1.same_as(&a), "NaN kept by bits: {:?}", got[0].1);
        assert_eq!(got[1].0, SeriesRef(1 << 41));
        assert!(got[1].1.same_as(&b));
        for cut in 0..buf.len() {
            let _ = decode_exemplars(&buf[..cut], |_, _| {});
        }
        assert!(decode_exemplars(&buf[..buf.len() - 1], |_, _| {}).is_err());
    }

    #[test]
    fn frame_checksum_covers_type_and_length() {
        let mut buf = Vec::new();
        frame(&mut buf, RecordType::Samples, |b| {
            b.extend_from_slice(b"abc")
        });
        let len = u32::from_le_bytes(buf[1..5].try_into().unwrap());
        let crc = u32::from_le_bytes(buf[5..9].try_into().unwrap());
        assert_eq!(len, 3);
        assert_eq!(crc, checksum(2, 3, b"abc"));
        assert_ne!(crc, checksum(1, 3, b"abc"));
    }

    #[test]
    fn truncated_payloads_are_errors_not_panics() {
        let mut buf = Vec::new();
        begin_samples(&mut buf, 1000);
        encode_sample_group(
            &mut buf,
            1000,
            SeriesRef(3),
            [Sample::new(1000, 1.0), Sample::new(2000, 2.0)].into_iter(),
        );
        for cut in 0..buf.len() {
            let mut s = Vec::new();
            let _ = decode_samples(&buf[..cut], &mut s, |_, _| {});
        }
        assert!(decode_samples(&buf[..buf.len() - 1], &mut Vec::new(), |_, _| {}).is_err());
    }

    proptest! {
        #[test]
        fn samples_roundtrip(groups in proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec((any::<i64>(), any::<u64>()), 0..20)), 0..10),
            base in any::<i64>())
        {
            let mut buf = Vec::new();
            begin_samples(&mut buf, base);
            let groups: Vec<(SeriesRef, Vec<Sample>)> = groups
                .into_iter()
                .map(|(r, s)| (SeriesRef(r), s.into_iter().map(|(t, v)| Sample::new(t, f64::from_bits(v))).collect()))
                .collect();
            for (r, s) in &groups {
                encode_sample_group(&mut buf, base, *r, s.iter().copied());
            }
            let mut got: Vec<(SeriesRef, Vec<Sample>)> = Vec::new();
            decode_samples(&buf, &mut Vec::new(), |r, s| got.push((r, s.to_vec()))).unwrap();
            prop_assert_eq!(got.len(), groups.len());
            for ((ra, sa), (rb, sb)) in got.iter().zip(&groups) {
                prop_assert_eq!(ra, rb);
                prop_assert_eq!(sa.len(), sb.len());
                for (x, y) in sa.iter().zip(sb) {
                    prop_assert!(x.bit_eq(y));
                }
            }
        }
    }

    #[test]
    fn stale_nan_survives() {
        let mut buf = Vec::new();
        begin_samples(&mut buf, 0);
        encode_sample_group(
            &mut buf,
            0,
            SeriesRef(1),
            std::iter::once(Sample::new(5, STALE_NAN)),
        );
        let mut got = None;
        decode_samples(&buf, &mut Vec::new(), |_, s| got = Some(s[0])).unwrap();
        assert!(tidemark_model::is_stale_nan(got.unwrap().v));
    }
}
