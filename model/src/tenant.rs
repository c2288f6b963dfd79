use std::fmt;
use std::sync::Arc;

use crate::ModelError;

/// A tenant id, as sent in `X-Scope-OrgID`.
///
/// The rules follow Mimir's, because tenants are directory names in object
/// storage: at most 150 bytes of `[a-zA-Z0-9!_.*'()-]`, and neither `.` nor `..`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

impl TenantId {
    pub const MAX_LEN: usize = 150;

    pub fn new(id: &str) -> Result<Self, ModelError> {
        let bad = |reason: &str| ModelError::InvalidTenant {
            tenant: id.to_string(),
            reason: reason.to_string(),
        };
        if id.is_empty() {
            return Err(bad("must not be empty"));
        }
        if id.len() > Self::MAX_LEN {
            return Err(bad("longer than 150 bytes"));
        }
        if id == "." || id == ".." {
            return Err(bad("must not be '.' or '..'"));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
        {
            return Err(bad(&format!(
                "character {c:?} is not allowed (allowed: a-z A-Z 0-9 ! - _ . * ' ( ))"
            )));
        }
        Ok(TenantId(Arc::from(id)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(TenantId::new("team-a_1.prod").is_ok());
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("..").is_err());
        assert!(TenantId::new("a/b").is_err());
        assert!(TenantId::new(&"x".repeat(151)).is_err());
    }
}
