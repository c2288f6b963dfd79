//! `tidemark tools ...`: one-off operations run from the command line with
//! the same configuration as the server (flags and `--config.file` go
//! before `tools`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command};
use tidemark_bucket::Bucket;
use tidemark_config::ConfigError;

use crate::config::Config;

/// A parsed `tools` subcommand.
pub(crate) enum Tool {
    /// Backfill a Prometheus data directory's blocks into a tenant.
    ImportBlocks {
        cfg: Box<Config>,
        tenant: String,
        dir: PathBuf,
    },
}

pub(crate) fn command() -> Command {
    Command::new("tools")
        .about("One-off operations on the store")
        .subcommand_required(true)
        .subcommand(
            Command::new("import-blocks")
                .about(
                    "Upload the blocks of a Prometheus data directory (or of promtool tsdb \
                     create-blocks-from) into a tenant's bucket prefix and bucket index",
                )
                .arg(
                    Arg::new("tenant")
                        .long("tenant")
                        .value_name("TENANT")
                        .required(true)
                        .help("Tenant that receives the blocks"),
                )
                .arg(
                    Arg::new("dir")
                        .value_name("DIR")
                        .required(true)
                        .value_parser(clap::value_parser!(PathBuf))
                        .help("Directory holding block directories (named by ULID)"),
                ),
        )
}

pub(crate) fn parse(sub: &ArgMatches, cfg: Config) -> Result<Tool, ConfigError> {
    match sub.subcommand() {
        Some(("import-blocks", m)) => Ok(Tool::ImportBlocks {
            cfg: Box::new(cfg),
            tenant: m.get_one::<String>("tenant").cloned().unwrap_or_default(),
            dir: m.get_one::<PathBuf>("dir").cloned().unwrap_or_default(),
        }),
        _ => Err(ConfigError::Parse {
            message: "expected a tools subcommand: import-blocks".into(),
        }),
    }
}

/// Runs a tool to completion and reports on stdout/stderr.
pub(crate) fn main(tool: Tool) -> ExitCode {
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
    match runtime.block_on(run(tool)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidemark: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(tool: Tool) -> anyhow::Result<()> {
    match tool {
        Tool::ImportBlocks { cfg, tenant, dir } => {
            let store = cfg.bucket.build(&cfg.storage.data_dir)?;
            let bucket = Bucket::new(store);
            let report = tidemark_compactor::import_blocks(&bucket, &tenant, &dir).await?;
            for id in &report.imported {
                println!("imported {id}");
            }
            for id in &report.skipped {
                println!("skipped {id} (already in the bucket)");
            }
            println!(
                "tenant {tenant}: {} blocks imported ({} bytes), {} already present",
                report.imported.len(),
                report.bytes,
                report.skipped.len()
            );
            Ok(())
        }
    }
}
