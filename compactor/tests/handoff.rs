//! The `BlockHandoff` gRPC service over a real loopback connection:
//! checksummed pieces, progress in `Status`, resume after a broken stream,
//! `uploaded` only once the block is in the bucket and its index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{H, Store, read_block, write_block};
use tidemark_compactor::{Compactor, CompactorConfig, OwnsAll};
use tidemark_proto::blocks::block_handoff_client::BlockHandoffClient;
use tidemark_proto::blocks::{BlockFileChunk, BlockStatusRequest};
use tidemark_tsdb::BlockId;
use tokio::net::TcpListener;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const PIECE: usize = 1024;

struct Server {
    addr: String,
    stop: CancellationToken,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(store: &Store) -> Server {
    let data = tempfile::tempdir().unwrap();
    let compactor = Compactor::new(
        CompactorConfig::default(),
        store.bucket(),
        Arc::new(OwnsAll),
        data.path(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let token = stop.clone();
    let svc = compactor.handoff_server(16 << 20);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), token.cancelled())
            .await
            .unwrap();
    });
    Server {
        addr,
        stop,
        _data: data,
    }
}

/// Every piece of a block directory, file by file, meta.json last.
fn pieces(tenant: &str, dir: &Path, id: BlockId) -> Vec<BlockFileChunk> {
    let mut files: Vec<String> = ["index", "tombstones", "chunks/000001", "meta.json"]
        .into_iter()
        .map(String::from)
        .filter(|f| dir.join(f).exists())
        .collect();
    files.dedup();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(dir.join(&f)).unwrap();
        for (i, data) in bytes.chunks(PIECE).enumerate() {
            out.push(BlockFileChunk {
                tenant: tenant.into(),
                block_id: id.to_string(),
                path: f.clone(),
                offset: (i * PIECE) as u64,
                crc32c: crc32c::crc32c(data),
                data: data.to_vec().into(),
                file_size: bytes.len() as u64,
                complete: false,
            });
        }
    }
    out
}

async fn client(addr: &str) -> BlockHandoffClient<Channel> {
    BlockHandoffClient::connect(addr.to_string()).await.unwrap()
}

async fn received(c: &mut BlockHandoffClient<Channel>, tenant: &str, id: BlockId) -> (bool, u64) {
    let s = c
        .status(BlockStatusRequest {
            tenant: tenant.into(),
            block_id: id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    (s.uploaded, s.files.iter().map(|f| f.received_bytes).sum())
}

async fn broken_upload_resumes(store: Store) {
    let server = serve(&store).await;
    let tmp = tempfile::tempdir().unwrap();
    let meta = write_block(tmp.path(), 50, 0, 2 * H, 15_000, |s, t| {
        Some((s as i64 * t) as f64)
    });
    let dir = tmp.path().join(meta.ulid.to_string());
    let all = pieces("team-a", &dir, meta.ulid);
    let total: u64 = all.iter().map(|p| p.data.len() as u64).sum();
    assert!(all.len() > 20, "the block should span many pieces");

    // Send the first half, then break the connection.
    let half = all.len() / 2;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut c1 = client(&server.addr).await;
    let call = tokio::spawn(async move { c1.upload(ReceiverStream::new(rx)).await });
    for p in &all[..half] {
        tx.send(p.clone()).await.unwrap();
    }
    let mut c = client(&server.addr).await;
    let want: u64 = all[..half].iter().map(|p| p.data.len() as u64).sum();
    for _ in 0..200 {
        if received(&mut c, "team-a", meta.ulid).await.1 == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    call.abort();
    drop(tx);
    let (uploaded, got) = received(&mut c, "team-a", meta.ulid).await;
    assert!(!uploaded);
    assert_eq!(
        got, want,
        "Status reports the bytes received before the break"
    );
    assert!(store.bucket().read_index("team-a").await.unwrap().is_none());

    // A piece with a bad checksum is refused and changes nothing.
    let mut bad = all[half].clone();
    bad.crc32c ^= 1;
    let err = c.upload(tokio_stream::iter(vec![bad])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("checksum mismatch"),
        "{}",
        err.message()
    );
    // A piece past what was received is refused: the sender must resume
    // from Status, not skip bytes.
    let err = c
        .upload(tokio_stream::iter(vec![all[half + 1].clone()]))
        .await
        .unwrap_err();
    assert!(err.message().contains("skips bytes"), "{}", err.message());
    assert_eq!(received(&mut c, "team-a", meta.ulid).await.1, want);

    // Resume: the rest, then complete.
    let mut rest: Vec<BlockFileChunk> = all[half..].to_vec();
    rest.last_mut().unwrap().complete = true;
    let r = c
        .upload(tokio_stream::iter(rest))
        .await
        .unwrap()
        .into_inner();
    assert!(r.uploaded);
    assert_eq!(received(&mut c, "team-a", meta.ulid).await, (true, 0));

    // The block is in the bucket, in the index, byte for byte the same.
    let bucket = store.bucket();
    let index = bucket.read_index("team-a").await.unwrap().unwrap();
    assert!(index.holds_source(meta.ulid));
    let dl = tempfile::tempdir().unwrap();
    let got_dir = bucket
        .download_block("team-a", meta.ulid, dl.path())
        .await
        .unwrap();
    assert_eq!(read_block(&got_dir), read_block(&dir));
    for f in ["index", "chunks/000001", "meta.json"] {
        assert_eq!(
            std::fs::read(got_dir.join(f)).unwrap(),
            std::fs::read(dir.join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(total > 0);

    // Sending the block again (the answer was lost) is harmless and says uploaded.
    let mut again = all.clone();
    again.last_mut().unwrap().complete = true;
    assert!(
        c.upload(tokio_stream::iter(again))
            .await
            .unwrap()
            .into_inner()
            .uploaded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_upload_resumes_on_the_filesystem() {
    broken_upload_resumes(Store::fs().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_upload_resumes_on_s3() {
    broken_upload_resumes(Store::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_incomplete_blocks_are_refused() {
    let store = Store::fs().await;
    let server = serve(&store).await;
    let mut c = client(&server.addr).await;
    let tmp = tempfile::tempdir().unwrap();
    let meta = write_block(tmp.path(), 2, 0, H, 60_000, |_, t| Some(t as f64));
    let dir = tmp.path().join(meta.ulid.to_string());
    let mut all = pieces("t", &dir, meta.ulid);

    let mut bad = all[0].clone();
    bad.path = "../../etc/passwd".into();
    let err = c.upload(tokio_stream::iter(vec![bad])).await.unwrap_err();
    assert!(err.message().contains("block file"), "{}", err.message());
    let mut bad = all[0].clone();
    bad.tenant = "a/b".into();
    let err = c.upload(tokio_stream::iter(vec![bad])).await.unwrap_err();
    assert!(err.message().contains("tenant"), "{}", err.message());
    let mut bad = all[0].clone();
    bad.block_id = "not-a-ulid".into();
    let err = c.upload(tokio_stream::iter(vec![bad])).await.unwrap_err();
    assert!(err.message().contains("ULID"), "{}", err.message());

    // `complete` with the index missing: refused, nothing uploaded.
    all.retain(|p| p.path != "chunks/000001");
    all.last_mut().unwrap().complete = true;
    let err = c.upload(tokio_stream::iter(all)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(store.bucket().read_index("t").await.unwrap().is_none());
}

/// A compactor killed between a hand-off's upload and its index rewrite
/// leaves a whole block the index does not name. The sender's next
/// `Status` hears `uploaded` and deletes its copy, so by then the block
/// must be in the index, where queriers look for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_block_missing_from_the_index_is_indexed_before_uploaded_is_answered() {
    let store = Store::fs().await;
    let tmp = tempfile::tempdir().unwrap();
    let meta = write_block(tmp.path(), 3, 0, H, 60_000, |_, t| Some(t as f64));
    let dir = tmp.path().join(meta.ulid.to_string());
    store.bucket().upload_block("t", &dir).await.unwrap();
    assert!(store.bucket().read_index("t").await.unwrap().is_none());

    let server = serve(&store).await;
    let mut c = client(&server.addr).await;
    assert_eq!(received(&mut c, "t", meta.ulid).await, (true, 0));
    let index = store.bucket().read_index("t").await.unwrap().unwrap();
    assert!(index.holds_source(meta.ulid), "{index:?}");
}
