//! Sending scraped samples to distributors over gRPC (`Distributor.Push`).
//!
//! Scrape loops hand their batches to a [`DistributorSink`] without waiting
//! on the network: batches go into a buffer bounded in samples
//! ([`PushConfig::max_buffered_samples`]); a batch that does not fit is
//! dropped and counted (`tidemark_scraper_samples_dropped_total{reason="buffer_full"}`),
//! so a slow or absent distributor costs samples, never the scraper's
//! memory. A dispatcher merges consecutive batches of one tenant up to
//! [`PushConfig::max_batch_samples`] and pushes up to
//! [`PushConfig::concurrency`] requests at a time, each to the next
//! distributor in turn. Retryable failures (unavailable, rate limited,
//! deadline, internal) are retried with exponential backoff and jitter on
//! the next distributor; a request refused as invalid is not.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use tidemark_model::Labels;
use tidemark_proto::distributor::PushRequest;
use tidemark_proto::distributor::distributor_client::DistributorClient;
use tidemark_proto::prometheus::{
    Exemplar as ProtoExemplar, Label, Sample as ProtoSample, TimeSeries,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::ScrapeError;
use crate::scrape::{SampleSink, ScrapeBatch};

pub use config::PushConfig;

mod config;

/// Where the distributors are: a fixed list, or the ring's current
/// distributor members. Asked before every attempt, so membership changes
/// take effect at once.
pub trait DistributorAddresses: Send + Sync + 'static {
    fn addresses(&self) -> Vec<String>;
}

impl DistributorAddresses for Vec<String> {
    fn addresses(&self) -> Vec<String> {
        self.clone()
    }
}

impl<F: Fn() -> Vec<String> + Send + Sync + 'static> DistributorAddresses for F {
    fn addresses(&self) -> Vec<String> {
        self()
    }
}

/// The sink's metrics; register them with [`SinkMetrics::register`].
#[derive(Clone, Default)]
pub struct SinkMetrics {
    pub samples_sent: Counter,
    /// By reason: `buffer_full`, `retries_exhausted`, `refused`, `shutdown`.
    pub samples_dropped: Family<Vec<(String, String)>, Counter>,
    pub push_retries: Counter,
    pub buffered_samples: Gauge,
}

impl SinkMetrics {
    pub fn register(&self, metrics: &tidemark_server::Metrics) {
        metrics.register(
            "scraper_samples_sent",
            "Scraped samples accepted by a distributor.",
            self.samples_sent.clone(),
        );
        metrics.register(
            "scraper_samples_dropped",
            "Scraped samples never delivered, by reason (buffer_full, retries_exhausted, refused, shutdown).",
            self.samples_dropped.clone(),
        );
        metrics.register(
            "scraper_push_retries",
            "Push attempts to a distributor that failed and were retried.",
            self.push_retries.clone(),
        );
        metrics.register(
            "scraper_buffered_samples",
            "Scraped samples waiting to be pushed.",
            self.buffered_samples.clone(),
        );
    }

    fn dropped(&self, reason: &str, n: usize) {
        self.samples_dropped
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc_by(n as u64);
    }
}

struct Shared {
    cfg: PushConfig,
    addresses: Box<dyn DistributorAddresses>,
    clients: Mutex<HashMap<String, DistributorClient<Channel>>>,
    next: AtomicUsize,
    buffered: AtomicUsize,
    metrics: SinkMetrics,
    max_message_bytes: usize,
}

/// The scraper role's [`SampleSink`]: a bounded buffer drained by a
/// dispatcher that pushes to distributors. Stop it with
/// [`DistributorSink::close`] after the scrape loops have stopped, so their
/// staleness markers are still sent.
pub struct DistributorSink {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<ScrapeBatch>,
    closing: CancellationToken,
    tasks: TaskTracker,
}

impl DistributorSink {
    /// Starts the dispatcher. `max_message_bytes` bounds a push request.
    pub fn start(
        cfg: PushConfig,
        addresses: impl DistributorAddresses,
        metrics: SinkMetrics,
        max_message_bytes: usize,
    ) -> Self {
        let shared = Arc::new(Shared {
            cfg,
            addresses: Box::new(addresses),
            clients: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
            buffered: AtomicUsize::new(0),
            metrics,
            max_message_bytes,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let closing = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(dispatch(
            Arc::clone(&shared),
            rx,
            closing.clone(),
            tasks.clone(),
        ));
        DistributorSink {
            shared,
            tx,
            closing,
            tasks,
        }
    }

    /// Samples accepted into the buffer and not yet delivered or dropped.
    pub fn buffered(&self) -> usize {
        self.shared.buffered.load(Ordering::Relaxed)
    }

    /// Sends what is buffered (giving up on retries at once) and stops.
    pub async fn close(&self) {
        self.closing.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl SampleSink for DistributorSink {
    fn push(
        &self,
        batch: ScrapeBatch,
    ) -> impl std::future::Future<Output = Result<(), ScrapeError>> + Send {
        let n = batch.samples.len();
        let tenant = batch.tenant.to_string();
        let s = &self.shared;
        let result = if self.closing.is_cancelled() {
            s.metrics.dropped("shutdown", n);
            Err("the scraper is shutting down".to_string())
        } else {
            let before = s.buffered.fetch_add(n, Ordering::Relaxed);
            if before + n > s.cfg.max_buffered_samples {
                s.buffered.fetch_sub(n, Ordering::Relaxed);
                s.metrics.dropped("buffer_full", n);
                Err(format!(
                    "send buffer full ({before} samples buffered; raise `scraper.push.max_buffered_samples`)"
                ))
            } else {
                s.metrics.buffered_samples.set((before + n) as i64);
                self.tx.send(batch).map_err(|_| {
                    s.buffered.fetch_sub(n, Ordering::Relaxed);
                    s.metrics.dropped("shutdown", n);
                    "the sender has stopped".to_string()
                })
            }
        };
        std::future::ready(result.map_err(|message| ScrapeError::Sink {
            tenant,
            samples: n,
            message,
        }))
    }
}

/// Takes batches off the buffer, merges them per tenant and pushes them
/// with at most `concurrency` requests in flight.
async fn dispatch(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<ScrapeBatch>,
    closing: CancellationToken,
    tasks: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(shared.cfg.concurrency.max(1)));
    let mut pending: Option<ScrapeBatch> = None;
    loop {
        let first = match pending.take() {
            Some(b) => b,
            None => tokio::select! {
                b = rx.recv() => match b {
                    Some(b) => b,
                    None => break,
                },
                _ = closing.cancelled() => {
                    // Stop accepting, then drain what is already buffered.
                    rx.close();
                    match rx.recv().await {
                        Some(b) => b,
                        None => break,
                    }
                }
            },
        };
        let mut merged = first;
        while merged.samples.len() < shared.cfg.max_batch_samples {
            match rx.try_recv() {
                Ok(b) if b.tenant == merged.tenant => {
                    merged.samples.extend(b.samples);
                    merged.exemplars.extend(b.exemplars);
                }
                Ok(b) => {
                    pending = Some(b);
                    break;
                }
                Err(_) => break,
            }
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let shared = Arc::clone(&shared);
        let closing = closing.clone();
        tasks.spawn(async move {
            let n = merged.samples.len();
            send_with_retries(&shared, merged, &closing).await;
            let left = shared.buffered.fetch_sub(n, Ordering::Relaxed) - n;
            shared.metrics.buffered_samples.set(left as i64);
            drop(permit);
        });
    }
}

/// One series entry per sample, then one per exemplar (as Prometheus's
/// remote write sends them; the distributor takes them in any order).
fn to_request(batch: ScrapeBatch) -> PushRequest {
    let samples = batch.samples.into_iter().map(|(labels, s)| TimeSeries {
        labels: proto_labels(&labels),
        samples: vec![ProtoSample {
            value: s.v,
            timestamp: s.t,
        }],
        ..Default::default()
    });
    let exemplars = batch.exemplars.into_iter().map(|(labels, e)| TimeSeries {
        labels: proto_labels(&labels),
        exemplars: vec![ProtoExemplar {
            labels: proto_labels(&e.labels),
            value: e.v,
            timestamp: e.t,
        }],
        ..Default::default()
    });
    let timeseries = samples.chain(exemplars).collect();
    PushRequest {
        tenant: batch.tenant.to_string(),
        timeseries,
        metadata: Vec::new(),
    }
}

fn proto_labels(labels: &Labels) -> Vec<Label> {
    labels
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

/// The write path's own rule: rate limits, unavailable and internal
/// errors may pass on a retry, invalid data never does.
fn retryable(code: Code) -> bool {
    tidemark_server::ErrorKind::from_grpc_code(code).retryable()
}

/// The delay before retry `attempt` (0-based): doubling from the minimum up
/// to the maximum, minus up to a quarter at random so that scrapers that
/// failed together do not retry together.
pub fn backoff(cfg: &PushConfig, attempt: u32) -> Duration {
    let base = cfg
        .min_backoff
        .as_std()
        .saturating_mul(1 << attempt.min(20));
    let capped = base.min(cfg.max_backoff.as_std());
    let jitter = rand::thread_rng().gen_range(0.0..0.25);
    capped.mul_f64(1.0 - jitter)
}

impl Shared {
    fn client(&self, addr: &str) -> Result<DistributorClient<Channel>, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad distributor address {addr:?}: {e}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(self.cfg.timeout.as_std());
        let c = DistributorClient::new(endpoint.connect_lazy())
            .max_encoding_message_size(self.max_message_bytes)
            .max_decoding_message_size(self.max_message_bytes);
        clients.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    fn pick(&self) -> Option<String> {
        let mut addrs = self.addresses.addresses();
        if addrs.is_empty() {
            return None;
        }
        addrs.sort();
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(addrs.swap_remove(i % addrs.len()))
    }
}

async fn send_with_retries(shared: &Shared, batch: ScrapeBatch, closing: &CancellationToken) {
    let n = batch.samples.len();
    let tenant = batch.tenant.to_string();
    let req = to_request(batch);
    let mut attempt: u32 = 0;
    loop {
        let outcome = match shared.pick() {
            None => Err((Code::Unavailable, "no distributor is known".to_string())),
            Some(addr) => match shared.client(&addr) {
                Err(e) => Err((Code::InvalidArgument, e)),
                Ok(mut c) => c
                    .push(req.clone())
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| (s.code(), format!("{addr}: {}", s.message()))),
            },
        };
        match outcome {
            Ok(resp) => {
                shared.metrics.samples_sent.inc_by(resp.samples_written);
                if resp.samples_refused > 0 {
                    shared
                        .metrics
                        .dropped("refused", resp.samples_refused as usize);
                    tracing::warn!(tenant = %tenant, refused = resp.samples_refused, first = ?resp.refusals.first(), "distributor refused scraped samples");
                }
                return;
            }
            Err((code, message)) if retryable(code) && attempt < shared.cfg.max_retries => {
                shared.metrics.push_retries.inc();
                let delay = backoff(&shared.cfg, attempt);
                attempt += 1;
                tracing::debug!(tenant = %tenant, samples = n, attempt, ?code, error = %message, ?delay, "push failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    // At shutdown one last attempt, without waiting.
                    _ = closing.cancelled() => attempt = shared.cfg.max_retries,
                }
            }
            Err((code, message)) => {
                let reason = if retryable(code) {
                    "retries_exhausted"
                } else {
                    "refused"
                };
                shared.metrics.dropped(reason, n);
                tracing::warn!(tenant = %tenant, samples = n, ?code, error = %message, reason, "scraped samples dropped");
                return;
            }
        }
    }
}
