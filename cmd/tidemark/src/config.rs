//! The whole configuration of a process: one section per component.
//!
//! Precedence: built-in defaults, then the YAML file, then flags. Every leaf
//! has a flag named after its path (`storage.data_dir` is
//! `--storage.data-dir`), derived from the defaults, so the YAML, the flags
//! and `tidemark config defaults` can never disagree.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use tidemark_bucket::BucketConfig;
use tidemark_compactor::CompactorConfig;
use tidemark_config::{ConfigError, Validate, join};
use tidemark_distributor::DistributorConfig;
use tidemark_ingester::IngesterConfig;
use tidemark_querier::QuerierConfig;
use tidemark_ring::MembershipConfig;
use tidemark_scraper::service::ScraperConfig;
use tidemark_server::{ServerConfig, TenancyConfig};

/// Everything a `tidemark` process reads at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// Roles to run: `all`, or a comma-separated list of roles.
    pub(crate) target: String,
    pub(crate) server: ServerConfig,
    pub(crate) tenancy: TenancyConfig,
    pub(crate) storage: StorageConfig,
    pub(crate) distributor: DistributorConfig,
    pub(crate) ingester: IngesterConfig,
    pub(crate) querier: QuerierConfig,
    pub(crate) membership: MembershipConfig,
    pub(crate) scraper: ScraperConfig,
    pub(crate) bucket: BucketConfig,
    pub(crate) compactor: CompactorConfig,
}

/// Where the process keeps its local data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageConfig {
    /// Root directory of local data (WAL, blocks, membership log).
    pub(crate) data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./data"),
        }
    }
}

impl Validate for StorageConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                join(path, "data_dir"),
                "must not be empty",
            ));
        }
        Ok(())
    }
}

impl Config {
    pub(crate) fn defaults() -> Self {
        Config {
            target: "all".into(),
            ..Default::default()
        }
    }

    /// The default configuration as a YAML tree, the source of all flags.
    pub(crate) fn defaults_yaml() -> Value {
        serde_yaml::to_value(Self::defaults()).unwrap_or(Value::Null)
    }

    /// Builds the configuration from a YAML document (already overlaid with
    /// flags), naming the path of the first field that does not fit.
    pub(crate) fn from_yaml(mut doc: Value) -> Result<Self, ConfigError> {
        if doc.is_null() {
            doc = Value::Mapping(Default::default());
        }
        let mut merged = Self::defaults_yaml();
        merge(&mut merged, doc);
        let cfg: Config = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::invalid(
                if path == "." {
                    "(top level)".into()
                } else {
                    path
                },
                e.into_inner().to_string(),
            )
        })?;
        cfg.validate("")?;
        Ok(cfg)
    }

    /// The effective configuration as YAML with secrets masked, for `/config`.
    pub(crate) fn to_masked_yaml(&self) -> String {
        let mut v = serde_yaml::to_value(self).unwrap_or(Value::Null);
        mask_secrets(&mut v);
        serde_yaml::to_string(&v).unwrap_or_default()
    }
}

impl Validate for Config {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.target
            .parse::<crate::roles::Target>()
            .map_err(|e| ConfigError::invalid(join(path, "target"), e))?;
        self.server.validate(&join(path, "server"))?;
        self.tenancy.validate(&join(path, "tenancy"))?;
        self.storage.validate(&join(path, "storage"))?;
        self.distributor.validate(&join(path, "distributor"))?;
        self.ingester.validate(&join(path, "ingester"))?;
        self.querier.validate(&join(path, "querier"))?;
        self.membership.validate(&join(path, "membership"))?;
        self.scraper.validate(&join(path, "scraper"))?;
        self.bucket.validate(&join(path, "bucket"))?;
        self.compactor.validate(&join(path, "compactor"))?;
        Ok(())
    }
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Keys whose values must never be shown.
fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "password",
        "secret",
        "secret_key",
        "access_key",
        "token",
        "bearer_token",
        "credentials",
    ]
    .iter()
    .any(|s| k == *s || k.ends_with(&format!("_{s}")))
}

fn mask_secrets(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let secret = k.as_str().is_some_and(is_secret_key);
                if secret && !matches!(val, Value::Null) && val.as_str() != Some("") {
                    *val = Value::String("********".into());
                } else {
                    mask_secrets(val);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = parse("").unwrap();
        assert_eq!(c.target, "all");
        assert_eq!(c.server.http_listen_address, "0.0.0.0:9009");
        assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn unknown_field_names_its_path() {
        let e = parse("server:\n  http_listen_adress: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server") && e.contains("http_listen_adress"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_its_path() {
        let e = parse("server:\n  grpc_max_message_bytes: lots\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.grpc_max_message_bytes"), "{e}");
    }

    #[test]
    fn invalid_value_names_its_path() {
        let e = parse("target: ingestor\n").unwrap_err().to_string();
        assert!(e.contains("`target`") && e.contains("ingestor"), "{e}");
        let e = parse("tenancy:\n  default_tenant: 'a/b'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tenancy.default_tenant"), "{e}");
    }

    #[test]
    fn secrets_are_masked() {
        let mut v: Value = serde_yaml::from_str(
            "s3:\n  secret_access_key: abc\n  bucket: b\ntokens_per_ingester: 128\n",
        )
        .unwrap();
        mask_secrets(&mut v);
        assert_eq!(
            v["s3"]["secret_access_key"],
            Value::String("********".into())
        );
        assert_eq!(v["s3"]["bucket"], Value::String("b".into()));
        assert_eq!(v["tokens_per_ingester"], Value::Number(128.into()));
    }
}
