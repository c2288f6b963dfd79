use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong talking to the bucket.
#[derive(Debug, Error)]
pub enum BucketError {
    /// The object store refused or failed a request; retrying may help.
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A block or tenant name that cannot be part of an object key.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// An object whose content does not parse (meta.json, the bucket
    /// index, a deletion mark).
    #[error("corrupt object {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(transparent)]
    Tsdb(#[from] tidemark_tsdb::TsdbError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl BucketError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BucketError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the error says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            BucketError::Store(object_store::Error::NotFound { .. })
        )
    }
}
