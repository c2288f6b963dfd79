//! The `tidemark` binary: parses the configuration and runs the chosen roles.
//!
//! Logic lives in the role and library crates; this crate only wires them
//! together, so tests and benchmarks use the libraries without the binary.

mod app;
mod cli;
mod config;
mod roles;
mod tools;
mod wiring;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a remote-write request decodes into
/// many small, short-lived allocations (a string per label, a vector per
/// series), and glibc spent about 45% of ingestion CPU consolidating and
/// unlinking them (profile in docs/benchmarks.md, "Side by side").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let invocation = match cli::parse(std::env::args()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("tidemark: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match invocation {
        cli::Invocation::PrintDefaults => {
            print!(
                "{}",
                serde_yaml::to_string(&config::Config::defaults()).unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
        cli::Invocation::Tool(tool) => return tools::main(tool),
        cli::Invocation::Run(cfg) => *cfg,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tidemark: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "tidemark stopped with an error");
            eprintln!("tidemark: {e:#}");
            ExitCode::FAILURE
        }
    }
}
