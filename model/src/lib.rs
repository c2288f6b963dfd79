//! The data model every tidemark role shares.
//!
//! A series is a tenant plus a sorted set of labels; a sample is a millisecond
//! timestamp and a float. Everything here is checked once at the boundary
//! (remote write, scrape, query parsing) so that the storage and query layers
//! can trust it.

mod error;
mod hash;
mod labels;
mod matcher;
mod sample;
mod tenant;

pub use error::ModelError;
pub use hash::{labels_hash, series_hash};
pub use labels::{
    Label, Labels, LabelsBuilder, METRIC_NAME, is_valid_label_name, is_valid_metric_name,
};
pub use matcher::{MatchOp, Matcher};
pub use sample::{
    EXEMPLAR_MAX_LABEL_CHARS, Exemplar, STALE_NAN, STALE_NAN_BITS, Sample, is_stale_nan,
};
pub use tenant::TenantId;
