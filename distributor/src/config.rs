//! The distributor's configuration section (`distributor:` in the YAML file).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};
use tidemark_model::TenantId;

use crate::limits::{Limits, LimitsOverride};

/// Configuration of the distributor role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DistributorConfig {
    /// Largest remote write body accepted, in bytes, both as received
    /// (compressed) and after snappy decompression (Mimir's
    /// `max_recv_msg_size`).
    pub max_recv_msg_size: usize,
    /// Time allowed for one push to one ingester.
    pub remote_timeout: Duration,
    /// Refused series named in a 400 answer; the total is always given.
    pub max_reported_refusals: usize,
    /// Limits of every tenant.
    pub limits: Limits,
    /// Per-tenant overrides of `limits`, by tenant id. Overrides held in
    /// the membership group take precedence.
    pub overrides: BTreeMap<String, LimitsOverride>,
}

impl Default for DistributorConfig {
    fn default() -> Self {
        DistributorConfig {
            max_recv_msg_size: 100 << 20,
            remote_timeout: Duration::from_secs(2),
            max_reported_refusals: 10,
            limits: Limits::default(),
            overrides: BTreeMap::new(),
        }
    }
}

impl Validate for DistributorConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.max_recv_msg_size == 0 {
            return Err(ConfigError::invalid(
                join(path, "max_recv_msg_size"),
                "must be positive",
            ));
        }
        if self.remote_timeout.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "remote_timeout"),
                "must be positive",
            ));
        }
        self.limits.validate(&join(path, "limits"))?;
        let overrides = join(path, "overrides");
        for (tenant, o) in &self.overrides {
            let p = join(&overrides, tenant);
            if let Err(e) = TenantId::new(tenant) {
                return Err(ConfigError::invalid(p, e.to_string()));
            }
            o.validate(&p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_overrides_parse() {
        DistributorConfig::default()
            .validate("distributor")
            .unwrap();
        let c: DistributorConfig = serde_json::from_str(
            r#"{"limits": {"ingestion_rate": 5}, "overrides": {"team-a": {"max_series": 10, "creation_grace_period": "1m"}}}"#,
        )
        .unwrap();
        assert_eq!(c.limits.ingestion_rate, 5.0);
        assert_eq!(c.overrides["team-a"].max_series, Some(10));
        c.validate("distributor").unwrap();
        assert!(
            serde_json::from_str::<DistributorConfig>(r#"{"overrides": {"t": {"nope": 1}}}"#)
                .is_err()
        );
    }
}
