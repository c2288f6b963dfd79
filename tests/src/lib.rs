//! A harness for tests that run real `tidemark` processes.
//!
//! Each [`Process`] gets free loopback ports and its own temp data directory,
//! and is killed when dropped, so a failing test never leaves servers behind.
//! The binary is found through `TIDEMARK_BIN`, else next to the test
//! executable's target directory (`cargo build --bin tidemark` first; the
//! README's test command does).
//!
//! [`remote_write`] sends Prometheus remote write load and records what was
//! acknowledged, [`prom`] reads it back through a querier, [`ingester`]
//! asks one ingester alone, [`cluster`] starts a multi-process cluster, and
//! [`peer`] runs Debian's Prometheus next to them.

pub mod cluster;
pub mod ingester;
pub mod peer;
mod process;
pub mod prom;
pub mod remote_write;

pub use process::{Process, ProcessBuilder, free_port, tidemark_bin, wait_until};
