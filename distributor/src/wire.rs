//! Remote write 1.0's `prometheus.WriteRequest` decoded in place: label
//! names and values are `&str` slices of the request body, not a `String`
//! each. Decoding through prost's owned messages was about half of the
//! write path's CPU (two allocations and copies per label, then again to
//! build the label set); here a series costs one vector of pairs and one
//! of samples.
//!
//! The decoder reads what prost would for the fields the write path uses
//! (labels, samples, the number of native histograms) and skips every
//! other field, metadata included, without looking inside.

use tidemark_proto::prometheus as pb;

use crate::validate::{RawExemplar, RawSeries};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// Cursor over one message's bytes; errors name the byte offset in the
/// whole body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the body.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.base + self.pos)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut x = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(x);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// The next field's number and wire type.
    fn key(&mut self) -> Result<(u32, u8), String> {
        let k = self.varint()?;
        let field = u32::try_from(k >> 3).map_err(|_| self.err("field number overflows"))?;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        Ok((field, (k & 7) as u8))
    }

    fn fixed64(&mut self) -> Result<u64, String> {
        let end = self.pos + 8;
        let Some(b) = self.buf.get(self.pos..end) else {
            return Err(self.err("truncated 64-bit field"));
        };
        self.pos = end;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length-delimited field's bytes, with the body offset they start at.
    fn len_delimited(&mut self) -> Result<(&'a [u8], usize), String> {
        let len = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(&format!("length {len} runs past the end of the message")))?;
        self.pos = end;
        Ok((&self.buf[start..end], self.base + start))
    }

    fn string(&mut self) -> Result<&'a str, String> {
        let (b, at) = self.len_delimited()?;
        std::str::from_utf8(b).map_err(|_| format!("string at byte {at} is not valid UTF-8"))
    }

    /// Skips a field of wire type `wt` (field `field`), groups included.
    fn skip(&mut self, field: u32, wt: u8) -> Result<(), String> {
        match wt {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => {
                let end = self.pos + 4;
                if end > self.buf.len() {
                    return Err(self.err("truncated 32-bit field"));
                }
                self.pos = end;
                Ok(())
            }
            START_GROUP => loop {
                if self.done() {
                    return Err(self.err("unterminated group"));
                }
                let (f, w) = self.key()?;
                if w == END_GROUP {
                    if f != field {
                        return Err(self.err("mismatched end of group"));
                    }
                    return Ok(());
                }
                self.skip(f, w)?;
            },
            END_GROUP => Err(self.err("end of group without a start")),
            _ => Err(self.err(&format!("invalid wire type {wt}"))),
        }
    }

    /// Checks that field `field` of `msg` came with wire type `want`.
    fn expect(&self, msg: &str, field: u32, wt: u8, want: u8) -> Result<(), String> {
        if wt == want {
            Ok(())
        } else {
            Err(self.err(&format!(
                "{msg} field {field} has wire type {wt}, expected {want}"
            )))
        }
    }
}

/// Decodes a remote write 1.0 request body into series borrowing from it.
pub(crate) fn decode_write_request(body: &[u8]) -> Result<Vec<RawSeries<'_>>, String> {
    let mut r = Reader::new(body, 0);
    let mut out = Vec::new();
    while !r.done() {
        let (field, wt) = r.key()?;
        if field == 1 {
            r.expect("WriteRequest", field, wt, LEN)?;
            let (b, at) = r.len_delimited()?;
            out.push(time_series(b, at)?);
        } else {
            r.skip(field, wt)?;
        }
    }
    Ok(out)
}

fn time_series(buf: &[u8], base: usize) -> Result<RawSeries<'_>, String> {
    let mut r = Reader::new(buf, base);
    let mut s = RawSeries::default();
    while !r.done() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                r.expect("TimeSeries", field, wt, LEN)?;
                let (b, at) = r.len_delimited()?;
                s.labels.push(label(b, at)?);
            }
            2 => {
                r.expect("TimeSeries", field, wt, LEN)?;
                let (b, at) = r.len_delimited()?;
                s.samples.push(sample(b, at)?);
            }
            3 => {
                r.expect("TimeSeries", field, wt, LEN)?;
                let (b, at) = r.len_delimited()?;
                s.exemplars.push(exemplar(b, at)?);
            }
            4 => {
                r.expect("TimeSeries", field, wt, LEN)?;
                r.len_delimited()?;
                s.histograms += 1;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(s)
}

fn exemplar(buf: &[u8], base: usize) -> Result<RawExemplar<'_>, String> {
    let mut r = Reader::new(buf, base);
    let mut e = RawExemplar::default();
    while !r.done() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                r.expect("Exemplar", field, wt, LEN)?;
                let (b, at) = r.len_delimited()?;
                e.labels.push(label(b, at)?);
            }
            2 => {
                r.expect("Exemplar", field, wt, FIXED64)?;
                e.value = f64::from_bits(r.fixed64()?);
            }
            3 => {
                r.expect("Exemplar", field, wt, VARINT)?;
                e.timestamp = r.varint()? as i64;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(e)
}

fn label(buf: &[u8], base: usize) -> Result<(&str, &str), String> {
    let mut r = Reader::new(buf, base);
    let (mut name, mut value) = ("", "");
    while !r.done() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                r.expect("Label", field, wt, LEN)?;
                name = r.string()?;
            }
            2 => {
                r.expect("Label", field, wt, LEN)?;
                value = r.string()?;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok((name, value))
}

fn sample(buf: &[u8], base: usize) -> Result<pb::Sample, String> {
    let mut r = Reader::new(buf, base);
    let mut s = pb::Sample::default();
    while !r.done() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                r.expect("Sample", field, wt, FIXED64)?;
                s.value = f64::from_bits(r.fixed64()?);
            }
            2 => {
                r.expect("Sample", field, wt, VARINT)?;
                s.timestamp = r.varint()? as i64;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(s)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
