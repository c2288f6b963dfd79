//! XOR chunk decode and encode speed in samples per CPU-second of the
//! benchmark thread (user + system time from `/proc/thread-self/stat`).
//!
//! The criterion figures of `chunk_xor` are wall-clock and drop when other
//! work shares the machine; CPU time is what "samples/s per core" means.
//!
//! `cargo bench -p tidemark-tsdb --bench chunk_xor_cpu`

use std::hint::black_box;
use std::time::{Duration, Instant};

use tidemark_model::Sample;
use tidemark_tsdb::XorChunk;
use tidemark_tsdb::block::cut_chunks;

#[path = "block_support/node_data.rs"]
#[allow(dead_code)]
mod node_data;

/// CPU time of this thread, in clock ticks converted to a duration (the
/// kernel's USER_HZ is 100 on Linux).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn measure(name: &str, samples_per_round: u64, mut round: impl FnMut()) {
    round(); // warm up
    let cpu0 = thread_cpu();
    let wall0 = Instant::now();
    let mut rounds = 0u64;
    while thread_cpu() - cpu0 < Duration::from_secs(3) {
        round();
        rounds += 1;
    }
    let cpu = (thread_cpu() - cpu0).as_secs_f64();
    let wall = wall0.elapsed().as_secs_f64();
    let n = (rounds * samples_per_round) as f64;
    println!(
        "{name:<28} {:>8.1} M samples/CPU-s   ({:>7.1} M samples/s wall, {rounds} rounds)",
        n / cpu / 1e6,
        n / wall / 1e6
    );
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

fn main() {
    let data = node_data::generate(4);
    let n: u64 = data.iter().map(|(_, s)| s.len() as u64).sum();
    let mut chunks = Vec::new();
    for (_, s) in &data {
        chunks.extend(cut_chunks(s).expect("ordered"));
    }
    measure("decode node_exporter", n, || {
        black_box(decode_all(black_box(&chunks)));
    });
    let mut buf = Vec::new();
    measure("decode node_exporter (vec)", n, || {
        for c in &chunks {
            buf.clear();
            c.decode_into(&mut buf).expect("valid chunk");
            black_box(&buf);
        }
    });
    let constant: Vec<Sample> = (0..120 * 1000)
        .map(|i| Sample::new(i * 15_000, 1.0))
        .collect();
    let cchunks = cut_chunks(&constant).expect("ordered");
    measure("decode constant 15s", constant.len() as u64, || {
        black_box(decode_all(black_box(&cchunks)));
    });
    measure("encode node_exporter", n, || {
        for (_, s) in &data {
            black_box(cut_chunks(black_box(s)).expect("ordered"));
        }
    });
}
