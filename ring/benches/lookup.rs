//! Replication-set lookup for a series hash: 10 and 100 ingesters with 128
//! tokens each, RF 3, with and without zones.

#![allow(clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use tidemark_ring::{
    Command, MemberState, NodeInfo, Operation, RaftInfo, RingSnapshot, RingState, Role,
};

fn ring(n: usize, zones: usize) -> RingSnapshot {
    let mut s = RingState::default();
    for i in 0..n {
        s.apply(&Command::Join {
            node: NodeInfo {
                id: format!("ingester-{i}"),
                roles: vec![Role::Ingester],
                grpc_address: format!("10.0.{}.{}:9095", i / 250, i % 250),
                http_address: String::new(),
                zone: (zones > 0).then(|| format!("zone-{}", i % zones)),
            },
            state: MemberState::Active,
            tokens: vec![],
            tokens_per_member: 128,
            now_ms: 0,
        });
    }
    RingSnapshot::build(&s, 0, 60_000, RaftInfo::default())
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("replication_set_rf3");
    for (n, zones) in [(10, 0), (100, 0), (100, 3)] {
        let snap = ring(n, zones);
        let mut h: u32 = 0x9e37_79b9;
        g.bench_function(BenchmarkId::new(format!("zones{zones}"), n), |b| {
            b.iter(|| {
                h = h.wrapping_mul(2_654_435_761).wrapping_add(1);
                let set = snap
                    .replication_set(Role::Ingester, black_box(h), 3, Operation::Write)
                    .unwrap();
                black_box(set.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
