//! The ingester's lifecycle: open and replay at start, serve, sync at stop.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tidemark_model::TenantId;
use tidemark_proto::ingester::ingester_server::IngesterServer;
use tidemark_server::{RoleContext, ServiceState, Services};
use tidemark_tsdb::TenantHeads;
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use crate::blocks::{CutMode, LocalBlocks, truncate_replayed};
use crate::handoff::{CompactorLocator, StaticCompactorLocator};
use crate::metrics::{IngesterMetrics, TenantLabel};
use crate::service::IngesterService;
use crate::shipper::{Shipper, cut_all};
use crate::{IngesterConfig, IngesterError};

/// Name under which the ingester reports its state in `/ready`.
pub const SERVICE_NAME: &str = "ingester";

/// How often head and WAL gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Replaying,
    Ready,
    Failed(String),
}

/// What the gRPC service and the lifecycle share.
pub(crate) struct Shared {
    pub(crate) cfg: IngesterConfig,
    heads: OnceLock<Arc<TenantHeads>>,
    /// Set before `heads`: once the heads are there, so are the blocks.
    blocks: OnceLock<Arc<LocalBlocks>>,
    /// Wakes the shipper after a cut.
    ship_now: Notify,
    readiness: watch::Sender<Readiness>,
    pub(crate) metrics: IngesterMetrics,
}

impl Shared {
    /// The heads, once the WAL replay finished.
    pub(crate) fn heads(&self) -> Result<Arc<TenantHeads>, IngesterError> {
        if let Some(h) = self.heads.get() {
            return Ok(Arc::clone(h));
        }
        Err(IngesterError::NotReady(match &*self.readiness.borrow() {
            Readiness::Failed(why) => format!("opening the TSDB failed: {why}"),
            _ => "replaying WAL".to_string(),
        }))
    }

    /// The heads and the local blocks, once the WAL replay finished.
    pub(crate) fn tsdb(&self) -> Result<(Arc<TenantHeads>, Arc<LocalBlocks>), IngesterError> {
        let heads = self.heads()?;
        let blocks = self
            .blocks
            .get()
            .ok_or_else(|| IngesterError::Internal("local blocks not open".into()))?;
        Ok((heads, Arc::clone(blocks)))
    }

    /// Cuts blocks per `mode` from every head and wakes the shipper.
    pub(crate) async fn cut(
        &self,
        mode: CutMode,
    ) -> Result<Vec<crate::shipper::CutBlock>, IngesterError> {
        let (heads, blocks) = self.tsdb()?;
        let range = self.cfg.head.chunk_range.as_millis_i64();
        let cut = cut_all(heads, blocks, range, mode).await?;
        if !cut.is_empty() {
            self.ship_now.notify_one();
        }
        Ok(cut)
    }
}

/// What [`open_tsdb`] opened, with the replay stats per tenant.
type Opened = (
    TenantHeads,
    LocalBlocks,
    Vec<(TenantId, tidemark_tsdb::ReplayStats)>,
);

/// Opens the heads (replaying their WALs) and the local blocks, and drops
/// from the heads what blocks already hold.
fn open_tsdb(
    root: &std::path::Path,
    cfg: &IngesterConfig,
) -> Result<Opened, tidemark_tsdb::TsdbError> {
    let (heads, stats) = TenantHeads::open(root, cfg.head_options(), cfg.wal_options())?;
    let tenants = heads.tenants();
    let blocks = LocalBlocks::open(root, &tenants)?;
    for tenant in &tenants {
        if let (Some(head), Some(tb)) = (heads.get(tenant), blocks.get(tenant)) {
            truncate_replayed(&head, &tb)?;
        }
    }
    Ok((heads, blocks, stats))
}

/// The ingester role: per-tenant heads with WALs under
/// `<data_dir>/ingester/<tenant>/wal`, behind the `Ingester` gRPC service.
///
/// A push is acknowledged only once its samples are in the WAL, synced per
/// `ingester.wal.fsync`. Until the WAL replay at start has finished, the
/// service answers `UNAVAILABLE` and `/ready` reports "replaying WAL".
pub struct Ingester {
    shared: Arc<Shared>,
    services: Services,
    max_message_bytes: usize,
}

impl Ingester {
    /// [`Ingester::start_with_locator`] with the compactor of
    /// `ingester.blocks.compactor_address` (none when empty).
    pub async fn start(cfg: IngesterConfig, ctx: RoleContext) -> Result<Self, IngesterError> {
        let locator = Arc::new(StaticCompactorLocator::new(
            cfg.blocks.compactor_address.clone(),
        ));
        Self::start_with_locator(cfg, ctx, locator).await
    }

    /// Starts opening and replaying every tenant's WAL and local blocks in
    /// the background (on `ctx.tasks`), then cutting blocks and handing
    /// them to the compactor `locator` names; registers the metrics.
    /// Returns at once; use [`Ingester::ready`] to wait for the replay.
    pub async fn start_with_locator(
        cfg: IngesterConfig,
        ctx: RoleContext,
        locator: Arc<dyn CompactorLocator>,
    ) -> Result<Self, IngesterError> {
        let root = ctx.data_dir.join("ingester");
        let metrics = IngesterMetrics::register(&ctx.metrics);
        let (readiness, _) = watch::channel(Readiness::Replaying);
        let shared = Arc::new(Shared {
            cfg,
            heads: OnceLock::new(),
            blocks: OnceLock::new(),
            ship_now: Notify::new(),
            readiness,
            metrics,
        });
        ctx.services
            .set(SERVICE_NAME, ServiceState::Starting("replaying WAL".into()));

        let opener = Arc::clone(&shared);
        let services = ctx.services.clone();
        ctx.tasks.spawn(async move {
            let cfg = opener.cfg.clone();
            let dir = root.clone();
            let opened = tokio::task::spawn_blocking(move || open_tsdb(&dir, &cfg)).await;
            let outcome = match opened {
                Ok(Ok((heads, blocks, stats))) => {
                    for (tenant, s) in &stats {
                        info!(tenant = %tenant, samples = s.samples, torn = s.torn_records, "tenant WAL replayed");
                    }
                    // Set only here, once, blocks first.
                    let _ = opener.blocks.set(Arc::new(blocks));
                    let _ = opener.heads.set(Arc::new(heads));
                    Readiness::Ready
                }
                Ok(Err(e)) => Readiness::Failed(
                    IngesterError::Open {
                        dir: root.display().to_string(),
                        source: e,
                    }
                    .to_string(),
                ),
                Err(e) => Readiness::Failed(format!("WAL replay task failed: {e}")),
            };
            match &outcome {
                Readiness::Ready => services.set(SERVICE_NAME, ServiceState::Running),
                Readiness::Failed(why) => {
                    error!(error = %why, "ingester failed to start");
                    services.set(SERVICE_NAME, ServiceState::Failed(why.clone()));
                }
                Readiness::Replaying => {}
            }
            opener.readiness.send_replace(outcome);
        });

        let stats = Arc::clone(&shared);
        let shutdown = ctx.shutdown.clone();
        ctx.tasks.spawn(async move {
            let mut last: HashMap<TenantId, (u64, u64)> = HashMap::new();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(STATS_INTERVAL) => {}
                }
                refresh_stats(&stats, &mut last);
            }
        });

        let cutter = Arc::clone(&shared);
        let shutdown = ctx.shutdown.clone();
        ctx.tasks.spawn(async move {
            let every = cutter.cfg.blocks.cut_check_interval.as_std();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if cutter.heads.get().is_none() {
                    continue;
                }
                if let Err(e) = cutter.cut(CutMode::Ready).await {
                    warn!(error = %e, "cutting blocks from the heads failed");
                }
            }
        });

        let shipping = Arc::clone(&shared);
        let shutdown = ctx.shutdown.clone();
        ctx.tasks.spawn(async move {
            let mut shipper = Shipper::new(&shipping.cfg.blocks, locator);
            let every = shipping.cfg.blocks.ship_interval.as_std();
            loop {
                let wake = shipper.next_retry().map_or(every, |t| {
                    t.saturating_duration_since(std::time::Instant::now())
                        .min(every)
                });
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = shipping.ship_now.notified() => {}
                    _ = tokio::time::sleep(wake) => {}
                }
                if let Some(blocks) = shipping.blocks.get() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = shipper.run_once(blocks) => {}
                    }
                }
            }
        });

        Ok(Ingester {
            shared,
            services: ctx.services,
            max_message_bytes: ctx.grpc_max_message_bytes,
        })
    }

    /// Waits until the WAL replay finished; `Err` when it failed.
    pub async fn ready(&self) -> Result<(), IngesterError> {
        let mut rx = self.shared.readiness.subscribe();
        let state = rx
            .wait_for(|r| *r != Readiness::Replaying)
            .await
            .map_err(|e| IngesterError::Internal(e.to_string()))?
            .clone();
        match state {
            Readiness::Failed(why) => Err(IngesterError::NotReady(why)),
            _ => Ok(()),
        }
    }

    /// `POST /ingester/flush`: cuts everything in the heads into blocks
    /// (answering with the blocks written) and starts handing them off.
    pub fn http_routes(&self) -> axum::Router {
        crate::flush::router(Arc::clone(&self.shared))
    }

    /// Adds the `Ingester` gRPC service.
    pub fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        routes.add_service(
            IngesterServer::new(IngesterService::new(Arc::clone(&self.shared)))
                .max_decoding_message_size(self.max_message_bytes)
                .max_encoding_message_size(self.max_message_bytes),
        );
    }

    /// Syncs every tenant's WAL, so that what was acknowledged under the
    /// `interval` fsync policy is on disk too. Call after the gRPC server
    /// stopped accepting pushes.
    pub async fn stop(&self) {
        self.services.set(SERVICE_NAME, ServiceState::Stopping);
        if let Some(heads) = self.shared.heads.get() {
            let heads = Arc::clone(heads);
            let synced = tokio::task::spawn_blocking(move || {
                for tenant in heads.tenants() {
                    if let Some(wal) = heads.get(&tenant).as_deref().and_then(|h| h.wal())
                        && let Err(e) = wal.sync()
                    {
                        warn!(tenant = %tenant, error = %e, "WAL sync at shutdown failed");
                    }
                }
            })
            .await;
            if let Err(e) = synced {
                warn!(error = %e, "WAL sync task at shutdown failed");
            }
        }
        self.services.set(SERVICE_NAME, ServiceState::Terminated);
        info!("ingester stopped");
    }
}

fn refresh_stats(shared: &Shared, last: &mut HashMap<TenantId, (u64, u64)>) {
    let Some(heads) = shared.heads.get() else {
        return;
    };
    let m = &shared.metrics;
    let mut memory = 0usize;
    for tenant in heads.tenants() {
        let Some(head) = heads.get(&tenant) else {
            continue;
        };
        memory += head.memory_bytes();
        m.memory_series
            .get_or_create(&TenantLabel {
                tenant: tenant.as_str().to_string(),
            })
            .set(i64::try_from(head.num_series()).unwrap_or(i64::MAX));
        if let Some(wal) = head.wal() {
            let s = wal.stats();
            let prev = last.entry(tenant).or_default();
            m.wal_fsyncs.inc_by(s.fsyncs.saturating_sub(prev.0));
            m.wal_fsync_seconds
                .inc_by(s.fsync_nanos.saturating_sub(prev.1) as f64 / 1e9);
            *prev = (s.fsyncs, s.fsync_nanos);
        }
    }
    m.head_memory_bytes
        .set(i64::try_from(memory).unwrap_or(i64::MAX));
}
