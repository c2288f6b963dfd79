//! The same node_exporter-like samples written by tidemark and by
//! `promtool tsdb create-blocks-from openmetrics`: the blocks hold the same
//! samples, tidemark's chunks are byte-identical, and its block is no larger.
//! Skips with a message where promtool (Debian's `prometheus`) is absent.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use tidemark_tsdb::{BlockReader, BlockWriter};

#[path = "../benches/block_support/node_data.rs"]
#[allow(dead_code)]
mod node_data;

fn promtool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMTOOL") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
}

fn file_sizes(block: &std::path::Path) -> u64 {
    let mut total = 0;
    for f in ["index", "meta.json", "tombstones"] {
        total += std::fs::metadata(block.join(f)).unwrap().len();
    }
    for e in std::fs::read_dir(block.join("chunks")).unwrap() {
        total += e.unwrap().metadata().unwrap().len();
    }
    total
}

#[test]
fn tidemark_block_matches_prometheus_block_for_the_same_data() {
    let Some(promtool) = promtool() else {
        eprintln!(
            "SKIPPED: promtool not found (install Debian's `prometheus` package or set PROMTOOL)"
        );
        return;
    };
    let data = node_data::generate(10);
    let tmp = tempfile::tempdir().unwrap();
    // promtool's importer cuts chunks with a 4 h chunk range (twice its
    // 2 h block duration); use the same to compare like with like.
    let mut w = BlockWriter::new().with_chunk_range(4 * 3_600_000);
    for (l, s) in &data {
        w.add_samples(l.clone(), s).unwrap();
    }
    let meta = w.write(tmp.path()).unwrap();
    let ours = BlockReader::open(&tmp.path().join(meta.ulid.to_string())).unwrap();

    let om = tmp.path().join("data.om");
    std::fs::write(&om, node_data::to_openmetrics(&data)).unwrap();
    let out = tmp.path().join("prom");
    let st = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&om)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let block = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let theirs = BlockReader::open(&block).unwrap();

    let a = ours.select(&[], i64::MIN, i64::MAX).unwrap();
    let b = theirs.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(a.len(), data.len());
    assert_eq!(a, b, "both blocks hold the same samples");

    let mut differing = 0;
    let (ra, rb) = (
        ours.index().all_postings().unwrap(),
        theirs.index().all_postings().unwrap(),
    );
    for (x, y) in ra.iter().zip(&rb) {
        let (sx, sy) = (ours.series(*x).unwrap(), theirs.series(*y).unwrap());
        assert_eq!(sx.labels, sy.labels);
        for (cx, cy) in sx.chunks.iter().zip(&sy.chunks) {
            let bx = ours.chunks().chunk(cx.chunk_ref).unwrap();
            let by = theirs.chunks().chunk(cy.chunk_ref).unwrap();
            if bx.bytes() != by.bytes() {
                differing += 1;
                if differing < 3 {
                    eprintln!(
                        "{}: chunk [{}, {}] differs: {} vs {} bytes\nours   {:02x?}\ntheirs {:02x?}",
                        sx.labels,
                        cx.min_time,
                        cx.max_time,
                        bx.bytes().len(),
                        by.bytes().len(),
                        &bx.bytes()[bx.bytes().len().saturating_sub(24)..],
                        &by.bytes()[by.bytes().len().saturating_sub(24)..]
                    );
                }
            }
        }
    }
    assert_eq!(differing, 0, "chunks differing from Prometheus's encoding");
    let (ours_size, theirs_size) = (file_sizes(ours.dir()), file_sizes(&block));
    assert!(
        ours_size <= theirs_size,
        "tidemark {ours_size} B > Prometheus {theirs_size} B"
    );
}
