//! Service discovery sections: parsed and validated here; they run in
//! [`crate::discovery`] (see docs/scraper.md for what each supports).

use std::collections::BTreeMap;

use serde::Deserialize;

use tidemark_config::{ConfigError, Duration, Validate, join};
use tidemark_model::is_valid_label_name;

use super::http::with_http_client_fields;

/// A group of targets sharing labels (`static_configs` entries, and what
/// every discovery mechanism produces).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Prometheus refuses target addresses containing a slash.
pub(crate) fn check_target_address(addr: &str) -> Result<(), String> {
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    Ok(())
}

pub(crate) fn check_label_names<'a>(
    labels: impl IntoIterator<Item = &'a String>,
    path: &str,
) -> Result<(), ConfigError> {
    for n in labels {
        if !is_valid_label_name(n) {
            return Err(ConfigError::invalid(
                path,
                format!("{n:?} is not a valid label name"),
            ));
        }
    }
    Ok(())
}

impl Validate for StaticConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        for (i, t) in self.targets.iter().enumerate() {
            check_target_address(t)
                .map_err(|m| ConfigError::invalid(format!("{}[{i}]", join(path, "targets")), m))?;
        }
        check_label_names(self.labels.keys(), &join(path, "labels"))
    }
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

/// `file_sd_configs`: JSON or YAML files of target groups.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    #[serde(default = "five_minutes")]
    pub refresh_interval: Duration,
}

impl Validate for FileSdConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.files.is_empty() {
            return Err(ConfigError::invalid(
                join(path, "files"),
                "file service discovery config must contain at least one path name",
            ));
        }
        for (i, f) in self.files.iter().enumerate() {
            // Prometheus: `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
            let (dir_part, last) = match f.rfind('/') {
                Some(i) => (&f[..i], &f[i + 1..]),
                None => ("", f.as_str()),
            };
            let ext_ok = ["json", "yml", "yaml", "JSON", "YML", "YAML"]
                .iter()
                .any(|e| {
                    last.len() > e.len()
                        && last.ends_with(e)
                        && last.as_bytes()[last.len() - e.len() - 1] == b'.'
                });
            let star_ok = !dir_part.contains('*') && last.matches('*').count() <= 1;
            if !ext_ok || !star_ok {
                return Err(ConfigError::invalid(
                    format!("{}[{i}]", join(path, "files")),
                    format!("path name {f:?} is not valid for file discovery"),
                ));
            }
        }
        if self.refresh_interval.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "refresh_interval"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

with_http_client_fields! {
    /// `http_sd_configs`: target groups from an HTTP endpoint.
    pub struct HttpSdConfig {
        pub url: String,
        #[serde(default = "one_minute")]
        pub refresh_interval: Duration,
    }
}

impl Validate for HttpSdConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = join(path, "url");
        if self.url.is_empty() {
            return Err(ConfigError::invalid(p, "URL is missing"));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                p,
                format!("URL scheme must be 'http' or 'https', got {:?}", self.url),
            ));
        }
        self.http_client().validate(path)
    }
}

/// `kubernetes_sd_configs[].namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesNamespaces {
    #[serde(default)]
    pub own_namespace: bool,
    #[serde(default)]
    pub names: Vec<String>,
}

/// `kubernetes_sd_configs[].selectors[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSelector {
    pub role: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

/// `kubernetes_sd_configs[].attach_metadata`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAttachMetadata {
    #[serde(default)]
    pub node: bool,
    #[serde(default)]
    pub namespace: bool,
}

const K8S_ROLES: [&str; 6] = [
    "endpoints",
    "endpointslice",
    "service",
    "pod",
    "node",
    "ingress",
];

with_http_client_fields! {
    /// `kubernetes_sd_configs`.
    pub struct KubernetesSdConfig {
        pub role: String,
        #[serde(default)]
        pub api_server: Option<String>,
        #[serde(default)]
        pub kubeconfig_file: Option<String>,
        #[serde(default)]
        pub namespaces: KubernetesNamespaces,
        #[serde(default)]
        pub selectors: Vec<KubernetesSelector>,
        #[serde(default)]
        pub attach_metadata: KubernetesAttachMetadata,
    }
}

impl Validate for KubernetesSdConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if !K8S_ROLES.contains(&self.role.as_str()) {
            return Err(ConfigError::invalid(
                join(path, "role"),
                format!(
                    "unknown Kubernetes SD role {:?} (expected one of {})",
                    self.role,
                    K8S_ROLES.join(", ")
                ),
            ));
        }
        if self.api_server.is_some() && self.kubeconfig_file.is_some() {
            return Err(ConfigError::invalid(
                path,
                "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
            ));
        }
        if let Some(u) = &self.api_server
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                join(path, "api_server"),
                format!("{u:?} is not an http(s) URL"),
            ));
        }
        for (i, s) in self.selectors.iter().enumerate() {
            if !K8S_ROLES.contains(&s.role.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{}[{i}].role", join(path, "selectors")),
                    format!("unknown selector role {:?}", s.role),
                ));
            }
        }
        self.http_client().validate(path)
    }
}
