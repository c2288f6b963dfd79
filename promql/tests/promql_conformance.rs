//! Runs Prometheus's own PromQL test corpus (promqltest format) against
//! tidemark's engine and prints the score.
//!
//! The corpus is read from `../shared/conformance/promql` next to the
//! repository; without it the run prints why and succeeds. Evals that fail
//! do not fail the run (the score is the output); the run fails only if the
//! corpus exists and nothing could be attempted, or on a crash of the
//! runner itself.
//!
//! Environment:
//! - `PROMQL_CONF_DIR=/path` reads the corpus from elsewhere;
//! - `PROMQL_CONF_FILE=selectors[,functions]` runs only these files;
//! - `PROMQL_CONF_VERBOSE=1` prints every failure (default: 5 per file);
//! - `PROMQL_CONF_CATEGORIES=1` also prints failures grouped by message.

#![allow(clippy::unwrap_used)]

// The modules' unit tests run in the `promqltest_units` target.
#[cfg_attr(test, allow(dead_code, unused_imports))]
mod promqltest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use promqltest::runner::{FileReport, Runner, Stats, category};
use promqltest::script::parse_file;

const FAILURES_PER_FILE: usize = 5;

fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PROMQL_CONF_DIR") {
        return Some(PathBuf::from(d)).filter(|p| p.is_dir());
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/conformance/promql"))
        .find(|p| p.is_dir())
}

fn main() -> ExitCode {
    let Some(dir) = corpus_dir() else {
        println!("promql conformance: skipped, ../shared/conformance/promql not found");
        return ExitCode::SUCCESS;
    };
    let only: Option<Vec<String>> = std::env::var("PROMQL_CONF_FILE").ok().map(|v| {
        v.split(',')
            .map(|s| s.trim().trim_end_matches(".test").to_string())
            .collect()
    });
    let verbose = std::env::var("PROMQL_CONF_VERBOSE").is_ok_and(|v| v != "0" && !v.is_empty());
    let categories =
        std::env::var("PROMQL_CONF_CATEGORIES").is_ok_and(|v| v != "0" && !v.is_empty());

    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "test"))
            .collect(),
        Err(e) => {
            eprintln!("promql conformance: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    files.sort();
    if let Some(only) = &only {
        files.retain(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| only.iter().any(|o| o == s))
        });
    }
    // Quiet panic output: engine panics are caught and reported as failures.
    std::panic::set_hook(Box::new(|_| {}));
    let runner = match Runner::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("promql conformance: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut reports: Vec<(String, FileReport)> = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("promql conformance: cannot read {}: {e}", f.display());
                return ExitCode::FAILURE;
            }
        };
        let cmds = parse_file(&text);
        reports.push((name, runner.run_file(&cmds)));
    }

    print_report(&dir, &reports, verbose, categories);

    let mut total = Stats::default();
    for (_, r) in &reports {
        total.add(&r.stats);
    }
    println!(
        "promql conformance: {}/{} passed, {} skipped",
        total.all_passed(),
        total.attempted(),
        total.skipped
    );
    if total.attempted() == 0 {
        eprintln!("promql conformance: the corpus exists but no eval was attempted");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_report(dir: &Path, reports: &[(String, FileReport)], verbose: bool, categories: bool) {
    println!("PromQL conformance against {}", dir.display());
    println!(
        "{:<26} {:>6} {:>6} {:>6} {:>7} | {:>13} {:>13} | {:>11}",
        "file", "evals", "passed", "failed", "skipped", "@ re-runs", "range re-runs", "all checks"
    );
    let mut total = Stats::default();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut extra_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, r) in reports {
        let s = &r.stats;
        print_row(name, s);
        total.add(s);
        for (k, v) in &r.skip_reasons {
            *reasons.entry(k.as_str()).or_default() += v;
        }
        for (k, v) in &r.extra_skip_reasons {
            *extra_reasons.entry(k.as_str()).or_default() += v;
        }
    }
    print_row("TOTAL", &total);
    println!(
        "(evals: the eval statements run; @ and range re-runs: upstream's extra checks of instant evals, \
         passed/attempted; all checks: evals whose every check passed, as upstream counts a pass)"
    );
    if !reasons.is_empty() {
        println!("\nskipped evals by reason:");
        let mut rs: Vec<_> = reasons.into_iter().collect();
        rs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (k, v) in rs {
            println!("  {k}: {v}");
        }
    }
    if !extra_reasons.is_empty() {
        println!(
            "\nextra checks not generated by the runner (not counted as attempted): {}",
            total.extra_not_generated
        );
        let mut rs: Vec<_> = extra_reasons.into_iter().collect();
        rs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (k, v) in rs {
            println!("  {k}: {v}");
        }
    }
    for (name, r) in reports {
        for n in &r.notes {
            println!("note: {name}: {n}");
        }
    }
    let any_failure = reports.iter().any(|(_, r)| !r.failures.is_empty());
    if any_failure {
        println!(
            "\nfailures ({}):",
            if verbose {
                "all"
            } else {
                "first 5 per file; PROMQL_CONF_VERBOSE=1 for all"
            }
        );
    }
    for (name, r) in reports {
        let n = if verbose {
            r.failures.len()
        } else {
            FAILURES_PER_FILE.min(r.failures.len())
        };
        for f in &r.failures[..n] {
            println!("- {name}:{} [{}] {} ({})", f.line, f.check, f.query, f.at);
            println!("    {}", f.message);
        }
        if r.failures.len() > n {
            println!(
                "  ... {} more failed checks in {name}",
                r.failures.len() - n
            );
        }
    }
    if categories {
        let mut cats: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (name, r) in reports {
            for f in &r.failures {
                let e = cats
                    .entry(format!("[{}] {}", f.check, category(&f.message)))
                    .or_insert((0, format!("{name}:{} {}", f.line, f.query)));
                e.0 += 1;
            }
        }
        let mut cs: Vec<_> = cats.into_iter().collect();
        cs.sort_by_key(|b| std::cmp::Reverse(b.1.0));
        println!("\nfailed checks by message:");
        for (k, (n, ex)) in cs {
            println!("  {n:>5}  {k}\n         e.g. {ex}");
        }
    }
    println!();
}

fn print_row(name: &str, s: &Stats) {
    println!(
        "{:<26} {:>6} {:>6} {:>6} {:>7} | {:>13} {:>13} | {:>11}",
        name,
        s.evals,
        s.passed,
        s.failed,
        s.skipped,
        format!("{}/{}", s.at_passed, s.at_attempted),
        format!("{}/{}", s.range_passed, s.range_attempted),
        format!("{}/{}", s.strict_passed, s.evals)
    );
}
