//! Who is in the cluster: roles, states and member records.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::RingError;

/// A role a process runs. Each role has its own ring: ingesters own series,
/// scrapers own targets, compactors own tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingester,
    Distributor,
    Querier,
    Compactor,
    Scraper,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Ingester,
        Role::Distributor,
        Role::Querier,
        Role::Compactor,
        Role::Scraper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingester => "ingester",
            Role::Distributor => "distributor",
            Role::Querier => "querier",
            Role::Compactor => "compactor",
            Role::Scraper => "scraper",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RingError::Invalid {
                what: "role",
                value: s.to_string(),
                expected: "one of ingester, distributor, querier, compactor, scraper",
            })
    }
}

/// The lifecycle state a member declares. Health (heartbeat age) is separate
/// and computed by the reader, see [`Member::is_healthy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MemberState {
    /// Registered, owns tokens, not yet serving (e.g. an ingester replaying its WAL).
    Joining,
    /// Serving reads and writes.
    Active,
    /// Shutting down: still holds data for reads, takes no new writes.
    Leaving,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Joining => "JOINING",
            MemberState::Active => "ACTIVE",
            MemberState::Leaving => "LEAVING",
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemberState {
    type Err = RingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "JOINING" => Ok(MemberState::Joining),
            "ACTIVE" => Ok(MemberState::Active),
            "LEAVING" => Ok(MemberState::Leaving),
            _ => Err(RingError::Invalid {
                what: "member state",
                value: s.to_string(),
                expected: "JOINING, ACTIVE or LEAVING",
            }),
        }
    }
}

/// What a process says about itself when it joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Stable instance id (survives restarts; a restarted process with the
    /// same id gets its tokens back).
    pub id: String,
    pub roles: Vec<Role>,
    /// Address other processes dial for gRPC (`host:port`).
    pub grpc_address: String,
    /// Address of the HTTP server (`host:port`), shown on `/ring`.
    pub http_address: String,
    /// Availability zone; `None` when zones are not used.
    pub zone: Option<String>,
}

/// One member of the cluster as committed in the Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub roles: Vec<Role>,
    pub grpc_address: String,
    pub http_address: String,
    pub zone: Option<String>,
    pub state: MemberState,
    /// Sorted tokens on the 32-bit ring. A member owns the range that ends at
    /// each of its tokens (exclusive of the previous token).
    pub tokens: Vec<u32>,
    /// Leader wall-clock time (ms since the epoch) of the last committed heartbeat.
    pub last_heartbeat_ms: i64,
    /// Leader wall-clock time (ms) at which the member first joined.
    pub joined_ms: i64,
}

impl Member {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// A member is healthy when its last heartbeat is younger than `timeout_ms`
    /// at `now_ms`. Clocks of leader and reader are assumed close (NTP); the
    /// timeout (a minute by default) dwarfs normal skew.
    pub fn is_healthy(&self, now_ms: i64, timeout_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_heartbeat_ms) <= timeout_ms
    }
}

/// Per-tenant limits that override the defaults of the write path. `None`
/// keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimits {
    /// Samples per second accepted from the tenant.
    pub ingestion_rate: Option<f64>,
    /// Samples accepted in one burst above the rate.
    pub ingestion_burst: Option<u64>,
    /// Active series per ingester for the tenant.
    pub max_series: Option<u64>,
    /// Labels per series.
    pub max_labels_per_series: Option<u32>,
}

impl TenantLimits {
    /// Refuses values the write path could not apply, naming the field.
    pub fn validate(&self) -> Result<(), RingError> {
        if let Some(r) = self.ingestion_rate
            && !(r.is_finite() && r >= 0.0)
        {
            return Err(RingError::Invalid {
                what: "ingestion_rate",
                value: r.to_string(),
                expected: "a finite number of samples per second, 0 or more",
            });
        }
        if self.ingestion_burst == Some(0) && self.ingestion_rate.is_some_and(|r| r > 0.0) {
            return Err(RingError::Invalid {
                what: "ingestion_burst",
                value: "0".to_string(),
                expected: "at least 1 when ingestion_rate is set",
            });
        }
        if self.max_labels_per_series == Some(0) {
            return Err(RingError::Invalid {
                what: "max_labels_per_series",
                value: "0".to_string(),
                expected: "at least 1 (the metric name is a label)",
            });
        }
        Ok(())
    }
}
