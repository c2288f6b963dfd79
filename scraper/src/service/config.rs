//! The scraper role's section of tidemark's own configuration (`scraper:`).

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Validate, join};
use tidemark_model::TenantId;

use crate::sink::PushConfig;

/// Configuration of the scraper role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ScraperConfig {
    /// The `prometheus.yml` whose `scrape_configs` this scraper runs
    /// (`--scraper.config-file`). Empty: the role runs with no targets.
    pub config_file: String,
    /// Tenant of jobs without a `tenant` field. Empty: `tenancy.default_tenant`.
    pub default_tenant: String,
    /// gRPC addresses (`host:port`) of the distributors to push to. Empty:
    /// this process's own distributor in `all`, else the ring's members
    /// with the distributor role.
    pub distributor_addresses: Vec<String>,
    pub push: PushConfig,
}

impl Validate for ScraperConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if !self.default_tenant.is_empty() {
            TenantId::new(&self.default_tenant)
                .map_err(|e| ConfigError::invalid(join(path, "default_tenant"), e.to_string()))?;
        }
        for (i, a) in self.distributor_addresses.iter().enumerate() {
            let ok = a
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(ConfigError::invalid(
                    format!("{}[{i}]", join(path, "distributor_addresses")),
                    format!("{a:?} is not a host:port address"),
                ));
            }
        }
        self.push.validate(&join(path, "push"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let mut c = ScraperConfig {
            distributor_addresses: vec!["d1:9095".into(), "nope".into()],
            ..Default::default()
        };
        let e = c.validate("scraper").unwrap_err().to_string();
        assert!(e.contains("scraper.distributor_addresses[1]"), "{e}");
        c.distributor_addresses.clear();
        c.default_tenant = "a/b".into();
        let e = c.validate("scraper").unwrap_err().to_string();
        assert!(e.contains("scraper.default_tenant"), "{e}");
        c.default_tenant.clear();
        c.push.max_batch_samples = 0;
        let e = c.validate("scraper").unwrap_err().to_string();
        assert!(e.contains("scraper.push.max_batch_samples"), "{e}");
        assert!(ScraperConfig::default().validate("scraper").is_ok());
    }
}
