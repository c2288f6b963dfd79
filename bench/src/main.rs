//! `tidemark-bench`: the same write and query workload against tidemark
//! and its peers (anything that takes Prometheus remote write 1.0 and
//! serves the Prometheus HTTP API), measuring what each costs from
//! `/proc`. `scripts/bench.sh` starts the targets one after another and
//! prints the side-by-side table; see docs/benchmarks.md.

mod encode;
mod hosts;
mod ingest;
mod procfs;
mod query;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load generator and query workload for tidemark, Prometheus and VictoriaMetrics")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send the write workload and print what was accepted (JSON).
    Ingest(ingest::IngestArgs),
    /// Run the query workload over data written by `ingest` ending at --end-ms.
    Query {
        #[command(flatten)]
        query: query::QueryArgs,
        /// Scrape interval of the data, seconds.
        #[arg(long, default_value_t = 60)]
        interval: u64,
        /// End of the queried ranges (ms since the epoch; default now).
        #[arg(long)]
        end_ms: Option<i64>,
        /// Tenant sent as X-Scope-OrgID.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Measure one running target: ingest, flush, disk, queries, CPU and memory.
    Run(RunArgs),
    /// Print the side-by-side table from `run` outputs (the first is the reference).
    Table { files: Vec<PathBuf> },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Name of the target in the table (names starting with "tidemark" are not peers).
    #[arg(long)]
    name: String,
    /// Processes of the target (CPU and memory are summed over them).
    #[arg(long = "pid", required = true)]
    pids: Vec<u32>,
    /// Data directories of the target, measured right after ingestion.
    #[arg(long = "data-dir")]
    data_dirs: Vec<PathBuf>,
    /// POSTed after ingestion to make the target write its data out as
    /// blocks or parts (Prometheus: snapshot; VictoriaMetrics: force_flush;
    /// tidemark: `/ingester/flush`, once per ingester of a cluster).
    #[arg(long = "flush-url")]
    flush_urls: Vec<String>,
    /// What to measure after the flush (default: the data directories).
    #[arg(long = "flushed-path")]
    flushed_paths: Vec<PathBuf>,
    /// What the figures measure, for the table's notes.
    #[arg(long, default_value = "data directory")]
    disk_what: String,
    /// Where to write the result (JSON).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    ingest: ingest::IngestArgs,
    #[command(flatten)]
    query: query::QueryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Ingest(args) => {
            let r = ingest::run(&args).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        Cmd::Query {
            query,
            interval,
            end_ms,
            tenant,
        } => {
            let end = end_ms.unwrap_or_else(now_ms);
            let r = query::run(&query, tenant.as_deref(), interval, end).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        Cmd::Run(args) => run(args).await?,
        Cmd::Table { files } => {
            let mut results = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let r: report::TargetResult = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", f.display()))?;
                results.push(r);
            }
            if results.is_empty() {
                bail!("no result files given");
            }
            println!("{}", report::table(&results));
            println!(
                "Goals (issue #10), {} against its peers:\n",
                results[0].name
            );
            println!("{}", report::goals(&results));
            println!("Notes:\n");
            for r in &results {
                println!("{}", notes(r));
            }
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn notes(r: &report::TargetResult) -> String {
    let i = &r.ingest;
    let mut s = format!(
        "- {}: {} samples in {:.1} s over {} requests ({} failed samples), {} active series, {} series written with churn; disk = {}",
        r.name,
        i.samples,
        i.seconds,
        i.requests,
        i.samples_failed,
        i.active_series,
        i.series_created,
        r.disk_what
    );
    if let Some(e) = &i.first_error {
        s += &format!("; first write error: {e}");
    }
    for q in &r.queries {
        if let Some(e) = &q.first_error {
            s += &format!("; {} failed {} times: {e}", q.kind, q.errors);
        }
    }
    let series: Vec<String> = r
        .queries
        .iter()
        .map(|q| format!("{}={}", q.kind, q.series))
        .collect();
    s + &format!("; series per answer: {}", series.join(", "))
}

/// Adds `X-Scope-OrgID` when the run names a tenant (multi-tenant targets
/// refuse requests without it).
fn with_tenant(req: reqwest::RequestBuilder, tenant: Option<&str>) -> reqwest::RequestBuilder {
    match tenant {
        Some(t) => req.header("X-Scope-OrgID", t),
        None => req,
    }
}

async fn wait_ready(query_url: &str, tenant: Option<&str>) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/query?query=1", query_url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // A multi-tenant target answers 401 without the tenant.
        if let Ok(r) = with_tenant(client.get(&url), tenant).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer 200 within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// POSTs one flush; a flush that takes minutes (a large head cut into
/// blocks) is waited for, an error status fails the run.
async fn flush(url: &str) -> anyhow::Result<()> {
    let r = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .with_context(|| format!("flush {url}"))?;
    if !r.status().is_success() {
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        bail!("flush {url}: {status} {}", body.trim());
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    wait_ready(&args.query.query_url, args.ingest.tenant.as_deref()).await?;
    let pids = &args.pids;
    let rss_idle = procfs::status_bytes(pids, "VmRSS")?;
    let cpu0 = procfs::cpu_seconds(pids)?;
    eprintln!("[{}] ingesting ...", args.name);
    let ingest = ingest::run(&args.ingest).await?;
    let cpu = procfs::cpu_seconds(pids)? - cpu0;
    let rss_after = procfs::status_bytes(pids, "VmRSS")?;
    eprintln!(
        "[{}] {} samples in {:.1} s ({:.0}/s), {:.1} CPU s",
        args.name,
        ingest.samples,
        ingest.seconds,
        ingest.samples as f64 / ingest.seconds,
        cpu
    );
    let size = |paths: &[PathBuf]| paths.iter().map(|p| procfs::disk_bytes(p)).sum::<u64>();
    let data_dir_bytes = size(&args.data_dirs);
    let mut flushed_bytes = None;
    if !args.flush_urls.is_empty() {
        let started = Instant::now();
        for url in &args.flush_urls {
            flush(url).await?;
        }
        eprintln!(
            "[{}] flushed in {:.1} s",
            args.name,
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let paths = if args.flushed_paths.is_empty() {
            &args.data_dirs
        } else {
            &args.flushed_paths
        };
        flushed_bytes = Some(size(paths));
    }
    eprintln!("[{}] querying ...", args.name);
    let tenant = args.ingest.tenant.as_deref();
    let queries = query::run(&args.query, tenant, args.ingest.interval, ingest.last_ts_ms).await?;
    let result = report::TargetResult {
        name: args.name,
        ingest,
        ingest_cpu_seconds: cpu,
        rss_idle_bytes: rss_idle,
        rss_after_ingest_bytes: rss_after,
        hwm_bytes: procfs::status_bytes(pids, "VmHWM")?,
        data_dir_bytes,
        flushed_bytes,
        disk_what: args.disk_what,
        queries,
    };
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}
