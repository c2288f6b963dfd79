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
//! The `concurrent/` runs model an ingester serving several remote-write
//! pushes at once: N threads, each appending batches of its own series to
//! one head with the default fsync per batch, so batches whose records are
//! written while an fsync is in flight share the next one (group commit).
//! Their figure is the samples of all threads over the summed CPU time of
//! every `append` call (the fsync of the thread that runs it included);
//! fsyncs per batch come from `WalStats`.
//!
//! Run: `cargo bench -p tidemark-tsdb --bench head_append_cpu [-- NAME...]`
//! (names filter the runs by substring, e.g. `10k_series_x1`).

use std::sync::Barrier;
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

/// Whether the command line selects the run `name` (`cargo bench` passes
/// `--bench`; any other argument filters by substring).
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn run(name: &str, sync: Option<SyncPolicy>, series: usize, per_series: i64, batches: i64) {
    if !selected(name) {
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

/// `threads` appenders, each with its own `series` series, each appending
/// `batches` batches of one sample per series to one head with the WAL on
/// and the default fsync per batch.
fn run_concurrent(name: &str, threads: usize, series: usize, batches: i64) {
    if !selected(name) {
        return;
    }
    let all = series_labels(threads * series);
    let dir = tempfile::tempdir().expect("temp dir");
    let head = Head::open(dir.path(), HeadOptions::default(), WalOptions::default())
        .expect("open head")
        .0;
    let start = Barrier::new(threads);
    let before = std::sync::Mutex::new(None);
    let t0 = std::sync::OnceLock::new();
    let per_thread: Vec<(Duration, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = all
            .chunks(series)
            .enumerate()
            .map(|(k, labels)| {
                let (head, start, before, t0) = (&head, &start, &before, &t0);
                scope.spawn(move || {
                    let mut rng = Rng(42 + k as u64);
                    head.append(&batch(labels, 0, 1, &mut rng)).expect("append");
                    if start.wait().is_leader() {
                        let wal = head.wal().expect("head has a WAL");
                        *before.lock().expect("not poisoned") = Some(wal.stats());
                        t0.get_or_init(Instant::now);
                    }
                    start.wait();
                    let (mut cpu, mut samples) = (Duration::ZERO, 0u64);
                    for round in 1..=batches {
                        let b = batch(labels, round, 1, &mut rng);
                        let c0 = thread_cpu();
                        let r = head.append(&b).expect("append");
                        cpu += thread_cpu().saturating_sub(c0);
                        samples += r.samples_written as u64;
                    }
                    (cpu, samples)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("appender thread"))
            .collect()
    });
    let wall = t0.get().map_or(Duration::ZERO, Instant::elapsed);
    let after = head.wal().expect("head has a WAL").stats();
    let before = before
        .into_inner()
        .expect("not poisoned")
        .unwrap_or_default();
    let cpu: Duration = per_thread.iter().map(|(c, _)| *c).sum();
    let samples: u64 = per_thread.iter().map(|(_, s)| *s).sum();
    let fsyncs = after.fsyncs - before.fsyncs;
    let appends = threads as u64 * batches as u64;
    println!(
        "{name:<36} {samples:>9} samples  {:>6.2} M samples per CPU-second  {:>6.2} M samples/s wall  {:.2} fsyncs per batch",
        samples as f64 / cpu.as_secs_f64().max(1e-3) / 1e6,
        samples as f64 / wall.as_secs_f64() / 1e6,
        fsyncs as f64 / appends as f64,
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
    run(
        "wal_fsync_batch/2k_series_x1",
        Some(SyncPolicy::Batch),
        2_000,
        1,
        500,
    );
    // Remote write's default batch (max_samples_per_send) is 2 000 samples.
    for threads in [4, 16] {
        run_concurrent(
            &format!("concurrent/{threads}_threads/10k_series_x1"),
            threads,
            10_000,
            200 / threads as i64 * 2,
        );
        run_concurrent(
            &format!("concurrent/{threads}_threads/2k_series_x1"),
            threads,
            2_000,
            1_000 / threads as i64 * 2,
        );
    }
}
