//! The distributor sink against a real gRPC server: batching per tenant,
//! retries with backoff across distributors, a bounded buffer whose
//! overflow is counted, and invalid batches not retried.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidemark_config::Duration as CfgDuration;
use tidemark_model::{Labels, Sample, TenantId};
use tidemark_proto::distributor::distributor_server::{Distributor, DistributorServer};
use tidemark_proto::distributor::{PushRequest, PushResponse};
use tidemark_scraper::scrape::{SampleSink, ScrapeBatch};
use tidemark_scraper::sink::{DistributorSink, PushConfig, SinkMetrics};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Fake {
    /// Calls to fail with this status before accepting.
    fail_first: AtomicUsize,
    fail_code: Mutex<Option<tonic::Code>>,
    calls: AtomicUsize,
    received: Mutex<Vec<(String, usize)>>,
}

struct Svc(Arc<Fake>);

#[tonic::async_trait]
impl Distributor for Svc {
    async fn push(&self, r: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let f = &self.0;
        f.calls.fetch_add(1, Ordering::SeqCst);
        let left = f.fail_first.load(Ordering::SeqCst);
        if left > 0 {
            f.fail_first.store(left - 1, Ordering::SeqCst);
            let code = f
                .fail_code
                .lock()
                .unwrap()
                .unwrap_or(tonic::Code::Unavailable);
            return Err(Status::new(code, "injected"));
        }
        let r = r.into_inner();
        let n = r.timeseries.len();
        f.received.lock().unwrap().push((r.tenant, n));
        Ok(Response::new(PushResponse {
            samples_written: n as u64,
            samples_refused: 0,
            refusals: vec![],
        }))
    }
}

async fn serve(fake: Arc<Fake>, stop: CancellationToken) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(DistributorServer::new(Svc(fake)));
    tokio::spawn(tidemark_server::serve_grpc(l, routes.routes(), stop));
    addr
}

fn batch(tenant: &str, n: usize) -> ScrapeBatch {
    ScrapeBatch {
        tenant: TenantId::new(tenant).unwrap(),
        samples: (0..n)
            .map(|i| {
                let name = format!("m{i}");
                (
                    Labels::from_pairs([("__name__", name.as_str())]).unwrap(),
                    Sample::new(1000, i as f64),
                )
            })
            .collect(),
        exemplars: Vec::new(),
    }
}

fn fast() -> PushConfig {
    PushConfig {
        min_backoff: CfgDuration::from_millis(10),
        max_backoff: CfgDuration::from_millis(40),
        max_retries: 5,
        ..PushConfig::default()
    }
}

fn dropped(m: &SinkMetrics, reason: &str) -> u64 {
    m.samples_dropped
        .get_or_create(&vec![("reason".to_string(), reason.to_string())])
        .get()
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(cond(), "condition never held");
}

#[tokio::test]
async fn retries_on_the_next_distributor_and_merges_per_tenant() {
    let stop = CancellationToken::new();
    let fake = Arc::new(Fake::default());
    fake.fail_first.store(3, Ordering::SeqCst);
    let good = serve(Arc::clone(&fake), stop.clone()).await;
    // A distributor that is down: pushes to it fail and move on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let metrics = SinkMetrics::default();
    let sink = DistributorSink::start(fast(), vec![dead, good], metrics.clone(), 4 << 20);
    sink.push(batch("a", 10)).await.unwrap();
    sink.push(batch("a", 5)).await.unwrap();
    sink.push(batch("b", 7)).await.unwrap();
    wait_for(|| metrics.samples_sent.get() == 22).await;
    assert!(
        metrics.push_retries.get() >= 3,
        "{}",
        metrics.push_retries.get()
    );
    let got = fake.received.lock().unwrap().clone();
    let per_tenant = |t: &str| {
        got.iter()
            .filter(|(x, _)| x == t)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert_eq!((per_tenant("a"), per_tenant("b")), (15, 7), "{got:?}");
    assert_eq!(sink.buffered(), 0);
    sink.close().await;
    stop.cancel();
}

#[tokio::test]
async fn invalid_batches_are_not_retried_and_full_buffer_drops_are_counted() {
    let stop = CancellationToken::new();
    let fake = Arc::new(Fake::default());
    fake.fail_first.store(1, Ordering::SeqCst);
    *fake.fail_code.lock().unwrap() = Some(tonic::Code::InvalidArgument);
    let addr = serve(Arc::clone(&fake), stop.clone()).await;
    let metrics = SinkMetrics::default();
    let sink = DistributorSink::start(fast(), vec![addr], metrics.clone(), 4 << 20);
    sink.push(batch("a", 4)).await.unwrap();
    wait_for(|| dropped(&metrics, "refused") == 4).await;
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    assert_eq!(metrics.push_retries.get(), 0);
    sink.close().await;

    // No distributor at all and a small buffer: what does not fit is
    // refused at once and counted; what fit is dropped after its retries.
    let cfg = PushConfig {
        max_buffered_samples: 10,
        max_retries: 2,
        ..fast()
    };
    let metrics = SinkMetrics::default();
    let sink = DistributorSink::start(cfg, Vec::<String>::new(), metrics.clone(), 4 << 20);
    sink.push(batch("a", 8)).await.unwrap();
    let e = sink.push(batch("a", 8)).await.unwrap_err().to_string();
    assert!(e.contains("max_buffered_samples"), "{e}");
    assert_eq!(dropped(&metrics, "buffer_full"), 8);
    wait_for(|| dropped(&metrics, "retries_exhausted") == 8).await;
    assert_eq!(metrics.push_retries.get(), 2);
    assert_eq!(sink.buffered(), 0);
    sink.close().await;
    stop.cancel();
}
