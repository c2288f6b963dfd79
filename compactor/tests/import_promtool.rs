//! Migration from Prometheus: blocks written by `promtool tsdb
//! create-blocks-from openmetrics` are imported into a tenant, read back
//! with the same samples, and blocks in the bucket (imported and compacted
//! by tidemark) open in `promtool tsdb analyze`. Skips, saying so, when
//! promtool is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{Data, H, Store, read_block, read_live};
use tidemark_compactor::{Compactor, CompactorConfig, OwnsAll, import_blocks};
use tokio_util::sync::CancellationToken;

fn promtool() -> Option<&'static str> {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: promtool is not installed (Debian package prometheus)");
    }
    ok.then_some("promtool")
}

/// 20 series over 7 hours, one sample a minute; the OpenMetrics text and
/// the samples it holds.
fn openmetrics() -> (String, Data) {
    let base = 1_700_000_000_000i64 / (2 * H) * (2 * H);
    let mut text = String::new();
    let mut data = Data::new();
    text.push_str("# TYPE backfill gauge\n");
    for s in 0..20 {
        let key = format!("backfill{{s=\"s{s}\"}}");
        let series = data.entry(key).or_default();
        for k in 0..(7 * 60) {
            let t = base + k * 60_000;
            let v = (s * 1000 + k) as f64 / 4.0;
            writeln!(text, "backfill{{s=\"s{s}\"}} {v} {}", t / 1000).unwrap();
            series.insert(t, v.to_bits());
        }
    }
    text.push_str("# EOF\n");
    (text, data)
}

fn analyze(data_dir: &Path, block: &str) {
    let out = Command::new("promtool")
        .args(["tsdb", "analyze"])
        .arg(data_dir)
        .arg(block)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool tsdb analyze {block} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Block ID: ") && stdout.contains(block),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_blocks_import_and_bucket_blocks_open_in_promtool() {
    let Some(promtool) = promtool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (text, expected) = openmetrics();
    let input = tmp.path().join("input.om");
    std::fs::write(&input, text).unwrap();
    let prom_dir = tmp.path().join("prometheus-data");
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&prom_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Something that is not a block, as in a real Prometheus data dir.
    std::fs::create_dir_all(prom_dir.join("wal")).unwrap();
    let made = std::fs::read_dir(&prom_dir).unwrap().count() - 1;
    assert!(
        made >= 4,
        "7 h of data make at least four 2 h blocks, got {made}"
    );

    let store = Store::fs().await;
    let bucket = store.bucket();
    let report = import_blocks(&bucket, "migrated", &prom_dir).await.unwrap();
    assert_eq!(report.imported.len(), made);
    assert!(report.bytes > 0);
    // The index lists every imported block, and they hold exactly the samples.
    let index = bucket.read_index("migrated").await.unwrap().unwrap();
    assert_eq!(index.blocks.len(), made);
    assert_eq!(read_live(&bucket, "migrated").await, expected);
    // A second run imports nothing twice.
    let again = import_blocks(&bucket, "migrated", &prom_dir).await.unwrap();
    assert_eq!((again.imported.len(), again.skipped.len()), (0, made));

    // Imported blocks open in promtool where they lie in the bucket
    // (the filesystem bucket's tenant prefix is a directory of blocks).
    let Store::Fs(root) = &store else {
        unreachable!()
    };
    let tenant_dir = root.path().join("migrated");
    analyze(&tenant_dir, &report.imported[0].to_string());

    // Compact them (12 h window ends in the past): the merged block that
    // tidemark wrote opens in promtool too, with the same samples.
    let data = tempfile::tempdir().unwrap();
    let compactor = Compactor::new(
        CompactorConfig::default(),
        bucket.clone(),
        Arc::new(OwnsAll),
        data.path(),
    )
    .unwrap();
    let far_future = i64::MAX / 4;
    compactor
        .run_cycle(far_future, &CancellationToken::new())
        .await
        .unwrap();
    let index = bucket.read_index("migrated").await.unwrap().unwrap();
    let live: Vec<_> = index
        .blocks
        .iter()
        .filter(|b| index.deletion_mark(b.ulid).is_none())
        .collect();
    assert!(
        live.len() < made,
        "compaction merged the 2 h blocks: {live:?}"
    );
    assert_eq!(read_live(&bucket, "migrated").await, expected);
    for b in live {
        analyze(&tenant_dir, &b.ulid.to_string());
        let _ = read_block(&tenant_dir.join(b.ulid.to_string()));
    }
}
