//! A block file in object storage as a [`ByteSource`], so the TSDB's index
//! and chunk parsers read it by ranged GETs.

use std::borrow::Cow;
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

impl ByteSource for ObjectSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, TsdbError> {
        let end = offset.checked_add(len as u64).filter(|&e| e <= self.len);
        let Some(end) = end else {
            return Err(TsdbError::CorruptBlock {
                path: self.name.clone(),
                offset,
                reason: format!(
                    "range of {len} bytes goes past the end of the object ({} bytes)",
                    self.len
                ),
            });
        };
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let bytes = self
            .runtime
            .block_on(self.store.get_range(&self.key, offset..end))
            .map_err(|e| TsdbError::io(&self.name, std::io::Error::other(e)))?;
        Ok(Cow::Owned(bytes.to_vec()))
    }

    fn path(&self) -> &Path {
        &self.name
    }
}
