//! The storage side of the engine: what a query reads from.
//!
//! The engine never knows whether it reads a head, blocks in object storage
//! or remote ingesters: it asks a [`Queryable`] for the series matching a
//! selector over a time range, once per selector, before evaluating.

use tidemark_model::{Labels, Matcher, Sample};

/// What the engine reads from: a head, blocks, or remote ingesters.
#[async_trait::async_trait]
pub trait Queryable: Send + Sync {
    /// All series that match every matcher and have samples in
    /// `[hints.start, hints.end]` (ms, inclusive), each series' samples sorted
    /// by timestamp. Samples outside the range may be included or not: the
    /// engine filters by time itself.
    async fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError>;
}

/// Hints passed with a select: the time range the engine needs and how it
/// will use it, so a storage can prune blocks or pre-aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectHints {
    /// First timestamp needed, ms, inclusive.
    pub start: i64,
    /// Last timestamp needed, ms, inclusive.
    pub end: i64,
    /// Query step in ms (0 for an instant query).
    pub step: i64,
    /// The function the selector is an argument of, if any (e.g. `rate`).
    pub func: Option<String>,
    /// The range of a range selector in ms (0 for an instant selector).
    pub range: i64,
}

/// One series: its labels and its float samples sorted by timestamp.
///
/// Staleness markers are kept as [`tidemark_model::STALE_NAN`] samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

impl Series {
    pub fn new(labels: Labels, samples: Vec<Sample>) -> Self {
        Series { labels, samples }
    }
}

/// Why a storage could not answer a select.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage failed; the message says why.
    #[error("storage error: {0}")]
    Message(String),
    /// A storage-side limit was exceeded (series, chunks, bytes).
    #[error("storage limit exceeded: {0}")]
    Limit(String),
    /// The storage is temporarily unreachable; retrying may help.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}
