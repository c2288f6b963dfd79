//! Which tenant a request belongs to.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tidemark_config::{ConfigError, Validate, join};
use tidemark_model::TenantId;

use crate::{ApiError, ErrorKind};

/// The header Mimir, Cortex and Loki read the tenant from.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// Multi-tenancy switch.
///
/// On: every request must carry `X-Scope-OrgID` (401 otherwise). Off: the
/// header is ignored and everything belongs to `default_tenant`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TenancyConfig {
    /// `auto`: off in the embedded `all` target, on otherwise; or `true`/`false`.
    pub multitenancy_enabled: MultitenancyMode,
    /// The tenant of every request when multi-tenancy is off.
    pub default_tenant: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MultitenancyMode {
    Auto,
    True,
    False,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        TenancyConfig {
            multitenancy_enabled: MultitenancyMode::Auto,
            default_tenant: "anonymous".into(),
        }
    }
}

impl Validate for TenancyConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        TenantId::new(&self.default_tenant)
            .map(|_| ())
            .map_err(|e| ConfigError::invalid(join(path, "default_tenant"), e.to_string()))
    }
}

/// The resolved tenancy rule of a running process.
#[derive(Debug, Clone)]
pub struct Tenancy {
    enabled: bool,
    default_tenant: TenantId,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("no org id: multi-tenancy is enabled and the request has no {TENANT_HEADER} header")]
    Missing,
    #[error("{0}")]
    Invalid(String),
}

impl ApiError for TenantError {
    fn kind(&self) -> ErrorKind {
        match self {
            TenantError::Missing => ErrorKind::Unauthorized,
            TenantError::Invalid(_) => ErrorKind::BadRequest,
        }
    }
}

impl Tenancy {
    /// `embedded` says whether the process runs the `all` target, which
    /// decides `auto`. Call after validation.
    pub fn new(cfg: &TenancyConfig, embedded: bool) -> Result<Self, TenantError> {
        let enabled = match cfg.multitenancy_enabled {
            MultitenancyMode::Auto => !embedded,
            MultitenancyMode::True => true,
            MultitenancyMode::False => false,
        };
        let default_tenant =
            TenantId::new(&cfg.default_tenant).map_err(|e| TenantError::Invalid(e.to_string()))?;
        Ok(Tenancy {
            enabled,
            default_tenant,
        })
    }

    /// A single-tenant rule, for tests and tools.
    pub fn single(tenant: TenantId) -> Self {
        Tenancy {
            enabled: false,
            default_tenant: tenant,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The tenant of a request.
    pub fn tenant(&self, headers: &HeaderMap) -> Result<TenantId, TenantError> {
        if !self.enabled {
            return Ok(self.default_tenant.clone());
        }
        let raw = headers
            .get(TENANT_HEADER)
            .ok_or(TenantError::Missing)?
            .to_str()
            .map_err(|_| TenantError::Invalid(format!("{TENANT_HEADER} is not valid ASCII")))?;
        TenantId::new(raw.trim()).map_err(|e| TenantError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_off_in_all_and_on_in_a_cluster() {
        let cfg = TenancyConfig::default();
        let mut h = HeaderMap::new();
        let all = Tenancy::new(&cfg, true).unwrap();
        assert_eq!(all.tenant(&h).unwrap().as_str(), "anonymous");
        let cluster = Tenancy::new(&cfg, false).unwrap();
        assert_eq!(cluster.tenant(&h), Err(TenantError::Missing));
        h.insert(TENANT_HEADER, "team-a".parse().unwrap());
        assert_eq!(cluster.tenant(&h).unwrap().as_str(), "team-a");
        // With multi-tenancy off the header is ignored.
        assert_eq!(all.tenant(&h).unwrap().as_str(), "anonymous");
        h.insert(TENANT_HEADER, "a/b".parse().unwrap());
        assert!(matches!(cluster.tenant(&h), Err(TenantError::Invalid(_))));
    }
}
