//! The tidemark TSDB engine.
//!
//! - [`chunk`]: Prometheus XOR float chunks, bit-compatible with Prometheus.
//! - [`block`]: Prometheus-format blocks (meta.json, index v2, chunk
//!   segments, tombstones): [`BlockWriter`], [`BlockReader`].
//! - [`head`]: per-tenant in-memory series with postings and matcher
//!   evaluation; [`TenantHeads`] maps tenants to heads.
//! - [`wal`]: the head's segmented, checksummed write-ahead log with
//!   checkpoints and crash recovery.
//!
//! Samples are millisecond timestamps and `f64` values
//! ([`tidemark_model::Sample`]); the staleness marker is kept bit-exact.

pub mod block;
pub mod chunk;
mod error;
pub mod head;
mod prefetch;
mod sorted;
pub mod wal;

pub use block::{BlockId, BlockMeta, BlockReader, BlockWriter, SeriesSamples};
pub use chunk::{XorAppender, XorChunk, XorIter};
pub use error::TsdbError;
pub use head::{
    AppendResult, ExemplarAppend, ExemplarRefusal, Head, HeadOptions, HeadStats, SeriesExemplars,
    SeriesRef, TenantHeads,
};
pub use wal::{ReplayStats, SyncPolicy, Wal, WalOptions, WalStats};
