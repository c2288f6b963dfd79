//! One scraper, many targets: the CPU and memory the real scrape manager
//! (HTTP fetch, parser, label merge, relabeling, staleness bookkeeping,
//! report series) needs to scrape `--targets` node_exporter targets every
//! `--interval-s`, and the same for Debian's `prometheus` on the same targets.
//!
//! ```text
//! cargo run --release -p tidemark-scraper --example scrape_load -- \
//!     [--targets 1000] [--interval-s 15] [--warmup-s 30] [--duration-s 240] \
//!     [--prometheus] [--body FILE]
//! ```
//!
//! The targets are served by a child process (`scrape_load serve N FILE`),
//! so the CPU figure of the scraper (this process, `/proc/self/stat`) holds
//! no HTTP serving. Samples go to a sink that counts them and records each
//! scrape's `up` and `scrape_duration_seconds`: no remote write, so the
//! figure is scraping alone (Prometheus's includes appending to its TSDB).

mod measure;
mod prom;
mod targets;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tidemark_model::TenantId;
use tidemark_scraper::scrape::{OwnAll, ScrapeManager};

use measure::{CountingSink, ScrapeStats, cpu_seconds, memory, scrape_stats};
use targets::TargetServer;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to run, from the flags.
pub(crate) struct Plan {
    targets: usize,
    interval: Duration,
    warmup: Duration,
    duration: Duration,
    prometheus: bool,
    body: Option<PathBuf>,
}

impl Plan {
    /// Whole intervals in the measured window.
    fn intervals(&self) -> usize {
        (self.duration.as_millis() / self.interval.as_millis().max(1)) as usize
    }

    fn from_args(mut args: impl Iterator<Item = String>) -> Result<Self, BoxError> {
        let mut plan = Plan {
            targets: 1000,
            interval: Duration::from_secs(15),
            warmup: Duration::from_secs(30),
            duration: Duration::from_secs(240),
            prometheus: false,
            body: None,
        };
        let secs = |v: Option<String>, flag: &str| -> Result<Duration, BoxError> {
            let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
            Ok(Duration::from_secs(
                v.parse().map_err(|e| format!("{flag}: {e}"))?,
            ))
        };
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--targets" => {
                    plan.targets = args.next().ok_or("--targets needs a value")?.parse()?
                }
                "--interval-s" => plan.interval = secs(args.next(), &flag)?,
                "--warmup-s" => plan.warmup = secs(args.next(), &flag)?,
                "--duration-s" => plan.duration = secs(args.next(), &flag)?,
                "--prometheus" => plan.prometheus = true,
                "--body" => plan.body = Some(args.next().ok_or("--body needs a file")?.into()),
                other => {
                    return Err(
                        format!("unknown flag {other}; see the example's doc comment").into(),
                    );
                }
            }
        }
        if plan.interval.is_zero()
            || !plan
                .duration
                .as_millis()
                .is_multiple_of(plan.interval.as_millis())
        {
            return Err("--duration-s must be a non-zero multiple of --interval-s".into());
        }
        Ok(plan)
    }
}

/// One scraper's figures over the measured window.
pub(crate) struct Figures {
    cpu_s: f64,
    samples: u64,
    rss: u64,
    hwm: u64,
    stats: ScrapeStats,
    /// The target server's CPU in the same window.
    server_cpu_s: Option<f64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The prometheus.yml both scrapers get: one job, every port a target.
fn config_yaml(ports: &[u16], interval: Duration) -> String {
    let mut y = format!(
        "global:\n  scrape_interval: {}s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets:\n",
        interval.as_secs()
    );
    for p in ports {
        let _ = writeln!(y, "          - 127.0.0.1:{p}");
    }
    y
}

async fn run_tidemark(plan: &Plan, yaml: &str, server: &TargetServer) -> Result<Figures, BoxError> {
    let sink = Arc::new(CountingSink::default());
    let mut manager = ScrapeManager::new(
        Arc::clone(&sink),
        Arc::new(OwnAll),
        TenantId::new("bench")?,
        1,
    )?;
    let report = manager.apply_yaml(yaml)?;
    if report.started != plan.targets || !report.errors.is_empty() {
        return Err(format!(
            "started {} loops of {}: {:?}",
            report.started, plan.targets, report.errors
        )
        .into());
    }
    tokio::time::sleep(plan.warmup).await;
    let t0 = now_ms();
    let (cpu0, server0, samples0) = (
        cpu_seconds("self")?,
        cpu_seconds(&server.pid())?,
        sink.samples(),
    );
    tokio::time::sleep(plan.duration).await;
    let t1 = now_ms();
    let (cpu1, server1, samples1) = (
        cpu_seconds("self")?,
        cpu_seconds(&server.pid())?,
        sink.samples(),
    );
    let (rss, hwm) = memory("self")?;
    manager.shutdown().await;
    Ok(Figures {
        cpu_s: cpu1 - cpu0,
        samples: samples1 - samples0,
        rss,
        hwm,
        stats: scrape_stats(&sink.scrapes_between(t0, t1), plan.intervals()),
        server_cpu_s: Some(server1 - server0),
    })
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One line of the report: its name and how a run's figures fill its cell.
type Row<'a> = (&'a str, &'a dyn Fn(&Figures) -> String);

fn report(plan: &Plan, runs: &[(&str, Figures)]) {
    let secs = plan.duration.as_secs_f64();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rows: [Row<'_>; 10] = [
        ("CPU seconds in window", &|f| format!("{:.1}", f.cpu_s)),
        ("CPU, % of one core", &|f| {
            format!("{:.1}", 100.0 * f.cpu_s / secs)
        }),
        ("CPU µs per sample", &|f| {
            format!("{:.2}", 1e6 * f.cpu_s / f.samples.max(1) as f64)
        }),
        ("samples/s", &|f| format!("{:.0}", f.samples as f64 / secs)),
        ("RSS at end, MiB", &|f| format!("{:.1}", mib(f.rss))),
        ("peak RSS (VmHWM), MiB", &|f| format!("{:.1}", mib(f.hwm))),
        ("scrape duration p50 / p99 / max, ms", &|f| {
            format!(
                "{:.1} / {:.1} / {:.1}",
                1e3 * f.stats.duration_p50_s,
                1e3 * f.stats.duration_p99_s,
                1e3 * f.stats.duration_max_s
            )
        }),
        ("scrapes (failed)", &|f| {
            format!("{} ({})", f.stats.scrapes, f.stats.failed)
        }),
        ("targets scraped once in every interval", &|f| {
            format!(
                "{} of {}",
                f.stats.targets_every_interval, f.stats.targets_seen
            )
        }),
        ("target server CPU seconds", &|f| {
            f.server_cpu_s
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "-".into())
        }),
    ];
    let mut head = String::from("| measure |");
    let mut rule = String::from("| --- |");
    for (name, _) in runs {
        let _ = write!(head, " {name} |");
        rule.push_str(" ---: |");
    }
    println!("{head}\n{rule}");
    for (name, row) in rows {
        let cells: Vec<String> = runs.iter().map(|(_, f)| row(f)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    if let [(_, t), (_, p)] = runs {
        println!(
            "\ntidemark / prometheus: CPU {:.2}x, peak RSS {:.2}x",
            t.cpu_s / p.cpu_s,
            t.hwm as f64 / p.hwm as f64
        );
    }
}

fn run(plan: Plan) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let body_file = match &plan.body {
        Some(f) => f.clone(),
        None => {
            let (body, source) = targets::node_exporter_body()?;
            let samples = body
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && l[0] != b'#')
                .count();
            eprintln!("body: {source}, {} bytes, {samples} samples", body.len());
            let f = dir.path().join("body.txt");
            std::fs::write(&f, body)?;
            f
        }
    };
    let server = TargetServer::start(plan.targets, &body_file)?;
    let yaml = config_yaml(&server.ports, plan.interval);
    eprintln!(
        "{} targets every {:?}; warm-up {:?}, window {:?} ({} intervals); load average {}",
        plan.targets,
        plan.interval,
        plan.warmup,
        plan.duration,
        plan.intervals(),
        uptime()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut runs = vec![(
        "tidemark scraper",
        rt.block_on(run_tidemark(&plan, &yaml, &server))?,
    )];
    eprintln!("tidemark done; load average {}", uptime());
    if plan.prometheus {
        if std::path::Path::new(prom::PROMETHEUS).exists() {
            runs.push((
                "prometheus",
                rt.block_on(prom::run(&plan, &yaml, dir.path(), &server.pid()))?,
            ));
            eprintln!("prometheus done; load average {}", uptime());
        } else {
            eprintln!(
                "{} not installed; skipping the comparison",
                prom::PROMETHEUS
            );
        }
    }
    report(&plan, &runs);
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let result = if args.peek().map(String::as_str) == Some("serve") {
        args.next();
        match (args.next().and_then(|n| n.parse().ok()), args.next()) {
            (Some(n), Some(body)) => targets::serve(n, body.as_ref()),
            _ => Err("usage: scrape_load serve TARGETS BODY_FILE".into()),
        }
    } else {
        Plan::from_args(args).and_then(run)
    };
    if let Err(e) = result {
        eprintln!("scrape_load: {e}");
        std::process::exit(1);
    }
}
