//! The ingester role: recent samples of every tenant in memory, durable
//! in a write-ahead log, served over the `Ingester` gRPC service.
//!
//! - [`Ingester`]: the role (`start`, `add_grpc`, `stop`). At start it
//!   replays every tenant's WAL from `<data_dir>/ingester/<tenant>/wal`
//!   in the background; until then the service answers `UNAVAILABLE`.
//! - Push: samples are appended to the tenant's head (created on first
//!   use) and the call answers only after they are in the WAL, synced per
//!   [`FsyncPolicy`]. Refusals of single series (out of order, duplicate
//!   timestamp, too old, series limit) come back in `PushResponse.errors`
//!   naming the series; the rest of the push is written.
//! - Select streams matching series in batches of
//!   `select_batch_series`; LabelNames and LabelValues answer from the
//!   head's postings.
//!
//! - Blocks: each tenant's head is cut into aligned blocks of
//!   `head.chunk_range` once it spans 1.5 ranges (and wholly on
//!   `POST /ingester/flush`); the head and WAL are truncated after the
//!   block is durable. Blocks are handed to a compactor over the
//!   `BlockHandoff` service (resumable, with backoff; the compactor is
//!   found through a [`CompactorLocator`]), served by Select meanwhile, and
//!   deleted once confirmed and out of the recent-query window.
//!
//! See `docs/write-path.md` for the operator's view.

mod blocks;
mod config;
mod convert;
mod error;
mod exemplars;
mod flush;
mod handoff;
mod ingester;
mod metrics;
mod series_limit;
mod service;
mod shipper;

pub use config::{BlocksConfig, FsyncPolicy, HeadConfig, IngesterConfig, WalConfig};
pub use error::IngesterError;
pub use handoff::{CompactorLocator, StaticCompactorLocator};
pub use ingester::{Ingester, SERVICE_NAME};
