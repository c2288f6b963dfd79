//! Head append throughput with the WAL on.
//!
//! Each iteration appends one batch to a head whose WAL is on real files in
//! a temp dir. Series have 8 realistic labels; timestamps advance by 15 s
//! (5% of scrapes 3-20 ms late); values mix counters, slow gauges and noisy
//! gauges. Throughput is reported in samples (elements) per second on one
//! thread.
//!
//! Run: `cargo bench -p tidemark-tsdb --bench head_append`

use std::cell::Cell;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
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

/// A batch of `samples_per_series` consecutive scrapes of every series,
/// starting at scrape number `round`.
fn batch(
    labels: &[Labels],
    round: i64,
    samples_per_series: i64,
    rng: &mut Rng,
) -> Vec<(Labels, Vec<Sample>)> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let samples = (0..samples_per_series)
                .map(|k| {
                    let n = round + k;
                    // Prometheus snaps scrape times within 2 ms of the interval
                    // (--scrape.timestamp-tolerance); model 5% of scrapes
                    // late by more than that.
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
            (l.clone(), samples)
        })
        .collect()
}

fn bench_append(
    c: &mut Criterion,
    name: &str,
    sync: Option<SyncPolicy>,
    series: usize,
    per_series: i64,
) {
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
    let round = Cell::new(0i64);
    // Create the series first: the benchmark measures appends to active series.
    head.append(&batch(&labels, 0, 1, &mut rng))
        .expect("append");
    round.set(1);
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(series as u64 * per_series as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                let r = round.get();
                round.set(r + per_series);
                batch(&labels, r, per_series, &mut rng)
            },
            |batch| {
                let res = head.append(&batch).expect("append");
                assert_eq!(res.samples_refused, 0);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_append(
        c,
        "wal_fsync_batch/10k_series_x1",
        Some(SyncPolicy::Batch),
        10_000,
        1,
    );
    bench_append(
        c,
        "wal_fsync_batch/50k_series_x1",
        Some(SyncPolicy::Batch),
        50_000,
        1,
    );
    bench_append(
        c,
        "wal_fsync_batch/1k_series_x100",
        Some(SyncPolicy::Batch),
        1_000,
        100,
    );
    bench_append(
        c,
        "wal_fsync_1s/10k_series_x1",
        Some(SyncPolicy::Interval(Duration::from_secs(1))),
        10_000,
        1,
    );
    bench_append(c, "no_wal/10k_series_x1", None, 10_000, 1);
}

criterion_group!(head_append, benches);
criterion_main!(head_append);
