//! The `tombstones` file: deleted time ranges per series, as in Prometheus's
//! `tsdb/docs/format/tombstones.md`:
//!
//! ```text
//! magic 0x0130BA30 <4b> | version 1 <1b> | (series ref <uvarint> mint <varint> maxt <varint>)... | CRC32C <4b>
//! ```
//!
//! The checksum covers the entries only (not magic or version). Intervals are
//! closed: `[mint, maxt]`.

use std::collections::BTreeMap;
use std::path::Path;

use super::codec::{Decbuf, Encbuf, check_crc, corrupt, crc32};
use crate::TsdbError;

/// The name of the tombstones file in a block directory.
pub(crate) const TOMBSTONES_FILENAME: &str = "tombstones";
/// Magic number at the start of the tombstones file.
pub(crate) const MAGIC_TOMBSTONES: u32 = 0x0130_BA30;

/// Deleted intervals keyed by series reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    by_series: BTreeMap<u64, Vec<(i64, i64)>>,
}

impl Tombstones {
    /// Marks `[mint, maxt]` of series `series_ref` as deleted.
    pub fn add(&mut self, series_ref: u64, mint: i64, maxt: i64) {
        let ivs = self.by_series.entry(series_ref).or_default();
        ivs.push((mint, maxt));
        ivs.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ivs.len());
        for &(a, b) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ivs = merged;
    }

    /// Deleted intervals of one series, sorted and disjoint.
    pub fn intervals(&self, series_ref: u64) -> &[(i64, i64)] {
        self.by_series.get(&series_ref).map_or(&[], Vec::as_slice)
    }

    /// Whether the sample at `t` of the series is deleted.
    pub fn is_deleted(&self, series_ref: u64, t: i64) -> bool {
        self.intervals(series_ref)
            .iter()
            .any(|&(a, b)| a <= t && t <= b)
    }

    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.by_series.values().map(Vec::len).sum()
    }

    /// Whether nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// The file contents.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Encbuf::default();
        for (&r, ivs) in &self.by_series {
            for &(a, b) in ivs {
                body.put_uvarint(r);
                body.put_varint(a);
                body.put_varint(b);
            }
        }
        let mut out = Encbuf::default();
        out.put_be32(MAGIC_TOMBSTONES);
        out.put_byte(1);
        out.b.extend_from_slice(&body.b);
        out.put_be32(crc32(&body.b));
        out.b
    }

    /// Parses the file contents; `path` names the file in errors.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self, TsdbError> {
        if bytes.len() < 9 {
            return Err(corrupt(path, 0, "tombstones file shorter than 9 bytes"));
        }
        let mut d = Decbuf::new(bytes, 0, path);
        let magic = d.be32()?;
        if magic != MAGIC_TOMBSTONES {
            return Err(corrupt(path, 0, format!("bad magic {magic:#010x}")));
        }
        let version = d.byte()?;
        if version != 1 {
            return Err(corrupt(path, 4, format!("unknown version {version}")));
        }
        let end = bytes.len() - 4;
        let body = &bytes[5..end];
        check_crc(path, end as u64, body, &bytes[end..])?;
        let mut d = Decbuf::new(body, 5, path);
        let mut t = Tombstones::default();
        while d.remaining() > 0 {
            let r = d.uvarint()?;
            let a = d.varint()?;
            let b = d.varint()?;
            t.add(r, a, b);
        }
        Ok(t)
    }

    /// Reads `<dir>/tombstones`; a missing file means nothing is deleted.
    pub fn read(dir: &Path) -> Result<Self, TsdbError> {
        let path = dir.join(TOMBSTONES_FILENAME);
        match std::fs::read(&path) {
            Ok(b) => Self::decode(&b, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(TsdbError::io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_file_matches_prometheus_bytes() {
        // What promtool writes for a block without deletions.
        assert_eq!(
            Tombstones::default().encode(),
            vec![0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]
        );
    }

    #[test]
    fn intervals_round_trip_and_merge() {
        let mut t = Tombstones::default();
        t.add(16, 100, 200);
        t.add(16, 150, 300);
        t.add(16, 400, 500);
        t.add(3, i64::MIN, -5);
        let bytes = t.encode();
        let back = Tombstones::decode(&bytes, Path::new("tombstones")).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.intervals(16), &[(100, 300), (400, 500)]);
        assert!(back.is_deleted(16, 300));
        assert!(!back.is_deleted(16, 301));
        assert!(back.is_deleted(3, -10));
        assert_eq!(back.len(), 3);
    }

    #[test]
    fn corruption_is_detected() {
        let mut t = Tombstones::default();
        t.add(1, 2, 3);
        let mut bytes = t.encode();
        bytes[6] ^= 1;
        assert!(matches!(
            Tombstones::decode(&bytes, Path::new("t")),
            Err(TsdbError::ChecksumMismatch { .. })
        ));
        assert!(Tombstones::decode(&bytes[..5], Path::new("t")).is_err());
    }
}
