//! WAL segment files: naming, listing and a streaming record reader.
//!
//! Segments are named by an 8-digit decimal index (`00000000`, `00000001`,
//! ...) like Prometheus's. Records never span segments. The reader holds one
//! record in memory at a time, so replay memory does not grow with the
//! segment size.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::record::{HEADER_LEN, MAX_RECORD_LEN, RecordType, checksum};
use crate::TsdbError;

/// The file name of segment `index`.
pub(crate) fn segment_name(index: u32) -> String {
    format!("{index:08}")
}

/// The segment files of `dir` as `(index, path)`, in index order. Files
/// whose name is not an 8-digit number are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u32, PathBuf)>, TsdbError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(i) = name.parse::<u32>()
        {
            out.push((i, entry.path()));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// Checks that segment indexes follow each other without a gap.
pub(crate) fn check_contiguous(dir: &Path, segs: &[(u32, PathBuf)]) -> Result<(), TsdbError> {
    for w in segs.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(TsdbError::WalMissingSegment {
                dir: dir.to_path_buf(),
                missing: w[0].0 + 1,
                found: w[1].0,
            });
        }
    }
    Ok(())
}

/// What the reader found at the current position.
#[derive(Debug)]
pub(crate) enum Next {
    /// A valid record; its payload is in the caller's buffer.
    Record { typ: RecordType, offset: u64 },
    /// Clean end of the segment.
    End,
    /// An unreadable record at `offset`. `torn` is true when it can only be
    /// an interrupted final write: it is the last thing in the file (or only
    /// zeros follow), so no acknowledged data can lie behind it.
    Bad {
        offset: u64,
        reason: String,
        torn: bool,
    },
}

/// Reads framed records from one segment file, one at a time.
pub(crate) struct SegmentReader {
    path: PathBuf,
    r: BufReader<File>,
    offset: u64,
    len: u64,
}

impl SegmentReader {
    pub(crate) fn open(path: &Path) -> Result<Self, TsdbError> {
        let f = File::open(path).map_err(|e| TsdbError::io(path, e))?;
        let len = f.metadata().map_err(|e| TsdbError::io(path, e))?.len();
        Ok(SegmentReader {
            path: path.to_path_buf(),
            r: BufReader::with_capacity(1 << 20, f),
            offset: 0,
            len,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file size when the reader was opened.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Reads the next record's payload into `payload`.
    pub(crate) fn next(&mut self, payload: &mut Vec<u8>) -> Result<Next, TsdbError> {
        let start = self.offset;
        let remaining = self.len - start;
        if remaining == 0 {
            return Ok(Next::End);
        }
        if remaining < HEADER_LEN as u64 {
            return self.bad(start, "incomplete record header at the end of the file");
        }
        let mut head = [0u8; HEADER_LEN];
        self.read_exact(&mut head)?;
        let Some(typ) = RecordType::from_byte(head[0]) else {
            return self.bad(start, &format!("unknown record type {}", head[0]));
        };
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let stored = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
        let len_usize = len as usize;
        let end = start + HEADER_LEN as u64 + u64::from(len);
        if end > self.len {
            return self.bad(
                start,
                &format!("record of {len} bytes extends past the end of the file"),
            );
        }
        if len_usize > MAX_RECORD_LEN {
            return self.bad(start, &format!("record length {len} is implausible"));
        }
        payload.clear();
        payload.resize(len_usize, 0);
        self.read_exact(payload)?;
        let computed = checksum(head[0], len, payload);
        if computed != stored {
            return self.bad(
                start,
                &format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
            );
        }
        self.offset = end;
        Ok(Next::Record { typ, offset: start })
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), TsdbError> {
        self.r
            .read_exact(buf)
            .map_err(|e| TsdbError::io(&self.path, e))
    }

    /// Classifies a bad record: torn when its declared end is at or past the
    /// end of the file, or when nothing but zeros follows it.
    fn bad(&mut self, offset: u64, reason: &str) -> Result<Next, TsdbError> {
        let torn = self.record_reaches_eof(offset)? || self.only_zeros_from(offset)?;
        Ok(Next::Bad {
            offset,
            reason: reason.to_string(),
            torn,
        })
    }

    fn record_reaches_eof(&self, offset: u64) -> Result<bool, TsdbError> {
        let remaining = self.len - offset;
        if remaining < HEADER_LEN as u64 {
            return Ok(true);
        }
        let mut f = File::open(&self.path).map_err(|e| TsdbError::io(&self.path, e))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset))
            .map_err(|e| TsdbError::io(&self.path, e))?;
        let mut head = [0u8; HEADER_LEN];
        f.read_exact(&mut head)
            .map_err(|e| TsdbError::io(&self.path, e))?;
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        Ok(offset + HEADER_LEN as u64 + u64::from(len) >= self.len)
    }

    fn only_zeros_from(&self, offset: u64) -> Result<bool, TsdbError> {
        let mut f = File::open(&self.path).map_err(|e| TsdbError::io(&self.path, e))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset))
            .map_err(|e| TsdbError::io(&self.path, e))?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match f.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    if buf[..n].iter().any(|&b| b != 0) {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(TsdbError::io(&self.path, e)),
            }
        }
    }
}

/// Fsyncs a directory so that created, renamed and removed entries persist.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), TsdbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TsdbError::io(dir, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::record::{RecordType, frame};
    use super::*;

    fn write_records(path: &Path, n: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        for i in 0..n {
            frame(&mut buf, RecordType::Samples, |b| {
                b.extend_from_slice(&(i as u64).to_le_bytes())
            });
        }
        std::fs::write(path, &buf).unwrap();
        buf
    }

    fn read_all(path: &Path) -> (usize, Next) {
        let mut r = SegmentReader::open(path).unwrap();
        let mut p = Vec::new();
        let mut n = 0;
        loop {
            match r.next(&mut p).unwrap() {
                Next::Record { .. } => n += 1,
                other => return (n, other),
            }
        }
    }

    #[test]
    fn reads_all_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(segment_name(0));
        write_records(&p, 5);
        let (n, end) = read_all(&p);
        assert_eq!(n, 5);
        assert!(matches!(end, Next::End));
    }

    #[test]
    fn cut_final_record_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(segment_name(0));
        let buf = write_records(&p, 5);
        let rec = buf.len() / 5;
        for cut in 1..rec {
            std::fs::write(&p, &buf[..buf.len() - cut]).unwrap();
            let (n, end) = read_all(&p);
            assert_eq!(n, 4);
            match end {
                Next::Bad { offset, torn, .. } => {
                    assert!(torn);
                    assert_eq!(offset, (4 * rec) as u64);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn flipped_bit_in_the_middle_is_corruption_with_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(segment_name(0));
        let mut buf = write_records(&p, 5);
        let rec = buf.len() / 5;
        buf[2 * rec + HEADER_LEN + 1] ^= 0x10;
        std::fs::write(&p, &buf).unwrap();
        let (n, end) = read_all(&p);
        assert_eq!(n, 2);
        match end {
            Next::Bad {
                offset,
                torn,
                reason,
            } => {
                assert!(!torn);
                assert_eq!(offset, (2 * rec) as u64);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zero_tail_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(segment_name(0));
        let mut buf = write_records(&p, 3);
        let good = buf.len();
        buf.extend_from_slice(&[0u8; 4096]);
        std::fs::write(&p, &buf).unwrap();
        let (n, end) = read_all(&p);
        assert_eq!(n, 3);
        assert!(matches!(end, Next::Bad { offset, torn: true, .. } if offset == good as u64));
    }
}
