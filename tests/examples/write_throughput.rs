//! Remote write ingestion throughput, in samples per second per core, of
//! the embedded `all` target (replication factor 1) and of a local
//! cluster (three ingesters, two distributors, replication factor 3).
//!
//! Release build of both the binary and this writer:
//!
//! ```sh
//! cargo build --release --bin tidemark
//! cargo run --release -p tidemark-tests --example write_throughput -- all 20
//! cargo run --release -p tidemark-tests --example write_throughput -- cluster 20
//! ```
//!
//! Senders post remote write 1.0 requests of 2000 series with one sample
//! each (Prometheus's default `max_samples_per_send`) as fast as they are
//! acknowledged, each request a new timestamp for the same series (a
//! steady state, no series churn), with the WAL's default `fsync: batch`.
//! Per core = acknowledged samples divided by the CPU seconds (user +
//! system, from `/proc/<pid>/stat`) that the tidemark processes spent, so
//! the writer's own CPU on the same machine does not count.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tidemark_tests::Process;
use tidemark_tests::cluster::{Cluster, ClusterSpec, TENANT};
use tidemark_tests::remote_write::{encode, now_ms, push, series};

const SERIES_PER_REQUEST: usize = 2000;
const SENDERS_PER_TARGET: usize = 2;

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    // SAFETY-free: sysconf only reads a constant.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

fn run_senders(targets: &[String], tenant: Option<&str>, seconds: u64) -> (u64, u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    for (i, t) in targets
        .iter()
        .flat_map(|t| std::iter::repeat_n(t, SENDERS_PER_TARGET))
        .enumerate()
    {
        let url = format!("{t}/api/v1/push");
        let tenant = tenant.map(str::to_string);
        let (stop, acked, failed) = (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&failed));
        threads.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let sender = i.to_string();
            let names: Vec<String> = (0..SERIES_PER_REQUEST).map(|s| s.to_string()).collect();
            let mut last = 0;
            let mut value = 0.0;
            while !stop.load(Ordering::Relaxed) {
                let ts = now_ms().max(last + 1);
                last = ts;
                value += 1.0;
                let body = encode(
                    names
                        .iter()
                        .map(|s| {
                            series(
                                &[
                                    ("__name__", "bench_samples_total"),
                                    ("job", "bench"),
                                    ("sender", &sender),
                                    ("series", s),
                                    ("instance", "10.0.0.1:9100"),
                                    ("le", "0.25"),
                                    ("method", "GET"),
                                    ("code", "200"),
                                ],
                                &[(ts, value)],
                            )
                        })
                        .collect(),
                );
                match push(&client, &url, tenant.as_deref(), body) {
                    Ok((s, _)) if (200..300).contains(&s) => {
                        acked.fetch_add(SERIES_PER_REQUEST as u64, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    (
        acked.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed(),
    )
}

fn measure(name: &str, pids: &[u32], targets: &[String], tenant: Option<&str>, seconds: u64) {
    // Warm up: series created, connections open, allocations settled.
    run_senders(targets, tenant, 3);
    let cpu0: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    let (acked, failed, wall) = run_senders(targets, tenant, seconds);
    let cpu = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu0;
    let wall = wall.as_secs_f64();
    println!(
        "{name}: {acked} samples acknowledged in {wall:.1} s ({:.0}/s), {failed} failed requests, \
         tidemark CPU {cpu:.1} s ({:.2} cores busy) -> {:.0} samples/s per core",
        acked as f64 / wall,
        cpu / wall,
        acked as f64 / cpu.max(1e-9)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("all");
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    match mode {
        "all" => {
            let mut p = Process::builder()
                .arg("--distributor.limits.ingestion-rate=0")
                .start();
            p.wait_ready(Duration::from_secs(60));
            let pid = p.pid().expect("running");
            measure("all (RF 1)", &[pid], &[p.url("")], None, seconds);
        }
        "cluster" => {
            let c = Cluster::start(ClusterSpec::default());
            let pids: Vec<u32> = c
                .ingesters
                .iter()
                .chain(&c.distributors)
                .chain(std::iter::once(&c.querier))
                .filter_map(Process::pid)
                .collect();
            measure(
                "cluster (3 ingesters, 2 distributors, RF 3)",
                &pids,
                &c.distributor_urls(),
                Some(TENANT),
                seconds,
            );
        }
        other => panic!("unknown mode {other:?}: expected all or cluster"),
    }
}
