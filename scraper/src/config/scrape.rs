//! One `scrape_configs` entry: a scrape job.

use std::collections::BTreeMap;

use tidemark_config::{ConfigError, Duration, Validate, join};
use tidemark_model::TenantId;

use super::http::with_http_client_fields;
use super::sd::{FileSdConfig, HttpSdConfig, KubernetesSdConfig, StaticConfig};
use crate::parse::ScrapeProtocol;
use crate::relabel::RelabelConfig;

fn default_scheme() -> String {
    "http".to_string()
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

fn default_true() -> bool {
    true
}

with_http_client_fields! {
    /// A scrape job as written in prometheus.yml, plus tidemark's `tenant`.
    ///
    /// After [`super::PrometheusConfig::from_yaml`] the interval, timeout and
    /// limits are resolved against `global` (the `Option`s are filled), so
    /// readers use [`ScrapeConfig::interval`] and friends.
    pub struct ScrapeConfig {
        pub job_name: String,
        /// tidemark's one addition: the tenant this job's samples go to
        /// (else the scraper's default tenant).
        #[serde(default)]
        pub tenant: Option<String>,
        #[serde(default)]
        pub honor_labels: bool,
        #[serde(default = "default_true")]
        pub honor_timestamps: bool,
        #[serde(default)]
        pub track_timestamps_staleness: bool,
        #[serde(default = "default_scheme")]
        pub scheme: String,
        #[serde(default = "default_metrics_path")]
        pub metrics_path: String,
        #[serde(default)]
        pub params: BTreeMap<String, Vec<String>>,
        #[serde(default)]
        pub scrape_interval: Option<Duration>,
        #[serde(default)]
        pub scrape_timeout: Option<Duration>,
        #[serde(default)]
        pub scrape_protocols: Option<Vec<String>>,
        #[serde(default)]
        pub fallback_scrape_protocol: Option<String>,
        #[serde(default)]
        pub enable_compression: Option<bool>,
        #[serde(default)]
        pub body_size_limit: Option<String>,
        #[serde(default)]
        pub sample_limit: Option<u64>,
        #[serde(default)]
        pub label_limit: Option<u64>,
        #[serde(default)]
        pub label_name_length_limit: Option<u64>,
        #[serde(default)]
        pub label_value_length_limit: Option<u64>,
        #[serde(default)]
        pub target_limit: Option<u64>,
        #[serde(default)]
        pub keep_dropped_targets: Option<u64>,
        #[serde(default)]
        pub scrape_classic_histograms: Option<bool>,
        #[serde(default)]
        pub always_scrape_classic_histograms: Option<bool>,
        #[serde(default)]
        pub convert_classic_histograms_to_nhcb: Option<bool>,
        #[serde(default)]
        pub scrape_native_histograms: Option<bool>,
        #[serde(default)]
        pub native_histogram_bucket_limit: Option<u64>,
        #[serde(default)]
        pub native_histogram_min_bucket_factor: Option<f64>,
        #[serde(default)]
        pub metric_name_validation_scheme: Option<String>,
        #[serde(default)]
        pub metric_name_escaping_scheme: Option<String>,
        #[serde(default)]
        pub static_configs: Vec<StaticConfig>,
        #[serde(default)]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(default)]
        pub http_sd_configs: Vec<HttpSdConfig>,
        #[serde(default)]
        pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
        #[serde(default)]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(default)]
        pub metric_relabel_configs: Vec<RelabelConfig>,
        // Discovery mechanisms Prometheus has and tidemark does not run:
        // accepted so an unchanged prometheus.yml loads, reported by
        // `unsupported_discovery`.
        #[serde(default)]
        pub azure_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub consul_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub digitalocean_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub docker_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub dockerswarm_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub dns_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub ec2_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub eureka_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub gce_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub hetzner_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub ionos_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub kuma_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub lightsail_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub linode_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub marathon_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub nerve_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub nomad_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub openstack_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub ovhcloud_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub puppetdb_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub scaleway_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub serverset_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub stackit_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub triton_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub uyuni_sd_configs: Option<serde_yaml::Value>,
        #[serde(default)]
        pub vultr_sd_configs: Option<serde_yaml::Value>,
    }
}

impl ScrapeConfig {
    /// The scrape interval (resolved against `global`).
    pub fn interval(&self) -> Duration {
        self.scrape_interval
            .unwrap_or(super::DEFAULT_SCRAPE_INTERVAL)
    }

    /// The scrape timeout (resolved against `global` and the interval).
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout.unwrap_or(super::DEFAULT_SCRAPE_TIMEOUT)
    }

    /// The resolved body size limit in bytes; 0 means none.
    pub fn body_size_limit_bytes(&self) -> u64 {
        self.body_size_limit
            .as_deref()
            .and_then(|s| parse_size(s).ok())
            .unwrap_or(0)
    }

    /// The protocols to ask for, in preference order.
    pub fn protocols(&self) -> Vec<ScrapeProtocol> {
        match &self.scrape_protocols {
            Some(names) => names
                .iter()
                .filter_map(|n| ScrapeProtocol::from_name(n))
                .collect(),
            None => ScrapeProtocol::DEFAULT.to_vec(),
        }
    }

    /// Names of configured discovery mechanisms tidemark does not run.
    pub fn unsupported_discovery(&self) -> Vec<&'static str> {
        let all: [(&'static str, bool); 26] = [
            ("azure_sd_configs", self.azure_sd_configs.is_some()),
            ("consul_sd_configs", self.consul_sd_configs.is_some()),
            (
                "digitalocean_sd_configs",
                self.digitalocean_sd_configs.is_some(),
            ),
            ("docker_sd_configs", self.docker_sd_configs.is_some()),
            (
                "dockerswarm_sd_configs",
                self.dockerswarm_sd_configs.is_some(),
            ),
            ("dns_sd_configs", self.dns_sd_configs.is_some()),
            ("ec2_sd_configs", self.ec2_sd_configs.is_some()),
            ("eureka_sd_configs", self.eureka_sd_configs.is_some()),
            ("gce_sd_configs", self.gce_sd_configs.is_some()),
            ("hetzner_sd_configs", self.hetzner_sd_configs.is_some()),
            ("ionos_sd_configs", self.ionos_sd_configs.is_some()),
            ("kuma_sd_configs", self.kuma_sd_configs.is_some()),
            ("lightsail_sd_configs", self.lightsail_sd_configs.is_some()),
            ("linode_sd_configs", self.linode_sd_configs.is_some()),
            ("marathon_sd_configs", self.marathon_sd_configs.is_some()),
            ("nerve_sd_configs", self.nerve_sd_configs.is_some()),
            ("nomad_sd_configs", self.nomad_sd_configs.is_some()),
            ("openstack_sd_configs", self.openstack_sd_configs.is_some()),
            ("ovhcloud_sd_configs", self.ovhcloud_sd_configs.is_some()),
            ("puppetdb_sd_configs", self.puppetdb_sd_configs.is_some()),
            ("scaleway_sd_configs", self.scaleway_sd_configs.is_some()),
            ("serverset_sd_configs", self.serverset_sd_configs.is_some()),
            ("stackit_sd_configs", self.stackit_sd_configs.is_some()),
            ("triton_sd_configs", self.triton_sd_configs.is_some()),
            ("uyuni_sd_configs", self.uyuni_sd_configs.is_some()),
            ("vultr_sd_configs", self.vultr_sd_configs.is_some()),
        ];
        all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect()
    }

    /// Fills unset interval, timeout and limits from `global`, the way
    /// Prometheus's `ScrapeConfig.Validate` does.
    pub(super) fn resolve(&mut self, global: &super::GlobalConfig) {
        let interval = *self.scrape_interval.get_or_insert(global.scrape_interval);
        if self.scrape_timeout.is_none() {
            self.scrape_timeout = Some(if global.scrape_timeout > interval {
                interval
            } else {
                global.scrape_timeout
            });
        }
        for (mine, theirs) in [
            (&mut self.sample_limit, global.sample_limit),
            (&mut self.label_limit, global.label_limit),
            (
                &mut self.label_name_length_limit,
                global.label_name_length_limit,
            ),
            (
                &mut self.label_value_length_limit,
                global.label_value_length_limit,
            ),
            (&mut self.target_limit, global.target_limit),
            (&mut self.keep_dropped_targets, global.keep_dropped_targets),
        ] {
            if mine.is_none() {
                *mine = theirs;
            }
        }
        if self.body_size_limit.is_none() {
            self.body_size_limit.clone_from(&global.body_size_limit);
        }
        if self.scrape_protocols.is_none() {
            self.scrape_protocols.clone_from(&global.scrape_protocols);
        }
    }
}

/// Parses a Prometheus byte size (`units.Base2Bytes`): `0`, `512`, `10KB`,
/// `5MiB`, `1GB`... where KB, MB, GB mean powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 0, 512KB or 10MiB"))?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KB" | "KiB" | "K" => 1 << 10,
        "MB" | "MiB" | "M" => 1 << 20,
        "GB" | "GiB" | "G" => 1 << 30,
        "TB" | "TiB" | "T" => 1 << 40,
        "PB" | "PiB" | "P" => 1 << 50,
        _ => {
            return Err(format!(
                "{s:?} has an unknown unit (expected B, KB, MB, GB, TB or PB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

impl Validate for ScrapeConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.job_name.is_empty() {
            return Err(ConfigError::invalid(
                join(path, "job_name"),
                "job_name is empty",
            ));
        }
        if let Some(t) = &self.tenant {
            TenantId::new(t)
                .map_err(|e| ConfigError::invalid(join(path, "tenant"), e.to_string()))?;
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(ConfigError::invalid(
                join(path, "scheme"),
                format!("invalid scheme {:?} (expected http or https)", self.scheme),
            ));
        }
        if !self.metrics_path.starts_with('/') {
            return Err(ConfigError::invalid(
                join(path, "metrics_path"),
                format!("{:?} must start with /", self.metrics_path),
            ));
        }
        let interval = self.interval();
        if interval.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "scrape_interval"),
                "must be positive",
            ));
        }
        if self.timeout().is_zero() {
            return Err(ConfigError::invalid(
                join(path, "scrape_timeout"),
                "must be positive",
            ));
        }
        if self.timeout() > interval {
            return Err(ConfigError::invalid(
                join(path, "scrape_timeout"),
                format!(
                    "scrape timeout {} greater than scrape interval {} for scrape config with job name {:?}",
                    self.timeout(),
                    interval,
                    self.job_name
                ),
            ));
        }
        if let Some(s) = &self.body_size_limit {
            parse_size(s).map_err(|m| ConfigError::invalid(join(path, "body_size_limit"), m))?;
        }
        if let Some(names) = &self.scrape_protocols {
            let mut seen = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let p = format!("{}[{i}]", join(path, "scrape_protocols"));
                let Some(proto) = ScrapeProtocol::from_name(n) else {
                    return Err(ConfigError::invalid(
                        p,
                        format!("unknown scrape protocol {n:?}"),
                    ));
                };
                if seen.contains(&proto) {
                    return Err(ConfigError::invalid(
                        p,
                        format!("duplicated protocol in scrape_protocols: {n}"),
                    ));
                }
                seen.push(proto);
            }
        }
        if let Some(n) = &self.fallback_scrape_protocol
            && ScrapeProtocol::from_name(n).is_none()
        {
            return Err(ConfigError::invalid(
                join(path, "fallback_scrape_protocol"),
                format!("unknown scrape protocol {n:?}"),
            ));
        }
        self.http_client().validate(path)?;
        for (i, c) in self.static_configs.iter().enumerate() {
            c.validate(&format!("{}[{i}]", join(path, "static_configs")))?;
        }
        for (i, c) in self.file_sd_configs.iter().enumerate() {
            c.validate(&format!("{}[{i}]", join(path, "file_sd_configs")))?;
        }
        for (i, c) in self.http_sd_configs.iter().enumerate() {
            c.validate(&format!("{}[{i}]", join(path, "http_sd_configs")))?;
        }
        for (i, c) in self.kubernetes_sd_configs.iter().enumerate() {
            c.validate(&format!("{}[{i}]", join(path, "kubernetes_sd_configs")))?;
        }
        for (i, c) in self.relabel_configs.iter().enumerate() {
            c.validate(&format!("{}[{i}]", join(path, "relabel_configs")))?;
        }
        for (i, c) in self.metric_relabel_configs.iter().enumerate() {
            c.validate(&format!("{}[{i}]", join(path, "metric_relabel_configs")))?;
        }
        Ok(())
    }
}
