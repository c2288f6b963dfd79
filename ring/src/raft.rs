//! The openraft type configuration of the membership group.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::state::{Command, CommandResponse};

/// A voter as openraft knows it: where to send Raft RPCs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftNode {
    pub grpc_address: String,
}

openraft::declare_raft_types!(
    /// Types of the membership Raft group.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = RaftNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, RaftNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, RaftNode>;

/// The Raft node id of a voter: a stable hash of its configured address, so
/// every process derives the same ids from the same `voters` list.
pub fn voter_id(grpc_address: &str) -> u64 {
    crate::tokens::stable_hash(grpc_address)
}
