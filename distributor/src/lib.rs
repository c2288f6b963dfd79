//! The distributor role: the entry of the write path.
//!
//! - HTTP `POST /api/v1/push` and `/api/v1/write`: Prometheus remote write
//!   1.0 and 2.0 ([`decode`]: content negotiation, snappy, protobuf).
//! - gRPC `Distributor.Push`: batches from scrapers.
//! - [`validate`]: label and timestamp rules; a refused series is named
//!   with its rule while the rest of the request is written.
//! - [`Limits`]: per-tenant limits (ingestion rate with burst, series,
//!   labels), defaults and overrides from configuration and from a
//!   [`LimitsSource`] (the membership group).
//! - Sharding: each series goes to the replication set of
//!   `series_hash(tenant, labels)` on the ring and counts as written once a
//!   quorum of it acknowledged.
//!
//! Status codes follow the remote write spec: 2xx written, 400 bad data
//! (with what was refused), 401 no tenant, 413 too large, 415 unsupported
//! content type or encoding, 429 rate limited, 503 when a retry can help.
//! See `docs/write-path.md`.

mod config;
pub mod decode;
mod distributor;
mod error;
mod grpc;
mod http;
mod limits;
mod metrics;
mod push;
mod rate;
pub mod validate;
mod wire;

pub use config::DistributorConfig;
pub use distributor::{Distributor, SERVICE_NAME};
pub use error::DistributorError;
pub use http::{EXEMPLARS_WRITTEN, HISTOGRAMS_WRITTEN, SAMPLES_WRITTEN, VERSION_HEADER};
pub use limits::{Limits, LimitsOverride, LimitsSource};
pub use push::{PushOutcome, Written};
