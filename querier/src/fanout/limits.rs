//! Per-query fetch limits, shared by every select of one query.

use std::sync::atomic::{AtomicU64, Ordering};

use tidemark_promql::StorageError;

use crate::QuerierConfig;

/// The limits one query runs under. 0 means "no limit" for each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryLimits {
    /// Distinct series after merging replicas (`querier.max_fetched_series_per_query`).
    pub max_series: u64,
    /// Samples received, replicas included (`querier.max_samples`).
    pub max_samples: u64,
    /// Encoded bytes received, replicas included (`querier.max_fetched_bytes_per_query`).
    pub max_bytes: u64,
}

impl QueryLimits {
    pub fn from_config(cfg: &QuerierConfig) -> Self {
        QueryLimits {
            max_series: cfg.max_fetched_series_per_query as u64,
            max_samples: cfg.max_samples as u64,
            max_bytes: cfg.max_fetched_bytes_per_query,
        }
    }
}

/// Counts what one query fetched and refuses more than its limits allow.
///
/// Shared (by `Arc`) by the concurrent reads of one query, so the counters
/// are atomics: a limit trips as soon as the sum over all ingesters passes
/// it, and every later read of the query fails too. The error names the
/// limit and the setting that raises it.
#[derive(Debug, Default)]
pub struct QueryLimiter {
    limits: QueryLimits,
    series: AtomicU64,
    samples: AtomicU64,
    bytes: AtomicU64,
}

impl QueryLimiter {
    pub fn new(limits: QueryLimits) -> Self {
        QueryLimiter {
            limits,
            ..QueryLimiter::default()
        }
    }

    /// No limits at all (tools, tests).
    pub fn unlimited() -> Self {
        QueryLimiter::default()
    }

    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// Records `n` more distinct series.
    pub fn add_series(&self, n: u64) -> Result<(), StorageError> {
        add(
            &self.series,
            n,
            self.limits.max_series,
            "series",
            "querier.max_fetched_series_per_query",
        )
    }

    /// Records `n` more fetched samples.
    pub fn add_samples(&self, n: u64) -> Result<(), StorageError> {
        add(
            &self.samples,
            n,
            self.limits.max_samples,
            "samples",
            "querier.max_samples",
        )
    }

    /// Records `n` more fetched bytes.
    pub fn add_bytes(&self, n: u64) -> Result<(), StorageError> {
        add(
            &self.bytes,
            n,
            self.limits.max_bytes,
            "bytes",
            "querier.max_fetched_bytes_per_query",
        )
    }

    /// (series, samples, bytes) fetched so far.
    pub fn fetched(&self) -> (u64, u64, u64) {
        (
            self.series.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

fn add(
    counter: &AtomicU64,
    n: u64,
    limit: u64,
    what: &str,
    setting: &str,
) -> Result<(), StorageError> {
    let total = counter.fetch_add(n, Ordering::Relaxed).saturating_add(n);
    if limit > 0 && total > limit {
        return Err(StorageError::Limit(format!(
            "the query exceeded the maximum number of {what} fetched from storage (limit: {limit} {what}, set by {setting}); narrow the selectors or the time range, or raise {setting}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_error_names_the_setting_and_stays_tripped() {
        let l = QueryLimiter::new(QueryLimits {
            max_series: 2,
            max_samples: 0,
            max_bytes: 10,
        });
        l.add_series(2).unwrap();
        let e = l.add_series(1).unwrap_err().to_string();
        assert!(e.contains("limit: 2 series"), "{e}");
        assert!(e.contains("querier.max_fetched_series_per_query"), "{e}");
        assert!(l.add_series(0).is_err(), "once over, stays over");
        l.add_samples(u64::MAX / 2).unwrap();
        assert!(
            l.add_bytes(11)
                .unwrap_err()
                .to_string()
                .contains("querier.max_fetched_bytes_per_query")
        );
    }
}
