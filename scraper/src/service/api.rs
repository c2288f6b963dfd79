//! The scraper's HTTP endpoints: `/api/v1/targets` in Prometheus's JSON,
//! a `/targets` page, and `POST /-/reload`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tidemark_model::Labels;
use tidemark_server::ApiError;

use super::{ScraperHandle, TargetsView};
use crate::target::prometheus_duration;

/// The routes of the scraper role.
pub fn router(handle: ScraperHandle) -> Router {
    Router::new()
        .route("/api/v1/targets", get(targets_json))
        .route("/prometheus/api/v1/targets", get(targets_json))
        .route("/targets", get(targets_page))
        .route("/-/reload", post(reload).put(reload))
        .with_state(handle)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TargetsQuery {
    /// `active`, `dropped` or `any` (default).
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

fn label_map(l: &Labels) -> BTreeMap<&str, &str> {
    l.iter().collect()
}

/// Go's RFC 3339 rendering of a scrape time; never scraped is Go's zero time.
fn rfc3339(ms: i64) -> String {
    if ms <= 0 {
        return "0001-01-01T00:00:00Z".to_string();
    }
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// The `data` of `/api/v1/targets`, as Prometheus shapes it.
pub fn targets_data(view: &TargetsView, state: &str, pool: Option<&str>) -> Value {
    let in_pool = |p: &str| pool.is_none_or(|want| want == p);
    let active: Vec<Value> = if state == "dropped" {
        Vec::new()
    } else {
        view.active
            .iter()
            .filter(|a| in_pool(&a.pool))
            .map(|a| {
                let last = a.health.last();
                json!({
                    "discoveredLabels": label_map(a.target.discovered_labels()),
                    "labels": label_map(a.target.labels()),
                    "scrapePool": a.pool,
                    "scrapeUrl": a.target.url,
                    "globalUrl": a.target.url,
                    "lastError": last.error,
                    "lastScrape": rfc3339(last.at_ms),
                    "lastScrapeDuration": last.duration_s,
                    "health": last.health.as_str(),
                    "scrapeInterval": prometheus_duration(a.target.interval),
                    "scrapeTimeout": prometheus_duration(a.target.timeout),
                })
            })
            .collect()
    };
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &view.dropped {
        *counts.entry(d.pool.as_str()).or_default() += 1;
    }
    let dropped: Vec<Value> = if state == "active" {
        Vec::new()
    } else {
        view.dropped
            .iter()
            .filter(|d| in_pool(&d.pool))
            .map(|d| json!({ "discoveredLabels": label_map(&d.discovered) }))
            .collect()
    };
    json!({
        "activeTargets": active,
        "droppedTargets": dropped,
        "droppedTargetCounts": counts,
    })
}

async fn targets_json(
    State(handle): State<ScraperHandle>,
    Query(q): Query<TargetsQuery>,
) -> Response {
    let state = q.state.as_deref().unwrap_or("any").to_ascii_lowercase();
    if !matches!(state.as_str(), "active" | "dropped" | "any") {
        let body = json!({
            "status": "error",
            "errorType": "bad_data",
            "error": format!("invalid state {state:?}: expected active, dropped or any"),
        });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let view = handle.targets().await;
    let data = targets_data(&view, &state, q.scrape_pool.as_deref());
    axum::Json(json!({ "status": "success", "data": data })).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn targets_page(State(handle): State<ScraperHandle>) -> Html<String> {
    let view = handle.targets().await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut by_pool: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for a in &view.active {
        by_pool.entry(a.pool.as_str()).or_default().push(a);
    }
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Targets</title>\
         <style>body{font-family:sans-serif}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;font-size:13px}\
         .up{color:#080}.down{color:#b00}.unknown{color:#888}</style></head><body><h1>Targets</h1>",
    );
    if by_pool.is_empty() {
        out.push_str("<p>No targets are scraped by this scraper.</p>");
    }
    for (pool, targets) in &by_pool {
        let up = targets
            .iter()
            .filter(|a| a.health.last().health.as_str() == "up")
            .count();
        let _ = write!(
            out,
            "<h2>{} ({up}/{} up)</h2><table><tr><th>Endpoint</th><th>State</th><th>Labels</th>\
             <th>Last scrape</th><th>Scrape duration</th><th>Error</th></tr>",
            escape(pool),
            targets.len()
        );
        for a in targets {
            let last = a.health.last();
            let ago = if last.at_ms > 0 {
                format!("{:.1}s ago", (now_ms - last.at_ms) as f64 / 1000.0)
            } else {
                "never".to_string()
            };
            let _ = write!(
                out,
                "<tr><td><a href=\"{url}\">{url}</a></td><td class=\"{h}\">{h}</td><td>{labels}</td>\
                 <td>{ago}</td><td>{dur:.3}s</td><td>{err}</td></tr>",
                url = escape(&a.target.url),
                h = last.health.as_str(),
                labels = escape(&a.target.labels().to_string()),
                dur = last.duration_s,
                err = escape(&last.error),
            );
        }
        out.push_str("</table>");
    }
    let _ = write!(
        out,
        "<p>{} targets dropped by relabeling.</p></body></html>",
        view.dropped.len()
    );
    Html(out)
}

async fn reload(State(handle): State<ScraperHandle>) -> Response {
    match handle.reload().await {
        Ok(summary) => (StatusCode::OK, format!("config reloaded: {summary}\n")).into_response(),
        Err(e) => (
            e.kind().http_status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}
