//! A runner for Prometheus's promqltest format (the upstream PromQL engine
//! tests): file parsing, series notation, result comparison and upstream's
//! extra checks (`@` re-runs and range-mode re-runs of instant evals).

pub(crate) mod atmod;
pub(crate) mod compare;
pub(crate) mod runner;
pub(crate) mod script;
pub(crate) mod selectors;
pub(crate) mod series;
