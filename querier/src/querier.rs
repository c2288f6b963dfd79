//! The querier role as the binary starts it.

use std::sync::Arc;
use std::time::Duration;

use tidemark_ingester_client::{ClientPool, IngesterRing};
use tidemark_promql::Queryable;
use tidemark_server::{Metrics, RoleContext, ServiceState, Tenancy};

use crate::api::{self, ApiMetrics, ApiState, Clock};
use crate::blocks::{BucketSource, BucketStore};
use crate::fanout::{IngesterSource, MergedSource, QueryableSource, ReadSource};
use crate::{QuerierConfig, QuerierError};

/// The querier: serves the Prometheus HTTP API, reading from a
/// [`ReadSource`] (the ingesters of the ring in a running process).
pub struct Querier {
    state: Arc<ApiState>,
}

impl Querier {
    /// Starts the querier over the ingesters of `ring`: registers its
    /// metrics and reports itself running. It has no background work.
    pub async fn start(
        cfg: QuerierConfig,
        ctx: RoleContext,
        ring: Arc<dyn IngesterRing>,
    ) -> Result<Self, QuerierError> {
        // A streamed select may take as long as the query; the query's own
        // deadline ends it earlier.
        let pool = Arc::new(ClientPool::new(
            ctx.grpc_max_message_bytes,
            cfg.timeout.as_std() + Duration::from_secs(1),
        ));
        let source = Arc::new(IngesterSource::new(ring, pool));
        let q = Querier::with_source(cfg, ctx.tenancy.clone(), source);
        q.state.metrics.register(&ctx.metrics);
        ctx.services.set("querier", ServiceState::Running);
        tracing::info!("querier started");
        Ok(q)
    }

    /// [`Querier::start`] that also reads the tenants' blocks from
    /// `bucket`, merged with the ingesters so that each sample is returned
    /// once; index files are cached under `querier.blocks.index_cache_dir`.
    pub async fn start_with_bucket(
        cfg: QuerierConfig,
        ctx: RoleContext,
        ring: Arc<dyn IngesterRing>,
        bucket: Arc<tidemark_bucket::Bucket>,
    ) -> Result<Self, QuerierError> {
        let pool = Arc::new(ClientPool::new(
            ctx.grpc_max_message_bytes,
            cfg.timeout.as_std() + Duration::from_secs(1),
        ));
        let cache_dir = cfg.blocks.cache_dir(&ctx.data_dir);
        let store = BucketStore::open(bucket, &cfg.blocks, cache_dir.clone()).map_err(|e| {
            QuerierError::Internal(format!(
                "opening the block index cache {}: {e}",
                cache_dir.display()
            ))
        })?;
        // Ingesters first: on a conflicting sample their copy wins.
        let source = Arc::new(MergedSource::new(vec![
            Arc::new(IngesterSource::new(ring, pool)),
            Arc::new(BucketSource::new(Arc::new(store))),
        ]));
        let q = Querier::with_source(cfg, ctx.tenancy.clone(), source);
        q.state.metrics.register(&ctx.metrics);
        ctx.services.set("querier", ServiceState::Running);
        tracing::info!("querier started, reading ingesters and the bucket");
        Ok(q)
    }

    /// A querier over any source (block storage merged with ingesters,
    /// tests, tools). Metrics are not registered: see [`Querier::register_metrics`].
    pub fn with_source(cfg: QuerierConfig, tenancy: Tenancy, source: Arc<dyn ReadSource>) -> Self {
        let clock = api::system_clock();
        let started_ms = clock();
        Querier {
            state: Arc::new(ApiState {
                cfg,
                tenancy,
                source,
                clock,
                started_ms,
                metrics: ApiMetrics::new(),
            }),
        }
    }

    /// A querier over any engine [`Queryable`] (e.g. a `MemStore`); label
    /// names and values are derived from the series it selects, and every
    /// tenant sees the same data.
    pub fn from_queryable(cfg: QuerierConfig, tenancy: Tenancy, q: Arc<dyn Queryable>) -> Self {
        Querier::with_source(cfg, tenancy, Arc::new(QueryableSource::new(q)))
    }

    /// Replaces the clock used for "now" (a missing `time` parameter).
    pub fn with_clock(self, clock: Clock) -> Self {
        let s = &self.state;
        Querier {
            state: Arc::new(ApiState {
                cfg: s.cfg.clone(),
                tenancy: s.tenancy.clone(),
                source: Arc::clone(&s.source),
                clock,
                started_ms: s.started_ms,
                metrics: s.metrics.clone(),
            }),
        }
    }

    /// Registers the request metrics (done by [`Querier::start`]).
    pub fn register_metrics(&self, m: &Metrics) {
        self.state.metrics.register(m);
    }

    /// `/api/v1/...` and `/prometheus/api/v1/...`.
    pub fn http_routes(&self) -> axum::Router {
        api::router(Arc::clone(&self.state))
    }

    /// The querier serves no gRPC service.
    pub fn add_grpc(&self, _routes: &mut tonic::service::RoutesBuilder) {}

    /// Nothing to flush: queries in flight end with the HTTP server.
    pub async fn stop(&self) {}
}
