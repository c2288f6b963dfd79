//! Per-tenant limits: defaults from configuration, overrides per tenant
//! from configuration and from the membership group.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};
use tidemark_model::TenantId;

/// The limits of one tenant (`limits:` holds the defaults of every tenant).
///
/// Names follow the membership group's `TenantLimits` where they overlap
/// (`ingestion_rate`, `ingestion_burst`, `max_series`,
/// `max_labels_per_series`) and Mimir's otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Samples per second accepted from the tenant (token bucket refill
    /// rate, per distributor). 0 = unlimited.
    pub ingestion_rate: f64,
    /// Samples accepted at once above the rate (the bucket size).
    pub ingestion_burst: u64,
    /// Series the tenant may hold in one ingester's memory; enforced by
    /// the ingesters. 0 = unlimited.
    pub max_series: u64,
    /// Labels per series, the metric name included.
    pub max_labels_per_series: u32,
    /// Bytes of a label name.
    pub max_label_name_length: u32,
    /// Bytes of a label value.
    pub max_label_value_length: u32,
    /// Samples further than this in the future are refused.
    pub creation_grace_period: Duration,
    /// Samples older than this are refused; 0 disables the check.
    pub reject_old_samples_max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ingestion_rate: 10_000.0,
            ingestion_burst: 200_000,
            max_series: 150_000,
            max_labels_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            creation_grace_period: Duration::from_secs(600),
            reject_old_samples_max_age: Duration::default(),
        }
    }
}

/// Overrides of some limits for one tenant; absent fields keep the default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsOverride {
    pub ingestion_rate: Option<f64>,
    pub ingestion_burst: Option<u64>,
    pub max_series: Option<u64>,
    pub max_labels_per_series: Option<u32>,
    pub max_label_name_length: Option<u32>,
    pub max_label_value_length: Option<u32>,
    pub creation_grace_period: Option<Duration>,
    pub reject_old_samples_max_age: Option<Duration>,
}

impl Limits {
    /// These limits with `o`'s fields applied on top.
    pub fn with(&self, o: &LimitsOverride) -> Limits {
        Limits {
            ingestion_rate: o.ingestion_rate.unwrap_or(self.ingestion_rate),
            ingestion_burst: o.ingestion_burst.unwrap_or(self.ingestion_burst),
            max_series: o.max_series.unwrap_or(self.max_series),
            max_labels_per_series: o
                .max_labels_per_series
                .unwrap_or(self.max_labels_per_series),
            max_label_name_length: o
                .max_label_name_length
                .unwrap_or(self.max_label_name_length),
            max_label_value_length: o
                .max_label_value_length
                .unwrap_or(self.max_label_value_length),
            creation_grace_period: o
                .creation_grace_period
                .unwrap_or(self.creation_grace_period),
            reject_old_samples_max_age: o
                .reject_old_samples_max_age
                .unwrap_or(self.reject_old_samples_max_age),
        }
    }
}

fn check_limits(
    path: &str,
    rate: Option<f64>,
    burst: Option<u64>,
    labels: Option<u32>,
) -> Result<(), ConfigError> {
    if let Some(r) = rate
        && !(r.is_finite() && r >= 0.0)
    {
        return Err(ConfigError::invalid(
            join(path, "ingestion_rate"),
            format!("{r} is not a finite non-negative number"),
        ));
    }
    if let (Some(r), Some(0)) = (rate, burst)
        && r > 0.0
    {
        return Err(ConfigError::invalid(
            join(path, "ingestion_burst"),
            "must be at least 1 when ingestion_rate is set",
        ));
    }
    if labels == Some(0) {
        return Err(ConfigError::invalid(
            join(path, "max_labels_per_series"),
            "must be at least 1 (the metric name is a label)",
        ));
    }
    Ok(())
}

impl Validate for Limits {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        check_limits(
            path,
            Some(self.ingestion_rate),
            Some(self.ingestion_burst),
            Some(self.max_labels_per_series),
        )
    }
}

impl Validate for LimitsOverride {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        check_limits(
            path,
            self.ingestion_rate,
            self.ingestion_burst,
            self.max_labels_per_series,
        )
    }
}

/// Where per-tenant overrides come from at run time (the membership group
/// in a cluster). Called on every push: implementations answer from memory
/// (a cached snapshot), never from the network.
pub trait LimitsSource: Send + Sync + 'static {
    /// The overrides of `tenant`, if any.
    fn overrides(&self, tenant: &TenantId) -> Option<LimitsOverride>;
}

/// Resolves a tenant's effective limits: defaults, then the configured
/// `overrides`, then the run-time [`LimitsSource`] (which wins).
#[derive(Clone)]
pub(crate) struct LimitsResolver {
    defaults: Limits,
    configured: Arc<BTreeMap<String, LimitsOverride>>,
    source: Option<Arc<dyn LimitsSource>>,
}

impl LimitsResolver {
    pub(crate) fn new(
        defaults: Limits,
        configured: BTreeMap<String, LimitsOverride>,
        source: Option<Arc<dyn LimitsSource>>,
    ) -> Self {
        LimitsResolver {
            defaults,
            configured: Arc::new(configured),
            source,
        }
    }

    pub(crate) fn for_tenant(&self, tenant: &TenantId) -> Limits {
        let mut l = match self.configured.get(tenant.as_str()) {
            Some(o) => self.defaults.with(o),
            None => self.defaults.clone(),
        };
        if let Some(o) = self.source.as_ref().and_then(|s| s.overrides(tenant)) {
            l = l.with(&o);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Group;
    impl LimitsSource for Group {
        fn overrides(&self, tenant: &TenantId) -> Option<LimitsOverride> {
            (tenant.as_str() == "a").then(|| LimitsOverride {
                max_series: Some(7),
                ..Default::default()
            })
        }
    }

    #[test]
    fn group_overrides_win_over_configured_ones_which_win_over_defaults() {
        let mut configured = BTreeMap::new();
        configured.insert(
            "a".to_string(),
            LimitsOverride {
                max_series: Some(5),
                ingestion_rate: Some(1.0),
                ..Default::default()
            },
        );
        let r = LimitsResolver::new(Limits::default(), configured, Some(Arc::new(Group)));
        let a = r.for_tenant(&TenantId::new("a").unwrap());
        assert_eq!((a.max_series, a.ingestion_rate), (7, 1.0));
        let b = r.for_tenant(&TenantId::new("b").unwrap());
        assert_eq!(b, Limits::default());
    }

    #[test]
    fn bad_values_name_the_field() {
        let o = LimitsOverride {
            max_labels_per_series: Some(0),
            ..Default::default()
        };
        let e = o
            .validate("distributor.overrides.t1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("distributor.overrides.t1.max_labels_per_series"),
            "{e}"
        );
    }
}
