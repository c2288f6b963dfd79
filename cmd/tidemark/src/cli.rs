//! Command-line parsing: the flags are derived from the default configuration.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_yaml::Value;
use tidemark_config::{ConfigError, flag_specs, set_path};

use crate::config::Config;

/// What the user asked the binary to do.
pub(crate) enum Invocation {
    /// Run the configured roles.
    Run(Box<Config>),
    /// Print the full default configuration as YAML.
    PrintDefaults,
    /// Run a one-off tool (`tidemark tools ...`).
    Tool(crate::tools::Tool),
}

fn command() -> Command {
    let defaults = Config::defaults_yaml();
    let mut cmd = Command::new("tidemark")
        .version(env!("CARGO_PKG_VERSION"))
        .about("tidemark: a horizontally scaled, multi-tenant, Prometheus-compatible metrics store")
        .after_help(
            "Every configuration field has a flag named after its YAML path, with `_` written `-`.\n\
             Precedence: defaults < --config.file < flags. `tidemark config defaults` prints the full default YAML.",
        )
        .arg(
            Arg::new("config.file")
                .long("config.file")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("YAML configuration file"),
        )
        .subcommand(
            Command::new("config")
                .about("Configuration helpers")
                .subcommand_required(true)
                .subcommand(Command::new("defaults").about("Print the full default configuration as YAML")),
        )
        .subcommand(crate::tools::command());
    for spec in flag_specs(&defaults) {
        let help = if spec.default.is_empty() {
            format!("[config: {}]", spec.path)
        } else {
            format!("[config: {}] (default: {})", spec.path, spec.default)
        };
        cmd = cmd.arg(
            Arg::new(spec.path.clone())
                .long(spec.flag.clone())
                .value_name("VALUE")
                .action(ArgAction::Set)
                .help(help),
        );
    }
    cmd
}

/// Go-style single-dash long flags (`-target=all`, as Mimir users type them)
/// are accepted by rewriting them to `--target=all`.
fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let is_go_style = i > 0 && a.len() > 2 && a.starts_with('-') && !a.starts_with("--");
            if is_go_style { format!("-{a}") } else { a }
        })
        .collect()
}

/// Parses the command line; clap itself exits with code 2 on a usage error.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Invocation, ConfigError> {
    let matches = command().get_matches_from(normalize_args(args));
    if let Some(("config", sub)) = matches.subcommand()
        && sub.subcommand_name() == Some("defaults")
    {
        return Ok(Invocation::PrintDefaults);
    }
    let doc = load_file(&matches)?;
    let doc = overlay_flags(doc, &matches)?;
    let cfg = Config::from_yaml(doc)?;
    if let Some(("tools", sub)) = matches.subcommand() {
        return crate::tools::parse(sub, cfg).map(Invocation::Tool);
    }
    Ok(Invocation::Run(Box::new(cfg)))
}

fn load_file(matches: &ArgMatches) -> Result<Value, ConfigError> {
    let Some(file) = matches.get_one::<PathBuf>("config.file") else {
        return Ok(Value::Null);
    };
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
        file: file.display().to_string(),
        message: e.to_string(),
    })?;
    serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
        message: format!("{}: {e}", file.display()),
    })
}

fn overlay_flags(mut doc: Value, matches: &ArgMatches) -> Result<Value, ConfigError> {
    let defaults = Config::defaults_yaml();
    if doc.is_null() {
        doc = Value::Mapping(Default::default());
    }
    for spec in flag_specs(&defaults) {
        if let Some(raw) = matches.get_one::<String>(&spec.path) {
            set_path(&mut doc, &defaults, &spec.path, raw)?;
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, ConfigError> {
        let args = std::iter::once("tidemark")
            .chain(args.iter().copied())
            .map(String::from);
        match parse(args)? {
            Invocation::Run(c) => Ok(*c),
            _ => panic!("expected run"),
        }
    }

    #[test]
    fn flags_override_defaults() {
        let c = run(&[
            "--server.http-listen-address=127.0.0.1:1",
            "--storage.data-dir",
            "/tmp/x",
            "-target=querier",
        ])
        .unwrap();
        assert_eq!(c.server.http_listen_address, "127.0.0.1:1");
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.target, "querier");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        std::fs::write(
            &f,
            "server:\n  http_listen_address: 127.0.0.1:5\n  log_level: debug\n",
        )
        .unwrap();
        let c = run(&[
            "--config.file",
            f.to_str().unwrap(),
            "--server.http-listen-address=127.0.0.1:6",
        ])
        .unwrap();
        assert_eq!(c.server.http_listen_address, "127.0.0.1:6");
        assert_eq!(c.server.log_level, "debug");
    }

    #[test]
    fn bad_flag_value_names_the_field() {
        let e = run(&["--server.grpc-max-message-bytes=lots"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.grpc_max_message_bytes"), "{e}");
    }
}
