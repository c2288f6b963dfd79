//! Blocks cut from the heads and handed to a compactor over real gRPC: a
//! `BlockHandoff` server in the test plays the compactor, breaking the
//! first upload part-way, so the ingester has to ask `Status` and resume.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tidemark_config::Duration as CfgDuration;
use tidemark_ingester::{Ingester, IngesterConfig, StaticCompactorLocator};
use tidemark_model::TenantId;
use tidemark_proto::blocks::block_handoff_server::{BlockHandoff, BlockHandoffServer};
use tidemark_proto::blocks::{
    BlockFileChunk, BlockStatusRequest, BlockStatusResponse, FileProgress, UploadResponse,
};
use tidemark_proto::ingester::{PushRequest, SelectRequest, ingester_client::IngesterClient};
use tidemark_proto::prometheus as pb;
use tidemark_server::{Metrics, RoleContext, Services, Tenancy, serve_grpc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tower::ServiceExt;

const HOUR: i64 = 3_600_000;

/// What the fake compactor holds of one block.
#[derive(Default, Clone)]
struct Received {
    files: BTreeMap<String, Vec<u8>>,
    uploaded: bool,
}

#[derive(Default)]
struct FakeState {
    blocks: BTreeMap<(String, String), Received>,
    /// Upload calls: the (path, offset) of their first message.
    calls: Vec<(String, u64)>,
    /// Bytes after which the next upload call fails (then cleared).
    break_after: Option<usize>,
}

#[derive(Clone, Default)]
struct FakeCompactor(Arc<Mutex<FakeState>>);

#[tonic::async_trait]
impl BlockHandoff for FakeCompactor {
    async fn status(
        &self,
        request: Request<BlockStatusRequest>,
    ) -> Result<Response<BlockStatusResponse>, Status> {
        let r = request.into_inner();
        let st = self.0.lock().unwrap();
        let b = st
            .blocks
            .get(&(r.tenant, r.block_id))
            .cloned()
            .unwrap_or_default();
        Ok(Response::new(BlockStatusResponse {
            uploaded: b.uploaded,
            files: b
                .files
                .iter()
                .map(|(p, d)| FileProgress {
                    path: p.clone(),
                    received_bytes: d.len() as u64,
                })
                .collect(),
        }))
    }

    async fn upload(
        &self,
        request: Request<Streaming<BlockFileChunk>>,
    ) -> Result<Response<UploadResponse>, Status> {
        let mut stream = request.into_inner();
        let break_after = self.0.lock().unwrap().break_after.take();
        let mut got = 0usize;
        let mut first = true;
        while let Some(msg) = stream.next().await {
            let m = msg?;
            if crc32c::crc32c(&m.data) != m.crc32c {
                return Err(Status::data_loss(format!("bad checksum in {}", m.path)));
            }
            let mut st = self.0.lock().unwrap();
            if first {
                st.calls.push((m.path.clone(), m.offset));
                first = false;
            }
            let b = st
                .blocks
                .entry((m.tenant.clone(), m.block_id.clone()))
                .or_default();
            let file = b.files.entry(m.path.clone()).or_default();
            if m.offset != file.len() as u64 {
                return Err(Status::failed_precondition(format!(
                    "{}: offset {} but {} bytes held",
                    m.path,
                    m.offset,
                    file.len()
                )));
            }
            file.extend_from_slice(&m.data);
            got += m.data.len();
            if break_after.is_some_and(|n| got >= n) {
                return Err(Status::unavailable("connection broken by the test"));
            }
            if m.complete {
                b.uploaded = true;
                return Ok(Response::new(UploadResponse { uploaded: true }));
            }
        }
        Ok(Response::new(UploadResponse { uploaded: false }))
    }
}

async fn start_fake(fake: FakeCompactor) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(BlockHandoffServer::new(fake));
    tokio::spawn(serve_grpc(listener, routes.routes(), stop.clone()));
    (addr, stop)
}

struct Running {
    ingester: Ingester,
    ctx: RoleContext,
    client: IngesterClient<tonic::transport::Channel>,
}

async fn start(dir: &Path, cfg: IngesterConfig, compactor: &str) -> Running {
    let ctx = RoleContext {
        metrics: Arc::new(Metrics::new()),
        services: Services::new(),
        data_dir: dir.to_path_buf(),
        tenancy: Tenancy::single(TenantId::new("anonymous").unwrap()),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        advertise_grpc_addr: String::new(),
        grpc_max_message_bytes: 16 << 20,
    };
    let locator = Arc::new(StaticCompactorLocator::new(compactor));
    let ingester = Ingester::start_with_locator(cfg, ctx.clone(), locator)
        .await
        .unwrap();
    ingester.ready().await.unwrap();
    let mut routes = tonic::service::RoutesBuilder::default();
    ingester.add_grpc(&mut routes);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    ctx.tasks
        .spawn(serve_grpc(listener, routes.routes(), ctx.shutdown.clone()));
    let client = IngesterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Running {
        ingester,
        ctx,
        client,
    }
}

impl Running {
    async fn flush(&self) -> serde_json::Value {
        let resp = self
            .ingester
            .http_routes()
            .oneshot(
                http::Request::post("/ingester/flush")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    async fn push(&mut self, from: i64, to: i64) {
        let mut t = from;
        while t < to {
            let timeseries = (0..5)
                .map(|i| pb::TimeSeries {
                    labels: vec![
                        pb::Label {
                            name: "__name__".into(),
                            value: "m".into(),
                        },
                        pb::Label {
                            name: "i".into(),
                            value: i.to_string(),
                        },
                    ],
                    samples: vec![pb::Sample {
                        timestamp: t,
                        value: (t / 1000 + i) as f64,
                    }],
                    ..Default::default()
                })
                .collect();
            let r = self
                .client
                .push(PushRequest {
                    tenant: "anonymous".into(),
                    timeseries,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            t += 30_000;
        }
    }

    /// Every sample of `m` as (series, timestamps).
    async fn select_all(&mut self) -> BTreeMap<String, Vec<i64>> {
        let mut stream = self
            .client
            .select(SelectRequest {
                tenant: "anonymous".into(),
                matchers: vec![pb::LabelMatcher {
                    r#type: pb::label_matcher::Type::Eq as i32,
                    name: "__name__".into(),
                    value: "m".into(),
                }],
                start_ms: i64::MIN,
                end_ms: i64::MAX,
                max_series: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let mut out = BTreeMap::new();
        while let Some(r) = stream.next().await {
            for s in r.unwrap().series {
                let key = s
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(",");
                out.insert(key, s.samples.iter().map(|x| x.timestamp).collect());
            }
        }
        out
    }

    async fn stop(self) {
        self.ctx.shutdown.cancel();
        self.ingester.stop().await;
        self.ctx.tasks.close();
        self.ctx.tasks.wait().await;
    }
}

fn config(window: CfgDuration) -> IngesterConfig {
    let mut cfg = IngesterConfig::default();
    cfg.blocks.ship_interval = CfgDuration::from_millis(100);
    cfg.blocks.handoff_min_backoff = CfgDuration::from_millis(50);
    cfg.blocks.handoff_max_backoff = CfgDuration::from_millis(200);
    cfg.blocks.handoff_message_bytes = 1024;
    cfg.blocks.recent_query_window = window;
    cfg
}

fn expected(from: i64, to: i64) -> BTreeMap<String, Vec<i64>> {
    (0..5)
        .map(|i| {
            (
                format!("__name__=m,i={i}"),
                (from..to).step_by(30_000).collect(),
            )
        })
        .collect()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn block_dirs(data: &Path) -> Vec<std::path::PathBuf> {
    let dir = data.join("ingester/anonymous/blocks");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_upload_resumes_from_the_reported_offsets_and_blocks_stay_queryable() {
    let data = tempfile::tempdir().unwrap();
    let fake = FakeCompactor::default();
    fake.0.lock().unwrap().break_after = Some(1024);
    let (addr, stop_fake) = start_fake(fake.clone()).await;
    let mut ing = start(
        data.path(),
        config(CfgDuration::from_secs(13 * 3600)),
        &addr,
    )
    .await;

    ing.push(HOUR / 2, 3 * HOUR).await;
    let flushed = ing.flush().await;
    let blocks = flushed["blocks"].as_array().unwrap();
    let ranges: Vec<(i64, i64)> = blocks
        .iter()
        .map(|b| {
            (
                b["min_time"].as_i64().unwrap(),
                b["max_time"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, vec![(0, 2 * HOUR), (2 * HOUR, 4 * HOUR)]);

    let state = Arc::clone(&fake.0);
    wait_for("both blocks uploaded", || {
        let st = state.lock().unwrap();
        st.blocks.len() == 2 && st.blocks.values().all(|b| b.uploaded)
    })
    .await;
    {
        let st = fake.0.lock().unwrap();
        // The broken call, then a call continuing where it broke (not at 0).
        assert!(st.calls.len() >= 3, "calls: {:?}", st.calls);
        assert_eq!(st.calls[0].1, 0);
        assert!(
            st.calls[1..].iter().any(|&(_, offset)| offset > 0),
            "no call resumed mid-file: {:?}",
            st.calls
        );
        // What the compactor holds is the local block, byte for byte.
        for dir in block_dirs(data.path()) {
            let id = dir.file_name().unwrap().to_str().unwrap().to_string();
            let held = &st.blocks[&("anonymous".to_string(), id)];
            for (path, bytes) in &held.files {
                assert_eq!(&std::fs::read(dir.join(path)).unwrap(), bytes, "{path}");
            }
            assert!(held.files.contains_key("index") && held.files.contains_key("meta.json"));
        }
    }

    // Within the recent-query window the blocks stay and Select serves them
    // with the head: every sample exactly once, also after a restart.
    ing.push(4 * HOUR, 4 * HOUR + 10 * 60_000).await;
    let mut want = expected(HOUR / 2, 3 * HOUR);
    for (k, v) in expected(4 * HOUR, 4 * HOUR + 10 * 60_000) {
        want.get_mut(&k).unwrap().extend(v);
    }
    assert_eq!(ing.select_all().await, want);
    assert_eq!(block_dirs(data.path()).len(), 2);
    ing.stop().await;
    let mut again = start(
        data.path(),
        config(CfgDuration::from_secs(13 * 3600)),
        &addr,
    )
    .await;
    assert_eq!(again.select_all().await, want, "after a restart");
    again.stop().await;
    stop_fake.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_deleted_only_once_confirmed_and_out_of_the_window() {
    let data = tempfile::tempdir().unwrap();
    // No compactor: blocks stay local however old.
    let mut ing = start(data.path(), config(CfgDuration::from_millis(0)), "").await;
    ing.push(0, HOUR).await;
    ing.flush().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(block_dirs(data.path()).len(), 1);
    assert_eq!(ing.select_all().await, expected(0, HOUR));
    ing.stop().await;

    // With a compactor confirming and a zero window, it goes right after.
    let fake = FakeCompactor::default();
    let (addr, stop_fake) = start_fake(fake.clone()).await;
    let mut ing = start(data.path(), config(CfgDuration::from_millis(0)), &addr).await;
    let state = Arc::clone(&fake.0);
    wait_for("the block uploaded", || {
        state.lock().unwrap().blocks.values().any(|b| b.uploaded)
    })
    .await;
    let d = data.path().to_path_buf();
    wait_for("the local block deleted", || block_dirs(&d).is_empty()).await;
    // The ingester no longer has those samples: the bucket does.
    assert!(ing.select_all().await.is_empty());
    ing.stop().await;
    stop_fake.cancel();
}
