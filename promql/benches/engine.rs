//! Range-query benchmarks of the shapes Prometheus benchmarks in
//! `promql/bench_test.go`: rate over many series, `sum by`, classic
//! `histogram_quantile`, `topk`, vector-vector binary operations and
//! subqueries, each as a range query of 1,000 steps over data held in a
//! [`MemStore`].
//!
//! Data: counters `a` and `b` with `n` series each (labels `l` = series
//! index, `group` = index mod 10) and a classic histogram `h_bucket` with
//! 100 series of 10 finite buckets plus `+Inf`, all scraped every 10s over
//! the query range plus one hour before it. The query runs from 1h to
//! 1h + 999 x 10s with a 10s step.
//!
//! The figure criterion reports is the CPU time of the benchmark thread
//! (from `/proc/thread-self/schedstat`), not wall time: the machine is
//! shared, and wall time there measures the neighbours as much as the
//! engine. The engine evaluates a query on the calling thread, so its CPU
//! time is the query's cost.
//!
//! Run: `cargo bench -p tidemark-promql --bench engine` (with
//! `TIDEMARK_BENCH_10K=1` also over 10,000 series).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tidemark_model::{Labels, Sample};
use tidemark_promql::memstore::MemStore;
use tidemark_promql::{Engine, EngineOpts};

const INTERVAL_MS: i64 = 10_000;
const STEPS: i64 = 1_000;
const START_MS: i64 = 3_600_000;
const END_MS: i64 = START_MS + (STEPS - 1) * INTERVAL_MS;

/// CPU time consumed so far by the calling thread.
fn thread_cpu_time() -> Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn counter(seed: usize, n_samples: i64) -> Vec<Sample> {
    let inc = 1.0 + (seed % 7) as f64;
    (0..n_samples)
        .map(|i| Sample::new(i * INTERVAL_MS, i as f64 * inc))
        .collect()
}

fn store(series: usize) -> MemStore {
    let n_samples = END_MS / INTERVAL_MS + 1;
    let mut s = MemStore::new();
    for name in ["a", "b"] {
        for i in 0..series {
            let l = i.to_string();
            let g = (i % 10).to_string();
            let labels = Labels::from_pairs([("__name__", name), ("l", &l), ("group", &g)])
                .expect("valid labels");
            s.add(labels, &counter(i, n_samples));
        }
    }
    let bounds = [
        "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    for i in 0..100 {
        let l = i.to_string();
        for (b, le) in bounds.iter().enumerate() {
            let labels = Labels::from_pairs([("__name__", "h_bucket"), ("l", &l), ("le", le)])
                .expect("valid labels");
            // Cumulative counts grow with the bucket index.
            let samples: Vec<Sample> = (0..n_samples)
                .map(|t| Sample::new(t * INTERVAL_MS, (t as f64) * (b + 1 + i % 3) as f64))
                .collect();
            s.add(labels, &samples);
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // A benchmark measures cost, not limits: the 10,000-series queries can
    // take minutes of wall time on a busy machine.
    let engine = Engine::new(EngineOpts {
        timeout: Duration::from_secs(3_600),
        ..EngineOpts::default()
    });
    let mut group = c.benchmark_group("range_query_1000_steps");
    group.sample_size(10);
    // The 10,000-series variants cost minutes on a shared machine; they
    // run when `TIDEMARK_BENCH_10K` is set.
    let sizes: &[usize] = if std::env::var_os("TIDEMARK_BENCH_10K").is_some() {
        &[1_000, 10_000]
    } else {
        &[1_000]
    };
    for &series in sizes {
        let data = store(series);
        let mut queries = vec!["rate(a[1m])", "sum by (group) (rate(a[5m]))"];
        if series == 1_000 {
            queries.extend([
                "a",
                "rate(a[1h])",
                "sum(a)",
                "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
                "histogram_quantile(0.9, rate(h_bucket[5m]))",
                "topk(5, a)",
                "a + b",
                "a - on(l) b",
                "a / on(l) group_left(group) b",
                "max_over_time(rate(a[1m])[10m:1m])",
            ]);
        }
        for q in queries {
            // Check once that the query works, so a broken query does not
            // produce a meaningless figure.
            let res = rt.block_on(engine.range_query(&data, q, START_MS, END_MS, INTERVAL_MS));
            if let Err(e) = res {
                eprintln!("skipping {q:?} with {series} series: {e}");
                continue;
            }
            group.bench_with_input(BenchmarkId::new(q, series), &data, |b, data| {
                b.iter_custom(|iters| {
                    let before = thread_cpu_time();
                    for _ in 0..iters {
                        let r =
                            rt.block_on(engine.range_query(data, q, START_MS, END_MS, INTERVAL_MS));
                        std::hint::black_box(r.map(|r| r.value).ok());
                    }
                    thread_cpu_time() - before
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
