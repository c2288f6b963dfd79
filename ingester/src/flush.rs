//! `POST /ingester/flush`: everything in the heads into blocks now, for
//! tests and before a planned shutdown.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tidemark_server::ApiError;

use crate::blocks::CutMode;
use crate::ingester::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ingester/flush", post(flush))
        .with_state(shared)
}

/// Cuts every head into blocks and answers with them as JSON
/// (`{"blocks": [{"tenant", "block", "min_time", "max_time", ...}]}`);
/// the hand-off to the compactor starts at once and runs in the
/// background.
async fn flush(State(shared): State<Arc<Shared>>) -> Response {
    match shared.cut(CutMode::Flush).await {
        Ok(blocks) => axum::Json(serde_json::json!({ "blocks": blocks })).into_response(),
        Err(e) => (e.kind().http_status(), format!("{e}\n")).into_response(),
    }
}
