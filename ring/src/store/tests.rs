use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, Vote,
};

use super::*;
use crate::member::{MemberState, NodeInfo, Role};
use crate::raft::{StorageError, TypeConfig};
use crate::state::Command;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().unwrap();
        let db = RaftDb::open(dir.path()).unwrap();
        let (sm, _rx) = StateMachine::open(db.clone()).unwrap();
        Ok((dir, LogStore::new(db), sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn entry(index: u64, cmd: Command) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
        payload: EntryPayload::Normal(cmd),
    }
}

fn join(id: &str) -> Command {
    Command::Join {
        node: NodeInfo {
            id: id.into(),
            roles: vec![Role::Ingester],
            grpc_address: format!("{id}:1"),
            http_address: format!("{id}:2"),
            zone: None,
        },
        state: MemberState::Active,
        tokens: vec![],
        tokens_per_member: 8,
        now_ms: 42,
    }
}

#[tokio::test]
async fn restart_keeps_log_vote_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let entries = vec![entry(1, join("a")), entry(2, join("b"))];
    {
        let db = RaftDb::open(dir.path()).unwrap();
        let mut log = LogStore::new(db.clone());
        let (mut sm, rx) = StateMachine::open(db).unwrap();
        log.save_vote(&Vote::new(3, 7)).await.unwrap();
        log.blocking_append(entries.clone()).await.unwrap();
        sm.apply(entries.clone()).await.unwrap();
        assert_eq!(rx.borrow().applied_index, 2);
        assert_eq!(rx.borrow().state.members.len(), 2);
    }
    let db = RaftDb::open(dir.path()).unwrap();
    let mut log = LogStore::new(db.clone());
    let (mut sm, rx) = StateMachine::open(db).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 7)));
    let got = log.try_get_log_entries(1..3).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].log_id.index, 2);
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(2));
    let state = std::sync::Arc::clone(&rx.borrow().state);
    assert_eq!(state.members.len(), 2);
    assert_eq!(state.members["a"].tokens.len(), 8);
}

#[tokio::test]
async fn snapshot_round_trip_restores_members_and_drops_extra_ones() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (mut sm_a, _) = StateMachine::open(RaftDb::open(dir_a.path()).unwrap()).unwrap();
    let (mut sm_b, rx_b) = StateMachine::open(RaftDb::open(dir_b.path()).unwrap()).unwrap();
    sm_a.apply(vec![entry(1, join("a")), entry(2, join("b"))])
        .await
        .unwrap();
    sm_b.apply(vec![entry(1, join("stale"))]).await.unwrap();

    let snap = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(2));
    sm_b.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();

    let state = std::sync::Arc::clone(&rx_b.borrow().state);
    let ids: Vec<&String> = state.members.keys().collect();
    assert_eq!(ids, ["a", "b"]);
    drop(sm_b);
    // The installed state is what a restart loads.
    let (mut sm_b, rx_b) = StateMachine::open(RaftDb::open(dir_b.path()).unwrap()).unwrap();
    assert_eq!(rx_b.borrow().state.members.len(), 2);
    assert!(sm_b.get_current_snapshot().await.unwrap().is_some());
}
