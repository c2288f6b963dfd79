//! The ingester's one error type and its mapping to gRPC.

use tidemark_server::{ApiError, ErrorKind};
use tidemark_tsdb::TsdbError;

/// Why an ingester call failed as a whole. Per-series refusals (out of
/// order, duplicate, series limit) are not errors: they travel back in
/// `PushResponse.errors`.
#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    /// The WAL is still being replayed after a start.
    #[error("ingester is not ready: {0}")]
    NotReady(String),

    /// The request names no valid tenant.
    #[error("invalid tenant {tenant:?}: {reason}")]
    InvalidTenant { tenant: String, reason: String },

    /// A label matcher that cannot be built (bad regex, unknown type).
    #[error("invalid matcher {matcher}: {reason}")]
    InvalidMatcher { matcher: String, reason: String },

    /// A query selects more series than allowed.
    #[error(
        "the query selects more than {limit} series (limit {setting}); narrow the selectors or raise the limit"
    )]
    TooManySeries { limit: u64, setting: &'static str },

    /// The head or its WAL failed: nothing of the push is acknowledged.
    #[error("storage of tenant {tenant} failed: {source}")]
    Storage {
        tenant: String,
        #[source]
        source: TsdbError,
    },

    /// The TSDB could not be opened or replayed at start.
    #[error("opening the TSDB under {dir} failed: {source}")]
    Open {
        dir: String,
        #[source]
        source: TsdbError,
    },

    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError for IngesterError {
    fn kind(&self) -> ErrorKind {
        match self {
            IngesterError::NotReady(_) => ErrorKind::Unavailable,
            IngesterError::InvalidTenant { .. } | IngesterError::InvalidMatcher { .. } => {
                ErrorKind::BadRequest
            }
            IngesterError::TooManySeries { .. } => ErrorKind::LimitExceeded,
            // A failed WAL refuses writes until the ingester restarts; the
            // other replicas still take the write, so the distributor's
            // retry logic (quorum) is what helps here.
            IngesterError::Storage { .. } => ErrorKind::Unavailable,
            IngesterError::Open { .. } | IngesterError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<IngesterError> for tonic::Status {
    fn from(e: IngesterError) -> Self {
        e.to_status()
    }
}
