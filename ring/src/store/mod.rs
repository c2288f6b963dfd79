//! RocksDB storage of the Raft group: one database, a column family per
//! keyspace, every call on the blocking pool.
//!
//! | column family | key                         | value                        |
//! |---------------|-----------------------------|------------------------------|
//! | `logs`        | log index, u64 big-endian   | JSON of the openraft entry   |
//! | `meta`        | `vote`, `committed`, `purged` | JSON                       |
//! | `sm`          | `applied`, `membership`, `snapshot` | JSON                 |
//! | `members`     | member id                   | JSON of the member           |
//! | `tenants`     | tenant id                   | JSON of the limit overrides  |
//!
//! Big-endian index keys make RocksDB's byte order the log order. Writes that
//! belong together go in one `WriteBatch`, and every write is synced: the
//! group commits a few entries per second, durability is worth more.

mod log;
mod state_machine;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

pub use log::LogStore;
pub use state_machine::{Published, SnapshotBuilder, StateMachine};

use crate::RingError;

pub(crate) const CF_LOGS: &str = "logs";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_SM: &str = "sm";
pub(crate) const CF_MEMBERS: &str = "members";
pub(crate) const CF_TENANTS: &str = "tenants";
const ALL_CFS: [&str; 5] = [CF_LOGS, CF_META, CF_SM, CF_MEMBERS, CF_TENANTS];

/// The opened database, shared by the log store and the state machine.
#[derive(Clone)]
pub struct RaftDb {
    db: Arc<DB>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for RaftDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftDb").field("path", &self.path).finish()
    }
}

impl RaftDb {
    /// Opens (creating if needed) the database at `path`. Blocking: call from
    /// the blocking pool or before the runtime is busy.
    pub fn open(path: &Path) -> Result<Self, RingError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| RingError::Store {
            path: path.display().to_string(),
            op: "open",
            message: e.to_string(),
        })?;
        Ok(RaftDb {
            db: Arc::new(db),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Runs `f` on the blocking pool with the database.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, RingError>
    where
        T: Send + 'static,
        F: FnOnce(&RaftDb) -> Result<T, RingError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| RingError::Store {
                path: self.path.display().to_string(),
                op: "blocking task",
                message: e.to_string(),
            })?
    }

    pub(crate) fn cf(&self, name: &'static str) -> Result<&ColumnFamily, RingError> {
        self.db.cf_handle(name).ok_or_else(|| RingError::Store {
            path: self.path.display().to_string(),
            op: "column family",
            message: format!("column family {name} missing"),
        })
    }

    pub(crate) fn err(&self, op: &'static str, e: impl std::fmt::Display) -> RingError {
        RingError::Store {
            path: self.path.display().to_string(),
            op,
            message: e.to_string(),
        }
    }

    pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        cf: &'static str,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, RingError> {
        let handle = self.cf(cf)?;
        match self
            .db
            .get_pinned_cf(handle, key)
            .map_err(|e| self.err("get", e))?
        {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RingError::decode(what, e)),
            None => Ok(None),
        }
    }

    /// Writes a batch and waits for it to be on disk.
    pub(crate) fn write_synced(&self, batch: WriteBatch) -> Result<(), RingError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .write_opt(batch, &opts)
            .map_err(|e| self.err("write", e))
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, RingError> {
    serde_json::to_vec(v).map_err(|e| RingError::decode("record (encode)", e))
}

#[cfg(test)]
mod tests;
