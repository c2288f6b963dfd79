//! The numeric kernels of PromQL's functions and aggregations.
//!
//! Pure functions over plain floats and sample slices, with Prometheus 3.x
//! semantics; the evaluator owns selection, lookback, labels and
//! annotations and calls these for the arithmetic. Keeping them separate
//! lets them be unit-tested against hand-computed cases and benchmarked
//! without an engine.

pub mod histogram;
pub mod math;
pub mod range;
pub mod stats;
pub mod time;
