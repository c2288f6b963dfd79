//! Random access to the bytes of one block file.
//!
//! The index and chunk readers only ever ask for byte ranges, so the same
//! parsing code serves a local file, a buffer in memory, or (for the
//! querier's store gateway) an object in object storage read by HTTP ranges.

use std::borrow::Cow;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::TsdbError;

/// A file of a block, read by ranges.
pub trait ByteSource: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Whether the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads exactly `len` bytes at `offset`; fails if the range is not
    /// inside the source.
    fn read_range(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, TsdbError>;

    /// Reads several ranges, in the order given. Sources where each read
    /// has a fixed cost (a request to object storage) override it to fetch
    /// them all in one round instead of one round per range.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Cow<'_, [u8]>>, TsdbError> {
        ranges
            .iter()
            .map(|r| self.read_range(r.start, r.end.saturating_sub(r.start) as usize))
            .collect()
    }

    /// The name used in error messages (a path or an object key).
    fn path(&self) -> &Path;
}

fn out_of_range(path: &Path, offset: u64, len: usize, total: u64) -> TsdbError {
    TsdbError::CorruptBlock {
        path: path.to_path_buf(),
        offset,
        reason: format!("range of {len} bytes goes past the end of the file ({total} bytes)"),
    }
}

/// A block file held in memory.
#[derive(Debug, Clone)]
pub struct MemSource {
    bytes: Vec<u8>,
    path: PathBuf,
}

impl MemSource {
    /// Wraps bytes; `path` only names them in errors.
    pub fn new(bytes: Vec<u8>, path: impl Into<PathBuf>) -> Self {
        MemSource {
            bytes,
            path: path.into(),
        }
    }

    /// Reads a whole local file into memory.
    pub fn read_file(path: &Path) -> Result<Self, TsdbError> {
        let bytes = std::fs::read(path).map_err(|e| TsdbError::io(path, e))?;
        Ok(MemSource::new(bytes, path))
    }
}

impl ByteSource for MemSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_range(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, TsdbError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        start
            .checked_add(len)
            .and_then(|end| self.bytes.get(start..end))
            .map(Cow::Borrowed)
            .ok_or_else(|| out_of_range(&self.path, offset, len, self.len()))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// A local file read with positioned reads (no shared cursor, so one open
/// file serves concurrent readers).
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
    path: PathBuf,
}

impl FileSource {
    /// Opens a local file.
    pub fn open(path: &Path) -> Result<Self, TsdbError> {
        let file = File::open(path).map_err(|e| TsdbError::io(path, e))?;
        let len = file.metadata().map_err(|e| TsdbError::io(path, e))?.len();
        Ok(FileSource {
            file,
            len,
            path: path.to_path_buf(),
        })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, TsdbError> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(out_of_range(&self.path, offset, len, self.len));
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| TsdbError::io(&self.path, e))?;
        Ok(Cow::Owned(buf))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
