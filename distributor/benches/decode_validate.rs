//! The distributor's CPU path per remote write request: snappy
//! decompression, protobuf decoding and validation (no network).
//!
//! A request is 2000 series of one sample each with 8 labels (Prometheus's
//! default `max_samples_per_send` is 2000), like node_exporter series.
//! Throughput is reported in samples (elements) per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tidemark_distributor::Limits;
use tidemark_distributor::decode::{Protocol, decode, decompress};
use tidemark_distributor::validate::validate;
use tidemark_proto::prometheus as pb;
use tidemark_proto::write_v2;

const SERIES: usize = 2000;
const NOW: i64 = 1_700_000_000_000;

fn labels(i: usize) -> Vec<(String, String)> {
    vec![
        (
            "__name__".into(),
            format!("node_cpu_seconds_total_{}", i % 50),
        ),
        ("cpu".into(), (i % 64).to_string()),
        ("env".into(), "production".into()),
        (
            "instance".into(),
            format!("10.0.{}.{}:9100", i / 256 % 256, i % 256),
        ),
        ("job".into(), "node".into()),
        (
            "mode".into(),
            ["user", "system", "idle", "iowait"][i % 4].into(),
        ),
        ("region".into(), "eu-west-1".into()),
        ("zone".into(), "eu-west-1a".into()),
    ]
}

fn v1_body() -> Vec<u8> {
    let req = pb::WriteRequest {
        timeseries: (0..SERIES)
            .map(|i| pb::TimeSeries {
                labels: labels(i)
                    .into_iter()
                    .map(|(name, value)| pb::Label { name, value })
                    .collect(),
                samples: vec![pb::Sample {
                    value: i as f64,
                    timestamp: NOW,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: Vec::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("compressible")
}

fn v2_body() -> Vec<u8> {
    let mut symbols = vec![String::new()];
    let mut index = std::collections::HashMap::new();
    let mut sym = |s: String, symbols: &mut Vec<String>| -> u32 {
        *index.entry(s.clone()).or_insert_with(|| {
            symbols.push(s);
            (symbols.len() - 1) as u32
        })
    };
    let mut timeseries = Vec::with_capacity(SERIES);
    for i in 0..SERIES {
        let mut refs = Vec::new();
        for (n, v) in labels(i) {
            refs.push(sym(n, &mut symbols));
            refs.push(sym(v, &mut symbols));
        }
        timeseries.push(write_v2::TimeSeries {
            labels_refs: refs,
            samples: vec![write_v2::Sample {
                value: i as f64,
                timestamp: NOW,
            }],
            ..Default::default()
        });
    }
    let req = write_v2::Request {
        symbols,
        timeseries,
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("compressible")
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("distributor_decode_validate");
    g.throughput(Throughput::Elements(SERIES as u64));
    for (name, protocol, body) in [
        ("remote_write_v1_2000_series", Protocol::V1, v1_body()),
        ("remote_write_v2_2000_series", Protocol::V2, v2_body()),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let raw = decompress(&body, 100 << 20).expect("valid snappy");
                let v = decode(protocol, &raw, |d| validate(d.series, &limits, NOW))
                    .expect("valid protobuf");
                assert_eq!(v.samples, SERIES as u64);
                v
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
