//! The tidemark TSDB engine.
//!
//! - [`chunk`]: Prometheus XOR float chunks, bit-compatible with Prometheus.
//!
//! Samples are millisecond timestamps and `f64` values
//! ([`tidemark_model::Sample`]); the staleness marker is kept bit-exact.

pub mod chunk;
mod error;

pub use chunk::{XorAppender, XorChunk, XorIter};
pub use error::TsdbError;
