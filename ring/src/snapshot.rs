//! The read side of the ring: an immutable snapshot built from the committed
//! state, swapped whole, so lookups never take a lock or wait on Raft.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::RingError;
use crate::member::{Member, MemberState, Role, TenantLimits};
use crate::state::RingState;
use crate::tokens::{RING_SIZE, range_len};
use crate::zone_sets::ZoneSets;

/// The largest replication factor a lookup supports.
pub const MAX_REPLICATION_FACTOR: usize = 8;

/// What a lookup is for; decides which members may take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Writing new samples (or owning a target/tenant): ACTIVE and healthy only.
    Write,
    /// Reading data: ACTIVE or LEAVING (it still holds data), healthy only.
    Read,
}

/// Facts about the Raft group at the time the snapshot was built.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RaftInfo {
    pub leader_address: Option<String>,
    pub applied_index: u64,
}

/// The token table of one role: parallel arrays, sorted by token.
#[derive(Debug, Clone, Default)]
struct TokenTable {
    tokens: Vec<u32>,
    owners: Vec<u32>,
    /// Distinct zones among the owners (0 when zones are not used).
    zones: usize,
    /// Zone-aware sets per token, when zones are used and few enough.
    zone_sets: Option<ZoneSets>,
}

/// Per member facts a lookup needs, precomputed so a lookup touches no strings.
#[derive(Debug, Clone, Copy)]
struct Eligibility {
    write: bool,
    read: bool,
    /// Small integer per distinct zone; 0 means no zone.
    zone: u32,
}

impl Eligibility {
    fn allows(self, op: Operation) -> bool {
        match op {
            Operation::Write => self.write,
            Operation::Read => self.read,
        }
    }
}

/// An immutable view of the ring. Cheap to share (`Arc`), free to read.
///
/// Health (heartbeat younger than the timeout) is evaluated when the
/// snapshot is built; snapshots are rebuilt at least every
/// `ring_refresh_interval`, which bounds how stale health can be.
#[derive(Debug, Clone, Default)]
pub struct RingSnapshot {
    members: Vec<Member>,
    healthy: Vec<bool>,
    eligibility: Vec<Eligibility>,
    /// Indexed by `Role as usize`: an array index, not a hash, on the hot path.
    tables: [Option<TokenTable>; Role::ALL.len()],
    tenants: BTreeMap<String, TenantLimits>,
    built_at_ms: i64,
    heartbeat_timeout_ms: i64,
    raft: RaftInfo,
}

/// The members chosen for one key, in ring order, without allocation.
#[derive(Debug, Clone, Copy)]
pub struct ReplicationSet<'a> {
    snapshot: &'a RingSnapshot,
    picked: [u32; MAX_REPLICATION_FACTOR],
    len: usize,
}

impl<'a> ReplicationSet<'a> {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a Member> + 'a {
        let snapshot = self.snapshot;
        let picked = self.picked;
        (0..self.len).map(move |i| &snapshot.members[picked[i] as usize])
    }
    /// The first member: the owner when the replication factor is 1.
    pub fn primary(&self) -> Option<&'a Member> {
        self.iter().next()
    }
}

/// One member as shown on `/ring`.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    #[serde(flatten)]
    pub member: Member,
    pub healthy: bool,
    pub heartbeat_age_ms: i64,
    /// Share of each role's ring this member owns as primary (0..1).
    pub ownership: BTreeMap<Role, f64>,
    /// Share of each role's key space this member takes writes for now
    /// (replication factor 1): 0 while it is unhealthy, JOINING or LEAVING,
    /// whose ranges then fall to the next members.
    pub serving: BTreeMap<Role, f64>,
}

impl RingSnapshot {
    /// Builds the read view of `state` as of `now_ms`.
    pub fn build(
        state: &RingState,
        now_ms: i64,
        heartbeat_timeout_ms: i64,
        raft: RaftInfo,
    ) -> Self {
        let members: Vec<Member> = state.members.values().cloned().collect();
        let healthy: Vec<bool> = members
            .iter()
            .map(|m| m.is_healthy(now_ms, heartbeat_timeout_ms))
            .collect();
        let mut zone_ids: HashMap<&str, u32> = HashMap::new();
        let eligibility = members
            .iter()
            .zip(&healthy)
            .map(|(m, &ok)| {
                let zone = match m.zone.as_deref() {
                    Some(z) if !z.is_empty() => {
                        let next = zone_ids.len() as u32 + 1;
                        *zone_ids.entry(z).or_insert(next)
                    }
                    _ => 0,
                };
                Eligibility {
                    write: ok && m.state == MemberState::Active,
                    read: ok && matches!(m.state, MemberState::Active | MemberState::Leaving),
                    zone,
                }
            })
            .collect::<Vec<_>>();
        let mut tables: [Option<TokenTable>; Role::ALL.len()] = Default::default();
        for role in Role::ALL {
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            let mut zones = std::collections::HashSet::new();
            for (i, m) in members.iter().enumerate() {
                if m.has_role(role) {
                    pairs.extend(m.tokens.iter().map(|t| (*t, i as u32)));
                    zones.insert(eligibility[i].zone);
                }
            }
            if pairs.is_empty() {
                continue;
            }
            pairs.sort_unstable();
            pairs.dedup_by_key(|(t, _)| *t);
            let zoned = !zones.contains(&0);
            let owners: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            let zone_sets = if zoned {
                let mut ids: Vec<u32> = zones.iter().copied().collect();
                ids.sort_unstable();
                let dense = |owner: u32| {
                    let zone = eligibility[owner as usize].zone;
                    ids.partition_point(|z| *z < zone)
                };
                ZoneSets::build(&owners, ids.len(), dense, |owner, op| {
                    eligibility[owner as usize].allows(op)
                })
            } else {
                None
            };
            tables[role as usize] = Some(TokenTable {
                tokens: pairs.iter().map(|p| p.0).collect(),
                owners,
                zones: if zoned { zones.len() } else { 0 },
                zone_sets,
            });
        }
        RingSnapshot {
            members,
            healthy,
            eligibility,
            tables,
            tenants: state.tenants.clone(),
            built_at_ms: now_ms,
            heartbeat_timeout_ms,
            raft,
        }
    }

    /// The next `rf` distinct members of `role` clockwise from `hash`.
    ///
    /// Members not eligible for `op` are skipped and the walk continues, so
    /// an unhealthy member's ranges fall to the next members. When every
    /// member of the role has a zone and there are at least `rf` zones, the
    /// set spans `rf` distinct zones; with fewer zones it spans as many as
    /// exist. Fails when fewer than `rf` members are eligible.
    pub fn replication_set(
        &self,
        role: Role,
        hash: u32,
        rf: usize,
        op: Operation,
    ) -> Result<ReplicationSet<'_>, RingError> {
        let set = self.replication_set_up_to(role, hash, rf, op);
        let rf = rf.clamp(1, MAX_REPLICATION_FACTOR);
        if set.len == rf {
            Ok(set)
        } else {
            Err(RingError::TooFewMembers {
                role: role.to_string(),
                needed: rf,
                available: set.len,
            })
        }
    }

    /// Like [`RingSnapshot::replication_set`], but returns the eligible
    /// members found (possibly fewer than `rf`, possibly none) instead of
    /// failing: the write path decides whether what remains is a quorum, so
    /// one dead replica out of three does not fail writes.
    pub fn replication_set_up_to(
        &self,
        role: Role,
        hash: u32,
        rf: usize,
        op: Operation,
    ) -> ReplicationSet<'_> {
        self.lookup(role, hash, rf, op, true)
    }

    /// The walk alone, to check the precomputed zone sets against it.
    #[cfg(test)]
    pub(crate) fn replication_set_by_walk(
        &self,
        role: Role,
        hash: u32,
        rf: usize,
        op: Operation,
    ) -> ReplicationSet<'_> {
        self.lookup(role, hash, rf, op, false)
    }

    fn lookup(
        &self,
        role: Role,
        hash: u32,
        rf: usize,
        op: Operation,
        precomputed: bool,
    ) -> ReplicationSet<'_> {
        let rf = rf.clamp(1, MAX_REPLICATION_FACTOR);
        let mut set = ReplicationSet {
            snapshot: self,
            picked: [0; MAX_REPLICATION_FACTOR],
            len: 0,
        };
        let Some(table) = &self.tables[role as usize] else {
            return set;
        };
        let n = table.tokens.len();
        let start = table.tokens.partition_point(|t| *t < hash);
        let zone_aware = table.zones >= rf;
        if precomputed
            && zone_aware
            && let Some(sets) = &table.zone_sets
        {
            for owner in sets.row(if start == n { 0 } else { start }, op, rf) {
                set.picked[set.len] = owner;
                set.len += 1;
            }
            return set;
        }
        self.walk(table, start, rf, op, zone_aware, set)
    }

    /// The clockwise walk from token index `start`: the lookup where no
    /// precomputed zone sets apply (no zones, more zones than precomputed,
    /// or `rf` above the zone count).
    fn walk<'s>(
        &'s self,
        table: &TokenTable,
        start: usize,
        rf: usize,
        op: Operation,
        zone_aware: bool,
        mut set: ReplicationSet<'s>,
    ) -> ReplicationSet<'s> {
        let n = table.tokens.len();
        let mut zones = [0u32; MAX_REPLICATION_FACTOR];
        for step in 0..n {
            let mut i = start + step;
            if i >= n {
                i -= n;
            }
            let owner = table.owners[i];
            if set.picked[..set.len].contains(&owner) {
                continue;
            }
            let e = self.eligibility[owner as usize];
            if !e.allows(op) || (zone_aware && zones[..set.len].contains(&e.zone)) {
                continue;
            }
            zones[set.len] = e.zone;
            set.picked[set.len] = owner;
            set.len += 1;
            if set.len == rf {
                break;
            }
        }
        set
    }

    /// The members of `role`, each with whether it is eligible for `op`
    /// (state and health as of the snapshot): what a reader needs to know
    /// how many holders of data are missing.
    pub fn members_of(&self, role: Role, op: Operation) -> impl Iterator<Item = (&Member, bool)> {
        self.members
            .iter()
            .zip(&self.eligibility)
            .filter(move |(m, _)| m.has_role(role))
            .map(move |(m, e)| (m, e.allows(op)))
    }

    /// The member of `role` that owns `key_hash` (targets for scrapers,
    /// tenants for compactors), or `None` when no member is eligible.
    pub fn owner_of(&self, role: Role, key_hash: u32) -> Option<&Member> {
        self.replication_set(role, key_hash, 1, Operation::Write)
            .ok()
            .and_then(|s| s.primary())
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Whether the member was healthy when the snapshot was built.
    pub fn is_healthy(&self, id: &str) -> Option<bool> {
        self.members
            .iter()
            .position(|m| m.id == id)
            .map(|i| self.healthy[i])
    }

    pub fn tenant_limits(&self, tenant: &str) -> Option<&TenantLimits> {
        self.tenants.get(tenant)
    }

    pub fn tenants(&self) -> &BTreeMap<String, TenantLimits> {
        &self.tenants
    }

    pub fn raft(&self) -> &RaftInfo {
        &self.raft
    }

    pub fn built_at_ms(&self) -> i64 {
        self.built_at_ms
    }

    /// Share of `role`'s ring owned (as primary, by token ranges) by each member.
    pub fn ownership(&self, role: Role) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(t) = &self.tables[role as usize] {
            for i in 0..t.tokens.len() {
                let id = &self.members[t.owners[i] as usize].id;
                *out.entry(id.clone()).or_insert(0.0) +=
                    range_len(&t.tokens, i) as f64 / RING_SIZE as f64;
            }
        }
        out
    }

    /// Share of `role`'s key space each member serves for `op` with
    /// replication factor 1, skipping ineligible members: where a dead
    /// member's share has moved.
    pub fn effective_ownership(&self, role: Role, op: Operation) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(t) = &self.tables[role as usize] {
            for i in 0..t.tokens.len() {
                if let Some(m) = self
                    .replication_set(role, t.tokens[i], 1, op)
                    .ok()
                    .and_then(|s| s.primary())
                {
                    *out.entry(m.id.clone()).or_insert(0.0) +=
                        range_len(&t.tokens, i) as f64 / RING_SIZE as f64;
                }
            }
        }
        out
    }

    /// Every member with health, heartbeat age and ownership, for `/ring`.
    pub fn status(&self) -> Vec<MemberStatus> {
        // Per role: the token share and the share it serves after unhealthy
        // members' ranges moved.
        type Shares = (Role, BTreeMap<String, f64>, BTreeMap<String, f64>);
        let shares: Vec<Shares> = Role::ALL
            .into_iter()
            .filter(|r| self.tables[*r as usize].is_some())
            .map(|r| {
                (
                    r,
                    self.ownership(r),
                    self.effective_ownership(r, Operation::Write),
                )
            })
            .collect();
        self.members
            .iter()
            .zip(&self.healthy)
            .map(|(m, &healthy)| MemberStatus {
                member: m.clone(),
                healthy,
                heartbeat_age_ms: self.built_at_ms.saturating_sub(m.last_heartbeat_ms),
                ownership: shares
                    .iter()
                    .filter_map(|(r, s, _)| s.get(&m.id).map(|v| (*r, *v)))
                    .collect(),
                serving: shares
                    .iter()
                    .filter(|(r, _, _)| m.has_role(*r))
                    .map(|(r, _, s)| (*r, s.get(&m.id).copied().unwrap_or(0.0)))
                    .collect(),
            })
            .collect()
    }

    pub fn heartbeat_timeout_ms(&self) -> i64 {
        self.heartbeat_timeout_ms
    }
}
