//! The one mapping from errors to HTTP status and gRPC code.

use http::StatusCode;

/// The code set every crate's error enum maps to.
///
/// Keeping it small means clients (Prometheus's remote write, Grafana) see
/// consistent statuses whichever role failed: 4xx is never retried by
/// Prometheus, 429 and 5xx are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or the data is invalid: retrying cannot help.
    BadRequest,
    /// No tenant, or a tenant the caller may not use.
    Unauthorized,
    NotFound,
    /// A rate or size limit: retry later.
    TooManyRequests,
    /// A dependency is down or not ready: retry can help.
    Unavailable,
    /// The request took longer than allowed.
    Timeout,
    /// A query-level resource limit; retrying the same request will fail again.
    LimitExceeded,
    /// The client went away.
    Canceled,
    /// A bug or an unexpected I/O failure.
    Internal,
}

impl ErrorKind {
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest | ErrorKind::LimitExceeded => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            // Prometheus answers 499 when the client closed the request.
            ErrorKind::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorKind::BadRequest => tonic::Code::InvalidArgument,
            ErrorKind::Unauthorized => tonic::Code::Unauthenticated,
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::TooManyRequests | ErrorKind::LimitExceeded => tonic::Code::ResourceExhausted,
            ErrorKind::Unavailable => tonic::Code::Unavailable,
            ErrorKind::Timeout => tonic::Code::DeadlineExceeded,
            ErrorKind::Canceled => tonic::Code::Cancelled,
            ErrorKind::Internal => tonic::Code::Internal,
        }
    }

    /// The inverse of [`ErrorKind::grpc_code`], for errors that come back from another role.
    pub fn from_grpc_code(code: tonic::Code) -> Self {
        match code {
            tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::OutOfRange => ErrorKind::BadRequest,
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => ErrorKind::Unauthorized,
            tonic::Code::NotFound => ErrorKind::NotFound,
            tonic::Code::ResourceExhausted => ErrorKind::TooManyRequests,
            tonic::Code::DeadlineExceeded => ErrorKind::Timeout,
            tonic::Code::Cancelled => ErrorKind::Canceled,
            tonic::Code::Unavailable | tonic::Code::Aborted => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// Whether the same request may succeed if sent again.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::TooManyRequests
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::Internal
        )
    }

    /// The `errorType` of the Prometheus HTTP API.
    pub fn prometheus_error_type(self) -> &'static str {
        match self {
            ErrorKind::BadRequest | ErrorKind::LimitExceeded => "bad_data",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NotFound => "not_found",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Implemented by every crate's error enum so the servers can map it.
pub trait ApiError: std::error::Error {
    fn kind(&self) -> ErrorKind;

    fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.kind().grpc_code(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_round_trip_keeps_retryability() {
        for k in [
            ErrorKind::BadRequest,
            ErrorKind::Unauthorized,
            ErrorKind::NotFound,
            ErrorKind::TooManyRequests,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Canceled,
            ErrorKind::Internal,
        ] {
            assert_eq!(
                ErrorKind::from_grpc_code(k.grpc_code()).retryable(),
                k.retryable(),
                "{k:?}"
            );
        }
        assert_eq!(ErrorKind::BadRequest.http_status(), 400);
        assert_eq!(ErrorKind::TooManyRequests.http_status(), 429);
        assert!(!ErrorKind::BadRequest.retryable());
    }
}
