//! The distributor role's lifecycle.

use std::sync::Arc;

use tidemark_ingester_client::{ClientPool, IngesterRing};
use tidemark_proto::distributor::distributor_server::DistributorServer;
use tidemark_server::{RoleContext, ServiceState, Services, Tenancy};
use tracing::info;

use crate::grpc::DistributorService;
use crate::limits::{LimitsResolver, LimitsSource};
use crate::metrics::DistributorMetrics;
use crate::push::Pusher;
use crate::rate::RateLimiter;
use crate::{DistributorConfig, DistributorError};

/// Name under which the distributor reports its state in `/ready`.
pub const SERVICE_NAME: &str = "distributor";

pub(crate) struct Inner {
    pub(crate) cfg: DistributorConfig,
    pub(crate) tenancy: Tenancy,
    pub(crate) pusher: Pusher,
    pub(crate) metrics: DistributorMetrics,
}

/// The distributor role: stateless; accepts remote write over HTTP and
/// batches over gRPC, validates, applies the tenant's limits and writes
/// every series to a quorum of its replication set on the ring.
pub struct Distributor {
    inner: Arc<Inner>,
    services: Services,
    max_message_bytes: usize,
}

impl Distributor {
    /// Builds the distributor. `ring` answers which ingesters hold a
    /// series; `limits_source` (the membership group in a cluster) adds
    /// run-time per-tenant overrides on top of the configured ones.
    pub async fn start(
        cfg: DistributorConfig,
        ctx: RoleContext,
        ring: Arc<dyn IngesterRing>,
        limits_source: Option<Arc<dyn LimitsSource>>,
    ) -> Result<Self, DistributorError> {
        let metrics = DistributorMetrics::register(&ctx.metrics);
        let inner = Arc::new(build_inner(
            cfg,
            ctx.tenancy.clone(),
            ring,
            limits_source,
            metrics,
            ctx.grpc_max_message_bytes,
        ));
        ctx.services.set(SERVICE_NAME, ServiceState::Running);
        info!(
            multitenancy = inner.tenancy.enabled(),
            "distributor started"
        );
        Ok(Distributor {
            inner,
            services: ctx.services,
            max_message_bytes: ctx.grpc_max_message_bytes,
        })
    }

    /// `POST /api/v1/push` and `POST /api/v1/write`.
    pub fn http_routes(&self) -> axum::Router {
        crate::http::routes(Arc::clone(&self.inner))
    }

    /// The `Distributor` gRPC service (scrapers' batches).
    pub fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        routes.add_service(
            DistributorServer::new(DistributorService {
                inner: Arc::clone(&self.inner),
            })
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes),
        );
    }

    /// The distributor holds no state: stopping only reports it.
    pub async fn stop(&self) {
        self.services.set(SERVICE_NAME, ServiceState::Terminated);
    }
}

pub(crate) fn build_inner(
    cfg: DistributorConfig,
    tenancy: Tenancy,
    ring: Arc<dyn IngesterRing>,
    limits_source: Option<Arc<dyn LimitsSource>>,
    metrics: DistributorMetrics,
    max_message_bytes: usize,
) -> Inner {
    let pusher = Pusher {
        ring,
        pool: ClientPool::new(max_message_bytes, cfg.remote_timeout.as_std()),
        limits: LimitsResolver::new(cfg.limits.clone(), cfg.overrides.clone(), limits_source),
        rate: RateLimiter::new(),
        metrics: metrics.clone(),
    };
    Inner {
        cfg,
        tenancy,
        pusher,
        metrics,
    }
}
