//! Where query data comes from: the ingesters of the ring (and later block
//! storage), merged and deduplicated, under per-query limits.
//!
//! The API opens one [`TenantReader`] per request from a [`ReadSource`];
//! [`IngesterSource`] fans every read out to the ring's read set,
//! [`MergedSource`] merges several sources with the same dedup code
//! ([`SeriesMerger`]), and [`QueryableSource`] wraps any engine
//! `Queryable` (tests, tools).

mod exemplars;
mod ingesters;
mod limits;
mod merge;
mod source;

pub use ingesters::{IngesterReader, IngesterSource};
pub use limits::{QueryLimiter, QueryLimits};
pub use merge::SeriesMerger;
pub use source::{
    ExemplarsRequest, LabelsRequest, MergedSource, QueryableSource, ReadSource, TenantReader,
};
