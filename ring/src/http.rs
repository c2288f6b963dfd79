//! `/ring` and `/cluster` pages, and the admin calls: `POST
//! /ring/forget?id=..` and the tenant overrides under `/ring/tenants`.
//!
//! Both pages answer JSON when the request says `Accept: application/json`
//! or `?format=json`, and a plain HTML page otherwise.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::RingError;
use crate::member::TenantLimits;
use crate::membership::Membership;
use crate::snapshot::{MemberStatus, RaftInfo};

/// The routes, with `membership` as state; merge into the process's router.
pub fn router(membership: Membership) -> Router {
    Router::new()
        .route("/ring", get(ring_page))
        .route("/ring/forget", post(forget))
        .route("/ring/tenants", get(list_tenants))
        .route(
            "/ring/tenants/{tenant}",
            get(get_tenant).put(put_tenant).delete(delete_tenant),
        )
        .route("/cluster", get(cluster_page))
        .with_state(membership)
}

fn wants_json(headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    query.get("format").is_some_and(|f| f == "json")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"))
}

/// The JSON document of `/ring`.
#[derive(Debug, Serialize)]
pub struct RingPage {
    pub members: Vec<MemberStatus>,
    pub raft: RaftInfo,
    pub heartbeat_timeout_ms: i64,
    pub built_at_ms: i64,
}

async fn ring_page(
    State(m): State<Membership>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ring = m.ring();
    let page = RingPage {
        members: ring.status(),
        raft: ring.raft().clone(),
        heartbeat_timeout_ms: ring.heartbeat_timeout_ms(),
        built_at_ms: ring.built_at_ms(),
    };
    if wants_json(&headers, &query) {
        return Json(page).into_response();
    }
    let mut html = String::from(
        "<!doctype html><html><head><title>tidemark ring</title>\
         <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}\
         .bad{color:#b00}</style></head><body><h1>Ring</h1>",
    );
    let _ = write!(
        html,
        "<p>Leader: {} &middot; applied index {} &middot; heartbeat timeout {} ms</p>\
         <table><tr><th>Member</th><th>Roles</th><th>State</th><th>Health</th><th>Zone</th>\
         <th>gRPC</th><th>HTTP</th><th>Tokens</th><th>Ownership</th><th>Serving</th><th>Last heartbeat</th><th></th></tr>",
        escape(page.raft.leader_address.as_deref().unwrap_or("unknown")),
        page.raft.applied_index,
        page.heartbeat_timeout_ms,
    );
    for s in &page.members {
        let m = &s.member;
        let roles: Vec<&str> = m.roles.iter().map(|r| r.as_str()).collect();
        let share: Vec<String> = s
            .ownership
            .iter()
            .map(|(r, v)| format!("{r} {:.1}%", v * 100.0))
            .collect();
        let serving: Vec<String> = s
            .serving
            .iter()
            .map(|(r, v)| format!("{r} {:.1}%", v * 100.0))
            .collect();
        let _ = write!(
            html,
            "<tr><td>{id}</td><td>{roles}</td><td>{state}</td><td class=\"{cls}\">{health}</td>\
             <td>{zone}</td><td>{grpc}</td><td>{http}</td><td>{tokens}</td><td>{share}</td><td>{serving}</td>\
             <td>{age:.1} s ago</td><td><form method=\"post\" action=\"/ring/forget?id={id}\">\
             <button>Forget</button></form></td></tr>",
            id = escape(&m.id),
            roles = escape(&roles.join(",")),
            state = m.state,
            cls = if s.healthy { "" } else { "bad" },
            health = if s.healthy { "healthy" } else { "UNHEALTHY" },
            zone = escape(m.zone.as_deref().unwrap_or("")),
            grpc = escape(&m.grpc_address),
            http = escape(&m.http_address),
            tokens = m.tokens.len(),
            share = escape(&share.join(", ")),
            serving = escape(&serving.join(", ")),
            age = s.heartbeat_age_ms as f64 / 1000.0,
        );
    }
    html.push_str("</table></body></html>");
    Html(html).into_response()
}

async fn forget(
    State(m): State<Membership>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query.get("id").filter(|id| !id.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "missing ?id=<member id>\n").into_response();
    };
    match m.forget(id).await {
        Ok(()) => (StatusCode::OK, format!("forgot {id}\n")).into_response(),
        Err(e) => (status_of(&e), format!("{e}\n")).into_response(),
    }
}

/// `GET /ring/tenants`: every tenant's committed overrides.
async fn list_tenants(State(m): State<Membership>) -> Response {
    Json(m.ring().tenants().clone()).into_response()
}

/// `GET /ring/tenants/<tenant>`: 404 when the tenant has no overrides.
async fn get_tenant(State(m): State<Membership>, Path(tenant): Path<String>) -> Response {
    match m.tenant_overrides(&tenant) {
        Some(l) => Json(l).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("tenant {tenant:?} has no overrides\n"),
        )
            .into_response(),
    }
}

/// `PUT /ring/tenants/<tenant>` with a JSON [`TenantLimits`] body: commits
/// the overrides (absent fields keep the configured limits) and answers
/// once they are in the Raft log.
async fn put_tenant(
    State(m): State<Membership>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(e) = tidemark_model::TenantId::new(&tenant) {
        return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
    }
    let limits: TenantLimits = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "body is not tenant limits JSON ({e}); fields: ingestion_rate, ingestion_burst, max_series, max_labels_per_series\n"
                ),
            )
                .into_response();
        }
    };
    if let Err(e) = limits.validate() {
        return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
    }
    match m.set_tenant_overrides(&tenant, Some(limits.clone())).await {
        Ok(()) => Json(limits).into_response(),
        Err(e) => (status_of(&e), format!("{e}\n")).into_response(),
    }
}

/// `DELETE /ring/tenants/<tenant>`: back to the configured limits.
async fn delete_tenant(State(m): State<Membership>, Path(tenant): Path<String>) -> Response {
    match m.set_tenant_overrides(&tenant, None).await {
        Ok(()) => (StatusCode::OK, format!("cleared overrides of {tenant}\n")).into_response(),
        Err(e) => (status_of(&e), format!("{e}\n")).into_response(),
    }
}

async fn cluster_page(
    State(m): State<Membership>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let status = m.cluster_status();
    if wants_json(&headers, &query) {
        return Json(status).into_response();
    }
    let mut html = String::from(
        "<!doctype html><html><head><title>tidemark cluster</title></head><body><h1>Raft group</h1><table>",
    );
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for (k, v) in [
        ("This node", status.node_id.clone()),
        ("Voter", status.voter.to_string()),
        (
            "Raft state",
            status.raft_state.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "Leader",
            status
                .leader_address
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("Term", opt(status.current_term)),
        ("Last log index", opt(status.last_log_index)),
        ("Applied index", status.applied_index.to_string()),
        ("Snapshot index", opt(status.snapshot_index)),
    ] {
        let _ = write!(html, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    html.push_str("</table><h2>Voters</h2><ul>");
    for (id, addr) in &status.voters {
        let _ = write!(html, "<li>{} (id {id})</li>", escape(addr));
    }
    html.push_str("</ul></body></html>");
    Html(html).into_response()
}

fn status_of(e: &RingError) -> StatusCode {
    match e {
        RingError::UnknownMember { .. } => StatusCode::NOT_FOUND,
        RingError::Invalid { .. } | RingError::Decode { .. } | RingError::Config(_) => {
            StatusCode::BAD_REQUEST
        }
        RingError::Unavailable { .. }
        | RingError::TooFewMembers { .. }
        | RingError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        RingError::Store { .. } | RingError::Raft { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
