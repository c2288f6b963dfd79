//! Querier hot paths: merging replica copies, and a whole `query_range`
//! answer (engine + Prometheus JSON) through the HTTP router.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidemark_model::{Labels, Sample, TenantId};
use tidemark_promql::memstore::MemStore;
use tidemark_querier::{Querier, QuerierConfig, SeriesMerger};
use tidemark_server::Tenancy;
use tower::ServiceExt;

const SERIES: usize = 1_000;
const SAMPLES: i64 = 720; // 3 h at 15 s

fn labels(i: usize) -> Labels {
    let inst = format!("10.0.{}.{}:9100", i / 250, i % 250);
    Labels::from_pairs([
        ("__name__", "node_cpu_seconds_total"),
        ("cpu", "0"),
        ("instance", inst.as_str()),
        ("job", "node"),
        ("mode", "idle"),
    ])
    .unwrap()
}

fn samples(from: i64, to: i64) -> Vec<Sample> {
    (from..to)
        .map(|k| Sample::new(k * 15_000, k as f64 * 1.5))
        .collect()
}

/// Three replicas of 1,000 series; each replica holds a slightly different
/// span, as after restarts, so the merge has real work to do.
fn bench_merge(c: &mut Criterion) {
    let replicas: Vec<Vec<(Labels, Vec<Sample>)>> = (0..3)
        .map(|r| {
            (0..SERIES)
                .map(|i| (labels(i), samples(r * 10, SAMPLES - (2 - r) * 10)))
                .collect()
        })
        .collect();
    let total: usize = replicas
        .iter()
        .flat_map(|r| r.iter().map(|s| s.1.len()))
        .sum();
    let mut g = c.benchmark_group("merge_replicas");
    g.throughput(Throughput::Elements(total as u64));
    g.bench_function("3x1000_series_x_700_samples", |b| {
        b.iter_batched(
            || replicas.clone(),
            |replicas| {
                let mut m = SeriesMerger::new();
                for r in replicas {
                    for (l, s) in r {
                        m.add(l, s);
                    }
                }
                black_box(m.finish())
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// `query_range` of 1,000 raw series over 3 h at a 15 s step: 721,000
/// points evaluated and written as Prometheus JSON.
fn bench_query_range(c: &mut Criterion) {
    let mut store = MemStore::new();
    for i in 0..SERIES {
        store.add(labels(i), &samples(0, SAMPLES));
    }
    let q = Querier::from_queryable(
        QuerierConfig::default(),
        Tenancy::single(TenantId::new("anonymous").unwrap()),
        Arc::new(store),
    );
    let router = q.http_routes();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let uri = format!(
        "/api/v1/query_range?query=node_cpu_seconds_total&start=0&end={}&step=15",
        (SAMPLES - 1) * 15
    );
    let mut g = c.benchmark_group("api");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SERIES as u64 * SAMPLES as u64));
    g.bench_function("query_range_1000_series_720_points", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = http::Request::get(&uri)
                    .body(axum::body::Body::empty())
                    .unwrap();
                let resp = router.clone().oneshot(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                black_box(body.len())
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench_merge, bench_query_range);
criterion_main!(benches);
