//! The scraper role: a [`Scraper`] fed by `scraper.config_file`, pushing
//! to distributors over gRPC, sharing targets with the other scrapers by
//! the ring, reloaded on SIGHUP and `POST /-/reload`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tidemark_model::TenantId;
use tidemark_ring::Role as RingRole;
use tidemark_scraper::scrape::TargetOwnership;
use tidemark_scraper::service::{Scraper, ScraperHandle, api};
use tidemark_scraper::sink::{DistributorAddresses, DistributorSink, SinkMetrics};
use tidemark_scraper::target::Target;
use tidemark_server::RoleContext;
use tracing::{info, warn};

use super::cluster::{Cluster, RingShard};
use crate::config::Config;
use crate::roles::{Role, Target as Roles};

/// Which targets this scraper scrapes: all of them in the embedded `all`
/// target, else those the scraper ring assigns to this process.
enum Ownership {
    All,
    Ring(RingOwnership),
}

/// Targets sharded by the ring: a target belongs to the scraper owning the
/// stable hash of its identity (labels and URL), so a scraper joining or
/// leaving moves only the targets whose owner changes.
struct RingOwnership {
    shard: RingShard,
    /// Identities asked about; their owners make up the epoch.
    seen: Mutex<HashSet<u64>>,
}

/// Bound on the identities remembered for the epoch; beyond it the set
/// starts over (costing one extra re-check).
const MAX_SEEN: usize = 200_000;

fn identity(target: &Target) -> u64 {
    RingShard::key_hash(&format!("{}{}", target.labels(), target.url))
}

impl TargetOwnership for Ownership {
    fn owns(&self, target: &Target) -> bool {
        match self {
            Ownership::All => true,
            Ownership::Ring(r) => {
                let key = identity(target);
                {
                    let mut seen = r.seen.lock().unwrap_or_else(|p| p.into_inner());
                    if seen.len() >= MAX_SEEN {
                        seen.clear();
                    }
                    seen.insert(key);
                }
                r.shard.owns(key)
            }
        }
    }

    /// A hash of the current owner of every target identity seen: it
    /// changes exactly when some known target changes hands.
    fn epoch(&self) -> u64 {
        let Ownership::Ring(r) = self else { return 0 };
        let keys: Vec<u64> = {
            let seen = r.seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut k: Vec<u64> = seen.iter().copied().collect();
            k.sort_unstable();
            k
        };
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for k in keys {
            h.update(&k.to_le_bytes());
            match r.shard.owner(k) {
                Some(m) => h.update(m.id.as_bytes()),
                None => h.update(b"\0none"),
            }
        }
        h.digest()
    }
}

/// Distributors found in the ring: each push goes to the owner of a random
/// ring position, which spreads pushes by the distributors' token share
/// and skips members that are not ACTIVE and healthy.
struct RingDistributors(RingShard);

impl DistributorAddresses for RingDistributors {
    fn addresses(&self) -> Vec<String> {
        self.0
            .owner(rand::random::<u64>())
            .map(|m| vec![m.grpc_address])
            .unwrap_or_default()
    }
}

/// The running scraper role.
pub(crate) struct ScraperRole {
    scraper: Mutex<Option<Scraper>>,
    handle: ScraperHandle,
    sink: Arc<DistributorSink>,
}

impl ScraperRole {
    pub(crate) async fn start(
        cfg: &Config,
        roles: &Roles,
        ctx: &RoleContext,
        cluster: &Cluster,
    ) -> anyhow::Result<ScraperRole> {
        let sc = &cfg.scraper;
        let metrics = SinkMetrics::default();
        metrics.register(&ctx.metrics);
        let sink = if !sc.distributor_addresses.is_empty() {
            DistributorSink::start(
                sc.push.clone(),
                sc.distributor_addresses.clone(),
                metrics,
                ctx.grpc_max_message_bytes,
            )
        } else if roles.roles.contains(&Role::Distributor) {
            DistributorSink::start(
                sc.push.clone(),
                vec![ctx.advertise_grpc_addr.clone()],
                metrics,
                ctx.grpc_max_message_bytes,
            )
        } else {
            DistributorSink::start(
                sc.push.clone(),
                RingDistributors(cluster.shard(RingRole::Distributor)),
                metrics,
                ctx.grpc_max_message_bytes,
            )
        };
        let sink = Arc::new(sink);
        let ownership = if roles.embedded {
            Ownership::All
        } else {
            Ownership::Ring(RingOwnership {
                shard: cluster.shard(RingRole::Scraper),
                seen: Mutex::new(HashSet::new()),
            })
        };
        let tenant_name = if sc.default_tenant.is_empty() {
            &cfg.tenancy.default_tenant
        } else {
            &sc.default_tenant
        };
        let tenant = TenantId::new(tenant_name)
            .with_context(|| format!("scraper default tenant {tenant_name:?}"))?;
        let file = (!sc.config_file.is_empty()).then(|| PathBuf::from(&sc.config_file));
        if file.is_none() {
            info!("scraper.config_file is not set: the scraper runs with no targets");
        }
        let seed = RingShard::key_hash(&ctx.advertise_grpc_addr);
        let scraper = Scraper::start(file, Arc::clone(&sink), Arc::new(ownership), tenant, seed)
            .await
            .context("starting the scraper (scraper.config_file)")?;
        let handle = scraper.handle();
        spawn_sighup_reload(ctx, handle.clone());
        Ok(ScraperRole {
            scraper: Mutex::new(Some(scraper)),
            handle,
            sink,
        })
    }

    pub(crate) fn http_routes(&self) -> axum::Router {
        api::router(self.handle.clone())
    }

    /// Stops the loops (their staleness markers go into the buffer), then
    /// sends what is buffered.
    pub(crate) async fn stop(&self) {
        let scraper = self
            .scraper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(s) = scraper {
            s.stop().await;
        }
        self.sink.close().await;
    }
}

/// SIGHUP reloads the scrape config, as it does for Prometheus.
fn spawn_sighup_reload(ctx: &RoleContext, handle: ScraperHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        }
    };
    let shutdown = ctx.shutdown.clone();
    ctx.tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    match handle.reload().await {
                        Ok(summary) => info!(%summary, "scrape config reloaded on SIGHUP"),
                        Err(e) => warn!(error = %e, "scrape config reload on SIGHUP refused; the running config stays"),
                    }
                }
            }
        }
    });
}
