//! The replicated state: members and tenant overrides, and the commands that
//! change them. `apply` is deterministic: every voter computes the same state
//! from the same log (times come from the proposer, inside the command).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::member::{Member, MemberState, NodeInfo, Role, TenantLimits};
use crate::tokens::{choose_tokens, stable_hash};

/// The state machine's data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RingState {
    pub members: BTreeMap<String, Member>,
    pub tenants: BTreeMap<String, TenantLimits>,
}

/// A change to the ring, as stored in the Raft log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Add a member, or refresh a known one (keeping its tokens).
    Join {
        node: NodeInfo,
        state: MemberState,
        /// Tokens the member owned before; empty lets the group choose.
        tokens: Vec<u32>,
        tokens_per_member: u32,
        now_ms: i64,
    },
    /// Liveness, and the state the member wants: a late `Join` (a retry
    /// that commits after `SetState`) cannot leave it in the wrong state for
    /// longer than one heartbeat.
    Heartbeat {
        id: String,
        now_ms: i64,
        /// Absent in log entries written before members sent it.
        #[serde(default)]
        state: Option<MemberState>,
    },
    SetState {
        id: String,
        state: MemberState,
        now_ms: i64,
    },
    /// Clean leave: the member removes itself.
    Leave { id: String },
    /// Removal by an operator or by the leader after `forget_after`.
    Forget { id: String },
    SetTenantLimits {
        tenant: String,
        limits: Option<TenantLimits>,
    },
}

/// What applying a command produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandResponse {
    /// The member after the change, when it still exists.
    pub member: Option<Member>,
    /// Set when the command named a member that is not in the ring.
    pub unknown_member: Option<String>,
}

/// The keys a command touched, so the store writes only those.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub(crate) members: Vec<String>,
    pub(crate) tenants: Vec<String>,
}

impl RingState {
    /// Applies one command. Never fails: a command about an unknown member
    /// is answered with `unknown_member` and changes nothing.
    pub fn apply(&mut self, cmd: &Command) -> CommandResponse {
        self.apply_touching(cmd, &mut Touched::default())
    }

    pub(crate) fn apply_touching(
        &mut self,
        cmd: &Command,
        touched: &mut Touched,
    ) -> CommandResponse {
        match cmd {
            Command::Join {
                node,
                state,
                tokens,
                tokens_per_member,
                now_ms,
            } => {
                let tokens = match self.members.get(&node.id) {
                    Some(existing) if !existing.tokens.is_empty() => existing.tokens.clone(),
                    _ => self.tokens_for(node, tokens, *tokens_per_member),
                };
                let joined_ms = self.members.get(&node.id).map_or(*now_ms, |m| m.joined_ms);
                let member = Member {
                    id: node.id.clone(),
                    roles: node.roles.clone(),
                    grpc_address: node.grpc_address.clone(),
                    http_address: node.http_address.clone(),
                    zone: node.zone.clone(),
                    state: *state,
                    tokens,
                    last_heartbeat_ms: *now_ms,
                    joined_ms,
                };
                self.members.insert(node.id.clone(), member.clone());
                touched.members.push(node.id.clone());
                CommandResponse {
                    member: Some(member),
                    unknown_member: None,
                }
            }
            Command::Heartbeat { id, now_ms, state } => self.update(id, touched, |m| {
                m.last_heartbeat_ms = m.last_heartbeat_ms.max(*now_ms);
                if let Some(state) = state {
                    m.state = *state;
                }
            }),
            Command::SetState { id, state, now_ms } => self.update(id, touched, |m| {
                m.state = *state;
                m.last_heartbeat_ms = m.last_heartbeat_ms.max(*now_ms);
            }),
            Command::Leave { id } | Command::Forget { id } => {
                touched.members.push(id.clone());
                match self.members.remove(id) {
                    Some(_) => CommandResponse::default(),
                    None => CommandResponse {
                        member: None,
                        unknown_member: Some(id.clone()),
                    },
                }
            }
            Command::SetTenantLimits { tenant, limits } => {
                match limits {
                    Some(l) => {
                        self.tenants.insert(tenant.clone(), l.clone());
                    }
                    None => {
                        self.tenants.remove(tenant);
                    }
                }
                touched.tenants.push(tenant.clone());
                CommandResponse::default()
            }
        }
    }

    fn update(
        &mut self,
        id: &str,
        touched: &mut Touched,
        f: impl FnOnce(&mut Member),
    ) -> CommandResponse {
        match self.members.get_mut(id) {
            Some(m) => {
                f(m);
                touched.members.push(id.to_string());
                CommandResponse {
                    member: Some(m.clone()),
                    unknown_member: None,
                }
            }
            None => CommandResponse {
                member: None,
                unknown_member: Some(id.to_string()),
            },
        }
    }

    /// The ring a member's tokens are chosen against: its ingester ring when
    /// it is an ingester (where balance matters most), else its first role.
    fn primary_role(roles: &[Role]) -> Option<Role> {
        if roles.contains(&Role::Ingester) {
            Some(Role::Ingester)
        } else {
            roles.first().copied()
        }
    }

    fn tokens_for(&self, node: &NodeInfo, requested: &[u32], count: u32) -> Vec<u32> {
        let taken: std::collections::HashSet<u32> = self
            .members
            .values()
            .filter(|m| m.id != node.id)
            .flat_map(|m| m.tokens.iter().copied())
            .collect();
        if !requested.is_empty() && requested.iter().all(|t| !taken.contains(t)) {
            let mut t = requested.to_vec();
            t.sort_unstable();
            t.dedup();
            return t;
        }
        let role = Self::primary_role(&node.roles);
        let peers: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.id != node.id && role.is_some_and(|r| m.has_role(r)))
            .collect();
        let mut ring: Vec<(u32, usize)> = peers
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.tokens.iter().map(move |t| (*t, i)))
            .collect();
        ring.sort_unstable();
        ring.dedup_by_key(|(t, _)| *t);
        let mut chosen = choose_tokens(&ring, peers.len(), count, stable_hash(&node.id));
        // Tokens of members of other roles never collide with this ring's
        // choice in practice; drop any that would, rather than share a token.
        chosen.retain(|t| !taken.contains(t));
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn node(id: &str, zone: Option<&str>) -> NodeInfo {
        NodeInfo {
            id: id.to_string(),
            roles: vec![Role::Ingester],
            grpc_address: format!("{id}:9095"),
            http_address: format!("{id}:9009"),
            zone: zone.map(str::to_string),
        }
    }

    fn beat(id: &str, now_ms: i64, state: Option<MemberState>) -> Command {
        Command::Heartbeat {
            id: id.into(),
            now_ms,
            state,
        }
    }

    fn join(id: &str, now: i64) -> Command {
        Command::Join {
            node: node(id, None),
            state: MemberState::Joining,
            tokens: vec![],
            tokens_per_member: 16,
            now_ms: now,
        }
    }

    #[test]
    fn rejoin_keeps_tokens_and_join_time() {
        let mut s = RingState::default();
        let first = s.apply(&join("a", 10)).member.unwrap();
        s.apply(&join("b", 11));
        assert_eq!(first.tokens.len(), 16);
        let again = s.apply(&join("a", 99)).member.unwrap();
        assert_eq!(again.tokens, first.tokens);
        assert_eq!(again.joined_ms, 10);
        assert_eq!(again.last_heartbeat_ms, 99);
    }

    #[test]
    fn forgotten_member_rejoins_with_the_tokens_it_remembers() {
        let mut s = RingState::default();
        let a = s.apply(&join("a", 1)).member.unwrap();
        s.apply(&Command::Forget { id: "a".into() });
        assert!(s.members.is_empty());
        let back = s
            .apply(&Command::Join {
                node: node("a", None),
                state: MemberState::Active,
                tokens: a.tokens.clone(),
                tokens_per_member: 16,
                now_ms: 2,
            })
            .member
            .unwrap();
        assert_eq!(back.tokens, a.tokens);
    }

    #[test]
    fn heartbeat_and_state_of_unknown_member_are_reported() {
        let mut s = RingState::default();
        let r = s.apply(&beat("ghost", 5, None));
        assert_eq!(r.unknown_member.as_deref(), Some("ghost"));
        assert!(s.members.is_empty());
    }

    #[test]
    fn heartbeat_never_moves_time_backwards() {
        let mut s = RingState::default();
        s.apply(&join("a", 100));
        s.apply(&beat("a", 50, None));
        assert_eq!(s.members["a"].last_heartbeat_ms, 100);
    }

    #[test]
    fn heartbeat_restores_the_state_a_late_join_reset() {
        let mut s = RingState::default();
        s.apply(&join("a", 100));
        s.apply(&Command::SetState {
            id: "a".into(),
            state: MemberState::Active,
            now_ms: 110,
        });
        // The join retried at start-up commits after the member went ACTIVE.
        s.apply(&Command::Join {
            node: node("a", None),
            state: MemberState::Joining,
            tokens: vec![],
            tokens_per_member: 16,
            now_ms: 120,
        });
        assert_eq!(s.members["a"].state, MemberState::Joining);
        s.apply(&beat("a", 130, Some(MemberState::Active)));
        assert_eq!(s.members["a"].state, MemberState::Active);
        // A beat without a state (an older member) changes only the time.
        s.apply(&beat("a", 140, None));
        assert_eq!(s.members["a"].state, MemberState::Active);
        assert_eq!(s.members["a"].last_heartbeat_ms, 140);
    }

    #[test]
    fn heartbeat_without_state_decodes_from_older_log_entries() {
        let old = r#"{"Heartbeat":{"id":"a","now_ms":7}}"#;
        let cmd: Command = serde_json::from_str(old).unwrap();
        assert_eq!(
            cmd,
            Command::Heartbeat {
                id: "a".into(),
                now_ms: 7,
                state: None
            }
        );
    }

    #[test]
    fn tenant_limits_set_and_clear() {
        let mut s = RingState::default();
        let l = TenantLimits {
            max_series: Some(10),
            ..Default::default()
        };
        s.apply(&Command::SetTenantLimits {
            tenant: "t1".into(),
            limits: Some(l.clone()),
        });
        assert_eq!(s.tenants.get("t1"), Some(&l));
        s.apply(&Command::SetTenantLimits {
            tenant: "t1".into(),
            limits: None,
        });
        assert!(s.tenants.is_empty());
    }
}
