//! The distributor's one error type and its mapping to HTTP and gRPC.

use http::StatusCode;
use tidemark_server::{ApiError, ErrorKind, TenantError};

use crate::push::Written;

/// Why a push failed as a whole, or (for [`DistributorError::Refused`])
/// partly. Every variant that stems from a limit names the setting that
/// raises it.
#[derive(Debug, thiserror::Error)]
pub enum DistributorError {
    #[error(transparent)]
    Tenant(#[from] TenantError),

    /// `Content-Type` is not a remote write protobuf we speak.
    #[error(
        "unsupported Content-Type {0:?}: expected application/x-protobuf with proto=prometheus.WriteRequest (remote write 1.0) or proto=io.prometheus.write.v2.Request (remote write 2.0)"
    )]
    UnsupportedContentType(String),

    /// `Content-Encoding` other than snappy.
    #[error("unsupported Content-Encoding {0:?}: only snappy (block format) is supported")]
    UnsupportedEncoding(String),

    /// The body is larger than `distributor.max_recv_msg_size`.
    #[error(
        "{what} of {size} is larger than the limit of {limit} bytes (distributor.max_recv_msg_size)"
    )]
    TooLarge {
        what: &'static str,
        /// "N bytes", or "more than N bytes" when the body was cut off.
        size: String,
        limit: usize,
    },

    /// The body cannot be read, decompressed or decoded.
    #[error("cannot decode the request body: {0}")]
    BadBody(String),

    /// The tenant's ingestion rate limit would be exceeded; nothing was written.
    #[error(
        "ingestion rate limit of {rate} samples/s with burst {burst} exceeded for tenant {tenant} while pushing {samples} samples (limits.ingestion_rate, limits.ingestion_burst); retry later"
    )]
    RateLimited {
        tenant: String,
        samples: u64,
        rate: f64,
        burst: u64,
    },

    /// Some series were refused (bad data or a per-series limit); the
    /// others were written. `summary` names the first refusals.
    #[error("{summary}")]
    Refused {
        summary: String,
        written: Written,
        samples_refused: u64,
    },

    /// Some series could not be written to a quorum of their replicas.
    #[error(
        "{series} series could not be written to a quorum of ingesters ({} samples were written): {cause}",
        written.samples
    )]
    QuorumNotReached {
        series: usize,
        written: Written,
        cause: String,
    },

    /// The ring has no usable replication set.
    #[error("no ingesters to write to: {0}")]
    Ring(#[from] tidemark_ingester_client::RingError),
}

impl ApiError for DistributorError {
    fn kind(&self) -> ErrorKind {
        match self {
            DistributorError::Tenant(e) => e.kind(),
            DistributorError::UnsupportedContentType(_)
            | DistributorError::UnsupportedEncoding(_)
            | DistributorError::TooLarge { .. }
            | DistributorError::BadBody(_)
            | DistributorError::Refused { .. } => ErrorKind::BadRequest,
            DistributorError::RateLimited { .. } => ErrorKind::TooManyRequests,
            DistributorError::QuorumNotReached { .. } | DistributorError::Ring(_) => {
                ErrorKind::Unavailable
            }
        }
    }
}

impl DistributorError {
    /// The HTTP status of this error: the [`ErrorKind`]'s, except where
    /// the remote write spec asks for a more precise 4xx.
    pub fn http_status(&self) -> StatusCode {
        match self {
            DistributorError::UnsupportedContentType(_)
            | DistributorError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            DistributorError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            other => other.kind().http_status(),
        }
    }

    /// What was written despite the error (for the 2.0 `-Written` headers).
    pub fn written(&self) -> Written {
        match self {
            DistributorError::Refused { written, .. }
            | DistributorError::QuorumNotReached { written, .. } => *written,
            _ => Written::default(),
        }
    }
}

impl From<DistributorError> for tonic::Status {
    fn from(e: DistributorError) -> Self {
        e.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_remote_write_spec() {
        assert_eq!(
            DistributorError::UnsupportedContentType("text/plain".into()).http_status(),
            415
        );
        assert_eq!(
            DistributorError::Tenant(TenantError::Missing).http_status(),
            401
        );
        let r = DistributorError::RateLimited {
            tenant: "t".into(),
            samples: 1,
            rate: 1.0,
            burst: 1,
        };
        assert_eq!(r.http_status(), 429);
        assert!(r.kind().retryable());
        let q = DistributorError::QuorumNotReached {
            series: 1,
            written: Written::default(),
            cause: "down".into(),
        };
        assert_eq!(q.http_status(), 503);
        assert!(!DistributorError::BadBody("x".into()).kind().retryable());
    }
}
