//! Cluster membership, tenant overrides and the hash ring, kept in a Raft
//! group (openraft) whose log and state machine live in RocksDB.
//!
//! - [`Membership`]: the service a process starts: joins, heartbeats, caches
//!   the ring, and on voters runs the Raft group. Mount
//!   [`Membership::into_grpc_service`] and [`http::router`].
//! - [`RingSnapshot`]: the immutable ring read by the write path
//!   ([`RingSnapshot::replication_set`]) and by scrapers and compactors
//!   ([`RingSnapshot::owner_of`]); swapped whole, never locked.
//! - [`RingState`]/[`Command`]: the replicated state and its changes.
//! - [`store`]: the RocksDB log store and state machine (openraft storage v2).
//!
//! See `docs/ring.md` for how membership behaves in failures.

mod client;
mod config;
mod error;
pub mod http;
mod member;
mod membership;
mod network;
pub mod raft;
mod service;
mod snapshot;
mod state;
pub mod store;
mod tokens;
mod zone_sets;

#[cfg(test)]
mod snapshot_tests;

pub use config::MembershipConfig;
pub use error::RingError;
pub use member::{Member, MemberState, NodeInfo, Role, TenantLimits};
pub use membership::{ClusterStatus, Membership};
pub use service::RingService;
pub use snapshot::{
    MAX_REPLICATION_FACTOR, MemberStatus, Operation, RaftInfo, ReplicationSet, RingSnapshot,
};
pub use state::{Command, CommandResponse, RingState};
pub use tokens::{RING_SIZE, choose_tokens, ring_position, stable_hash};

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn store_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, RingError> {
    store::to_json(v)
}
