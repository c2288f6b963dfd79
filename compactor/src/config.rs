//! The compactor's configuration section.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};

/// How the compactor merges, compacts and deletes blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactorConfig {
    /// Block ranges, smallest first: the ingesters' block range, then each
    /// level compaction's range. Each must be a multiple of the previous.
    pub block_ranges: Vec<Duration>,
    /// How often each owned tenant is compacted.
    pub compaction_interval: Duration,
    /// How long after a range ends before its blocks are compacted into the
    /// next level, so late blocks from ingesters are usually in by then
    /// (a later one is still merged, as an overlapping block).
    pub compaction_delay: Duration,
    /// How long a block marked for deletion stays readable, so queries that
    /// started before the mark never lose a block.
    pub deletion_delay: Duration,
    /// How long an upload without `meta.json` may sit before it is taken
    /// for abandoned and deleted.
    pub partial_block_delay: Duration,
    /// Default retention by time; 0 keeps blocks forever.
    pub retention: Duration,
    /// Per-tenant retention, overriding `retention`.
    pub tenant_retention: BTreeMap<String, Duration>,
}

const HOUR: u64 = 3600;

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig {
            block_ranges: vec![
                Duration::from_secs(2 * HOUR),
                Duration::from_secs(12 * HOUR),
                Duration::from_secs(24 * HOUR),
            ],
            compaction_interval: Duration::from_secs(5 * 60),
            compaction_delay: Duration::from_secs(HOUR),
            deletion_delay: Duration::from_secs(12 * HOUR),
            partial_block_delay: Duration::from_secs(HOUR),
            retention: Duration::default(),
            tenant_retention: BTreeMap::new(),
        }
    }
}

impl CompactorConfig {
    /// The retention of `tenant` in ms; `None` keeps its blocks forever.
    pub fn retention_ms(&self, tenant: &str) -> Option<i64> {
        let r = self
            .tenant_retention
            .get(tenant)
            .copied()
            .unwrap_or(self.retention);
        (!r.is_zero()).then(|| r.as_millis_i64())
    }

    /// Block ranges in ms.
    pub fn ranges_ms(&self) -> Vec<i64> {
        self.block_ranges
            .iter()
            .map(|d| d.as_millis_i64())
            .collect()
    }
}

impl Validate for CompactorConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let ranges = self.ranges_ms();
        let field = join(path, "block_ranges");
        if ranges.is_empty() {
            return Err(ConfigError::invalid(field, "needs at least one range"));
        }
        if ranges[0] <= 0 {
            return Err(ConfigError::invalid(field, "ranges must be positive"));
        }
        for w in ranges.windows(2) {
            if w[1] <= w[0] || w[1] % w[0] != 0 {
                return Err(ConfigError::invalid(
                    field,
                    "each range must be a larger multiple of the previous one (e.g. 2h, 12h, 24h)",
                ));
            }
        }
        if self.compaction_interval.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "compaction_interval"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(yaml: &str) -> Result<CompactorConfig, String> {
        let c: CompactorConfig = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate("compactor").map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_and_bad_values() {
        let c = parse("{}").unwrap();
        assert_eq!(c.ranges_ms(), vec![7_200_000, 43_200_000, 86_400_000]);
        assert_eq!(c.retention_ms("t"), None);
        let c = parse("retention: 30d\ntenant_retention: {short: 1d}").unwrap();
        assert_eq!(c.retention_ms("short"), Some(86_400_000));
        assert_eq!(c.retention_ms("other"), Some(30 * 86_400_000));
        let e = parse("block_ranges: [2h, 5h]").unwrap_err();
        assert!(e.contains("compactor.block_ranges"), "{e}");
        let e = parse("compaction_intervall: 1m").unwrap_err();
        assert!(e.contains("compaction_intervall"), "{e}");
        let e = parse("compaction_interval: 0s").unwrap_err();
        assert!(e.contains("compactor.compaction_interval"), "{e}");
    }
}
