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
//! See `docs/write-path.md` for the operator's view.

mod config;
mod convert;
mod error;
mod ingester;
mod metrics;
mod series_limit;
mod service;

pub use config::{FsyncPolicy, HeadConfig, IngesterConfig, WalConfig};
pub use error::IngesterError;
pub use ingester::{Ingester, SERVICE_NAME};
