//! Lookup tests over rings built through the state machine.

use crate::member::{MemberState, NodeInfo, Role};
use crate::snapshot::{Operation, RaftInfo, RingSnapshot};
use crate::state::{Command, RingState};

const NOW: i64 = 1_000_000;
const TIMEOUT: i64 = 60_000;

fn ring(n: usize, zones: usize) -> RingState {
    let mut s = RingState::default();
    for i in 0..n {
        s.apply(&Command::Join {
            node: NodeInfo {
                id: format!("ingester-{i}"),
                roles: vec![Role::Ingester],
                grpc_address: format!("10.0.0.{i}:9095"),
                http_address: format!("10.0.0.{i}:9009"),
                zone: (zones > 0).then(|| format!("zone-{}", i % zones)),
            },
            state: MemberState::Active,
            tokens: vec![],
            tokens_per_member: 128,
            now_ms: NOW,
        });
    }
    s
}

fn snap(s: &RingState) -> RingSnapshot {
    RingSnapshot::build(s, NOW, TIMEOUT, RaftInfo::default())
}

fn hashes() -> impl Iterator<Item = u32> {
    (0..2000u32).map(|i| i.wrapping_mul(2_654_435_761))
}

#[test]
fn replication_set_has_rf_distinct_members() {
    let s = snap(&ring(10, 0));
    for h in hashes() {
        let set = s
            .replication_set(Role::Ingester, h, 3, Operation::Write)
            .unwrap();
        let mut ids: Vec<&str> = set.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3, "distinct members for hash {h}");
    }
}

#[test]
fn primary_is_the_owner_of_the_next_token_clockwise() {
    let state = ring(3, 0);
    let s = snap(&state);
    // The member owning the smallest token owns hash 0, and a hash equal to
    // a token belongs to that token's owner.
    let (min_owner, min_token) = state
        .members
        .values()
        .map(|m| (m.id.clone(), m.tokens[0]))
        .min_by_key(|(_, t)| *t)
        .unwrap();
    let set = s
        .replication_set(Role::Ingester, 0, 1, Operation::Write)
        .unwrap();
    assert_eq!(set.primary().unwrap().id, min_owner);
    let set = s
        .replication_set(Role::Ingester, min_token, 1, Operation::Write)
        .unwrap();
    assert_eq!(set.primary().unwrap().id, min_owner);
    // Past the largest token the walk wraps to the smallest.
    let set = s
        .replication_set(Role::Ingester, u32::MAX, 1, Operation::Write)
        .unwrap();
    let max_token = state
        .members
        .values()
        .flat_map(|m| m.tokens.iter())
        .max()
        .unwrap();
    if *max_token != u32::MAX {
        assert_eq!(set.primary().unwrap().id, min_owner);
    }
}

#[test]
fn zone_aware_sets_span_distinct_zones() {
    let s = snap(&ring(9, 3));
    for h in hashes() {
        let set = s
            .replication_set(Role::Ingester, h, 3, Operation::Write)
            .unwrap();
        let mut zones: Vec<&str> = set.iter().map(|m| m.zone.as_deref().unwrap()).collect();
        zones.sort();
        zones.dedup();
        assert_eq!(zones.len(), 3, "hash {h}");
    }
}

#[test]
fn fewer_zones_than_rf_still_gives_distinct_members() {
    let s = snap(&ring(6, 2));
    for h in hashes() {
        let set = s
            .replication_set(Role::Ingester, h, 3, Operation::Write)
            .unwrap();
        let mut ids: Vec<&str> = set.iter().map(|m| m.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }
}

#[test]
fn unhealthy_members_are_skipped_and_their_share_moves() {
    let mut state = ring(5, 0);
    state
        .members
        .get_mut("ingester-2")
        .unwrap()
        .last_heartbeat_ms = NOW - TIMEOUT - 1;
    let s = snap(&state);
    assert_eq!(s.is_healthy("ingester-2"), Some(false));
    for h in hashes() {
        for op in [Operation::Write, Operation::Read] {
            let set = s.replication_set(Role::Ingester, h, 3, op).unwrap();
            assert!(set.iter().all(|m| m.id != "ingester-2"));
            assert_eq!(set.len(), 3);
        }
    }
    let before = snap(&ring(5, 0)).effective_ownership(Role::Ingester, Operation::Write);
    let after = s.effective_ownership(Role::Ingester, Operation::Write);
    assert!(before["ingester-2"] > 0.15);
    assert!(!after.contains_key("ingester-2"));
    let total: f64 = after.values().sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "the whole ring is still served: {total}"
    );
}

#[test]
fn leaving_members_serve_reads_but_take_no_writes_and_joining_neither() {
    let mut state = ring(4, 0);
    state.members.get_mut("ingester-0").unwrap().state = MemberState::Leaving;
    state.members.get_mut("ingester-1").unwrap().state = MemberState::Joining;
    let s = snap(&state);
    let mut read_saw_leaving = false;
    for h in hashes() {
        let w = s
            .replication_set(Role::Ingester, h, 2, Operation::Write)
            .unwrap();
        assert!(
            w.iter()
                .all(|m| m.id != "ingester-0" && m.id != "ingester-1")
        );
        let r = s
            .replication_set(Role::Ingester, h, 3, Operation::Read)
            .unwrap();
        assert!(r.iter().all(|m| m.id != "ingester-1"));
        read_saw_leaving |= r.iter().any(|m| m.id == "ingester-0");
    }
    assert!(read_saw_leaving);
    let err = s
        .replication_set(Role::Ingester, 1, 3, Operation::Write)
        .unwrap_err();
    assert!(err.to_string().contains("2 eligible"), "{err}");
}

#[test]
fn roles_have_separate_rings() {
    let mut state = ring(3, 0);
    state.apply(&Command::Join {
        node: NodeInfo {
            id: "scraper-0".into(),
            roles: vec![Role::Scraper],
            grpc_address: "s:1".into(),
            http_address: "s:2".into(),
            zone: None,
        },
        state: MemberState::Active,
        tokens: vec![],
        tokens_per_member: 128,
        now_ms: NOW,
    });
    let s = snap(&state);
    for h in hashes() {
        assert_eq!(s.owner_of(Role::Scraper, h).unwrap().id, "scraper-0");
        assert!(
            s.owner_of(Role::Ingester, h)
                .unwrap()
                .id
                .starts_with("ingester")
        );
    }
    assert!(s.owner_of(Role::Compactor, 7).is_none());
}

#[test]
fn ownership_of_ten_ingesters_is_even_on_the_built_ring() {
    let s = snap(&ring(10, 0));
    let own = s.ownership(Role::Ingester);
    assert_eq!(own.len(), 10);
    let max = own.values().cloned().fold(0.0, f64::max);
    assert!(max <= 0.1 * 1.10, "{own:?}");
}

#[test]
fn up_to_returns_the_eligible_members_left_when_fewer_than_rf() {
    let mut state = ring(3, 0);
    state
        .members
        .get_mut("ingester-1")
        .unwrap()
        .last_heartbeat_ms = NOW - TIMEOUT - 1;
    let s = snap(&state);
    for h in hashes() {
        let set = s.replication_set_up_to(Role::Ingester, h, 3, Operation::Write);
        let ids: Vec<&str> = set.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(!ids.contains(&"ingester-1"));
    }
    assert!(
        s.replication_set_up_to(Role::Scraper, 7, 3, Operation::Write)
            .is_empty()
    );
    let eligible: Vec<(String, bool)> = s
        .members_of(Role::Ingester, Operation::Read)
        .map(|(m, ok)| (m.id.clone(), ok))
        .collect();
    assert_eq!(
        eligible,
        vec![
            ("ingester-0".to_string(), true),
            ("ingester-1".to_string(), false),
            ("ingester-2".to_string(), true)
        ]
    );
    assert_eq!(s.members_of(Role::Compactor, Operation::Read).count(), 0);
}

/// The precomputed zone sets give exactly what the clockwise walk gives, on
/// rings with members of every state, stale heartbeats, uneven zones and
/// whole zones without an eligible member.
#[test]
fn precomputed_zone_sets_equal_the_walk() {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    for round in 0..60 {
        let members = 2 + next(30) as usize;
        let zones = 1 + next(6) as usize;
        let mut s = RingState::default();
        for i in 0..members {
            let state = match next(5) {
                0 => MemberState::Joining,
                1 => MemberState::Leaving,
                _ => MemberState::Active,
            };
            // A fifth of the members have not sent a heartbeat for too long.
            let beat = if next(5) == 0 { NOW - 2 * TIMEOUT } else { NOW };
            s.apply(&Command::Join {
                node: NodeInfo {
                    id: format!("m{i}"),
                    roles: vec![Role::Ingester],
                    grpc_address: format!("10.0.0.{i}:9095"),
                    http_address: String::new(),
                    zone: Some(format!("z{}", next(zones as u64))),
                },
                state,
                tokens: vec![],
                tokens_per_member: 1 + next(64) as u32,
                now_ms: beat,
            });
        }
        let snap = snap(&s);
        let distinct: std::collections::BTreeSet<_> =
            s.members.values().map(|m| m.zone.clone()).collect();
        for rf in 1..=distinct.len().min(crate::snapshot::MAX_REPLICATION_FACTOR) {
            for op in [Operation::Write, Operation::Read] {
                for h in hashes() {
                    let fast: Vec<&str> = snap
                        .replication_set_up_to(Role::Ingester, h, rf, op)
                        .iter()
                        .map(|m| m.id.as_str())
                        .collect();
                    let walk: Vec<&str> = snap
                        .replication_set_by_walk(Role::Ingester, h, rf, op)
                        .iter()
                        .map(|m| m.id.as_str())
                        .collect();
                    assert_eq!(fast, walk, "round {round}, rf {rf}, {op:?}, hash {h}");
                }
            }
        }
    }
}
