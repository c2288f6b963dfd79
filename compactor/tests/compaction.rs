//! The compaction loop against a real bucket (filesystem and S3 on
//! loopback): replicas merge into one deduplicated block, 2 h blocks
//! become a 12 h block, marked inputs disappear after the deletion delay,
//! retention expires old blocks, and a tenant owned elsewhere is left alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Data, H, Store, block_dirs, read_block, read_live, union, write_block};
use tidemark_compactor::{Compactor, CompactorConfig, OwnsAll, TenantOwnership};
use tidemark_config::Duration;
use tokio_util::sync::CancellationToken;

/// Uploads the replication factor's 3 copies of each 2 h block of the
/// first 12 h, as three ingesters would: the same samples, except that
/// each replica misses some and replica 2 carries a few extra series.
async fn upload_replicas(bucket: &tidemark_bucket::Bucket, tenant: &str) -> Data {
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = Data::new();
    for w in 0..6 {
        let (mint, maxt) = (w * 2 * H, (w + 1) * 2 * H);
        for replica in 0..3i64 {
            let series = if replica == 2 { 12 } else { 10 };
            // Each replica misses every third minute, a different one per
            // replica: the merge must fill the holes from the others.
            let meta = write_block(tmp.path(), series, mint, maxt, 30_000, |s, t| {
                ((t / 60_000) % 3 != replica).then_some((s as f64) * 1e6 + t as f64 / 1000.0)
            });
            let dir = tmp.path().join(meta.ulid.to_string());
            union(&mut expected, read_block(&dir));
            bucket.upload_block(tenant, &dir).await.unwrap();
        }
    }
    expected
}

fn config() -> CompactorConfig {
    CompactorConfig {
        compaction_delay: Duration::from_secs(3600),
        deletion_delay: Duration::from_secs(12 * 3600),
        partial_block_delay: Duration::from_secs(3600),
        ..CompactorConfig::default()
    }
}

struct Only(&'static str);
impl TenantOwnership for Only {
    fn owns_tenant(&self, tenant: &str) -> bool {
        tenant == self.0
    }
}

async fn replicas_and_levels(store: Store) {
    let bucket = store.bucket();
    let data_dir = tempfile::tempdir().unwrap();
    let expected = upload_replicas(&bucket, "team-a").await;
    let other = upload_replicas(&bucket, "team-b").await;
    let compactor = Compactor::new(
        config(),
        bucket.clone(),
        Arc::new(Only("team-a")),
        data_dir.path(),
    )
    .unwrap();
    let never = CancellationToken::new();

    // 14 h: the first 12 h window ended 2 h ago (delay 1 h): replicas
    // merge, then the six 2 h blocks become one 12 h block.
    let now = 14 * H;
    let cycles = compactor.run_cycle(now, &never).await.unwrap();
    assert_eq!(cycles.len(), 1, "only team-a is owned: {cycles:?}");
    let c = &cycles[0].1;
    assert_eq!((c.vertical_merges, c.level_merges), (6, 1), "{c:?}");

    let index = bucket.read_index("team-a").await.unwrap().unwrap();
    let live: Vec<_> = index
        .blocks
        .iter()
        .filter(|b| index.deletion_mark(b.ulid).is_none())
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].min_time, live[0].max_time), (0, 12 * H));
    assert_eq!(
        live[0].sources.len(),
        18,
        "all 18 ingester blocks are its sources"
    );
    assert_eq!(index.queryable_blocks(0, 12 * H).len(), 1);
    // Every sample exactly once (read_live asserts no sample is in two live blocks).
    assert_eq!(read_live(&bucket, "team-a").await, expected);
    let samples: usize = expected.values().map(|s| s.len()).sum();
    assert_eq!(live[0].num_samples as usize, samples);

    // Inputs stay readable until the deletion delay has passed.
    assert_eq!(block_dirs(&bucket, "team-a").await.len(), 18 + 6 + 1);
    compactor.run_cycle(now + 11 * H, &never).await.unwrap();
    assert_eq!(block_dirs(&bucket, "team-a").await.len(), 25);
    let c = compactor.run_cycle(now + 13 * H, &never).await.unwrap();
    assert_eq!(c[0].1.deleted, 24, "{c:?}");
    assert_eq!(block_dirs(&bucket, "team-a").await, vec![live[0].ulid]);
    assert_eq!(read_live(&bucket, "team-a").await, expected);

    // The tenant owned by another compactor was not touched.
    assert_eq!(block_dirs(&bucket, "team-b").await.len(), 18);
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_and_levels_on_the_filesystem() {
    replicas_and_levels(Store::fs().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_and_levels_on_s3() {
    replicas_and_levels(Store::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_marks_then_deletes_after_the_delay() {
    let store = Store::fs().await;
    let bucket = store.bucket();
    let tmp = tempfile::tempdir().unwrap();
    let old = write_block(tmp.path(), 3, 0, 2 * H, 60_000, |_, t| Some(t as f64));
    let new = write_block(tmp.path(), 3, 48 * H, 50 * H, 60_000, |_, t| Some(t as f64));
    for m in [&old, &new] {
        bucket
            .upload_block("t", &tmp.path().join(m.ulid.to_string()))
            .await
            .unwrap();
    }
    let mut cfg = config();
    cfg.tenant_retention
        .insert("t".into(), Duration::from_secs(24 * 3600));
    let data_dir = tempfile::tempdir().unwrap();
    let compactor =
        Compactor::new(cfg, bucket.clone(), Arc::new(OwnsAll), data_dir.path()).unwrap();
    let never = CancellationToken::new();
    let c = compactor.run_cycle(50 * H, &never).await.unwrap();
    assert_eq!(c[0].1.expired, 1);
    let index = bucket.read_index("t").await.unwrap().unwrap();
    assert!(index.deletion_mark(old.ulid).is_some());
    assert!(index.deletion_mark(new.ulid).is_none());
    // Marked at t = 50 h (wall clock of the cycle); deleted 12 h later.
    compactor.run_cycle(61 * H, &never).await.unwrap();
    assert_eq!(block_dirs(&bucket, "t").await.len(), 2);
    compactor.run_cycle(62 * H, &never).await.unwrap();
    assert_eq!(block_dirs(&bucket, "t").await, vec![new.ulid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_partial_uploads_are_removed_after_the_delay() {
    let store = Store::fs().await;
    let bucket = store.bucket();
    let tmp = tempfile::tempdir().unwrap();
    let whole = write_block(tmp.path(), 2, 0, 2 * H, 60_000, |_, t| Some(t as f64));
    bucket
        .upload_block("t", &tmp.path().join(whole.ulid.to_string()))
        .await
        .unwrap();
    let partial = tidemark_tsdb::BlockId::new();
    bucket
        .store()
        .put(
            &tidemark_bucket::block_file_path("t", partial, "index"),
            object_store::PutPayload::from_static(b"half"),
        )
        .await
        .unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let compactor =
        Compactor::new(config(), bucket.clone(), Arc::new(OwnsAll), data_dir.path()).unwrap();
    let never = CancellationToken::new();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let c = compactor.run_cycle(wall, &never).await.unwrap();
    assert_eq!(
        c[0].1.partial_removed, 0,
        "a fresh partial upload may still be running"
    );
    let c = compactor.run_cycle(wall + 2 * H, &never).await.unwrap();
    assert_eq!(c[0].1.partial_removed, 1);
    assert_eq!(block_dirs(&bucket, "t").await, vec![whole.ulid]);
}
