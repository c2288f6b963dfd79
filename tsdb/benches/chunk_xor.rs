//! XOR chunk encode and decode throughput.
//!
//! `cargo bench -p tidemark-tsdb --bench chunk_xor`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tidemark_tsdb::XorChunk;
use tidemark_tsdb::block::cut_chunks;

#[path = "block_support/node_data.rs"]
#[allow(dead_code)]
mod node_data;

fn node_chunks() -> (Vec<XorChunk>, u64) {
    let data = node_data::generate(4);
    let mut chunks = Vec::new();
    for (_, s) in &data {
        chunks.extend(cut_chunks(s).expect("generated samples are ordered"));
    }
    let n = chunks.iter().map(|c| c.num_samples() as u64).sum();
    (chunks, n)
}

fn constant_chunks() -> (Vec<XorChunk>, u64) {
    let samples: Vec<_> = (0..120 * 1000)
        .map(|i| tidemark_model::Sample::new(i * 15_000, 1.0))
        .collect();
    let chunks = cut_chunks(&samples).expect("ordered");
    (chunks, samples.len() as u64)
}

fn decode_all(chunks: &[XorChunk]) -> (i64, f64) {
    let mut ts = 0i64;
    let mut vs = 0f64;
    for c in chunks {
        for s in c.iter() {
            ts = ts.wrapping_add(s.t);
            vs += s.v;
        }
    }
    (ts, vs)
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("xor_decode");
    for (name, (chunks, n)) in [
        ("node_exporter", node_chunks()),
        ("constant_15s", constant_chunks()),
    ] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(name), &chunks, |b, chunks| {
            b.iter(|| black_box(decode_all(black_box(chunks))))
        });
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let data = node_data::generate(4);
    let n: u64 = data.iter().map(|(_, s)| s.len() as u64).sum();
    let mut g = c.benchmark_group("xor_encode");
    g.throughput(Throughput::Elements(n));
    g.bench_function("node_exporter", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for (_, s) in &data {
                for ch in cut_chunks(black_box(s)).expect("ordered") {
                    bytes += ch.bytes().len();
                }
            }
            black_box(bytes)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
