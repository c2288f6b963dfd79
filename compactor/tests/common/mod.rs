//! Helpers of the compactor tests: blocks with known samples, a bucket
//! over the filesystem or a real S3 API on loopback, reading a block back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use tidemark_bucket::s3_test_server::S3TestServer;
use tidemark_bucket::{Bucket, BucketConfig};
use tidemark_model::{Labels, Sample};
use tidemark_tsdb::{BlockId, BlockMeta, BlockReader, BlockWriter};

pub(crate) const H: i64 = 3_600_000;

/// Series name -> samples (t, value bits), the way tests compare data.
pub(crate) type Data = BTreeMap<String, BTreeMap<i64, u64>>;

/// Writes a level-1 block under `parent` with `series` series `s0..`, one
/// sample every `step` ms in `[mint, maxt)` where `f(series, t)` gives a value.
pub(crate) fn write_block(
    parent: &Path,
    series: usize,
    mint: i64,
    maxt: i64,
    step: i64,
    f: impl Fn(usize, i64) -> Option<f64>,
) -> BlockMeta {
    let mut w = BlockWriter::new().with_time_range(mint, maxt);
    for s in 0..series {
        let name = format!("s{s}");
        let labels = Labels::from_pairs([("__name__", "m"), ("s", name.as_str())]).unwrap();
        let samples: Vec<Sample> = (mint..maxt)
            .step_by(step as usize)
            .filter_map(|t| Some(Sample::new(t, f(s, t)?)))
            .collect();
        w.add_samples(labels, &samples).unwrap();
    }
    w.write(parent).unwrap()
}

/// Every sample of a local block.
pub(crate) fn read_block(dir: &Path) -> Data {
    let r = BlockReader::open(dir).unwrap();
    let mut out = Data::new();
    for p in r.index().all_postings().unwrap() {
        let s = r.series_samples(p, i64::MIN, i64::MAX).unwrap();
        let e = out.entry(s.labels.to_string()).or_default();
        for x in s.samples {
            assert!(
                e.insert(x.t, x.v.to_bits()).is_none(),
                "sample repeated in one block"
            );
        }
    }
    out
}

/// Adds the samples of `more` to `into` (a set union).
pub(crate) fn union(into: &mut Data, more: Data) {
    for (k, v) in more {
        into.entry(k).or_default().extend(v);
    }
}

/// Every sample of every live (unmarked) block of a tenant, asserting
/// that no sample is in two live blocks.
pub(crate) async fn read_live(bucket: &Bucket, tenant: &str) -> Data {
    let index = bucket.read_index(tenant).await.unwrap().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut out = Data::new();
    for b in &index.blocks {
        if index.deletion_mark(b.ulid).is_some() {
            continue;
        }
        let dir = bucket
            .download_block(tenant, b.ulid, tmp.path())
            .await
            .unwrap();
        for (k, v) in read_block(&dir) {
            let e = out.entry(k).or_default();
            for (t, bits) in v {
                assert!(
                    e.insert(t, bits).is_none(),
                    "sample at {t} in two live blocks"
                );
            }
        }
    }
    out
}

/// Block ids under `<tenant>/` in the bucket, whole or not.
pub(crate) async fn block_dirs(bucket: &Bucket, tenant: &str) -> Vec<BlockId> {
    let l = bucket
        .store()
        .list_with_delimiter(Some(&tidemark_bucket::ObjectPath::from(tenant)))
        .await
        .unwrap();
    l.common_prefixes
        .iter()
        .filter_map(|p| p.filename()?.parse().ok())
        .collect()
}

/// Which object store a test runs against; the S3 server lives as long as this.
pub(crate) enum Store {
    Fs(tempfile::TempDir),
    S3(tempfile::TempDir, S3TestServer),
}

impl Store {
    pub(crate) async fn fs() -> Self {
        Store::Fs(tempfile::tempdir().unwrap())
    }

    pub(crate) async fn s3() -> Self {
        let root = tempfile::tempdir().unwrap();
        let server = S3TestServer::start(root.path(), "tidemark").await.unwrap();
        Store::S3(root, server)
    }

    pub(crate) fn config(&self) -> BucketConfig {
        match self {
            Store::Fs(d) => {
                let mut c = BucketConfig::default();
                c.filesystem.dir = d.path().to_path_buf();
                c
            }
            Store::S3(_, s) => s.config(),
        }
    }

    pub(crate) fn bucket(&self) -> Bucket {
        Bucket::new(self.config().build(Path::new("/nonexistent")).unwrap())
    }
}
