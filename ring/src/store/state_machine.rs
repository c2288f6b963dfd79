//! The ring state machine in RocksDB (`RaftStateMachine`), with snapshots.
//!
//! The state is small (members and tenant overrides), so it is also kept in
//! memory; every applied batch writes the keys it touched plus the applied
//! log id in one synced `WriteBatch`, and publishes the new state on a watch
//! channel for the ring snapshot.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{Entry, EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use rocksdb::{IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{CF_MEMBERS, CF_SM, CF_TENANTS, RaftDb, to_json};
use crate::RingError;
use crate::member::{Member, TenantLimits};
use crate::raft::{LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::state::{CommandResponse, RingState, Touched};

const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_SNAPSHOT: &[u8] = b"snapshot";

/// The state as last applied, for readers outside Raft.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub state: Arc<RingState>,
    pub applied_index: u64,
}

/// A snapshot as stored: its metadata and the serialized state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine. Owned by openraft's core task.
#[derive(Debug)]
pub struct StateMachine {
    db: RaftDb,
    state: RingState,
    applied: Option<LogId>,
    membership: StoredMembership,
    publish: watch::Sender<Published>,
}

impl StateMachine {
    /// Loads the state machine from `db` (blocking).
    pub fn open(db: RaftDb) -> Result<(Self, watch::Receiver<Published>), RingError> {
        let mut state = RingState::default();
        for item in db.db().iterator_cf(db.cf(CF_MEMBERS)?, IteratorMode::Start) {
            let (_, v) = item.map_err(|e| db.err("read members", e))?;
            let m: Member =
                serde_json::from_slice(&v).map_err(|e| RingError::decode("member", e))?;
            state.members.insert(m.id.clone(), m);
        }
        for item in db.db().iterator_cf(db.cf(CF_TENANTS)?, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| db.err("read tenants", e))?;
            let tenant =
                String::from_utf8(k.to_vec()).map_err(|e| RingError::decode("tenant id", e))?;
            let l: TenantLimits =
                serde_json::from_slice(&v).map_err(|e| RingError::decode("tenant limits", e))?;
            state.tenants.insert(tenant, l);
        }
        let applied: Option<LogId> = db
            .get_json::<Option<LogId>>(CF_SM, KEY_APPLIED, "applied log id")?
            .flatten();
        let membership: StoredMembership = db
            .get_json(CF_SM, KEY_MEMBERSHIP, "stored membership")?
            .unwrap_or_default();
        let (publish, rx) = watch::channel(Published {
            state: Arc::new(state.clone()),
            applied_index: applied.as_ref().map_or(0, |l| l.index),
        });
        Ok((
            StateMachine {
                db,
                state,
                applied,
                membership,
                publish,
            },
            rx,
        ))
    }

    fn publish(&self) {
        self.publish.send_replace(Published {
            state: Arc::new(self.state.clone()),
            applied_index: self.applied.as_ref().map_or(0, |l| l.index),
        });
    }

    /// Writes the touched keys, applied id and membership in one batch.
    async fn persist(&self, touched: Touched) -> Result<(), RingError> {
        let members: Vec<(String, Option<Vec<u8>>)> = touched
            .members
            .into_iter()
            .map(|id| {
                let v = self.state.members.get(&id).map(to_json).transpose()?;
                Ok((id, v))
            })
            .collect::<Result<_, RingError>>()?;
        let tenants: Vec<(String, Option<Vec<u8>>)> = touched
            .tenants
            .into_iter()
            .map(|t| {
                let v = self.state.tenants.get(&t).map(to_json).transpose()?;
                Ok((t, v))
            })
            .collect::<Result<_, RingError>>()?;
        let applied = to_json(&self.applied)?;
        let membership = to_json(&self.membership)?;
        self.db
            .blocking(move |db| {
                let mut b = WriteBatch::default();
                let cf_m = db.cf(CF_MEMBERS)?;
                for (k, v) in members {
                    match v {
                        Some(v) => b.put_cf(cf_m, k.as_bytes(), v),
                        None => b.delete_cf(cf_m, k.as_bytes()),
                    }
                }
                let cf_t = db.cf(CF_TENANTS)?;
                for (k, v) in tenants {
                    match v {
                        Some(v) => b.put_cf(cf_t, k.as_bytes(), v),
                        None => b.delete_cf(cf_t, k.as_bytes()),
                    }
                }
                let cf_sm = db.cf(CF_SM)?;
                b.put_cf(cf_sm, KEY_APPLIED, applied);
                b.put_cf(cf_sm, KEY_MEMBERSHIP, membership);
                db.write_synced(b)
            })
            .await
    }
}

/// Serializes the state at one point; owned, so building runs concurrently
/// with further applies.
#[derive(Debug)]
pub struct SnapshotBuilder {
    db: RaftDb,
    state: RingState,
    applied: Option<LogId>,
    membership: StoredMembership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = to_json(&self.state).map_err(|e| StorageIOError::read_state_machine(&e))?;
        let snapshot_id = match &self.applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, crate::now_ms()),
            None => format!("0-0-{}", crate::now_ms()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        let signature = meta.signature();
        self.db
            .blocking(move |db| {
                let mut b = WriteBatch::default();
                b.put_cf(db.cf(CF_SM)?, KEY_SNAPSHOT, to_json(&stored)?);
                db.write_synced(b)
            })
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut touched = Touched::default();
        let mut replies = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(CommandResponse::default()),
                EntryPayload::Normal(cmd) => {
                    replies.push(self.state.apply_touching(&cmd, &mut touched));
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(CommandResponse::default());
                }
            }
        }
        self.persist(touched)
            .await
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.publish();
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            state: self.state.clone(),
            applied: self.applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let signature = meta.signature();
        let state: RingState = serde_json::from_slice(&data).map_err(|e| {
            StorageIOError::read_snapshot(
                Some(signature.clone()),
                &RingError::decode("snapshot", e),
            )
        })?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let new_state = state.clone();
        let applied = meta.last_log_id;
        let membership = meta.last_membership.clone();
        let (applied_json, membership_json) = (
            to_json(&applied)
                .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &e))?,
            to_json(&membership)
                .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &e))?,
        );
        self.db
            .blocking(move |db| {
                let mut b = WriteBatch::default();
                for (cf_name, keep) in [
                    (
                        CF_MEMBERS,
                        new_state.members.keys().cloned().collect::<Vec<_>>(),
                    ),
                    (
                        CF_TENANTS,
                        new_state.tenants.keys().cloned().collect::<Vec<_>>(),
                    ),
                ] {
                    let cf = db.cf(cf_name)?;
                    for item in db.db().iterator_cf(cf, IteratorMode::Start) {
                        let (k, _) = item.map_err(|e| db.err("read state", e))?;
                        if !keep.iter().any(|id| id.as_bytes() == &*k) {
                            b.delete_cf(cf, &k);
                        }
                    }
                }
                let cf_m = db.cf(CF_MEMBERS)?;
                for (id, m) in &new_state.members {
                    b.put_cf(cf_m, id.as_bytes(), to_json(m)?);
                }
                let cf_t = db.cf(CF_TENANTS)?;
                for (t, l) in &new_state.tenants {
                    b.put_cf(cf_t, t.as_bytes(), to_json(l)?);
                }
                let cf_sm = db.cf(CF_SM)?;
                b.put_cf(cf_sm, KEY_APPLIED, applied_json);
                b.put_cf(cf_sm, KEY_MEMBERSHIP, membership_json);
                b.put_cf(cf_sm, KEY_SNAPSHOT, to_json(&stored)?);
                db.write_synced(b)
            })
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e))?;
        self.state = state;
        self.applied = applied;
        self.membership = membership;
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored: Option<StoredSnapshot> = self
            .db
            .blocking(|db| db.get_json(CF_SM, KEY_SNAPSHOT, "snapshot"))
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
