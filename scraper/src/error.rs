//! The scraper's error type.

use thiserror::Error;

use crate::parse::ParseError;

/// Everything that can go wrong in the scraper, with what the operator
/// needs to act: the job, the target, the limit that was hit.
#[derive(Debug, Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Config(#[from] tidemark_config::ConfigError),
    /// A discovered target that cannot be scraped (bad address, interval...).
    #[error("job {job:?}: target {labels}: {message}")]
    Target {
        job: String,
        labels: String,
        message: String,
    },
    /// A discovery source (e.g. a file_sd file) could not be read.
    #[error("job {job:?}: discovery source {origin}: {message}")]
    Discovery {
        job: String,
        origin: String,
        message: String,
    },
    /// The body could not be parsed; the target is marked down with this.
    #[error("parse error: {0}")]
    Parse(#[from] ParseError),
    /// The HTTP request failed or returned a non-2xx status.
    #[error("scrape of {url} failed: {message}")]
    Http { url: String, message: String },
    #[error("scrape of {url} timed out after {timeout_ms} ms")]
    Timeout { url: String, timeout_ms: i64 },
    /// A per-scrape limit was exceeded; `setting` names the knob that raises it.
    #[error("{what} exceeded: {actual} > {limit} (raise `{setting}` in the scrape config)")]
    LimitExceeded {
        what: &'static str,
        setting: &'static str,
        limit: u64,
        actual: u64,
    },
    /// A scraped series is unusable (duplicate label, bad name...).
    #[error("invalid series {series}: {message}")]
    InvalidSeries { series: String, message: String },
    /// The sink refused a batch.
    #[error("sink for tenant {tenant} refused {samples} samples: {message}")]
    Sink {
        tenant: String,
        samples: usize,
        message: String,
    },
}

impl tidemark_server::ApiError for ScrapeError {
    fn kind(&self) -> tidemark_server::ErrorKind {
        use tidemark_server::ErrorKind;
        match self {
            ScrapeError::Config(_)
            | ScrapeError::Target { .. }
            | ScrapeError::Parse(_)
            | ScrapeError::InvalidSeries { .. }
            | ScrapeError::LimitExceeded { .. } => ErrorKind::BadRequest,
            ScrapeError::Discovery { .. } | ScrapeError::Http { .. } | ScrapeError::Sink { .. } => {
                ErrorKind::Unavailable
            }
            ScrapeError::Timeout { .. } => ErrorKind::Timeout,
        }
    }
}
