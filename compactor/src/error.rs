use tidemark_bucket::BucketError;
use tidemark_server::{ApiError, ErrorKind};
use tidemark_tsdb::TsdbError;

/// What can fail in the compactor: receiving a block, or a compaction.
#[derive(Debug, thiserror::Error)]
pub enum CompactorError {
    /// The sender's request is wrong: a bad name, a checksum mismatch, an
    /// offset the compactor has not reached. The message says which.
    #[error("{0}")]
    InvalidUpload(String),
    /// Another stream is uploading the same block right now.
    #[error("block {block} of tenant {tenant} is being uploaded by another stream")]
    UploadInProgress { tenant: String, block: String },
    /// The block is not whole on `complete` (a file short of its size).
    #[error("block {block} of tenant {tenant} is incomplete: {reason}")]
    Incomplete {
        tenant: String,
        block: String,
        reason: String,
    },
    #[error("staging {path}: {source}")]
    Staging {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Tsdb(#[from] TsdbError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CompactorError {
    pub(crate) fn staging(path: &std::path::Path, source: std::io::Error) -> Self {
        CompactorError::Staging {
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for CompactorError {
    fn from(e: tokio::task::JoinError) -> Self {
        CompactorError::Internal(format!("blocking task failed: {e}"))
    }
}

impl ApiError for CompactorError {
    fn kind(&self) -> ErrorKind {
        match self {
            CompactorError::InvalidUpload(_) | CompactorError::Incomplete { .. } => {
                ErrorKind::BadRequest
            }
            // The sender retries (after asking Status) and succeeds once the
            // other stream is gone or the object store is back.
            CompactorError::UploadInProgress { .. } | CompactorError::Bucket(_) => {
                ErrorKind::Unavailable
            }
            CompactorError::Staging { .. }
            | CompactorError::Tsdb(_)
            | CompactorError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<CompactorError> for tonic::Status {
    fn from(e: CompactorError) -> Self {
        e.to_status()
    }
}
