//! The Raft log and vote in RocksDB (`RaftLogStorage`).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{CF_LOGS, CF_META, RaftDb, to_json};
use crate::RingError;
use crate::raft::{LogId, StorageError, TypeConfig};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"purged";

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The log store; cheap to clone (it is also its own log reader).
#[derive(Debug, Clone)]
pub struct LogStore {
    db: RaftDb,
}

impl LogStore {
    pub fn new(db: RaftDb) -> Self {
        LogStore { db }
    }

    fn read_range(
        db: &RaftDb,
        start: u64,
        end: Option<u64>,
    ) -> Result<Vec<Entry<TypeConfig>>, RingError> {
        let cf = db.cf(CF_LOGS)?;
        let key = index_key(start);
        let mut out = Vec::new();
        for item in db
            .db()
            .iterator_cf(cf, IteratorMode::From(&key, Direction::Forward))
        {
            let (k, v) = item.map_err(|e| db.err("read log", e))?;
            let idx = decode_index(&k)?;
            if end.is_some_and(|e| idx >= e) {
                break;
            }
            let entry: Entry<TypeConfig> =
                serde_json::from_slice(&v).map_err(|e| RingError::decode("raft log entry", e))?;
            out.push(entry);
        }
        Ok(out)
    }

    fn last_log_id(db: &RaftDb) -> Result<Option<LogId>, RingError> {
        let cf = db.cf(CF_LOGS)?;
        match db.db().iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (_, v) = item.map_err(|e| db.err("read log", e))?;
                let entry: Entry<TypeConfig> = serde_json::from_slice(&v)
                    .map_err(|e| RingError::decode("raft log entry", e))?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

fn decode_index(k: &[u8]) -> Result<u64, RingError> {
    let bytes: [u8; 8] = k
        .try_into()
        .map_err(|_| RingError::decode("raft log key", format!("{} bytes, want 8", k.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => Some(e.saturating_add(1)),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let (start, end) = bounds(&range);
        self.db
            .blocking(move |db| Self::read_range(db, start, end))
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.db
            .blocking(|db| {
                let purged: Option<LogId> = db.get_json(CF_META, KEY_PURGED, "purged log id")?;
                let last = Self::last_log_id(db)?.or(purged);
                Ok(LogState {
                    last_purged_log_id: purged,
                    last_log_id: last,
                })
            })
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let vote = *vote;
        self.db
            .blocking(move |db| {
                let mut b = WriteBatch::default();
                b.put_cf(db.cf(CF_META)?, KEY_VOTE, to_json(&vote)?);
                db.write_synced(b)
            })
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.db
            .blocking(|db| db.get_json(CF_META, KEY_VOTE, "vote"))
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.db
            .blocking(move |db| {
                let mut b = WriteBatch::default();
                b.put_cf(db.cf(CF_META)?, KEY_COMMITTED, to_json(&committed)?);
                db.write_synced(b)
            })
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.db
            .blocking(|db| {
                Ok(db
                    .get_json::<Option<LogId>>(CF_META, KEY_COMMITTED, "committed log id")?
                    .flatten())
            })
            .await
            .map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let result = self
            .db
            .blocking(move |db| {
                let cf = db.cf(CF_LOGS)?;
                let mut b = WriteBatch::default();
                for e in &entries {
                    b.put_cf(cf, index_key(e.log_id.index), to_json(e)?);
                }
                db.write_synced(b)
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db
            .blocking(move |db| {
                let cf = db.cf(CF_LOGS)?;
                let mut b = WriteBatch::default();
                b.delete_range_cf(cf, index_key(log_id.index), index_key(u64::MAX));
                b.delete_cf(cf, index_key(u64::MAX));
                db.write_synced(b)
            })
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db
            .blocking(move |db| {
                let mut b = WriteBatch::default();
                b.put_cf(db.cf(CF_META)?, KEY_PURGED, to_json(&log_id)?);
                b.delete_range_cf(
                    db.cf(CF_LOGS)?,
                    index_key(0),
                    index_key(log_id.index.saturating_add(1)),
                );
                db.write_synced(b)
            })
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
