//! `/api/v1/status/*`, `/api/v1/metadata`, `/api/v1/rules`, `/api/v1/alerts`:
//! what Grafana and Prometheus tooling probe besides queries.

use http::HeaderMap;
use serde_json::{Map, Value, json};

use super::ApiState;
use super::params::Params;
use super::response::Success;
use super::time::format_rfc3339_ms;
use crate::QuerierError;

/// The Prometheus version tidemark reports in `buildinfo.version`.
///
/// Grafana reads `version` to decide which Prometheus features it may use
/// (e.g. the `/api/v1/labels` and `/api/v1/series` POST forms, `match[]`
/// on label values, `limit`); tidemark implements the Prometheus 3.0 HTTP
/// API, so it says 3.0.0 there and reports its own version in
/// `tidemarkVersion`.
pub const PROMETHEUS_COMPATIBLE_VERSION: &str = "3.0.0";

pub(crate) async fn buildinfo(
    _st: &ApiState,
    _h: &HeaderMap,
    _p: &Params,
) -> Result<Success, QuerierError> {
    Ok(Success::json(json!({
        "application": "tidemark",
        "version": PROMETHEUS_COMPATIBLE_VERSION,
        "revision": option_env!("TIDEMARK_REVISION").unwrap_or("unknown"),
        "branch": option_env!("TIDEMARK_BRANCH").unwrap_or("unknown"),
        "buildUser": "tidemark",
        "buildDate": option_env!("TIDEMARK_BUILD_DATE").unwrap_or("unknown"),
        "goVersion": "none (tidemark is written in Rust)",
        "tidemarkVersion": env!("CARGO_PKG_VERSION"),
    })))
}

/// The querier's configuration as YAML, in Prometheus's `{"yaml": ..}` shape.
pub(crate) async fn config(
    st: &ApiState,
    _h: &HeaderMap,
    _p: &Params,
) -> Result<Success, QuerierError> {
    let c = &st.cfg;
    let yaml = format!(
        "querier:\n  timeout: {}\n  max_samples: {}\n  lookback_delta: {}\n  default_evaluation_interval: {}\n  max_fetched_series_per_query: {}\n  max_fetched_bytes_per_query: {}\n  default_metadata_range: {}\n",
        c.timeout,
        c.max_samples,
        c.lookback_delta,
        c.default_evaluation_interval,
        c.max_fetched_series_per_query,
        c.max_fetched_bytes_per_query,
        c.default_metadata_range
    );
    Ok(Success::json(json!({ "yaml": yaml })))
}

/// The query settings under the names of Prometheus's own flags.
pub(crate) async fn flags(
    st: &ApiState,
    _h: &HeaderMap,
    _p: &Params,
) -> Result<Success, QuerierError> {
    let c = &st.cfg;
    Ok(Success::json(json!({
        "query.timeout": c.timeout.to_string(),
        "query.max-samples": c.max_samples.to_string(),
        "query.lookback-delta": c.lookback_delta.to_string(),
    })))
}

pub(crate) async fn runtimeinfo(
    st: &ApiState,
    _h: &HeaderMap,
    _p: &Params,
) -> Result<Success, QuerierError> {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let procs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = format_rfc3339_ms(st.started_ms);
    Ok(Success::json(json!({
        "startTime": started,
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": started,
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": procs,
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": "",
    })))
}

/// Metric metadata is not stored yet: an empty map, as Prometheus answers
/// when it knows no metadata.
pub(crate) async fn metadata(
    st: &ApiState,
    h: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    st.tenancy.tenant(h)?;
    p.limit()?;
    Ok(Success::json(Value::Object(Map::new())))
}

/// No recording or alerting rules are evaluated by tidemark yet.
pub(crate) async fn rules(
    st: &ApiState,
    h: &HeaderMap,
    _p: &Params,
) -> Result<Success, QuerierError> {
    st.tenancy.tenant(h)?;
    Ok(Success::json(json!({ "groups": [] })))
}

pub(crate) async fn alerts(
    st: &ApiState,
    h: &HeaderMap,
    _p: &Params,
) -> Result<Success, QuerierError> {
    st.tenancy.tenant(h)?;
    Ok(Success::json(json!({ "alerts": [] })))
}
