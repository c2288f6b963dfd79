//! How distributors and queriers reach ingesters.
//!
//! [`IngesterRing`] is the question both ask the ring: "which ingesters hold
//! this series" (writes) and "which ingesters may hold this tenant's data"
//! (reads). The membership crate answers it for a cluster; [`StaticRing`]
//! answers it for a fixed list (the embedded `all` mode and tests).
//! [`ClientPool`] keeps one lazily connected gRPC channel per ingester.

mod pool;
mod ring;

pub use pool::ClientPool;
pub use ring::{IngesterRing, Instance, ReplicationSet, RingError, StaticRing};
