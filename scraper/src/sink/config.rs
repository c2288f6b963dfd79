//! Settings of the push to distributors (`scraper.push` in tidemark's YAML).

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};

/// How scraped samples are buffered and pushed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Samples held while waiting for a distributor; beyond this, whole
    /// scrapes are dropped and counted.
    pub max_buffered_samples: usize,
    /// Samples merged into one push request at most.
    pub max_batch_samples: usize,
    /// Push requests in flight at once.
    pub concurrency: usize,
    /// Time allowed for one push request.
    pub timeout: Duration,
    /// First retry delay; doubles per retry up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Retries of a failed push before its samples are dropped.
    pub max_retries: u32,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            max_buffered_samples: 2_000_000,
            max_batch_samples: 5_000,
            concurrency: 4,
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retries: 10,
        }
    }
}

impl Validate for PushConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        for (field, v) in [
            ("max_buffered_samples", self.max_buffered_samples),
            ("max_batch_samples", self.max_batch_samples),
            ("concurrency", self.concurrency),
        ] {
            if v == 0 {
                return Err(ConfigError::invalid(join(path, field), "must be positive"));
            }
        }
        for (field, d) in [
            ("timeout", self.timeout),
            ("min_backoff", self.min_backoff),
            ("max_backoff", self.max_backoff),
        ] {
            if d.is_zero() {
                return Err(ConfigError::invalid(join(path, field), "must be positive"));
            }
        }
        if self.min_backoff > self.max_backoff {
            return Err(ConfigError::invalid(
                join(path, "min_backoff"),
                format!(
                    "{} is greater than max_backoff {}",
                    self.min_backoff, self.max_backoff
                ),
            ));
        }
        Ok(())
    }
}
