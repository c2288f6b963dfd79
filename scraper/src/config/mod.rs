//! The scrape part of a `prometheus.yml`, read unchanged.
//!
//! [`PrometheusConfig::from_yaml`] accepts a whole Prometheus configuration
//! file: `global` and `scrape_configs` are used; the other top-level sections
//! Prometheus knows (`rule_files`, `alerting`, `remote_write`, ...) are
//! accepted and reported by [`PrometheusConfig::ignored_sections`] so the
//! caller can log them. Unknown fields anywhere are refused, and every error
//! names the path of the bad field (`scrape_configs[2].relabel_configs[0].regex`).
//! Defaults are Prometheus's: interval 1m, timeout 10s (never above the
//! interval), `metrics_path: /metrics`, `scheme: http`, `honor_timestamps: true`.

pub mod http;
mod scrape;
pub mod sd;

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use tidemark_config::{ConfigError, Duration, Validate, join};

pub use scrape::{ScrapeConfig, parse_size};

use crate::parse::ScrapeProtocol;

/// Prometheus's default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's default scrape timeout.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `global` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    /// Unset means 10s, or the interval when that is shorter.
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub rule_query_offset: Option<Duration>,
    /// Added to every scraped sample whose labels do not already have the
    /// name (what Prometheus does when it sends samples elsewhere).
    pub external_labels: BTreeMap<String, String>,
    pub query_log_file: Option<String>,
    pub scrape_failure_log_file: Option<String>,
    pub body_size_limit: Option<String>,
    pub sample_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub keep_dropped_targets: Option<u64>,
    pub scrape_protocols: Option<Vec<String>>,
    pub metric_name_validation_scheme: Option<String>,
    pub metric_name_escaping_scheme: Option<String>,
    pub always_scrape_classic_histograms: Option<bool>,
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    pub scrape_native_histograms: Option<bool>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: Duration::default(),
            evaluation_interval: DEFAULT_SCRAPE_INTERVAL,
            rule_query_offset: None,
            external_labels: BTreeMap::new(),
            query_log_file: None,
            scrape_failure_log_file: None,
            body_size_limit: None,
            sample_limit: None,
            label_limit: None,
            label_name_length_limit: None,
            label_value_length_limit: None,
            target_limit: None,
            keep_dropped_targets: None,
            scrape_protocols: None,
            metric_name_validation_scheme: None,
            metric_name_escaping_scheme: None,
            always_scrape_classic_histograms: None,
            convert_classic_histograms_to_nhcb: None,
            scrape_native_histograms: None,
        }
    }
}

impl GlobalConfig {
    fn resolve(&mut self) {
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = if DEFAULT_SCRAPE_TIMEOUT > self.scrape_interval {
                self.scrape_interval
            } else {
                DEFAULT_SCRAPE_TIMEOUT
            };
        }
    }
}

impl Validate for GlobalConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.scrape_interval.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "scrape_interval"),
                "must be positive",
            ));
        }
        if self.scrape_timeout > self.scrape_interval {
            return Err(ConfigError::invalid(
                join(path, "scrape_timeout"),
                format!(
                    "global scrape timeout {} greater than scrape interval {}",
                    self.scrape_timeout, self.scrape_interval
                ),
            ));
        }
        sd::check_label_names(self.external_labels.keys(), &join(path, "external_labels"))?;
        if let Some(s) = &self.body_size_limit {
            parse_size(s).map_err(|m| ConfigError::invalid(join(path, "body_size_limit"), m))?;
        }
        if let Some(names) = &self.scrape_protocols {
            for (i, n) in names.iter().enumerate() {
                if ScrapeProtocol::from_name(n).is_none() {
                    return Err(ConfigError::invalid(
                        format!("{}[{i}]", join(path, "scrape_protocols")),
                        format!("unknown scrape protocol {n:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A whole prometheus.yml; only the scrape part is used.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default)]
    pub scrape_config_files: Option<serde_yaml::Value>,
    #[serde(default)]
    pub rule_files: Option<serde_yaml::Value>,
    #[serde(default)]
    pub alerting: Option<serde_yaml::Value>,
    #[serde(default)]
    pub remote_write: Option<serde_yaml::Value>,
    #[serde(default)]
    pub remote_read: Option<serde_yaml::Value>,
    #[serde(default)]
    pub storage: Option<serde_yaml::Value>,
    #[serde(default)]
    pub tracing: Option<serde_yaml::Value>,
    #[serde(default)]
    pub otlp: Option<serde_yaml::Value>,
    #[serde(default)]
    pub runtime: Option<serde_yaml::Value>,
}

impl PrometheusConfig {
    /// Parses, resolves defaults and validates a prometheus.yml. Errors name
    /// the path of the offending field.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let mut cfg: PrometheusConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path.is_empty() || path == "." {
                ConfigError::Parse { message: inner }
            } else {
                ConfigError::invalid(path, inner)
            }
        })?;
        cfg.global.resolve();
        for sc in &mut cfg.scrape_configs {
            sc.resolve(&cfg.global);
        }
        cfg.validate("")?;
        Ok(cfg)
    }

    /// Reads and parses a prometheus.yml file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_yaml(&text)
    }

    /// Top-level sections present in the file that the scraper ignores.
    pub fn ignored_sections(&self) -> Vec<&'static str> {
        [
            ("scrape_config_files", self.scrape_config_files.is_some()),
            ("rule_files", self.rule_files.is_some()),
            ("alerting", self.alerting.is_some()),
            ("remote_write", self.remote_write.is_some()),
            ("remote_read", self.remote_read.is_some()),
            ("storage", self.storage.is_some()),
            ("tracing", self.tracing.is_some()),
            ("otlp", self.otlp.is_some()),
            ("runtime", self.runtime.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n)
        .collect()
    }

    /// Logs one note per ignored section and unsupported discovery block.
    pub fn log_ignored(&self) {
        for section in self.ignored_sections() {
            tracing::info!(section, "prometheus.yml section ignored by the scraper");
        }
        for sc in &self.scrape_configs {
            for sd in sc.unsupported_discovery() {
                tracing::warn!(job = %sc.job_name, discovery = sd, "service discovery not supported yet; its targets are not scraped");
            }
        }
    }

    /// The job with this name.
    pub fn job(&self, name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == name)
    }
}

impl Validate for PrometheusConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.global.validate(&join(path, "global"))?;
        let mut names = HashSet::new();
        for (i, sc) in self.scrape_configs.iter().enumerate() {
            let p = format!("{}[{i}]", join(path, "scrape_configs"));
            sc.validate(&p)?;
            if !names.insert(sc.job_name.as_str()) {
                return Err(ConfigError::invalid(
                    join(&p, "job_name"),
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        sc.job_name
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
