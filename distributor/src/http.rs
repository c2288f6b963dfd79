//! `POST /api/v1/push` and `/api/v1/write`: Prometheus remote write 1.0
//! and 2.0.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tracing::debug;

use crate::DistributorError;
use crate::decode::{Protocol, check_encoding, decode, decompress, negotiate};
use crate::distributor::Inner;
use crate::metrics::RequestLabels;
use crate::push::{Written, now_ms};
use crate::validate::{Refusal, validate};

/// Response headers of remote write 2.0: what was written of the request.
pub const SAMPLES_WRITTEN: &str = "X-Prometheus-Remote-Write-Samples-Written";
pub const HISTOGRAMS_WRITTEN: &str = "X-Prometheus-Remote-Write-Histograms-Written";
pub const EXEMPLARS_WRITTEN: &str = "X-Prometheus-Remote-Write-Exemplars-Written";
/// Request header naming the sender's protocol version (informational).
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";

pub(crate) fn routes(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/api/v1/push", post(push))
        .route("/api/v1/write", post(push))
        // The body limit is ours (distributor.max_recv_msg_size), applied
        // while reading, with a message naming the setting.
        .layer(DefaultBodyLimit::disable())
        .with_state(inner)
}

fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn push(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let protocol = negotiate(header_str(&headers, header::CONTENT_TYPE));
    let v2 = matches!(protocol, Ok(Protocol::V2));
    let result = match protocol {
        Ok(p) => handle(&inner, p, &headers, body).await,
        Err(e) => Err(e),
    };
    let (status, written, mut response) = match result {
        Ok(written) => (
            StatusCode::NO_CONTENT,
            written,
            StatusCode::NO_CONTENT.into_response(),
        ),
        Err(e) => {
            let status = e.http_status();
            if status.is_server_error() {
                tracing::warn!(error = %e, "remote write failed");
            } else {
                debug!(error = %e, %status, "remote write refused");
            }
            let written = e.written();
            let mut msg = e.to_string();
            msg.push('\n');
            (
                status,
                written,
                (
                    status,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    msg,
                )
                    .into_response(),
            )
        }
    };
    if v2 {
        let h = response.headers_mut();
        h.insert(SAMPLES_WRITTEN, HeaderValue::from(written.samples));
        h.insert(HISTOGRAMS_WRITTEN, HeaderValue::from(0u64));
        h.insert(EXEMPLARS_WRITTEN, HeaderValue::from(written.exemplars));
    }
    inner
        .metrics
        .request_duration
        .get_or_create(&RequestLabels {
            protocol: if v2 {
                "remote_write_v2"
            } else {
                "remote_write_v1"
            },
            status: status_class(status),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

pub(crate) fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

async fn handle(
    inner: &Inner,
    protocol: Protocol,
    headers: &HeaderMap,
    body: Body,
) -> Result<Written, DistributorError> {
    let tenant = inner.tenancy.tenant(headers)?;
    check_encoding(header_str(headers, header::CONTENT_ENCODING))?;
    if let Some(v) = header_str(headers, VERSION_HEADER) {
        debug!(version = v, "remote write sender version");
    }
    let limit = inner.cfg.max_recv_msg_size;
    if let Some(len) =
        header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(DistributorError::TooLarge {
            what: "request body",
            size: format!("{len} bytes"),
            limit,
        });
    }
    let compressed = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit")) {
            DistributorError::TooLarge {
                what: "request body",
                size: format!("more than {limit} bytes"),
                limit,
            }
        } else {
            DistributorError::BadBody(format!("reading the body: {e}"))
        }
    })?;
    // Decompression, protobuf decoding and validation are CPU work
    // proportional to the body: off the async workers. Validation runs
    // there too because the decoded series borrow from the body.
    let limits = inner.pusher.limits(&tenant);
    let (limits, received, validated, pre_refused) = tokio::task::spawn_blocking(move || {
        let raw = decompress(&compressed, limit)?;
        decode(protocol, &raw, |d| {
            let received = d.received();
            let pre_refused: Vec<Refusal> = d
                .broken
                .into_iter()
                .map(|(i, message, samples)| Refusal {
                    series: format!("#{i} of the request"),
                    reason: "invalid_symbol_ref",
                    message,
                    samples,
                })
                .collect();
            let validated = validate(d.series, &limits, now_ms());
            (limits, received, validated, pre_refused)
        })
    })
    .await
    .map_err(|e| DistributorError::BadBody(format!("decoding task failed: {e}")))??;
    let outcome = inner
        .pusher
        .push(&tenant, &limits, received, validated, pre_refused)
        .await?;
    outcome.into_result(inner.cfg.max_reported_refusals)
}
