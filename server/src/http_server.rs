//! The HTTP and gRPC listeners and the admin endpoints every process serves.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{Metrics, Services};

#[derive(Clone)]
struct AdminState {
    services: Services,
    metrics: Arc<Metrics>,
    config_yaml: Arc<str>,
}

/// `/ready`, `/metrics`, `/services` and `/config`.
///
/// `config_yaml` is the effective configuration with secrets already masked.
pub fn admin_router(services: Services, metrics: Arc<Metrics>, config_yaml: String) -> Router {
    crate::process::init();
    let state = AdminState {
        services,
        metrics,
        config_yaml: config_yaml.into(),
    };
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_handler))
        .route("/services", get(services_handler))
        .route("/config", get(config_handler))
        .with_state(state)
}

async fn ready(State(s): State<AdminState>) -> Response {
    match s.services.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", why.join("; ")),
        )
            .into_response(),
    }
}

async fn metrics_handler(State(s): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)],
        s.metrics.encode(),
    )
        .into_response()
}

async fn services_handler(State(s): State<AdminState>) -> Response {
    axum::Json(s.services.snapshot()).into_response()
}

async fn config_handler(State(s): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/yaml; charset=utf-8")],
        s.config_yaml.to_string(),
    )
        .into_response()
}

/// Serves `router` until `shutdown` fires, then lets in-flight requests finish.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    info!(addr = %listener.local_addr()?, "HTTP server listening");
    // No Nagle: a response written in pieces (headers, then body) must
    // not wait for the client's delayed ACK, 40 ms on Linux.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Serves the gRPC `routes` until `shutdown` fires, then drains in-flight calls.
pub async fn serve_grpc(
    listener: TcpListener,
    routes: tonic::service::Routes,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "gRPC server listening");
    }
    // No Nagle, as on the HTTP side: the last frames of a streamed answer
    // (data, trailers) would otherwise wait for the peer's delayed ACK,
    // which added 40 ms to every query fanned out to an ingester.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |s| {
            s.inspect(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "setting TCP_NODELAY");
                }
            })
        },
    );
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceState;

    #[tokio::test]
    async fn ready_reflects_services_and_metrics_are_text() {
        let services = Services::new();
        services.set("querier", ServiceState::Starting("waiting for ring".into()));
        let router = admin_router(services.clone(), Arc::new(Metrics::new()), "a: 1\n".into());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve_http(listener, router, stop.clone()));
        let base = format!("http://{addr}");
        let r = reqwest::get(format!("{base}/ready")).await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.text().await.unwrap().contains("waiting for ring"));
        services.set("querier", ServiceState::Running);
        assert_eq!(
            reqwest::get(format!("{base}/ready"))
                .await
                .unwrap()
                .status(),
            200
        );
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(m.contains("process_start_time_seconds"));
        let c = reqwest::get(format!("{base}/config"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(c, "a: 1\n");
        stop.cancel();
        server.await.unwrap().unwrap();
    }
}
