//! The bucket as a query source: blocks uploaded to a filesystem bucket
//! through `object_store`, found through the bucket index, read back with
//! the index cached on disk, and merged with ingester data exactly once.

use std::sync::Arc;

use tidemark_bucket::{Bucket, BucketConfig};
use tidemark_model::{Labels, Matcher, Sample, TenantId};
use tidemark_promql::memstore::MemStore;
use tidemark_promql::{SelectHints, Series};
use tidemark_tsdb::BlockWriter;

use crate::blocks::{BucketSource, BucketStore, BucketStoreConfig};
use crate::fanout::{LabelsRequest, MergedSource, QueryLimiter, QueryableSource, ReadSource};

const HOUR: i64 = 3_600_000;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]).unwrap()
}

fn samples(from: i64, to: i64) -> Vec<Sample> {
    (from..to)
        .step_by(60_000)
        .map(|t| Sample::new(t, t as f64))
        .collect()
}

/// Writes a block of 3 series over `[from, to)` and uploads it.
async fn upload(bucket: &Bucket, tenant: &str, from: i64, to: i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new().with_time_range(from, to);
    for i in 0..3 {
        w.add_samples(labels(i), &samples(from, to)).unwrap();
    }
    let meta = w.write(dir.path()).unwrap();
    bucket
        .upload_block(tenant, &dir.path().join(meta.ulid.to_string()))
        .await
        .unwrap();
}

async fn write_index(bucket: &Bucket, tenant: &str) {
    let scan = bucket.rebuild_index(tenant, None, 0).await.unwrap();
    bucket.write_index(tenant, &scan.index).await.unwrap();
}

fn hints(start: i64, end: i64) -> SelectHints {
    SelectHints {
        start,
        end,
        ..SelectHints::default()
    }
}

fn select_of(source: &dyn ReadSource, tenant: &str) -> Arc<dyn crate::TenantReader> {
    source.reader(
        &TenantId::new(tenant).unwrap(),
        Arc::new(QueryLimiter::unlimited()),
    )
}

fn timestamps(series: &[Series]) -> Vec<Vec<i64>> {
    series
        .iter()
        .map(|s| s.samples.iter().map(|x| x.t).collect())
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    bucket: Arc<Bucket>,
    cache: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = BucketConfig::default().build(dir.path()).unwrap();
    Fixture {
        bucket: Arc::new(Bucket::new(store)),
        cache: dir.path().join("cache"),
        _dir: dir,
    }
}

fn source(f: &Fixture, cfg: &BucketStoreConfig) -> BucketSource {
    let store = BucketStore::open(Arc::clone(&f.bucket), cfg, f.cache.clone()).unwrap();
    BucketSource::new(Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_in_range_are_read_from_the_bucket_with_their_index_cached() {
    let f = fixture();
    for r in 0..4 {
        upload(&f.bucket, "t1", r * 2 * HOUR, (r + 1) * 2 * HOUR).await;
    }
    upload(&f.bucket, "t2", 0, 2 * HOUR).await;
    write_index(&f.bucket, "t1").await;
    let src = source(&f, &BucketStoreConfig::default());
    let m = [Matcher::equal("__name__", "m")];

    // A range crossing two blocks: every sample once, in order.
    let got = select_of(&src, "t1")
        .select(&hints(HOUR, 3 * HOUR - 1), &m)
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    let want: Vec<i64> = (HOUR..3 * HOUR).step_by(60_000).collect();
    assert!(timestamps(&got).iter().all(|ts| *ts == want));
    // Only the two blocks read have their index in the cache.
    let cached = std::fs::read_dir(f.cache.join("t1")).unwrap().count();
    assert_eq!(cached, 2);

    // Tenant t2 has blocks but no bucket index yet: nothing is visible.
    let none = select_of(&src, "t2")
        .select(&hints(0, HOUR), &m)
        .await
        .unwrap();
    assert!(none.is_empty());

    let names = select_of(&src, "t1")
        .label_values(
            "i",
            &LabelsRequest {
                start: 0,
                end: 8 * HOUR,
                ..LabelsRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names, vec!["0", "1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_cache_stays_under_its_cap() {
    let f = fixture();
    for r in 0..4 {
        upload(&f.bucket, "t1", r * 2 * HOUR, (r + 1) * 2 * HOUR).await;
    }
    write_index(&f.bucket, "t1").await;
    // Room for about one index file.
    let cfg = BucketStoreConfig {
        index_cache_max_bytes: 700,
        ..BucketStoreConfig::default()
    };
    let src = source(&f, &cfg);
    let m = [Matcher::equal("__name__", "m")];
    let got = select_of(&src, "t1")
        .select(&hints(0, 8 * HOUR), &m)
        .await
        .unwrap();
    let want: Vec<i64> = (0..8 * HOUR).step_by(60_000).collect();
    assert!(timestamps(&got).iter().all(|ts| *ts == want));
    let bytes: u64 = std::fs::read_dir(f.cache.join("t1"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(bytes <= 700 || std::fs::read_dir(f.cache.join("t1")).unwrap().count() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingesters_and_bucket_together_return_each_sample_once() {
    let f = fixture();
    upload(&f.bucket, "t1", 0, 2 * HOUR).await;
    // The same range cut by a second replica ingester, not compacted yet.
    upload(&f.bucket, "t1", 0, 2 * HOUR).await;
    write_index(&f.bucket, "t1").await;
    // The ingester still holds the block's last 30 minutes (its local
    // block, within the recent-query window) and the head after it.
    let mut ingester = MemStore::new();
    for i in 0..3 {
        ingester.add(labels(i), &samples(90 * 60_000, 3 * HOUR));
    }
    let merged = MergedSource::new(vec![
        Arc::new(QueryableSource::new(Arc::new(ingester))),
        Arc::new(source(&f, &BucketStoreConfig::default())),
    ]);
    let got = select_of(&merged, "t1")
        .select(&hints(0, 3 * HOUR), &[Matcher::equal("__name__", "m")])
        .await
        .unwrap();
    let want: Vec<i64> = (0..3 * HOUR).step_by(60_000).collect();
    assert_eq!(got.len(), 3);
    assert!(timestamps(&got).iter().all(|ts| *ts == want));
}
