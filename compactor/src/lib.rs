//! The compactor role: long-term storage of blocks in object storage.
//!
//! - Hand-off: ingesters stream finished blocks over the `BlockHandoff`
//!   gRPC service (checksummed pieces, resumable after a broken stream);
//!   a block is acknowledged only once it is whole in the bucket and in the
//!   tenant's bucket index.
//! - Compaction ([`Compactor::run`]): per owned tenant, blocks overlapping
//!   in time (the replication factor's copies of a range, late blocks) are
//!   merged into one deduplicated block; complete windows are compacted
//!   2 h → 12 h → 24 h; retention marks old blocks, and marked blocks are
//!   deleted after a delay so running queries never lose one.
//! - [`import_blocks`]: backfill a Prometheus data directory's blocks.
//! - [`TenantOwnership`]: which tenants this compactor compacts, so several
//!   compactors split the tenants (the binary answers with the ring).
//!
//! See `docs/compactor.md`.

mod compactor;
mod config;
mod crash_point;
mod error;
mod handoff;
mod import;
mod indexes;
pub mod planner;
mod staging;

pub use compactor::{Compactor, TenantCycle};
pub use config::CompactorConfig;
pub use crash_point::{CRASH_POINT_ENV, PAUSE_MESSAGE};
pub use error::CompactorError;
pub use import::{ImportReport, import_blocks};

/// Decides which tenants this compactor compacts. Several compactors must
/// agree, so that each tenant has exactly one owner at a time (a short
/// overlap while the ring changes is harmless: merges are idempotent by
/// their sources).
pub trait TenantOwnership: Send + Sync {
    fn owns_tenant(&self, tenant: &str) -> bool;
}

/// A single compactor owns every tenant (the `all` target).
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnsAll;

impl TenantOwnership for OwnsAll {
    fn owns_tenant(&self, _tenant: &str) -> bool {
        true
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
