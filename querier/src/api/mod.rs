//! The Prometheus HTTP API: routes, shared request state, and the
//! handlers' plumbing (parameters in, Prometheus JSON out, metrics).

mod exemplars;
mod json;
mod labels;
mod params;
mod query;
mod response;
mod status;
mod time;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::HeaderMap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tidemark_promql::{Engine, EngineOpts};
use tidemark_server::{Metrics, Tenancy};

pub use status::PROMETHEUS_COMPATIBLE_VERSION;

use crate::fanout::{QueryLimiter, QueryLimits, ReadSource, TenantReader};
use crate::{QuerierConfig, QuerierError};
use params::Params;
use response::Success;

/// A clock in Unix ms, injectable so tests decide "now".
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

type MetricLabels = Vec<(String, String)>;

/// Request counts and latencies per endpoint.
#[derive(Clone)]
pub(crate) struct ApiMetrics {
    requests: Family<MetricLabels, Counter>,
    duration: Family<MetricLabels, Histogram, fn() -> Histogram>,
}

impl ApiMetrics {
    pub(crate) fn new() -> Self {
        ApiMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 4.0, 10))
            }),
        }
    }

    pub(crate) fn register(&self, m: &Metrics) {
        m.register(
            "querier_requests",
            "Prometheus API requests served by the querier, by endpoint and status code.",
            self.requests.clone(),
        );
        m.register(
            "querier_request_duration_seconds",
            "Time to answer Prometheus API requests, by endpoint.",
            self.duration.clone(),
        );
    }
}

/// What every handler shares.
pub(crate) struct ApiState {
    pub(crate) cfg: QuerierConfig,
    pub(crate) tenancy: Tenancy,
    pub(crate) source: Arc<dyn ReadSource>,
    pub(crate) clock: Clock,
    pub(crate) started_ms: i64,
    pub(crate) metrics: ApiMetrics,
}

impl ApiState {
    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// The request's tenant's reader, with fresh limits for this request.
    pub(crate) fn reader(
        &self,
        headers: &HeaderMap,
    ) -> Result<Arc<dyn TenantReader>, QuerierError> {
        let tenant = self.tenancy.tenant(headers)?;
        let limiter = Arc::new(QueryLimiter::new(QueryLimits::from_config(&self.cfg)));
        Ok(self.source.reader(&tenant, limiter))
    }

    /// An engine for this request: the configured settings, with the
    /// request's `timeout` (only ever shorter) and `lookback_delta`.
    pub(crate) fn engine(&self, p: &Params) -> Result<(Engine, Duration), QuerierError> {
        let mut timeout = self.cfg.timeout.as_std();
        if let Some(ms) = p.duration_opt("timeout")?
            && ms > 0
        {
            timeout = timeout.min(Duration::from_millis(ms.unsigned_abs()));
        }
        let mut lookback = self.cfg.lookback_delta.as_millis_i64();
        if let Some(ms) = p.duration_opt("lookback_delta")?
            && ms > 0
        {
            lookback = ms;
        }
        let engine = Engine::new(EngineOpts {
            lookback_delta_ms: lookback,
            max_samples: self.cfg.max_samples,
            timeout,
            default_subquery_step_ms: self.cfg.default_evaluation_interval.as_millis_i64(),
        });
        Ok((engine, timeout))
    }

    fn finish(
        &self,
        endpoint: &'static str,
        started: Instant,
        res: Result<Success, QuerierError>,
    ) -> Response {
        let resp = match res {
            Ok(ok) => ok.into_response(),
            Err(e) => {
                let (status, _) = e.prometheus_error();
                if status.is_server_error() {
                    tracing::warn!(endpoint, error = %e, "query failed");
                } else {
                    tracing::debug!(endpoint, error = %e, "request refused");
                }
                e.into_response()
            }
        };
        let ep = vec![("endpoint".to_string(), endpoint.to_string())];
        self.metrics
            .duration
            .get_or_create(&ep)
            .observe(started.elapsed().as_secs_f64());
        let mut l = ep;
        l.push(("code".to_string(), resp.status().as_u16().to_string()));
        self.metrics.requests.get_or_create(&l).inc();
        resp
    }
}

macro_rules! handler {
    ($name:ident, $endpoint:literal, $f:path) => {
        async fn $name(State(st): State<Arc<ApiState>>, req: Request) -> Response {
            let started = Instant::now();
            let res = match Params::read(req).await {
                Ok((h, p)) => $f(&st, &h, &p).await,
                Err(e) => Err(e),
            };
            st.finish($endpoint, started, res)
        }
    };
}

handler!(h_query, "query", query::instant);
handler!(h_query_range, "query_range", query::range);
handler!(h_format_query, "format_query", query::format);
handler!(h_parse_query, "parse_query", query::parse);
handler!(h_exemplars, "query_exemplars", exemplars::exemplars);
handler!(h_series, "series", labels::series);
handler!(h_labels, "labels", labels::label_names);
handler!(h_metadata, "metadata", status::metadata);
handler!(h_buildinfo, "buildinfo", status::buildinfo);
handler!(h_config, "config", status::config);
handler!(h_flags, "flags", status::flags);
handler!(h_runtimeinfo, "runtimeinfo", status::runtimeinfo);
handler!(h_rules, "rules", status::rules);
handler!(h_alerts, "alerts", status::alerts);

async fn h_label_values(
    State(st): State<Arc<ApiState>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let res = match Params::read(req).await {
        Ok((h, p)) => labels::label_values(&st, &h, &p, &name).await,
        Err(e) => Err(e),
    };
    st.finish("label_values", started, res)
}

/// The API routes, under `/api/v1` and `/prometheus/api/v1`.
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    let api: Router<Arc<ApiState>> = Router::new()
        .route("/query", get(h_query).post(h_query))
        .route("/query_range", get(h_query_range).post(h_query_range))
        .route("/format_query", get(h_format_query).post(h_format_query))
        .route("/parse_query", get(h_parse_query).post(h_parse_query))
        .route("/query_exemplars", get(h_exemplars).post(h_exemplars))
        .route("/series", get(h_series).post(h_series))
        .route("/labels", get(h_labels).post(h_labels))
        .route("/label/{name}/values", get(h_label_values))
        .route("/metadata", get(h_metadata))
        .route("/status/buildinfo", get(h_buildinfo))
        .route("/status/config", get(h_config))
        .route("/status/flags", get(h_flags))
        .route("/status/runtimeinfo", get(h_runtimeinfo))
        .route("/rules", get(h_rules))
        .route("/alerts", get(h_alerts));
    Router::new()
        .nest("/api/v1", api.clone())
        .nest("/prometheus/api/v1", api)
        .with_state(state)
}
