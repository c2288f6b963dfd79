//! A harness for tests that run real `tidemark` processes.
//!
//! Each [`Process`] gets free loopback ports and its own temp data directory,
//! and is killed when dropped, so a failing test never leaves servers behind.
//! The binary is found through `TIDEMARK_BIN`, else next to the test
//! executable's target directory (`cargo build --bin tidemark` first; the
//! README's test command does).

mod process;

pub use process::{Process, ProcessBuilder, free_port, tidemark_bin, wait_until};
