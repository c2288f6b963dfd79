//! The querier's configuration section (`querier:` in the YAML file).

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};

/// Settings of the query path. The defaults are Prometheus's where
/// Prometheus has the same knob (`--query.timeout`, `--query.max-samples`,
/// `--query.lookback-delta`); the fetch limits are tidemark's own and exist
/// because a querier fans out to many ingesters and must not be taken down
/// by one query.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuerierConfig {
    /// Longest a query may run, fetch and evaluation included. A request's
    /// `timeout` parameter can only shorten it.
    pub timeout: Duration,
    /// Most samples a query may hold in memory at once (fetched plus
    /// produced by evaluation), and most samples it may fetch from storage.
    pub max_samples: usize,
    /// How far back an instant selector looks for the latest sample. A
    /// request's `lookback_delta` parameter overrides it for that query.
    pub lookback_delta: Duration,
    /// Resolution of subqueries written without one (`x[1h:]`).
    pub default_evaluation_interval: Duration,
    /// Most distinct series one query may fetch (after merging replicas);
    /// 0 means no limit.
    pub max_fetched_series_per_query: usize,
    /// Most bytes of series data one query may receive from ingesters (the
    /// encoded size of every replica's answer); 0 means no limit.
    pub max_fetched_bytes_per_query: u64,
    /// Range used by `/api/v1/series`, `/api/v1/labels` and
    /// `/api/v1/label/<name>/values` when the request has no `start`: the
    /// last `default_metadata_range` before `end`. `0s` means the whole
    /// time range, as Prometheus does.
    pub default_metadata_range: Duration,
    /// Reading blocks from the bucket, when the process has one.
    pub blocks: crate::BucketStoreConfig,
}

impl Default for QuerierConfig {
    fn default() -> Self {
        QuerierConfig {
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            lookback_delta: Duration::from_secs(300),
            default_evaluation_interval: Duration::from_secs(60),
            max_fetched_series_per_query: 1_000_000,
            max_fetched_bytes_per_query: 4 << 30,
            default_metadata_range: Duration::default(),
            blocks: crate::BucketStoreConfig::default(),
        }
    }
}

impl Validate for QuerierConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "timeout"),
                "must be greater than 0s",
            ));
        }
        if self.max_samples == 0 {
            return Err(ConfigError::invalid(
                join(path, "max_samples"),
                "must be greater than 0",
            ));
        }
        if self.lookback_delta.as_millis_i64() < 1 {
            return Err(ConfigError::invalid(
                join(path, "lookback_delta"),
                "must be at least 1ms",
            ));
        }
        if self.default_evaluation_interval.as_millis_i64() < 1 {
            return Err(ConfigError::invalid(
                join(path, "default_evaluation_interval"),
                "must be at least 1ms",
            ));
        }
        self.blocks.validate(&join(path, "blocks"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_prometheus_and_validate() {
        let c = QuerierConfig::default();
        assert_eq!(c.timeout.as_std().as_secs(), 120);
        assert_eq!(c.max_samples, 50_000_000);
        assert_eq!(c.lookback_delta.as_std().as_secs(), 300);
        c.validate("querier").unwrap();
    }

    #[test]
    fn bad_values_name_their_path() {
        let c = QuerierConfig {
            timeout: Duration::default(),
            ..QuerierConfig::default()
        };
        let e = c.validate("querier").unwrap_err().to_string();
        assert!(e.contains("querier.timeout"), "{e}");
        let c = QuerierConfig {
            max_samples: 0,
            ..QuerierConfig::default()
        };
        let e = c.validate("querier").unwrap_err().to_string();
        assert!(e.contains("querier.max_samples"), "{e}");
    }

    #[test]
    fn yaml_refuses_unknown_fields() {
        let c: QuerierConfig = serde_json::from_str(r#"{"timeout":"30s"}"#).unwrap();
        assert_eq!(c.timeout.as_std().as_secs(), 30);
        assert!(serde_json::from_str::<QuerierConfig>(r#"{"timout":"30s"}"#).is_err());
    }
}
