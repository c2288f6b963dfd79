//! Configuration of membership: where the voters are and how fast members
//! are judged unhealthy.

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};

/// The `membership` section of the tidemark configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MembershipConfig {
    /// Stable id of this process; empty uses the advertised gRPC address.
    pub instance_id: String,
    /// gRPC addresses of the Raft voters. Empty means this process is the one
    /// and only voter (the embedded `all` default).
    pub voters: Vec<String>,
    /// Addresses tried for joins and ring reads, in order; empty uses `voters`.
    pub seeds: Vec<String>,
    /// Availability zone of this process; empty disables zone awareness for it.
    pub zone: String,
    /// Tokens each member takes on the ring of each of its roles.
    pub tokens_per_member: u32,
    /// Ingesters each series is written to. `0` chooses: 1 with a single
    /// voter (the embedded `all`), 3 when `voters` are configured.
    pub replication_factor: usize,
    /// How often a member sends a heartbeat (each one is a Raft entry).
    pub heartbeat_interval: Duration,
    /// A member whose last heartbeat is older is unhealthy and skipped.
    pub heartbeat_timeout: Duration,
    /// An unhealthy member is removed once its heartbeat is this old; `0s` never.
    pub forget_after: Duration,
    /// How often a non-voter pulls the ring from a voter.
    pub ring_refresh_interval: Duration,
    /// Raft election timeout (the lower bound; the upper bound is twice it).
    pub election_timeout: Duration,
    /// Take a Raft snapshot (and purge the log) after this many entries.
    pub snapshot_after_entries: u64,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            instance_id: String::new(),
            voters: Vec::new(),
            seeds: Vec::new(),
            zone: String::new(),
            tokens_per_member: 128,
            replication_factor: 0,
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            forget_after: Duration::from_secs(600),
            ring_refresh_interval: Duration::from_secs(1),
            election_timeout: Duration::from_millis(1000),
            snapshot_after_entries: 5000,
        }
    }
}

impl Validate for MembershipConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        for (i, v) in self.voters.iter().enumerate() {
            check_address(v, &join(path, &format!("voters[{i}]")))?;
        }
        for (i, v) in self.seeds.iter().enumerate() {
            check_address(v, &join(path, &format!("seeds[{i}]")))?;
        }
        let mut sorted = self.voters.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.voters.len() {
            return Err(ConfigError::invalid(
                join(path, "voters"),
                "lists the same address twice",
            ));
        }
        if self.voters.len().is_multiple_of(2) && !self.voters.is_empty() {
            return Err(ConfigError::invalid(
                join(path, "voters"),
                format!(
                    "{} voters tolerate no more failures than {}; use an odd count (1, 3 or 5)",
                    self.voters.len(),
                    self.voters.len() - 1
                ),
            ));
        }
        if !(1..=4096).contains(&self.tokens_per_member) {
            return Err(ConfigError::invalid(
                join(path, "tokens_per_member"),
                "must be between 1 and 4096",
            ));
        }
        if self.replication_factor > crate::MAX_REPLICATION_FACTOR {
            return Err(ConfigError::invalid(
                join(path, "replication_factor"),
                format!(
                    "{} is above the largest supported, {}",
                    self.replication_factor,
                    crate::MAX_REPLICATION_FACTOR
                ),
            ));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "heartbeat_interval"),
                "must be positive",
            ));
        }
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(ConfigError::invalid(
                join(path, "heartbeat_timeout"),
                format!(
                    "must be longer than heartbeat_interval ({})",
                    self.heartbeat_interval
                ),
            ));
        }
        if !self.forget_after.is_zero() && self.forget_after <= self.heartbeat_timeout {
            return Err(ConfigError::invalid(
                join(path, "forget_after"),
                format!(
                    "must be 0s (never) or longer than heartbeat_timeout ({})",
                    self.heartbeat_timeout
                ),
            ));
        }
        if self.ring_refresh_interval.is_zero() {
            return Err(ConfigError::invalid(
                join(path, "ring_refresh_interval"),
                "must be positive",
            ));
        }
        if self.election_timeout.as_std() < std::time::Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                join(path, "election_timeout"),
                "must be at least 100ms",
            ));
        }
        if self.snapshot_after_entries == 0 {
            return Err(ConfigError::invalid(
                join(path, "snapshot_after_entries"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

fn check_address(addr: &str, path: &str) -> Result<(), ConfigError> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            path,
            format!("expected host:port, got {addr:?}"),
        ))
    }
}

impl MembershipConfig {
    /// The replication factor in effect: `replication_factor`, or when it
    /// is 0, 1 for a single voter and 3 for a cluster.
    pub fn effective_replication_factor(&self) -> usize {
        match self.replication_factor {
            0 if self.voters.is_empty() => 1,
            0 => 3,
            n => n,
        }
    }

    /// This process's [`NodeInfo`](crate::NodeInfo): `instance_id` (or the
    /// gRPC address when empty) and `zone` from the config.
    pub fn node_info(
        &self,
        roles: Vec<crate::Role>,
        grpc_address: &str,
        http_address: &str,
    ) -> crate::NodeInfo {
        crate::NodeInfo {
            id: if self.instance_id.is_empty() {
                grpc_address.to_string()
            } else {
                self.instance_id.clone()
            },
            roles,
            grpc_address: grpc_address.to_string(),
            http_address: http_address.to_string(),
            zone: Some(self.zone.clone()).filter(|z| !z.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_typos_refused() {
        MembershipConfig::default().validate("membership").unwrap();
        let err = serde_yaml_like("{\"heartbeat_timout\": \"1m\"}");
        assert!(err.contains("heartbeat_timout"), "{err}");
    }

    fn serde_yaml_like(s: &str) -> String {
        serde_json::from_str::<MembershipConfig>(s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn bad_fields_are_named_with_their_path() {
        let c = MembershipConfig {
            voters: vec!["a:1".into(), "b".into(), "c:3".into()],
            ..Default::default()
        };
        let e = c.validate("membership").unwrap_err();
        assert!(e.to_string().contains("membership.voters[1]"), "{e}");

        let c = MembershipConfig {
            voters: vec!["a:1".into(), "b:2".into()],
            ..Default::default()
        };
        let e = c.validate("membership").unwrap_err();
        assert!(e.to_string().contains("membership.voters"), "{e}");

        let c = MembershipConfig {
            heartbeat_timeout: Duration::from_secs(1),
            ..Default::default()
        };
        let e = c.validate("membership").unwrap_err();
        assert!(
            e.to_string().contains("membership.heartbeat_timeout"),
            "{e}"
        );
    }
}
