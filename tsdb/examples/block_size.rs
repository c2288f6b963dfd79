//! Bytes per sample of a block of node_exporter-like data, tidemark next to
//! Prometheus (`promtool tsdb create-blocks-from openmetrics`) for the very
//! same samples.
//!
//! ```text
//! cargo run --release -p tidemark-tsdb --example block_size [hosts]
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use tidemark_tsdb::{BlockReader, BlockWriter};

#[path = "../benches/block_support/node_data.rs"]
#[allow(dead_code)]
mod node_data;

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                total += dir_size(&path);
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
    }
    total
}

struct Sizes {
    chunks: u64,
    index: u64,
    total: u64,
}

fn sizes(block: &Path) -> Sizes {
    Sizes {
        chunks: dir_size(&block.join("chunks")),
        index: std::fs::metadata(block.join("index")).map_or(0, |m| m.len()),
        total: dir_size(block),
    }
}

fn report(name: &str, s: &Sizes, samples: u64) {
    let per = |b: u64| b as f64 / samples as f64;
    println!(
        "{name:<10} total {:>10} B  {:.3} B/sample | chunks {:>10} B  {:.3} B/sample | index {:>9} B",
        s.total,
        per(s.total),
        s.chunks,
        per(s.chunks),
        s.index
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hosts: usize = std::env::args().nth(1).map_or(Ok(10), |a| a.parse())?;
    let data = node_data::generate(hosts);
    let samples: u64 = data.iter().map(|(_, s)| s.len() as u64).sum();
    println!(
        "{} series, {samples} samples (15 s scrapes over 2 h)",
        data.len()
    );

    let tmp = tempfile::tempdir()?;
    // promtool's importer cuts chunks with a 4 h chunk range (twice its
    // 2 h block duration); use the same to compare like with like.
    let mut w = BlockWriter::new().with_chunk_range(4 * 3_600_000);
    for (l, s) in &data {
        w.add_samples(l.clone(), s)?;
    }
    let meta = w.write(tmp.path())?;
    let ours = tmp.path().join(meta.ulid.to_string());
    report("tidemark", &sizes(&ours), samples);

    let promtool = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    let om = tmp.path().join("data.om");
    std::fs::write(&om, node_data::to_openmetrics(&data))?;
    let out = tmp.path().join("prometheus");
    let status = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&om)
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {
            for e in std::fs::read_dir(&out)?.flatten() {
                let p = e.path();
                if p.join("meta.json").is_file() {
                    let r = BlockReader::open(&p)?;
                    println!(
                        "prometheus block: {} series, {} samples, {} chunks",
                        r.meta().stats.num_series,
                        r.meta().stats.num_samples,
                        r.meta().stats.num_chunks
                    );
                    report("prometheus", &sizes(&p), samples);
                }
            }
        }
        _ => println!("promtool not available: no Prometheus figure"),
    }
    Ok(())
}
