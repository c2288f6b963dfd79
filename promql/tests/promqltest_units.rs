//! Unit tests of the promqltest runner's parts: series notation, test-file
//! parsing, result comparison and upstream's `@` re-runs. The modules are
//! shared with the `promql_conformance` binary, which uses all of them;
//! this target only runs their tests, hence the allowance.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

mod promqltest;
