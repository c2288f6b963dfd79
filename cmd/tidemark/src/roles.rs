//! The roles a process can run, and the `-target` list that selects them.

use std::fmt;
use std::str::FromStr;

/// One role of tidemark. `all` is not a role: it is the list of every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Role {
    // Declared in start order: a role starts after the ones it depends on
    // (distributors and queriers reach ingesters) and stops before them.
    Ingester,
    Compactor,
    Distributor,
    Querier,
    Scraper,
}

impl Role {
    pub(crate) const ALL: [Role; 5] = [
        Role::Ingester,
        Role::Compactor,
        Role::Distributor,
        Role::Querier,
        Role::Scraper,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Ingester => "ingester",
            Role::Compactor => "compactor",
            Role::Distributor => "distributor",
            Role::Querier => "querier",
            Role::Scraper => "scraper",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parsed `-target`: a sorted, de-duplicated set of roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) roles: Vec<Role>,
    /// Whether the user asked for `all` (the embedded single-process mode).
    pub(crate) embedded: bool,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut roles = Vec::new();
        let mut embedded = false;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                embedded = true;
                roles.extend(Role::ALL);
                continue;
            }
            let role = Role::ALL
                .into_iter()
                .find(|r| r.name() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown target {part:?}: expected all, distributor, ingester, querier, compactor, scraper, or a comma-separated list"
                    )
                })?;
            roles.push(role);
        }
        if roles.is_empty() {
            return Err("target is empty: expected all or a comma-separated list of roles".into());
        }
        roles.sort();
        roles.dedup();
        Ok(Target { roles, embedded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_targets() {
        let t: Target = "all".parse().unwrap();
        assert!(t.embedded && t.roles.len() == 5);
        let t: Target = "querier, distributor,querier".parse().unwrap();
        assert_eq!(t.roles, vec![Role::Distributor, Role::Querier]);
        assert!(!t.embedded);
        let e = "ingestor".parse::<Target>().unwrap_err();
        assert!(e.contains("ingestor"), "{e}");
        assert!("".parse::<Target>().is_err());
    }
}
