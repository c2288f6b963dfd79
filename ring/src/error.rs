use thiserror::Error;

/// Everything that can go wrong in membership, the ring and the Raft group.
#[derive(Debug, Error)]
pub enum RingError {
    /// The membership configuration is invalid.
    #[error(transparent)]
    Config(#[from] tidemark_config::ConfigError),
    /// RocksDB refused an operation on the Raft store.
    #[error("raft store at {path}: {op}: {message}")]
    Store {
        path: String,
        op: &'static str,
        message: String,
    },
    /// A stored or received record could not be decoded.
    #[error("cannot decode {what}: {message}")]
    Decode { what: &'static str, message: String },
    /// The ring has fewer eligible members than the replication factor needs.
    #[error(
        "ring for role {role} has {available} eligible members, replication needs {needed} (check /ring for unhealthy or LEAVING members)"
    )]
    TooFewMembers {
        role: String,
        needed: usize,
        available: usize,
    },
    /// No member with this id is in the ring.
    #[error("no member {id} in the ring")]
    UnknownMember { id: String },
    /// A request named a role or state that does not exist.
    #[error("invalid {what} {value:?}: {expected}")]
    Invalid {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    /// No voter could be reached or none knows a leader yet.
    #[error("raft group unavailable: {message}")]
    Unavailable { message: String },
    /// A Raft operation failed for a reason other than availability.
    #[error("raft: {message}")]
    Raft { message: String },
    /// The service is shutting down.
    #[error("membership is shutting down")]
    ShuttingDown,
}

impl RingError {
    pub(crate) fn decode(what: &'static str, e: impl std::fmt::Display) -> Self {
        RingError::Decode {
            what,
            message: e.to_string(),
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RingError::Unavailable { .. } | RingError::TooFewMembers { .. }
        )
    }
}

impl From<RingError> for tonic::Status {
    fn from(e: RingError) -> Self {
        match &e {
            RingError::Invalid { .. } | RingError::Decode { .. } | RingError::Config(_) => {
                tonic::Status::invalid_argument(e.to_string())
            }
            RingError::UnknownMember { .. } => tonic::Status::not_found(e.to_string()),
            RingError::Unavailable { .. }
            | RingError::TooFewMembers { .. }
            | RingError::ShuttingDown => tonic::Status::unavailable(e.to_string()),
            RingError::Store { .. } | RingError::Raft { .. } => {
                tonic::Status::internal(e.to_string())
            }
        }
    }
}
