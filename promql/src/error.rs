//! The engine's error type. Its `Display` text is what a user sees in the
//! HTTP API and Grafana, so it follows Prometheus's wording.

use crate::storage::StorageError;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum PromqlError {
    /// The query text is not valid PromQL (the message carries the position
    /// the parser reports).
    #[error("{msg}")]
    Parse { msg: String },
    /// The query is well-formed but cannot be evaluated on this data
    /// (many-to-many matching, duplicate label sets, bad arguments).
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples in memory than `max_samples` allows.
    #[error(
        "query processing would load too many samples into memory in query execution (limit: {limit}, set by max_samples)"
    )]
    TooManySamples { limit: usize },
    /// The query ran longer than the configured timeout.
    #[error("query timed out in {phase} (timeout: {timeout:?})")]
    Timeout {
        phase: &'static str,
        timeout: std::time::Duration,
    },
    /// The client went away or the query was cancelled.
    #[error("query was canceled in {phase}")]
    Canceled { phase: &'static str },
    /// The storage failed to answer a select.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PromqlError {
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        PromqlError::Execution(msg.into())
    }

    /// Whether the error is the client's fault (bad query or arguments), as
    /// opposed to a limit, a timeout or a storage failure.
    pub fn is_bad_data(&self) -> bool {
        matches!(self, PromqlError::Parse { .. } | PromqlError::Execution(_))
    }
}
