//! The querier's error type and its one mapping to the Prometheus API's
//! `errorType` and HTTP status, and to gRPC codes.

use http::StatusCode;
use tidemark_promql::{PromqlError, StorageError};
use tidemark_server::{ApiError, ErrorKind, TenantError};

/// Why a querier request failed. The `Display` text is the `error` field of
/// the Prometheus API answer, so it follows Prometheus's wording where
/// Prometheus has the same error.
#[derive(Debug, thiserror::Error)]
pub enum QuerierError {
    /// A request parameter is missing or malformed.
    #[error("invalid parameter {param:?}: {reason}")]
    InvalidParam { param: String, reason: String },
    /// The parameters are well-formed but do not make a valid request
    /// (end before start, too many points, no `match[]`).
    #[error("{0}")]
    BadData(String),
    /// No tenant, or an invalid one.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// The query failed while evaluating (Prometheus's `execution` errors,
    /// including the `max_samples` limit).
    #[error("{0}")]
    Execution(PromqlError),
    /// The query ran longer than its timeout.
    #[error(
        "query timed out in {phase} (timeout: {timeout_ms}ms, set by querier.timeout or the request's timeout parameter)"
    )]
    Timeout {
        phase: &'static str,
        timeout_ms: u64,
    },
    /// The client went away.
    #[error("query was canceled in {phase}")]
    Canceled { phase: &'static str },
    /// The storage (ingesters, later blocks) could not answer.
    #[error(transparent)]
    Storage(StorageError),
    /// No such API endpoint.
    #[error("not found: {0}")]
    NotFound(String),
    /// A bug or an unexpected failure.
    #[error("{0}")]
    Internal(String),
}

impl From<PromqlError> for QuerierError {
    fn from(e: PromqlError) -> Self {
        match e {
            PromqlError::Parse { msg } => QuerierError::InvalidParam {
                param: "query".into(),
                reason: msg,
            },
            PromqlError::Storage(s) => QuerierError::Storage(s),
            PromqlError::Timeout { phase, timeout } => QuerierError::Timeout {
                phase,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            PromqlError::Canceled { phase } => QuerierError::Canceled { phase },
            other => QuerierError::Execution(other),
        }
    }
}

impl From<StorageError> for QuerierError {
    fn from(e: StorageError) -> Self {
        QuerierError::Storage(e)
    }
}

impl QuerierError {
    pub(crate) fn param(param: &str, reason: impl Into<String>) -> Self {
        QuerierError::InvalidParam {
            param: param.to_string(),
            reason: reason.into(),
        }
    }

    /// The Prometheus API's `errorType` and HTTP status for this error.
    ///
    /// Prometheus answers evaluation failures (and query limits) with
    /// `execution`/422, which the shared [`ErrorKind`] set has no code for;
    /// every other error follows [`ApiError::kind`].
    pub fn prometheus_error(&self) -> (StatusCode, &'static str) {
        match self {
            QuerierError::Execution(_) | QuerierError::Storage(StorageError::Limit(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "execution")
            }
            _ => {
                let k = self.kind();
                (k.http_status(), k.prometheus_error_type())
            }
        }
    }
}

impl ApiError for QuerierError {
    fn kind(&self) -> ErrorKind {
        match self {
            QuerierError::InvalidParam { .. } | QuerierError::BadData(_) => ErrorKind::BadRequest,
            QuerierError::Tenant(e) => e.kind(),
            QuerierError::Execution(_) => ErrorKind::BadRequest,
            QuerierError::Timeout { .. } => ErrorKind::Timeout,
            QuerierError::Canceled { .. } => ErrorKind::Canceled,
            QuerierError::Storage(StorageError::Limit(_)) => ErrorKind::LimitExceeded,
            QuerierError::Storage(StorageError::Unavailable(_)) => ErrorKind::Unavailable,
            QuerierError::Storage(StorageError::Message(_)) => ErrorKind::Internal,
            QuerierError::NotFound(_) => ErrorKind::NotFound,
            QuerierError::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_prometheus() {
        let cases: Vec<(QuerierError, u16, &str)> = vec![
            (QuerierError::param("start", "x"), 400, "bad_data"),
            (
                QuerierError::Execution(PromqlError::TooManySamples { limit: 1 }),
                422,
                "execution",
            ),
            (
                QuerierError::Storage(StorageError::Limit("l".into())),
                422,
                "execution",
            ),
            (
                QuerierError::Storage(StorageError::Unavailable("u".into())),
                503,
                "unavailable",
            ),
            (
                QuerierError::Timeout {
                    phase: "p",
                    timeout_ms: 1,
                },
                503,
                "timeout",
            ),
            (
                QuerierError::Storage(StorageError::Message("m".into())),
                500,
                "internal",
            ),
            (
                QuerierError::Tenant(TenantError::Missing),
                401,
                "unauthorized",
            ),
        ];
        for (e, code, ty) in cases {
            let (s, t) = e.prometheus_error();
            assert_eq!((s.as_u16(), t), (code, ty), "{e}");
        }
    }

    #[test]
    fn parse_errors_name_the_query_parameter() {
        let e = QuerierError::from(PromqlError::Parse {
            msg: "1:3: parse error: unexpected end of input".into(),
        });
        assert_eq!(
            e.to_string(),
            "invalid parameter \"query\": 1:3: parse error: unexpected end of input"
        );
    }
}
