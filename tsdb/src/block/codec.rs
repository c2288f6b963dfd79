//! Byte-level encoding shared by the block files: big-endian integers,
//! varints and a bounds-checked decoder that names the file and offset of
//! whatever it cannot decode.

use std::path::{Path, PathBuf};

use crate::TsdbError;

/// CRC32 Castagnoli, as every Prometheus block file uses.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// An append-only encoding buffer.
#[derive(Debug, Default)]
pub(crate) struct Encbuf {
    pub(crate) b: Vec<u8>,
}

impl Encbuf {
    pub(crate) fn put_be32(&mut self, x: u32) {
        self.b.extend_from_slice(&x.to_be_bytes());
    }
    pub(crate) fn put_be64(&mut self, x: u64) {
        self.b.extend_from_slice(&x.to_be_bytes());
    }
    pub(crate) fn put_byte(&mut self, x: u8) {
        self.b.push(x);
    }
    pub(crate) fn put_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.b.push((x as u8) | 0x80);
            x >>= 7;
        }
        self.b.push(x as u8);
    }
    pub(crate) fn put_varint(&mut self, x: i64) {
        self.put_uvarint(((x << 1) ^ (x >> 63)) as u64);
    }
    pub(crate) fn put_uvarint_str(&mut self, s: &str) {
        self.put_uvarint(s.len() as u64);
        self.b.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn len(&self) -> usize {
        self.b.len()
    }
}

/// A decoder over a slice that starts at `base` in file `path`.
///
/// Every read is bounds-checked; errors carry the absolute offset.
#[derive(Debug)]
pub(crate) struct Decbuf<'a> {
    b: &'a [u8],
    pos: usize,
    base: u64,
    path: &'a Path,
}

impl<'a> Decbuf<'a> {
    pub(crate) fn new(b: &'a [u8], base: u64, path: &'a Path) -> Self {
        Decbuf {
            b,
            pos: 0,
            base,
            path,
        }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> TsdbError {
        corrupt(self.path, self.offset(), reason)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], TsdbError> {
        if self.remaining() < n {
            return Err(self.corrupt(format!("need {n} bytes, only {} left", self.remaining())));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, TsdbError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn be32(&mut self) -> Result<u32, TsdbError> {
        let s = self.bytes(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub(crate) fn be64(&mut self) -> Result<u64, TsdbError> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, TsdbError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..10 {
            let Some(&b) = self.b.get(self.pos) else {
                return Err(self.corrupt("varint runs past the end"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.corrupt("varint overflows 64 bits"));
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
        }
        Err(self.corrupt("varint is longer than 10 bytes"))
    }

    pub(crate) fn varint(&mut self) -> Result<i64, TsdbError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn uvarint_bytes(&mut self) -> Result<&'a [u8], TsdbError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.corrupt("length does not fit memory"))?;
        self.bytes(n)
    }

    pub(crate) fn uvarint_str(&mut self) -> Result<&'a str, TsdbError> {
        let at = self.offset();
        let b = self.uvarint_bytes()?;
        std::str::from_utf8(b).map_err(|_| corrupt(self.path, at, "string is not UTF-8"))
    }
}

pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> TsdbError {
    TsdbError::CorruptBlock {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Checks the big-endian CRC32C stored right after `data`.
pub(crate) fn check_crc(
    path: &Path,
    offset: u64,
    data: &[u8],
    stored: &[u8],
) -> Result<(), TsdbError> {
    let computed = crc32(data);
    let stored = match stored {
        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => return Err(corrupt(path, offset, "truncated checksum")),
    };
    if stored != computed {
        return Err(TsdbError::ChecksumMismatch {
            path: PathBuf::from(path),
            offset,
            stored,
            computed,
        });
    }
    Ok(())
}
