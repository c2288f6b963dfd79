//! In-process ingesters and distributors on 127.0.0.1:0 listeners.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use prost::Message;
use tidemark_distributor::{Distributor, DistributorConfig};
use tidemark_ingester::{Ingester, IngesterConfig};
use tidemark_ingester_client::{IngesterRing, Instance, StaticRing};
use tidemark_model::TenantId;
use tidemark_proto::ingester::{SelectRequest, ingester_client::IngesterClient};
use tidemark_proto::prometheus as pb;
use tidemark_server::{Metrics, RoleContext, Services, Tenancy, serve_grpc, serve_http};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn ctx(dir: &Path, tenancy: Tenancy) -> RoleContext {
    RoleContext {
        metrics: Arc::new(Metrics::new()),
        services: Services::new(),
        data_dir: dir.to_path_buf(),
        tenancy,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        advertise_grpc_addr: String::new(),
        grpc_max_message_bytes: 64 << 20,
    }
}

pub fn anonymous() -> Tenancy {
    Tenancy::single(TenantId::new("anonymous").unwrap())
}

pub struct TestIngester {
    pub addr: String,
    pub ingester: Ingester,
    pub ctx: RoleContext,
    server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl TestIngester {
    pub async fn start(dir: &Path, cfg: IngesterConfig) -> Self {
        let ctx = ctx(dir, anonymous());
        let ingester = Ingester::start(cfg, ctx.clone()).await.unwrap();
        ingester.ready().await.unwrap();
        let mut routes = tonic::service::RoutesBuilder::default();
        ingester.add_grpc(&mut routes);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(serve_grpc(listener, routes.routes(), ctx.shutdown.clone()));
        TestIngester {
            addr,
            ingester,
            ctx,
            server: Some(server),
        }
    }

    /// Stops serving and syncs the WAL, like a shutdown.
    pub async fn stop(&mut self) {
        self.ctx.shutdown.cancel();
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self.ingester.stop().await;
        self.ctx.tasks.close();
        self.ctx.tasks.wait().await;
    }

    pub fn instance(&self, id: &str) -> Instance {
        Instance {
            id: id.into(),
            grpc_addr: self.addr.clone(),
            zone: String::new(),
        }
    }

    /// Every series of `tenant` whose metric name matches `name`.
    pub async fn select(
        &self,
        tenant: &str,
        name: &str,
    ) -> Vec<(Vec<(String, String)>, Vec<pb::Sample>)> {
        let mut c = IngesterClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap();
        let mut stream = c
            .select(SelectRequest {
                tenant: tenant.into(),
                start_ms: i64::MIN,
                end_ms: i64::MAX,
                matchers: vec![pb::LabelMatcher {
                    r#type: pb::label_matcher::Type::Re as i32,
                    name: "__name__".into(),
                    value: name.into(),
                }],
                max_series: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let mut out = Vec::new();
        while let Some(msg) = stream.next().await {
            for s in msg.unwrap().series {
                out.push((
                    s.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                    s.samples,
                ));
            }
        }
        out
    }
}

pub struct TestDistributor {
    pub base: String,
    pub grpc_addr: String,
    pub distributor: Distributor,
    pub ctx: RoleContext,
}

impl TestDistributor {
    pub async fn start(
        dir: &Path,
        cfg: DistributorConfig,
        tenancy: Tenancy,
        ring: Arc<dyn IngesterRing>,
    ) -> Self {
        let ctx = ctx(dir, tenancy);
        let distributor = Distributor::start(cfg, ctx.clone(), ring, None)
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve_http(
            listener,
            distributor.http_routes(),
            ctx.shutdown.clone(),
        ));
        let mut routes = tonic::service::RoutesBuilder::default();
        distributor.add_grpc(&mut routes);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(serve_grpc(listener, routes.routes(), ctx.shutdown.clone()));
        TestDistributor {
            base,
            grpc_addr,
            distributor,
            ctx,
        }
    }

    pub async fn post(
        &self,
        body: Vec<u8>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut r = reqwest::Client::new()
            .post(format!("{}/api/v1/push", self.base))
            .header("Content-Type", content_type)
            .header("Content-Encoding", "snappy")
            .body(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().await.unwrap()
    }
}

impl Drop for TestDistributor {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

impl Drop for TestIngester {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

pub fn single_ring(i: &TestIngester) -> Arc<dyn IngesterRing> {
    StaticRing::single(i.addr.clone())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> pb::TimeSeries {
    pb::TimeSeries {
        labels: pairs
            .iter()
            .map(|(n, v)| pb::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(t, v)| pb::Sample {
                timestamp: t,
                value: v,
            })
            .collect(),
        ..Default::default()
    }
}

pub fn v1_body(ts: Vec<pb::TimeSeries>) -> Vec<u8> {
    let raw = pb::WriteRequest {
        timeseries: ts,
        metadata: Vec::new(),
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

pub const V1: &str = "application/x-protobuf";
pub const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
