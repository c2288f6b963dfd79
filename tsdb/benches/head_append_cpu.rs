//! Head append cost in CPU time: samples appended per CPU-second of the
//! appending thread (user + system, from `/proc/thread-self/schedstat`), with
//! the WAL on. Unlike the wall-clock criterion figures of `head_append`,
//! this stays meaningful on a machine shared with other work, and it is
//! what "samples/s per core" means. Wall-clock time (which includes waiting
//! for fsync) is printed next to it.
//!
//! Same data as `head_append`: 8 realistic labels per series, 15 s scrape
//! interval (5% of scrapes 3-20 ms late), a mix of counters and gauges.
//!
//! Run: `cargo bench -p tidemark-tsdb --bench head_append_cpu [-- NAME...]`
//! (names filter the runs by substring, e.g. `10k_series_x1`).

use std::time::{Duration, Instant};

use tidemark_model::{Labels, Sample};
use tidemark_tsdb::{Head, HeadOptions, SyncPolicy, WalOptions};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn series_labels(n: usize) -> Vec<Labels> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let app = i / 50;
            let pod = format!(
                "app-{app}-{:05x}-{:05x}",
                rng.next() & 0xfffff,
                rng.next() & 0xfffff
            );
            Labels::from_pairs([
                ("__name__", format!("metric_{}_total", i % 40)),
                ("container", format!("app-{app}")),
                ("endpoint", "http-metrics".to_string()),
                (
                    "instance",
                    format!("10.{}.{}.{}:9100", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                ),
                ("job", format!("namespace-{}/app-{app}", i % 7)),
                ("namespace", format!("namespace-{}", i % 7)),
                ("pod", pod),
                ("service", format!("app-{app}")),
            ])
            .expect("unique label names")
        })
        .collect()
}

fn batch(
    labels: &[Labels],
    round: i64,
    per_series: i64,
    rng: &mut Rng,
) -> Vec<(Labels, Vec<Sample>)> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let samples = (0..per_series)
                .map(|k| {
                    let n = round + k;
                    let jitter = if rng.next().is_multiple_of(20) {
                        3 + (rng.next() % 18) as i64
                    } else {
                        0
                    };
                    let v = match i % 10 {
                        0 => (rng.next() % 10_000) as f64 / 100.0,
                        1..=3 => (n / 40) as f64,
                        _ => (n * (i as i64 % 17 + 1)) as f64,
                    };
                    Sample::new(n * 15_000 + jitter, v)
                })
                .collect();
            // A fresh buffer per batch, as decoding a remote-write request
            // makes: a clone would share the head's buffer and let the
            // label comparison stop at pointer equality.
            (Labels::from_sorted_pairs(l.iter()), samples)
        })
        .collect()
}

/// CPU time (user + system) of the calling thread, in nanoseconds as the
/// scheduler counts it (`/proc/thread-self/schedstat`): `stat`'s utime and
/// stime are in 10 ms ticks, coarser than one batch.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn run(name: &str, sync: Option<SyncPolicy>, series: usize, per_series: i64, batches: i64) {
    // `cargo bench` passes `--bench`; any other argument filters by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
        return;
    }
    let labels = series_labels(series);
    let dir = tempfile::tempdir().expect("temp dir");
    let head = match sync {
        Some(sync) => {
            let opts = WalOptions {
                sync,
                ..WalOptions::default()
            };
            Head::open(dir.path(), HeadOptions::default(), opts)
                .expect("open head")
                .0
        }
        None => Head::new(HeadOptions::default()).expect("head"),
    };
    let mut rng = Rng(42);
    head.append(&batch(&labels, 0, 1, &mut rng))
        .expect("append");
    let mut round = 1;
    let mut cpu = Duration::ZERO;
    let mut wall = Duration::ZERO;
    let mut samples = 0u64;
    for _ in 0..batches {
        let b = batch(&labels, round, per_series, &mut rng);
        round += per_series;
        let (c0, w0) = (thread_cpu(), Instant::now());
        let r = head.append(&b).expect("append");
        wall += w0.elapsed();
        cpu += thread_cpu().saturating_sub(c0);
        samples += r.samples_written as u64;
        drop(b);
    }
    let per_cpu_s = samples as f64 / cpu.as_secs_f64().max(1e-3);
    let per_wall_s = samples as f64 / wall.as_secs_f64();
    println!(
        "{name:<36} {samples:>9} samples  {:>6.2} M samples per CPU-second  {:>6.2} M samples/s wall",
        per_cpu_s / 1e6,
        per_wall_s / 1e6
    );
}

fn main() {
    println!("## head append, samples per CPU-second of the appending thread");
    run(
        "wal_fsync_batch/10k_series_x1",
        Some(SyncPolicy::Batch),
        10_000,
        1,
        200,
    );
    run(
        "wal_fsync_batch/1k_series_x100",
        Some(SyncPolicy::Batch),
        1_000,
        100,
        100,
    );
    run(
        "wal_fsync_batch/10k_series_x10",
        Some(SyncPolicy::Batch),
        10_000,
        10,
        40,
    );
    run(
        "wal_fsync_1s/10k_series_x1",
        Some(SyncPolicy::Interval(Duration::from_secs(1))),
        10_000,
        1,
        200,
    );
    run("no_wal/10k_series_x1", None, 10_000, 1, 200);
}
