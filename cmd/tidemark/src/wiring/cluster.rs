//! This process's membership: started before the roles, mounted on both
//! servers, and the handle the roles use to ask the ring.
//!
//! Every process, `all` included, is a member of a Raft group: in `all` it
//! is the single voter (`membership.voters` empty), in a cluster the three
//! configured voters run the group and every other process joins through
//! them. See docs/ring.md.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tidemark_distributor::LimitsSource;
use tidemark_ingester::Ingester;
use tidemark_ingester_client::IngesterRing;
use tidemark_ring::{
    Member, MemberState, Membership, Role as RingRole, ring_position, stable_hash,
};
use tidemark_server::{RoleContext, ServiceState};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ring::{MembershipLimits, MembershipRing};
use crate::config::Config;
use crate::roles::{Role, Target};

/// Name under which membership reports in `/ready`.
const SERVICE_NAME: &str = "ring";

/// Bound on each membership step of a shutdown (LEAVING, leave), so that a
/// group without a quorum cannot hold a process that was asked to stop.
const SHUTDOWN_STEP: Duration = Duration::from_secs(5);

fn ring_role(role: Role) -> RingRole {
    match role {
        Role::Ingester => RingRole::Ingester,
        Role::Compactor => RingRole::Compactor,
        Role::Distributor => RingRole::Distributor,
        Role::Querier => RingRole::Querier,
        Role::Scraper => RingRole::Scraper,
    }
}

/// This process's membership and what the roles derive from it.
pub(crate) struct Cluster {
    membership: Membership,
    /// Membership's own shutdown, fired only after the process left the
    /// ring: the leave itself needs the Raft group (on a voter, this very
    /// process's Raft node).
    shutdown: CancellationToken,
    replication_factor: usize,
    /// Whether the group has more than this process (`membership.voters` set).
    clustered: bool,
    ring_refresh: Duration,
}

impl Cluster {
    /// Starts membership for the roles of `target` and registers the `ring`
    /// service, ready once this member is in the ring (and, for a process
    /// running an ingester, ACTIVE: see [`Cluster::activate_when_ready`]).
    ///
    /// Returns before the join commits: the join needs this process's gRPC
    /// server (a voter's peers reach it there), which starts after the roles.
    pub(crate) async fn start(
        cfg: &Config,
        target: &Target,
        ctx: &RoleContext,
        http_address: &str,
    ) -> anyhow::Result<Cluster> {
        let dir = ctx.data_dir.join("ring");
        let id = Membership::stored_instance_id(
            &dir,
            &cfg.membership.instance_id,
            &ctx.advertise_grpc_addr,
        )?;
        let roles = target.roles.iter().copied().map(ring_role).collect();
        let mut node = cfg
            .membership
            .node_info(roles, &ctx.advertise_grpc_addr, http_address);
        node.id = id;
        // An ingester serves only after its WAL replay: it joins JOINING.
        let runs_ingester = target.roles.contains(&Role::Ingester);
        let initial = if runs_ingester {
            MemberState::Joining
        } else {
            MemberState::Active
        };
        let shutdown = CancellationToken::new();
        let membership = Membership::start(
            cfg.membership.clone(),
            node,
            initial,
            &dir,
            shutdown.clone(),
        )
        .await
        .context("starting membership (membership.*)")?;
        let cluster = Cluster {
            membership,
            shutdown,
            replication_factor: cfg.membership.effective_replication_factor(),
            clustered: !cfg.membership.voters.is_empty(),
            ring_refresh: cfg.membership.ring_refresh_interval.as_std(),
        };
        ctx.services.set(
            SERVICE_NAME,
            ServiceState::Starting("joining the ring".into()),
        );
        if !runs_ingester {
            cluster.spawn_ready_when(ctx, MemberState::Active, None);
        }
        info!(
            member = %cluster.membership.node().id,
            replication_factor = cluster.replication_factor,
            voter = cluster.membership.is_voter(),
            "membership started"
        );
        Ok(cluster)
    }

    /// The ingester moves from JOINING to ACTIVE once its WAL replay
    /// finished; the process is ready when its cached ring shows it ACTIVE,
    /// so a write accepted after `/ready` finds the ingester in the ring.
    pub(crate) fn activate_when_ready(&self, ctx: &RoleContext, ingester: Arc<Ingester>) {
        self.spawn_ready_when(ctx, MemberState::Active, Some(ingester));
    }

    fn spawn_ready_when(
        &self,
        ctx: &RoleContext,
        state: MemberState,
        ingester: Option<Arc<Ingester>>,
    ) {
        let membership = self.membership.clone();
        let services = ctx.services.clone();
        let shutdown = ctx.shutdown.clone();
        ctx.tasks.spawn(async move {
            let work = async {
                if let Some(i) = ingester {
                    if let Err(e) = i.ready().await {
                        // The ingester reports its own failure in /ready.
                        warn!(error = %e, "ingester did not start; staying JOINING");
                        return;
                    }
                    services.set(
                        SERVICE_NAME,
                        ServiceState::Starting("WAL replayed; becoming ACTIVE".into()),
                    );
                    let mut backoff = Duration::from_millis(100);
                    while let Err(e) = membership.set_state(state).await {
                        warn!(error = %e, "cannot set the ingester ACTIVE yet; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
                // No deadline: a member that cannot reach the voters stays
                // not ready, which /ready says, until they answer. The state
                // is proposed again while it is not seen, because a join
                // retried after a restart can commit after it and reset it.
                loop {
                    match membership.wait_state(state, Duration::from_secs(2)).await {
                        Ok(_) => break,
                        Err(e) => {
                            info!(error = %e, "still waiting for the ring");
                            if let Err(e) = membership.set_state(state).await {
                                info!(error = %e, "proposing the member state again failed");
                            }
                        }
                    }
                }
                services.set(SERVICE_NAME, ServiceState::Running);
                info!(state = %state, "member is in the ring");
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = work => {}
            }
        });
    }

    /// The ingester ring of distributors and queriers.
    pub(crate) fn ingester_ring(&self) -> Arc<dyn IngesterRing> {
        Arc::new(MembershipRing::new(
            self.membership.clone(),
            self.replication_factor,
        ))
    }

    /// Tenant limit overrides held in the membership group.
    pub(crate) fn limits_source(&self) -> Arc<dyn LimitsSource> {
        Arc::new(MembershipLimits(self.membership.clone()))
    }

    /// The ring of `role` as a scraper (targets) or compactor (tenants) and
    /// an ingester looking for a tenant's compactor use it.
    // Used by the scraper and compactor wiring as those roles land.
    #[allow(dead_code)]
    pub(crate) fn shard(&self, role: RingRole) -> RingShard {
        RingShard {
            membership: self.membership.clone(),
            role,
        }
    }

    /// `/ring`, `/cluster` and the admin calls.
    pub(crate) fn http_routes(&self) -> axum::Router {
        tidemark_ring::http::router(self.membership.clone())
    }

    /// The `tidemark.ring.v1.Ring` service: joins, ring reads and, on
    /// voters, Raft's own RPCs.
    pub(crate) fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        routes.add_service(self.membership.into_grpc_service());
    }

    /// First step of a shutdown, while the servers still run: LEAVING takes
    /// this member out of every write set (and out of scrape and compaction
    /// ownership). In a cluster, waits one ring refresh so that the other
    /// processes see it before this one stops accepting requests.
    pub(crate) async fn start_leaving(&self) {
        match tokio::time::timeout(
            SHUTDOWN_STEP,
            self.membership.set_state(MemberState::Leaving),
        )
        .await
        {
            Ok(Ok(())) => {
                info!("member is LEAVING");
                if self.clustered {
                    tokio::time::sleep(self.ring_refresh).await;
                }
            }
            Ok(Err(e)) => warn!(error = %e, "cannot set LEAVING; leaving without it"),
            Err(_) => warn!(timeout = ?SHUTDOWN_STEP, "setting LEAVING timed out"),
        }
    }

    /// Last step of a shutdown, after the roles stopped: removes this member
    /// from the ring (its tokens stay in the data directory for a restart)
    /// and stops membership.
    pub(crate) async fn leave(&self) {
        match tokio::time::timeout(SHUTDOWN_STEP, self.membership.leave()).await {
            Ok(Ok(())) => info!("left the ring"),
            Ok(Err(e)) => {
                warn!(error = %e, "cannot leave the ring; it will mark this member unhealthy")
            }
            Err(_) => warn!(timeout = ?SHUTDOWN_STEP, "leaving the ring timed out"),
        }
        self.shutdown.cancel();
        if tokio::time::timeout(SHUTDOWN_STEP, self.membership.stopped())
            .await
            .is_err()
        {
            warn!("membership tasks did not stop in time");
        }
    }
}

/// One role's ring as a sharding question: "does this process own this
/// key?". Scrapers shard targets, compactors shard tenants; ingesters ask
/// it which compactor owns a tenant. Answers come from the cached ring
/// (no I/O), and change when members join, leave or turn unhealthy.
#[derive(Clone)]
#[allow(dead_code)] // used by the scraper and compactor wiring as those roles land
pub(crate) struct RingShard {
    membership: Membership,
    role: RingRole,
}

#[allow(dead_code)] // used by the scraper and compactor wiring as those roles land
impl RingShard {
    /// The position of a string key (a tenant id, a target's identity) on
    /// the ring: a stable hash, the same in every process and release.
    pub(crate) fn key_hash(key: &str) -> u64 {
        stable_hash(key)
    }

    /// The member owning `key_hash` (ACTIVE and healthy), if any.
    pub(crate) fn owner(&self, key_hash: u64) -> Option<Member> {
        self.membership
            .ring()
            .owner_of(self.role, ring_position(key_hash))
            .cloned()
    }

    /// Whether this process owns `key_hash`. False while this process is
    /// not (yet, or no longer) ACTIVE, so ownership moves only through the ring.
    pub(crate) fn owns(&self, key_hash: u64) -> bool {
        self.owner(key_hash)
            .is_some_and(|m| m.id == self.membership.node().id)
    }

    /// This process's member id on the ring.
    pub(crate) fn member_id(&self) -> &str {
        &self.membership.node().id
    }
}
