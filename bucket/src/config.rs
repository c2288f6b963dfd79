//! Which object store holds the blocks, and how to reach it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Validate, join};

use crate::BucketError;

/// The object store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A local directory: the embedded default, and single-node setups.
    #[default]
    Filesystem,
    S3,
    Gcs,
    Azure,
}

/// Where blocks are stored. Only the section of the chosen `backend` is
/// read; the others keep their defaults.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BucketConfig {
    pub backend: BackendKind,
    pub filesystem: FilesystemConfig,
    pub s3: S3Config,
    pub gcs: GcsConfig,
    pub azure: AzureConfig,
}

/// A bucket in a local directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// The bucket directory; empty means `<storage.data_dir>/bucket`.
    pub dir: PathBuf,
}

/// An S3 (or S3-compatible: MinIO, Ceph RGW, ...) bucket.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    /// Empty for AWS; `http(s)://host:port` for other S3 servers.
    pub endpoint: String,
    pub region: String,
    /// Empty to take credentials from the environment or instance metadata.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain-HTTP endpoint (test and on-premises servers).
    pub allow_http: bool,
    /// `bucket.host` addressing instead of `host/bucket` (AWS style).
    pub virtual_hosted_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            allow_http: false,
            virtual_hosted_style: false,
        }
    }
}

/// A Google Cloud Storage bucket.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GcsConfig {
    pub bucket: String,
    /// Path of a service account JSON key file; empty for the environment.
    pub service_account_path: PathBuf,
    /// The service account JSON key itself, instead of a path.
    pub service_account_credentials: String,
}

/// An Azure Blob Storage container.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    pub account: String,
    pub container: String,
    /// Storage account access key; empty for the environment.
    pub access_key: String,
    /// Use the Azurite emulator on its default local endpoint.
    pub use_emulator: bool,
}

const MASK: &str = "<secret>";

fn masked(s: &str) -> &str {
    if s.is_empty() { "" } else { MASK }
}

impl fmt::Debug for BucketConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketConfig")
            .field("backend", &self.backend)
            .field("filesystem", &self.filesystem)
            .field("s3", &self.s3)
            .field("gcs", &self.gcs)
            .field("azure", &self.azure)
            .finish()
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &masked(&self.secret_access_key))
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .finish()
    }
}

impl fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field("service_account_path", &self.service_account_path)
            .field(
                "service_account_credentials",
                &masked(&self.service_account_credentials),
            )
            .finish()
    }
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("access_key", &masked(&self.access_key))
            .field("use_emulator", &self.use_emulator)
            .finish()
    }
}

fn required(path: &str, field: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::invalid(
            join(path, field),
            "must be set for this backend",
        ));
    }
    Ok(())
}

impl Validate for BucketConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        match self.backend {
            BackendKind::Filesystem => Ok(()),
            BackendKind::S3 => self.s3.validate(&join(path, "s3")),
            BackendKind::Gcs => {
                let p = join(path, "gcs");
                required(&p, "bucket", &self.gcs.bucket)
            }
            BackendKind::Azure => {
                let p = join(path, "azure");
                required(&p, "account", &self.azure.account)?;
                required(&p, "container", &self.azure.container)
            }
        }
    }
}

impl Validate for S3Config {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        required(path, "bucket", &self.bucket)?;
        required(path, "region", &self.region)?;
        let e = self.endpoint.as_str();
        if !e.is_empty() {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    join(path, "endpoint"),
                    format!("expected http://host:port or https://host:port, got {e:?}"),
                ));
            }
            if e.starts_with("http://") && !self.allow_http {
                return Err(ConfigError::invalid(
                    join(path, "endpoint"),
                    "is plain HTTP: set allow_http: true to use it",
                ));
            }
        }
        if self.access_key_id.is_empty() != self.secret_access_key.is_empty() {
            return Err(ConfigError::invalid(
                join(path, "secret_access_key"),
                "access_key_id and secret_access_key must be set together",
            ));
        }
        Ok(())
    }
}

impl BucketConfig {
    /// The bucket directory of the filesystem backend: `filesystem.dir`,
    /// or `<data_dir>/bucket` when that is empty.
    pub fn filesystem_dir(&self, data_dir: &Path) -> PathBuf {
        if self.filesystem.dir.as_os_str().is_empty() {
            data_dir.join("bucket")
        } else {
            self.filesystem.dir.clone()
        }
    }

    /// Connects to the configured object store. The filesystem backend
    /// creates its directory.
    pub fn build(&self, data_dir: &Path) -> Result<Arc<dyn ObjectStore>, BucketError> {
        let store: Arc<dyn ObjectStore> = match self.backend {
            BackendKind::Filesystem => {
                let dir = self.filesystem_dir(data_dir);
                std::fs::create_dir_all(&dir).map_err(|e| BucketError::Io {
                    path: dir.clone(),
                    source: e,
                })?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(&dir)
                        .map_err(BucketError::from)?
                        .with_automatic_cleanup(true),
                )
            }
            BackendKind::S3 => {
                let c = &self.s3;
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&c.bucket)
                    .with_region(&c.region)
                    .with_allow_http(c.allow_http)
                    .with_virtual_hosted_style_request(c.virtual_hosted_style);
                if !c.endpoint.is_empty() {
                    b = b.with_endpoint(&c.endpoint);
                }
                if !c.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&c.access_key_id)
                        .with_secret_access_key(&c.secret_access_key);
                }
                Arc::new(b.build()?)
            }
            BackendKind::Gcs => {
                let c = &self.gcs;
                let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(&c.bucket);
                if !c.service_account_path.as_os_str().is_empty() {
                    b = b.with_service_account_path(c.service_account_path.to_string_lossy());
                }
                if !c.service_account_credentials.is_empty() {
                    b = b.with_service_account_key(&c.service_account_credentials);
                }
                Arc::new(b.build()?)
            }
            BackendKind::Azure => {
                let c = &self.azure;
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_account(&c.account)
                    .with_container_name(&c.container)
                    .with_use_emulator(c.use_emulator);
                if !c.access_key.is_empty() {
                    b = b.with_access_key(&c.access_key);
                }
                Arc::new(b.build()?)
            }
        };
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(yaml: &str) -> Result<BucketConfig, String> {
        let c: BucketConfig = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate("bucket").map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn default_is_a_filesystem_bucket_under_the_data_dir() {
        let c = parse("{}").unwrap();
        assert_eq!(c.backend, BackendKind::Filesystem);
        assert_eq!(
            c.filesystem_dir(Path::new("/d")),
            PathBuf::from("/d/bucket")
        );
        let tmp = tempfile::tempdir().unwrap();
        c.build(tmp.path()).unwrap();
        assert!(tmp.path().join("bucket").is_dir());
    }

    #[test]
    fn unknown_fields_and_missing_settings_name_the_field() {
        let e = parse("s3: {bukket: x}").unwrap_err();
        assert!(e.contains("bukket"), "{e}");
        let e = parse("backend: s3").unwrap_err();
        assert!(e.contains("bucket.s3.bucket"), "{e}");
        let e =
            parse("backend: s3\ns3: {bucket: b, endpoint: 'http://127.0.0.1:9000'}").unwrap_err();
        assert!(
            e.contains("bucket.s3.endpoint") && e.contains("allow_http"),
            "{e}"
        );
        let e = parse("backend: azure\nazure: {account: a}").unwrap_err();
        assert!(e.contains("bucket.azure.container"), "{e}");
        let e = parse("backend: gcs").unwrap_err();
        assert!(e.contains("bucket.gcs.bucket"), "{e}");
        let e = parse("backend: ftp").unwrap_err();
        assert!(e.contains("ftp"), "{e}");
    }

    #[test]
    fn secrets_are_masked_in_debug_output() {
        let c = parse(
            "backend: s3\ns3: {bucket: b, access_key_id: AKID, secret_access_key: hunter2}\n\
             azure: {access_key: azkey}\ngcs: {service_account_credentials: gkey}",
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("AKID"), "{dbg}");
        for secret in ["hunter2", "azkey", "gkey"] {
            assert!(!dbg.contains(secret), "{secret} leaked: {dbg}");
        }
    }
}
