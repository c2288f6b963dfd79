//! A block file in object storage as a [`ByteSource`], so the TSDB's index
//! and chunk parsers read it by ranged GETs.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use tidemark_tsdb::TsdbError;
use tidemark_tsdb::block::ByteSource;
use tokio::runtime::Handle;

/// One object read by ranges.
///
/// [`ByteSource`] is synchronous: each read blocks the calling thread on
/// the runtime captured at construction. Use it from blocking threads
/// (`tokio::task::spawn_blocking`), never directly on an async worker.
#[derive(Debug)]
pub struct ObjectSource {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    name: PathBuf,
    len: u64,
    runtime: Handle,
}

impl ObjectSource {
    /// Wraps object `key` of length `len`. Must be called inside a Tokio
    /// runtime, whose handle later reads use.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, key: ObjectPath, len: u64) -> Self {
        ObjectSource {
            name: PathBuf::from(key.as_ref()),
            store,
            key,
            len,
            runtime: Handle::current(),
        }
    }
}

impl ObjectSource {
    /// Refuses a range that is not inside the object.
    fn check(&self, r: &Range<u64>) -> Result<(), TsdbError> {
        if r.start <= r.end && r.end <= self.len {
            return Ok(());
        }
        Err(TsdbError::CorruptBlock {
            path: self.name.clone(),
            offset: r.start,
            reason: format!(
                "range {}..{} goes past the end of the object ({} bytes)",
                r.start, r.end, self.len
            ),
        })
    }
}

impl ByteSource for ObjectSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, TsdbError> {
        if len == 0 {
            self.check(&(offset..offset))?;
            return Ok(Cow::Borrowed(&[]));
        }
        let range = offset..offset.saturating_add(len as u64);
        let mut bufs = self.read_ranges(std::slice::from_ref(&range))?;
        Ok(bufs.pop().unwrap_or_default())
    }

    /// One blocking wait for all ranges: `object_store` fetches them
    /// concurrently and merges close ones into one request.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Cow<'_, [u8]>>, TsdbError> {
        for r in ranges {
            self.check(r)?;
        }
        let parts = self
            .runtime
            .block_on(self.store.get_ranges(&self.key, ranges))
            .map_err(|e| TsdbError::io(&self.name, std::io::Error::other(e)))?;
        Ok(parts.into_iter().map(|b| Cow::Owned(b.to_vec())).collect())
    }

    fn path(&self) -> &Path {
        &self.name
    }
}
