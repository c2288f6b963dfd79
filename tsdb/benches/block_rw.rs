//! Writing a block and selecting everything back from it.
//!
//! `cargo bench -p tidemark-tsdb --bench block_rw`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tidemark_model::Matcher;
use tidemark_tsdb::{BlockReader, BlockWriter};

#[path = "block_support/node_data.rs"]
#[allow(dead_code)]
mod node_data;

fn bench_block(c: &mut Criterion) {
    let data = node_data::generate(4);
    let n: u64 = data.iter().map(|(_, s)| s.len() as u64).sum();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("block");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("write_node_exporter", |b| {
        b.iter(|| {
            let mut w = BlockWriter::new();
            for (l, s) in &data {
                w.add_samples(l.clone(), s).expect("ordered samples");
            }
            let meta = w.write(dir.path()).expect("block written");
            std::fs::remove_dir_all(dir.path().join(meta.ulid.to_string())).expect("cleanup");
        })
    });
    let mut w = BlockWriter::new();
    for (l, s) in &data {
        w.add_samples(l.clone(), s).expect("ordered samples");
    }
    let meta = w.write(dir.path()).expect("block written");
    let r = BlockReader::open(&dir.path().join(meta.ulid.to_string())).expect("open");
    g.bench_function("select_all_node_exporter", |b| {
        b.iter(|| black_box(r.select(&[], i64::MIN, i64::MAX).expect("select")))
    });
    let cpu = [
        Matcher::equal("__name__", "node_cpu_seconds_total"),
        Matcher::equal("mode", "idle"),
    ];
    g.bench_function("select_cpu_idle", |b| {
        b.iter(|| black_box(r.select(&cpu, i64::MIN, i64::MAX).expect("select")))
    });
    g.finish();
}

criterion_group!(benches, bench_block);
criterion_main!(benches);
