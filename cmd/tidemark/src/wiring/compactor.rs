//! Starts the compactor role: the bucket from the `bucket` section, tenants
//! split among compactors by the compactor ring, or all of them in the
//! embedded `all` target.

use std::sync::Arc;

use anyhow::Context;
use tidemark_bucket::Bucket;
use tidemark_compactor::{Compactor, OwnsAll, TenantOwnership};
use tidemark_ring::Role as RingRole;
use tidemark_server::{RoleContext, ServiceState};

use super::cluster::{Cluster, RingShard};
use crate::config::Config;
use crate::roles::Target;

const SERVICE_NAME: &str = "compactor";

/// Owns the tenants whose hash the compactor ring gives this process.
struct RingOwnership(RingShard);

impl TenantOwnership for RingOwnership {
    fn owns_tenant(&self, tenant: &str) -> bool {
        self.0.owns(RingShard::key_hash(tenant))
    }
}

/// A running compactor: its hand-off service and its compaction loop
/// (spawned on the process's task tracker, stopped by its shutdown token).
pub(crate) struct CompactorRole {
    compactor: Arc<Compactor>,
    ctx: RoleContext,
}

impl CompactorRole {
    pub(crate) fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        routes.add_service(
            self.compactor
                .handoff_server(self.ctx.grpc_max_message_bytes),
        );
    }

    pub(crate) fn stop(&self) {
        self.ctx.services.set(SERVICE_NAME, ServiceState::Stopping);
    }
}

pub(crate) fn start_compactor(
    cfg: &Config,
    target: &Target,
    ctx: &RoleContext,
    cluster: &Cluster,
) -> anyhow::Result<CompactorRole> {
    let store = cfg
        .bucket
        .build(&ctx.data_dir)
        .context("connecting to the bucket")?;
    let ownership: Arc<dyn TenantOwnership> = if target.embedded {
        Arc::new(OwnsAll)
    } else {
        Arc::new(RingOwnership(cluster.shard(RingRole::Compactor)))
    };
    let compactor = Compactor::new(
        cfg.compactor.clone(),
        Bucket::new(store),
        ownership,
        &ctx.data_dir,
    )
    .context("starting the compactor")?;
    let compactor = Arc::new(compactor);
    let (c, shutdown) = (Arc::clone(&compactor), ctx.shutdown.clone());
    ctx.tasks.spawn(async move { c.run(shutdown).await });
    ctx.services.set(SERVICE_NAME, ServiceState::Running);
    Ok(CompactorRole {
        compactor,
        ctx: ctx.clone(),
    })
}
