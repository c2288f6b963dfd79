use std::sync::Arc;

use thiserror::Error;

/// One ingester as the ring sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Instance {
    pub id: String,
    /// `host:port` of its gRPC server.
    pub grpc_addr: String,
    pub zone: String,
}

/// Ingesters that each hold a copy, and how many of them may fail.
///
/// A write succeeds once `instances.len() - max_errors` acknowledged it (the
/// quorum); a read needs answers from that many to see every acknowledged
/// sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSet {
    pub instances: Vec<Instance>,
    pub max_errors: usize,
}

impl ReplicationSet {
    pub fn quorum(&self) -> usize {
        self.instances.len().saturating_sub(self.max_errors)
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RingError {
    #[error("no healthy ingesters in the ring")]
    Empty,
    #[error("too few healthy ingesters for replication factor {rf}: {healthy} healthy")]
    TooFewHealthy { rf: usize, healthy: usize },
}

/// The ring as distributors and queriers use it.
///
/// Implementations answer from a cached snapshot: a call must never wait
/// on the network, because it sits on the write path.
pub trait IngesterRing: Send + Sync + 'static {
    /// The replication set a series with this hash is written to.
    fn write_set(&self, series_hash: u64) -> Result<ReplicationSet, RingError>;

    /// Every ingester that may hold data, with how many may be missing
    /// while the union of the answers is still complete.
    fn read_set(&self) -> Result<ReplicationSet, RingError>;
}

/// A fixed set of ingesters that each hold every series (replication factor
/// = number of instances). Used by the embedded `all` mode, where the one
/// ingester is the process itself, and by tests.
#[derive(Debug, Clone)]
pub struct StaticRing {
    set: ReplicationSet,
}

impl StaticRing {
    /// Every instance holds every series; writes need a majority.
    pub fn new(instances: Vec<Instance>) -> Self {
        let n = instances.len();
        StaticRing {
            set: ReplicationSet {
                instances,
                max_errors: n.saturating_sub(n / 2 + 1),
            },
        }
    }

    pub fn single(grpc_addr: impl Into<String>) -> Arc<Self> {
        Arc::new(Self::new(vec![Instance {
            id: "local".into(),
            grpc_addr: grpc_addr.into(),
            zone: String::new(),
        }]))
    }
}

impl IngesterRing for StaticRing {
    fn write_set(&self, _series_hash: u64) -> Result<ReplicationSet, RingError> {
        if self.set.instances.is_empty() {
            return Err(RingError::Empty);
        }
        Ok(self.set.clone())
    }

    fn read_set(&self) -> Result<ReplicationSet, RingError> {
        self.write_set(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(i: usize) -> Instance {
        Instance {
            id: format!("i{i}"),
            grpc_addr: format!("127.0.0.1:{}", 9000 + i),
            zone: String::new(),
        }
    }

    #[test]
    fn quorum_is_a_majority() {
        let r = StaticRing::new((0..3).map(inst).collect());
        let s = r.write_set(42).unwrap();
        assert_eq!((s.instances.len(), s.quorum()), (3, 2));
        assert_eq!(
            StaticRing::new(vec![inst(0)])
                .write_set(1)
                .unwrap()
                .quorum(),
            1
        );
        assert_eq!(StaticRing::new(vec![]).write_set(1), Err(RingError::Empty));
    }
}
