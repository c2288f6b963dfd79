//! tidemark's PromQL engine.
//!
//! Queries are parsed with the `promql-parser` crate and evaluated here with
//! Prometheus 3.x semantics over a [`Queryable`], so the same engine runs over
//! an ingester's head, blocks in object storage, or a fan-out to remote
//! ingesters.
//!
//! A query runs in two phases: the engine first walks the expression and asks
//! the storage, once per selector, for every series and sample the whole
//! query can touch (including offsets, `@`, ranges, subqueries and the
//! lookback delta); it then evaluates the expression step by step over that
//! data without further I/O. Limits (samples held, timeout, cancellation)
//! are checked in both phases. See `docs/promql.md` for what is supported.

mod durexpr;
mod engine;
#[cfg(test)]
mod engine_tests;
mod error;
mod eval;
pub mod functions;
pub mod memstore;
mod parse_error;
mod prepare;
mod storage;
mod value;

pub use engine::{Engine, EngineOpts, QueryResult};
pub use error::PromqlError;
pub use storage::{Queryable, SelectHints, Series, StorageError};
pub use value::{Value, VectorSample};
