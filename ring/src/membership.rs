//! The membership service: joins, heartbeats, the cached ring, and (on
//! voters) the Raft group itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use serde::Serialize;
use tidemark_config::Validate;
use tidemark_proto::ring::WriteReply;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{Peers, WriteRpc, status_to_error};
use crate::config::MembershipConfig;
use crate::member::{Member, MemberState, NodeInfo, TenantLimits};
use crate::raft::{Raft, RaftNode, voter_id};
use crate::snapshot::{RaftInfo, RingSnapshot};
use crate::state::RingState;
use crate::store::{LogStore, Published, RaftDb, StateMachine};
use crate::{RingError, now_ms};

/// The handle to this process's membership. Cheap to clone.
#[derive(Clone)]
pub struct Membership {
    pub(crate) core: Arc<Core>,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("node", &self.core.node.id)
            .field("voter", &self.core.raft.is_some())
            .finish()
    }
}

/// State shared by the background tasks, the gRPC service and the HTTP pages.
pub(crate) struct Core {
    pub(crate) node: NodeInfo,
    pub(crate) config: MembershipConfig,
    /// Raft id -> gRPC address of each voter.
    pub(crate) voters: BTreeMap<u64, String>,
    /// This process's Raft id when it is a voter.
    raft_id: Option<u64>,
    pub(crate) raft: Option<Raft>,
    pub(crate) published: Option<watch::Receiver<Published>>,
    pub(crate) peers: Peers,
    ring: ArcSwap<RingSnapshot>,
    /// Non-voters: the last state pulled from a voter.
    pulled: ArcSwap<(Arc<RingState>, RaftInfo)>,
    desired_state: AtomicU8,
    left: AtomicBool,
    tokens_file: PathBuf,
    shutdown: CancellationToken,
}

/// What `/cluster` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub node_id: String,
    pub voter: bool,
    pub raft_id: Option<u64>,
    pub raft_state: Option<String>,
    pub leader_address: Option<String>,
    pub current_term: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: u64,
    pub snapshot_index: Option<u64>,
    /// Raft node id -> gRPC address of each voter.
    pub voters: BTreeMap<u64, String>,
}

/// The Raft id of the one voter of an embedded process (`voters` empty).
/// Fixed rather than derived from the address, so that the process is still
/// the same voter when it restarts on another port.
const SINGLE_VOTER_ID: u64 = 1;

/// File under the membership directory holding the instance id chosen on
/// first start when `instance_id` is not configured.
const INSTANCE_ID_FILE: &str = "instance-id";

fn state_code(s: MemberState) -> u8 {
    match s {
        MemberState::Joining => 0,
        MemberState::Active => 1,
        MemberState::Leaving => 2,
    }
}

fn state_from_code(c: u8) -> MemberState {
    match c {
        1 => MemberState::Active,
        2 => MemberState::Leaving,
        _ => MemberState::Joining,
    }
}

impl Membership {
    /// Starts membership for this process.
    ///
    /// When this process's gRPC address is one of `config.voters` (or
    /// `voters` is empty: a single-voter group), it opens the Raft store under
    /// `data_dir/raft` and runs a voter. Every process then joins with
    /// `initial_state` in the background (retrying until a leader answers),
    /// heartbeats, and keeps a cached [`RingSnapshot`]. Returns once the
    /// tasks are running; use [`Membership::wait_joined`] to wait for the join.
    /// The caller must serve [`Membership::into_grpc_service`] on
    /// `node.grpc_address`.
    pub async fn start(
        config: MembershipConfig,
        node: NodeInfo,
        initial_state: MemberState,
        data_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<Membership, RingError> {
        config.validate("membership")?;
        let voters: BTreeMap<u64, String> = if config.voters.is_empty() {
            BTreeMap::from([(SINGLE_VOTER_ID, node.grpc_address.clone())])
        } else {
            config
                .voters
                .iter()
                .map(|a| (voter_id(a), a.clone()))
                .collect()
        };
        let voter_addresses: Vec<String> = voters.values().cloned().collect();
        let seeds = if config.seeds.is_empty() {
            voter_addresses.clone()
        } else {
            config.seeds.clone()
        };
        let peers = Peers::new(&seeds, &voter_addresses)?;
        std::fs::create_dir_all(data_dir).map_err(|e| RingError::Store {
            path: data_dir.display().to_string(),
            op: "create data directory",
            message: e.to_string(),
        })?;
        let raft_id = voters
            .iter()
            .find(|(_, a)| **a == node.grpc_address)
            .map(|(id, _)| *id);
        let is_voter = raft_id.is_some();
        let (raft, published) = match raft_id {
            Some(id) => {
                let (raft, rx) = start_raft(&config, id, &voters, &data_dir.join("raft")).await?;
                (Some(raft), Some(rx))
            }
            None => (None, None),
        };
        let core = Arc::new(Core {
            node,
            voters,
            raft_id,
            raft,
            published,
            peers,
            ring: ArcSwap::from_pointee(RingSnapshot::default()),
            pulled: ArcSwap::from_pointee((Arc::new(RingState::default()), RaftInfo::default())),
            desired_state: AtomicU8::new(state_code(initial_state)),
            left: AtomicBool::new(false),
            tokens_file: data_dir.join("ring-tokens.json"),
            shutdown,
            config,
        });
        core.rebuild();
        let tasks = TaskTracker::new();
        tasks.spawn(Arc::clone(&core).ring_task());
        tasks.spawn(Arc::clone(&core).lifecycle_task());
        if core.raft.is_some() {
            tasks.spawn(Arc::clone(&core).forget_task());
            tasks.spawn(Arc::clone(&core).raft_shutdown_task());
        }
        tasks.close();
        tracing::info!(
            member = %core.node.id,
            voter = is_voter,
            voters = ?core.voters,
            "membership started"
        );
        Ok(Membership { core, tasks })
    }

    /// The current ring. Never blocks: an `Arc` load.
    pub fn ring(&self) -> Arc<RingSnapshot> {
        self.core.ring.load_full()
    }

    /// This process's own description.
    pub fn node(&self) -> &NodeInfo {
        &self.core.node
    }

    /// Whether this process is a Raft voter.
    pub fn is_voter(&self) -> bool {
        self.core.raft.is_some()
    }

    /// Waits until this member appears in the cached ring.
    pub async fn wait_joined(&self, timeout: Duration) -> Result<Member, RingError> {
        self.wait_member(timeout, "join", |_| true).await
    }

    /// Waits until the cached ring shows this member in `state`, so that
    /// lookups made in this process afterwards see the change.
    pub async fn wait_state(
        &self,
        state: MemberState,
        timeout: Duration,
    ) -> Result<Member, RingError> {
        self.wait_member(timeout, state.as_str(), |m| m.state == state)
            .await
    }

    async fn wait_member(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Member) -> bool,
    ) -> Result<Member, RingError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.ring().member(&self.core.node.id).filter(|m| done(m)) {
                return Ok(m.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RingError::Unavailable {
                    message: format!(
                        "{} did not reach {what} within {timeout:?}",
                        self.core.node.id
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The instance id to join with: `configured` when set, else the id
    /// stored in `data_dir` by an earlier start, else `fallback` (which is
    /// then stored). A process that restarts on its data directory thus
    /// keeps its id, and with it its tokens, even when its address changes.
    pub fn stored_instance_id(
        data_dir: &Path,
        configured: &str,
        fallback: &str,
    ) -> Result<String, RingError> {
        if !configured.is_empty() {
            return Ok(configured.to_string());
        }
        let path = data_dir.join(INSTANCE_ID_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let id = text.trim();
            if !id.is_empty() {
                return Ok(id.to_string());
            }
        }
        let err = |op, e: std::io::Error| RingError::Store {
            path: path.display().to_string(),
            op,
            message: e.to_string(),
        };
        std::fs::create_dir_all(data_dir).map_err(|e| err("create data directory", e))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, fallback).map_err(|e| err("write instance id", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| err("rename instance id", e))?;
        Ok(fallback.to_string())
    }

    /// Moves this member to `state` (e.g. ACTIVE once an ingester replayed its WAL).
    pub async fn set_state(&self, state: MemberState) -> Result<(), RingError> {
        self.core
            .desired_state
            .store(state_code(state), Ordering::Relaxed);
        self.core
            .write(WriteRpc::SetState(tidemark_proto::ring::SetStateRequest {
                id: self.core.node.id.clone(),
                state: state.to_string(),
            }))
            .await
            .map(|_| ())
    }

    /// Leaves the ring cleanly: removes this member and stops heartbeats.
    /// Tokens stay in the data directory for a later rejoin.
    pub async fn leave(&self) -> Result<(), RingError> {
        self.core.left.store(true, Ordering::Relaxed);
        self.core
            .write(WriteRpc::Leave(tidemark_proto::ring::MemberRequest {
                id: self.core.node.id.clone(),
            }))
            .await
            .map(|_| ())
    }

    /// Removes another member (an admin call for a dead node).
    pub async fn forget(&self, id: &str) -> Result<(), RingError> {
        self.core
            .write(WriteRpc::Forget(tidemark_proto::ring::MemberRequest {
                id: id.to_string(),
            }))
            .await
            .map(|_| ())
    }

    /// The limit overrides of `tenant` from the cached ring (no I/O).
    pub fn tenant_overrides(&self, tenant: &str) -> Option<TenantLimits> {
        self.ring().tenant_limits(tenant).cloned()
    }

    /// Sets (`Some`) or clears (`None`) the limit overrides of `tenant`.
    pub async fn set_tenant_overrides(
        &self,
        tenant: &str,
        limits: Option<TenantLimits>,
    ) -> Result<(), RingError> {
        let limits_json = match &limits {
            Some(l) => crate::store_json(l)?,
            None => Vec::new(),
        };
        self.core
            .write(WriteRpc::Tenant(
                tidemark_proto::ring::TenantOverridesRequest {
                    tenant: tenant.to_string(),
                    limits_json,
                },
            ))
            .await
            .map(|_| ())
    }

    /// The Raft group as this process sees it.
    pub fn cluster_status(&self) -> ClusterStatus {
        self.core.cluster_status()
    }

    /// Waits for the background tasks to end after the shutdown token fired.
    pub async fn stopped(&self) {
        self.tasks.wait().await;
    }
}

async fn start_raft(
    config: &MembershipConfig,
    id: u64,
    voters: &BTreeMap<u64, String>,
    path: &Path,
) -> Result<(Raft, watch::Receiver<Published>), RingError> {
    let path = path.to_path_buf();
    let (db, sm, rx) = tokio::task::spawn_blocking(move || {
        let db = RaftDb::open(&path)?;
        let (sm, rx) = StateMachine::open(db.clone())?;
        Ok::<_, RingError>((db, sm, rx))
    })
    .await
    .map_err(|e| RingError::Raft {
        message: e.to_string(),
    })??;
    let election = config.election_timeout.as_std().as_millis() as u64;
    let raft_config = openraft::Config {
        cluster_name: "tidemark-ring".to_string(),
        heartbeat_interval: (election / 4).max(20),
        election_timeout_min: election,
        election_timeout_max: election * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    }
    .validate()
    .map_err(|e| RingError::Raft {
        message: e.to_string(),
    })?;
    let raft = Raft::new(
        id,
        Arc::new(raft_config),
        crate::network::NetworkFactory,
        LogStore::new(db),
        sm,
    )
    .await
    .map_err(|e| RingError::Raft {
        message: e.to_string(),
    })?;
    let initialized = raft.is_initialized().await.map_err(|e| RingError::Raft {
        message: e.to_string(),
    })?;
    if !initialized {
        let members: BTreeMap<u64, RaftNode> = voters
            .iter()
            .map(|(id, a)| {
                (
                    *id,
                    RaftNode {
                        grpc_address: a.clone(),
                    },
                )
            })
            .collect();
        match raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => {
                return Err(RingError::Raft {
                    message: format!("initialize: {e}"),
                });
            }
        }
    }
    Ok((raft, rx))
}

impl Core {
    /// Sends a membership write: proposed locally on a voter (forwarded to the
    /// leader if needed), or sent to the seeds from a non-voter.
    pub(crate) async fn write(&self, rpc: WriteRpc) -> Result<WriteReply, RingError> {
        self.propose(rpc, false).await
    }

    pub(crate) async fn propose(
        &self,
        rpc: WriteRpc,
        forwarded: bool,
    ) -> Result<WriteReply, RingError> {
        let Some(raft) = &self.raft else {
            if forwarded {
                return Err(RingError::Unavailable {
                    message: format!("{} is not a voter", self.node.id),
                });
            }
            return self.peers.write(&rpc).await;
        };
        let cmd = rpc.to_command(now_ms(), self.config.tokens_per_member)?;
        match raft.client_write(cmd).await {
            Ok(resp) => {
                // Applied here before client_write returned: make this
                // process's cached ring show it at once (read your writes).
                self.rebuild();
                if let Some(id) = resp.data.unknown_member
                    && !matches!(rpc, WriteRpc::Leave(_))
                {
                    return Err(RingError::UnknownMember { id });
                }
                let member_json = match &resp.data.member {
                    Some(m) => crate::store_json(m)?,
                    None => Vec::new(),
                };
                Ok(WriteReply {
                    log_index: resp.log_id.index,
                    member_json,
                })
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                let Some(leader) = f.leader_node.filter(|_| !forwarded) else {
                    return Err(RingError::Unavailable {
                        message: "no Raft leader known yet".to_string(),
                    });
                };
                let channel = self.peers.channel(&leader.grpc_address)?;
                rpc.send(channel, true).await.map_err(|s| {
                    status_to_error(&s, rpc.subject()).unwrap_or_else(|| RingError::Unavailable {
                        message: format!("leader {}: {}", leader.grpc_address, s.message()),
                    })
                })
            }
            Err(e) => Err(RingError::Unavailable {
                message: e.to_string(),
            }),
        }
    }

    pub(crate) fn raft_info(&self) -> RaftInfo {
        match (&self.raft, &self.published) {
            (Some(raft), Some(published)) => {
                let m = raft.metrics();
                let m = m.borrow();
                RaftInfo {
                    leader_address: m.current_leader.and_then(|id| {
                        // Our own address is current even when the stored
                        // membership has the one of an earlier run.
                        if Some(id) == self.raft_id {
                            return Some(self.node.grpc_address.clone());
                        }
                        m.membership_config
                            .membership()
                            .get_node(&id)
                            .map(|n| n.grpc_address.clone())
                    }),
                    applied_index: published.borrow().applied_index,
                }
            }
            _ => self.pulled.load().1.clone(),
        }
    }

    /// The committed state this process knows.
    pub(crate) fn state(&self) -> Arc<RingState> {
        match &self.published {
            Some(p) => Arc::clone(&p.borrow().state),
            None => Arc::clone(&self.pulled.load().0),
        }
    }

    /// Rebuilds the cached snapshot (new state, or health as of now).
    fn rebuild(&self) {
        let snapshot = RingSnapshot::build(
            &self.state(),
            now_ms(),
            self.config.heartbeat_timeout.as_millis_i64(),
            self.raft_info(),
        );
        self.ring.store(Arc::new(snapshot));
    }

    /// Keeps the cached ring fresh: on every applied change (voters), every
    /// `ring_refresh_interval` by pulling from a voter (non-voters), and at
    /// that interval anyway so health follows the clock.
    async fn ring_task(self: Arc<Self>) {
        let mut published = self.published.clone();
        let mut tick = tokio::time::interval(self.config.ring_refresh_interval.as_std());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let closed = {
                let changed = async {
                    match published.as_mut() {
                        Some(rx) => rx.changed().await.is_err(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = tick.tick() => {
                        if self.raft.is_none() {
                            self.pull().await;
                        }
                        false
                    }
                    closed = changed => closed,
                }
            };
            if closed {
                published = None;
            }
            self.rebuild();
        }
    }

    async fn pull(&self) {
        match self.peers.get_ring().await {
            Ok(reply) => match serde_json::from_slice::<RingState>(&reply.state_json) {
                Ok(state) => {
                    let info = RaftInfo {
                        leader_address: Some(reply.leader_address).filter(|a| !a.is_empty()),
                        applied_index: reply.applied_index,
                    };
                    self.pulled.store(Arc::new((Arc::new(state), info)));
                }
                Err(e) => tracing::warn!(error = %e, "cannot decode ring from voter"),
            },
            Err(e) => tracing::debug!(error = %e, "cannot pull ring; keeping the cached one"),
        }
    }

    /// Joins, then heartbeats; rejoins (same tokens) if the group forgot us.
    async fn lifecycle_task(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        let mut joined = false;
        let mut tick = tokio::time::interval(self.config.heartbeat_interval.as_std());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.left.load(Ordering::Relaxed) {
                return;
            }
            if !joined {
                match self.join().await {
                    Ok(()) => {
                        joined = true;
                        backoff = Duration::from_millis(100);
                        self.rebuild();
                    }
                    Err(e) => {
                        tracing::debug!(member = %self.node.id, error = %e, "join failed; retrying");
                        tokio::select! {
                            _ = self.shutdown.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.left.load(Ordering::Relaxed) {
                return;
            }
            let state = state_from_code(self.desired_state.load(Ordering::Relaxed));
            let rpc = WriteRpc::Heartbeat(tidemark_proto::ring::HeartbeatRequest {
                id: self.node.id.clone(),
                state: state.to_string(),
            });
            match self.write(rpc).await {
                Ok(_) => {}
                Err(RingError::UnknownMember { .. }) => {
                    tracing::warn!(member = %self.node.id, "ring forgot this member; rejoining");
                    joined = false;
                }
                Err(e) => tracing::warn!(member = %self.node.id, error = %e, "heartbeat failed"),
            }
        }
    }

    async fn join(&self) -> Result<(), RingError> {
        let tokens = read_tokens(&self.tokens_file);
        let state = state_from_code(self.desired_state.load(Ordering::Relaxed));
        let reply = self
            .write(WriteRpc::join(&self.node, state, tokens))
            .await?;
        let member: Member = serde_json::from_slice(&reply.member_json)
            .map_err(|e| RingError::decode("joined member", e))?;
        write_tokens(&self.tokens_file, &member.tokens)?;
        tracing::info!(
            member = %member.id,
            state = %member.state,
            tokens = member.tokens.len(),
            log_index = reply.log_index,
            "joined the ring"
        );
        Ok(())
    }

    /// On the leader: forgets members silent for longer than `forget_after`.
    async fn forget_task(self: Arc<Self>) {
        if self.config.forget_after.is_zero() {
            return;
        }
        let Some(raft) = self.raft.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(self.config.heartbeat_interval.as_std());
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let leader = raft.metrics().borrow().current_leader;
            if leader.is_none() || leader != self.raft_id {
                continue;
            }
            let now = now_ms();
            let limit = self.config.forget_after.as_millis_i64();
            let stale: Vec<String> = self
                .state()
                .members
                .values()
                .filter(|m| now.saturating_sub(m.last_heartbeat_ms) > limit)
                .map(|m| m.id.clone())
                .collect();
            for id in stale {
                let rpc = WriteRpc::Forget(tidemark_proto::ring::MemberRequest { id: id.clone() });
                match self.write(rpc).await {
                    Ok(_) => {
                        tracing::warn!(member = %id, "forgot member after forget_after without heartbeat")
                    }
                    Err(e) => {
                        tracing::warn!(member = %id, error = %e, "cannot forget stale member")
                    }
                }
            }
        }
    }

    async fn raft_shutdown_task(self: Arc<Self>) {
        self.shutdown.cancelled().await;
        if let Some(raft) = &self.raft
            && let Err(e) = raft.shutdown().await
        {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }

    fn cluster_status(&self) -> ClusterStatus {
        let info = self.raft_info();
        let voters = self.voters.clone();
        match &self.raft {
            Some(raft) => {
                let m = raft.metrics().borrow().clone();
                ClusterStatus {
                    node_id: self.node.id.clone(),
                    voter: true,
                    raft_id: Some(m.id),
                    raft_state: Some(format!("{:?}", m.state)),
                    leader_address: info.leader_address,
                    current_term: Some(m.current_term),
                    last_log_index: m.last_log_index,
                    applied_index: info.applied_index,
                    snapshot_index: m.snapshot.map(|l| l.index),
                    voters,
                }
            }
            None => ClusterStatus {
                node_id: self.node.id.clone(),
                voter: false,
                raft_id: None,
                raft_state: None,
                leader_address: info.leader_address,
                current_term: None,
                last_log_index: None,
                applied_index: info.applied_index,
                snapshot_index: None,
                voters,
            },
        }
    }
}

fn read_tokens(path: &Path) -> Vec<u32> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable tokens file");
            Vec::new()
        }),
        Err(_) => Vec::new(),
    }
}

/// Writes the tokens atomically (temp file + rename).
fn write_tokens(path: &Path, tokens: &[u32]) -> Result<(), RingError> {
    let tmp = path.with_extension("json.tmp");
    let err = |op, e: std::io::Error| RingError::Store {
        path: path.display().to_string(),
        op,
        message: e.to_string(),
    };
    let bytes = crate::store_json(&tokens)?;
    std::fs::write(&tmp, bytes).map_err(|e| err("write tokens", e))?;
    std::fs::rename(&tmp, path).map_err(|e| err("rename tokens", e))
}
