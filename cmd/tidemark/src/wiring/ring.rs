//! The membership ring as the write and read paths ask it: which ingesters
//! hold a series ([`MembershipRing`]) and which limit overrides a tenant has
//! ([`MembershipLimits`]). Both answer from the cached ring snapshot, never
//! from the network.

use tidemark_distributor::{LimitsOverride, LimitsSource};
use tidemark_ingester_client::{IngesterRing, Instance, ReplicationSet, RingError};
use tidemark_model::TenantId;
use tidemark_ring::{Member, Membership, Operation, RingSnapshot, Role, ring_position};

/// Replicas that must acknowledge a write: a majority of the replication
/// factor. Every acknowledged sample is therefore on at least this many
/// ingesters, and a read may miss `quorum - 1` of them.
fn quorum(rf: usize) -> usize {
    rf / 2 + 1
}

fn instance(m: &Member) -> Instance {
    Instance {
        id: m.id.clone(),
        grpc_addr: m.grpc_address.clone(),
        zone: m.zone.clone().unwrap_or_default(),
    }
}

/// [`IngesterRing`] over the membership group's ingester ring.
pub(crate) struct MembershipRing {
    membership: Membership,
    replication_factor: usize,
}

impl MembershipRing {
    pub(crate) fn new(membership: Membership, replication_factor: usize) -> Self {
        MembershipRing {
            membership,
            replication_factor: replication_factor.max(1),
        }
    }
}

/// The write set of `series_hash` on `ring`.
///
/// The walk skips ingesters that take no writes (unhealthy, JOINING,
/// LEAVING), so the set is the next `rf` ACTIVE healthy ingesters; when
/// fewer exist, what is left is still used as long as it is a quorum. A
/// replica that is down thus costs no write while a quorum of `rf` remains.
fn write_set(
    ring: &RingSnapshot,
    rf: usize,
    series_hash: u64,
) -> Result<ReplicationSet, RingError> {
    let set = ring.replication_set_up_to(
        Role::Ingester,
        ring_position(series_hash),
        rf,
        Operation::Write,
    );
    let need = quorum(rf);
    if set.is_empty() {
        return Err(RingError::Empty);
    }
    if set.len() < need {
        return Err(RingError::TooFewHealthy {
            rf,
            healthy: set.len(),
        });
    }
    Ok(ReplicationSet {
        instances: set.iter().map(instance).collect(),
        max_errors: set.len() - need,
    })
}

/// Every ingester that may hold data. An acknowledged sample is on at least
/// `quorum(rf)` ingesters, so `quorum(rf) - 1` may be missing; ingesters
/// already out of the read set (unhealthy, JOINING) count against that.
fn read_set(ring: &RingSnapshot, rf: usize) -> Result<ReplicationSet, RingError> {
    let mut instances = Vec::new();
    let mut missing = 0;
    for (m, readable) in ring.members_of(Role::Ingester, Operation::Read) {
        if readable {
            instances.push(instance(m));
        } else {
            missing += 1;
        }
    }
    if instances.is_empty() {
        return Err(RingError::Empty);
    }
    let tolerated = quorum(rf) - 1;
    if missing > tolerated {
        return Err(RingError::TooFewHealthy {
            rf,
            healthy: instances.len(),
        });
    }
    let max_errors = (tolerated - missing).min(instances.len() - 1);
    Ok(ReplicationSet {
        instances,
        max_errors,
    })
}

impl IngesterRing for MembershipRing {
    fn write_set(&self, series_hash: u64) -> Result<ReplicationSet, RingError> {
        write_set(
            &self.membership.ring(),
            self.replication_factor,
            series_hash,
        )
    }

    fn read_set(&self) -> Result<ReplicationSet, RingError> {
        read_set(&self.membership.ring(), self.replication_factor)
    }
}

/// Per-tenant overrides committed in the membership group (`PUT
/// /ring/tenants/<tenant>`), on top of the distributor's configured ones.
pub(crate) struct MembershipLimits(pub(crate) Membership);

impl LimitsSource for MembershipLimits {
    fn overrides(&self, tenant: &TenantId) -> Option<LimitsOverride> {
        let ring = self.0.ring();
        let l = ring.tenant_limits(tenant.as_str())?;
        Some(LimitsOverride {
            ingestion_rate: l.ingestion_rate,
            ingestion_burst: l.ingestion_burst,
            max_series: l.max_series,
            max_labels_per_series: l.max_labels_per_series,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_ring::{Command, MemberState, NodeInfo, RaftInfo, RingState};

    const NOW: i64 = 1_000_000;
    const TIMEOUT: i64 = 10_000;

    fn state(n: usize) -> RingState {
        let mut s = RingState::default();
        for i in 0..n {
            s.apply(&Command::Join {
                node: NodeInfo {
                    id: format!("ing-{i}"),
                    roles: vec![Role::Ingester],
                    grpc_address: format!("127.0.0.1:{}", 9000 + i),
                    http_address: String::new(),
                    zone: None,
                },
                state: MemberState::Active,
                tokens: vec![],
                tokens_per_member: 64,
                now_ms: NOW,
            });
        }
        s
    }

    fn snap(s: &RingState) -> RingSnapshot {
        RingSnapshot::build(s, NOW, TIMEOUT, RaftInfo::default())
    }

    fn kill(s: &mut RingState, id: &str) {
        s.members.get_mut(id).unwrap().last_heartbeat_ms = NOW - TIMEOUT - 1;
    }

    #[test]
    fn rf3_writes_to_three_and_tolerates_one_failure() {
        let s = snap(&state(5));
        for h in (0..500u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let set = write_set(&s, 3, h).unwrap();
            assert_eq!((set.instances.len(), set.quorum()), (3, 2));
        }
        let r = read_set(&s, 3).unwrap();
        assert_eq!((r.instances.len(), r.max_errors), (5, 1));
    }

    #[test]
    fn a_dead_replica_shrinks_the_sets_but_keeps_a_quorum() {
        let mut st = state(3);
        kill(&mut st, "ing-1");
        let s = snap(&st);
        let set = write_set(&s, 3, 42).unwrap();
        assert_eq!((set.instances.len(), set.quorum()), (2, 2));
        assert!(set.instances.iter().all(|i| i.id != "ing-1"));
        let r = read_set(&s, 3).unwrap();
        assert_eq!((r.instances.len(), r.max_errors), (2, 0));

        kill(&mut st, "ing-2");
        let s = snap(&st);
        assert_eq!(
            write_set(&s, 3, 42).unwrap_err(),
            RingError::TooFewHealthy { rf: 3, healthy: 1 }
        );
        assert!(read_set(&s, 3).is_err());
    }

    #[test]
    fn joining_ingesters_take_no_writes_and_count_as_missing_for_reads() {
        let mut st = state(3);
        st.members.get_mut("ing-0").unwrap().state = MemberState::Joining;
        st.members.get_mut("ing-2").unwrap().state = MemberState::Leaving;
        let s = snap(&st);
        let set = write_set(&s, 1, 7).unwrap();
        assert_eq!(set.instances[0].id, "ing-1");
        let r = read_set(&s, 3).unwrap();
        let ids: Vec<&str> = r.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!((ids, r.max_errors), (vec!["ing-1", "ing-2"], 0));
    }

    #[test]
    fn embedded_rf1_has_no_slack_and_an_empty_ring_is_an_error() {
        let s = snap(&state(1));
        let set = write_set(&s, 1, 1).unwrap();
        assert_eq!((set.instances.len(), set.max_errors), (1, 0));
        assert_eq!(read_set(&s, 1).unwrap().max_errors, 0);
        let empty = snap(&RingState::default());
        assert_eq!(write_set(&empty, 1, 1).unwrap_err(), RingError::Empty);
        assert_eq!(read_set(&empty, 1).unwrap_err(), RingError::Empty);
    }
}
