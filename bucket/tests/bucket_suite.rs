//! The bucket layout over the filesystem store and over a real S3 API on
//! loopback: the same suite must pass on both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use object_store::PutPayload;
use tidemark_bucket::s3_test_server::S3TestServer;
use tidemark_bucket::{Bucket, BucketConfig, ObjectPath, block_file_path};
use tidemark_model::{Labels, Sample};
use tidemark_tsdb::block::ByteSource;
use tidemark_tsdb::{BlockMeta, BlockReader, BlockWriter};

fn write_block(parent: &Path, series: usize, start: i64) -> BlockMeta {
    let mut w = BlockWriter::new();
    for s in 0..series {
        let i = s.to_string();
        let labels = Labels::from_pairs([("__name__", "m"), ("i", i.as_str())]).unwrap();
        let samples: Vec<Sample> = (0..300)
            .map(|k| Sample::new(start + k * 15_000, (s * 1000 + k as usize) as f64))
            .collect();
        w.add_samples(labels, &samples).unwrap();
    }
    w.write(parent).unwrap()
}

async fn suite(bucket: Bucket) {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_block(tmp.path(), 20, 0);
    let b = write_block(tmp.path(), 5, 7_200_000);

    let up = bucket
        .upload_block("team-a", &tmp.path().join(a.ulid.to_string()))
        .await
        .unwrap();
    assert_eq!(up.meta, a);
    bucket
        .upload_block("team-a", &tmp.path().join(b.ulid.to_string()))
        .await
        .unwrap();
    bucket
        .upload_block("team-b", &tmp.path().join(b.ulid.to_string()))
        .await
        .unwrap();
    assert_eq!(bucket.tenants().await.unwrap(), vec!["team-a", "team-b"]);

    // A partial upload (no meta.json) is not a block.
    let partial = tidemark_tsdb::BlockId::new();
    bucket
        .store()
        .put(
            &block_file_path("team-a", partial, "index"),
            PutPayload::from_static(b"x"),
        )
        .await
        .unwrap();

    let scan = bucket.rebuild_index("team-a", None, 1).await.unwrap();
    let ids: Vec<_> = scan.index.blocks.iter().map(|x| x.ulid).collect();
    assert_eq!(ids, vec![a.ulid, b.ulid]);
    assert_eq!(scan.partial.len(), 1);
    assert_eq!(scan.partial[0].ulid, partial);
    let entry = &scan.index.blocks[0];
    assert_eq!((entry.min_time, entry.max_time), (a.min_time, a.max_time));
    assert_eq!(entry.num_series, 20);
    assert_eq!(entry.size_bytes, up.size_bytes);
    assert_eq!(entry.sources, vec![a.ulid]);
    assert_eq!(
        scan.index.queryable_blocks(7_200_000, 7_300_000).len(),
        1,
        "only block b holds samples after 2h"
    );
    bucket.write_index("team-a", &scan.index).await.unwrap();
    assert_eq!(
        bucket.read_index("team-a").await.unwrap(),
        Some(scan.index.clone())
    );
    assert_eq!(bucket.read_index("team-c").await.unwrap(), None);

    // Range reads return exactly the bytes of the local file.
    let local = std::fs::read(tmp.path().join(a.ulid.to_string()).join("index")).unwrap();
    let got = bucket
        .read_range("team-a", a.ulid, "index", 5..105)
        .await
        .unwrap();
    assert_eq!(&got[..], &local[5..105]);
    let src = bucket
        .source("team-a", a.ulid, "chunks/000001")
        .await
        .unwrap();
    let chunk_local =
        std::fs::read(tmp.path().join(a.ulid.to_string()).join("chunks/000001")).unwrap();
    assert_eq!(src.len(), chunk_local.len() as u64);
    let tail = tokio::task::spawn_blocking(move || src.read_range(8, 64).unwrap().into_owned())
        .await
        .unwrap();
    assert_eq!(tail, chunk_local[8..72]);

    // Download round trip: the block opens and holds the same samples.
    let dl = tempfile::tempdir().unwrap();
    let dir = bucket
        .download_block("team-a", a.ulid, dl.path())
        .await
        .unwrap();
    let r = BlockReader::open(&dir).unwrap();
    assert_eq!(r.meta(), &a);
    assert_eq!(r.index().all_postings().unwrap().len(), 20);

    // Deletion: marked blocks stay readable, then go for good.
    bucket
        .mark_for_deletion("team-a", a.ulid, 100)
        .await
        .unwrap();
    bucket
        .mark_for_deletion("team-a", a.ulid, 200)
        .await
        .unwrap();
    let scan2 = bucket
        .rebuild_index("team-a", Some(&scan.index), 2)
        .await
        .unwrap();
    let mark = scan2.index.deletion_mark(a.ulid).unwrap();
    assert_eq!(
        mark.deletion_time, 100,
        "a second mark keeps the first time"
    );
    bucket.delete_block("team-a", a.ulid).await.unwrap();
    let scan3 = bucket.rebuild_index("team-a", None, 3).await.unwrap();
    assert_eq!(scan3.index.blocks.len(), 1);
    assert!(scan3.index.deletion_marks.is_empty());
    let left = bucket
        .store()
        .list_with_delimiter(Some(&ObjectPath::from(format!("team-a/{}", a.ulid))))
        .await
        .unwrap();
    assert!(left.objects.is_empty() && left.common_prefixes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_bucket_passes_the_suite() {
    let data = tempfile::tempdir().unwrap();
    let store = BucketConfig::default().build(data.path()).unwrap();
    suite(Bucket::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_bucket_passes_the_suite() {
    let root = tempfile::tempdir().unwrap();
    let server = S3TestServer::start(root.path(), "blocks").await.unwrap();
    let store = server.config().build(Path::new("/nonexistent")).unwrap();
    suite(Bucket::new(store)).await;
}
