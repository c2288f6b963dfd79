//! The tidemark querier: the Prometheus HTTP API that Grafana's Prometheus
//! data source talks to, over tidemark's PromQL engine, reading from the
//! ingesters of the ring.
//!
//! - [`Querier`]: the role (`start`, `http_routes`, `stop`).
//! - [`fanout`]: where data comes from — [`IngesterSource`] asks every
//!   ingester of the read set, merges replicas and removes duplicate
//!   samples, tolerating the set's `max_errors` failures; per-query limits
//!   ([`QueryLimits`]) fail a query, never the process.
//! - [`blocks`]: [`BucketSource`] reads the tenant's blocks from the
//!   bucket (bucket index, index files cached on disk, chunks by ranged
//!   reads); [`Querier::start_with_bucket`] merges it with the ingesters.
//! - [`QuerierConfig`]: timeouts, sample/series/byte limits, lookback.
//! - [`QuerierError`]: every failure, mapped once to Prometheus's
//!   `errorType` and status code.
//!
//! See `docs/querier.md` for the endpoints and how to add tidemark to
//! Grafana.

mod api;
pub mod blocks;
mod config;
mod error;
pub mod fanout;
mod querier;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod blocks_tests;
#[cfg(test)]
mod fanout_tests;
#[cfg(test)]
mod grafana_tests;

pub use api::{Clock, PROMETHEUS_COMPATIBLE_VERSION, system_clock};
pub use blocks::{BucketSource, BucketStore, BucketStoreConfig};
pub use config::QuerierConfig;
pub use error::QuerierError;
pub use fanout::{
    IngesterSource, LabelsRequest, MergedSource, QueryLimiter, QueryLimits, QueryableSource,
    ReadSource, SeriesMerger, TenantReader,
};
pub use querier::Querier;
