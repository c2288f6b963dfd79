//! The write workload: hosts scraped every `interval`, sent as remote
//! write 1.0 over several connections, either as history (timestamps from
//! `hours` ago up to now, as fast as the target takes them or at a fixed
//! rate) or live (one scrape per interval at the wall clock).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Barrier;

use crate::encode::RequestBuilder;
use crate::hosts::Host;

/// What to send and how fast.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IngestArgs {
    /// Remote write URL (tidemark: /api/v1/push; Prometheus and VictoriaMetrics:
    /// /api/v1/write); repeat it to spread the connections over several distributors.
    #[arg(long = "write-url", required = true)]
    pub(crate) write_urls: Vec<String>,
    /// Tenant sent as X-Scope-OrgID on writes and queries (for multi-tenant targets).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Active series (rounded up to whole hosts).
    #[arg(long, default_value_t = 5000)]
    pub(crate) series: usize,
    /// Scrape interval in seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) interval: u64,
    /// Hours of history to backfill, ending now (0 with --live-seconds).
    #[arg(long, default_value_t = 24.0)]
    pub(crate) hours: f64,
    /// Instead of history: send live scrapes at the wall clock for this many seconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) live_seconds: u64,
    /// Percent of series replaced (hosts get a new `instance`) per --churn-interval.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) churn: f64,
    /// Seconds of data time over which --churn percent of series are replaced.
    #[arg(long, default_value_t = 3600)]
    pub(crate) churn_interval: u64,
    /// Mean hours between restarts of a host (all its counters reset).
    #[arg(long, default_value_t = 12.0)]
    pub(crate) reset_hours: f64,
    /// Concurrent connections (each owns a share of the hosts, like remote write shards).
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// Samples per request (Prometheus's max_samples_per_send is 2000).
    #[arg(long, default_value_t = 2000)]
    pub(crate) batch: usize,
    /// Consecutive samples of a series per request (1 = a live Prometheus's shape).
    #[arg(long, default_value_t = 1)]
    pub(crate) samples_per_series: usize,
    /// Samples per second to send in total; 0 = as fast as the target takes them.
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
}

/// What was sent and accepted.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize)]
pub(crate) struct IngestReport {
    /// Samples acknowledged with 2xx.
    pub(crate) samples: u64,
    /// Samples in requests the target refused (4xx other than 429) or that failed after retries.
    pub(crate) samples_failed: u64,
    pub(crate) requests: u64,
    /// Series that received samples (active plus those churned away).
    pub(crate) series_created: u64,
    pub(crate) active_series: u64,
    pub(crate) seconds: f64,
    pub(crate) first_ts_ms: i64,
    pub(crate) last_ts_ms: i64,
    /// First error answer, if any.
    pub(crate) first_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    samples: AtomicU64,
    failed: AtomicU64,
    requests: AtomicU64,
    created: AtomicU64,
}

/// Sends the workload and reports what the target accepted.
pub(crate) async fn run(args: &IngestArgs) -> anyhow::Result<IngestReport> {
    if args.write_urls.is_empty()
        || args.connections == 0
        || args.batch == 0
        || args.samples_per_series == 0
        || args.interval == 0
    {
        bail!("--connections, --batch, --samples-per-series and --interval must be > 0");
    }
    let per_host = Host::series_per_host();
    let hosts = args.series.div_ceil(per_host).max(1);
    let interval_ms = args.interval as i64 * 1000;
    let live = args.live_seconds > 0;
    let (steps, start_ms) = if live {
        (args.live_seconds / args.interval, now_ms())
    } else {
        let steps = (args.hours * 3600.0 / args.interval as f64) as u64;
        let end = now_ms() / interval_ms * interval_ms;
        (steps, end - steps as i64 * interval_ms)
    };
    let k = if live {
        1
    } else {
        args.samples_per_series as u64
    };
    // Workers meet after every ~10 minutes of data time so that no series is
    // far ahead of another (Prometheus refuses samples > 1 h behind its head).
    let slice = (600 / args.interval).max(1).div_ceil(k) * k;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(60))
        .build()?;
    let counters = Arc::new(Counters::default());
    let barrier = Arc::new(Barrier::new(args.connections));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.connections {
        let ctx = Worker {
            args: args.clone(),
            client: client.clone(),
            counters: Arc::clone(&counters),
            barrier: Arc::clone(&barrier),
            first_error: Arc::clone(&first_error),
            url: args.write_urls[w % args.write_urls.len()].clone(),
            hosts: (0..hosts)
                .filter(|h| h % args.connections == w)
                .map(|h| h as u64)
                .collect(),
            next_id: (hosts + w) as u64,
            started,
        };
        let plan = Plan {
            steps,
            start_ms,
            interval_ms,
            k,
            slice,
            live,
        };
        tasks.push(tokio::spawn(async move { ctx.run(plan).await }));
    }
    for t in tasks {
        t.await.context("ingest worker panicked")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let err = first_error.lock().map(|e| e.clone()).unwrap_or_default();
    Ok(IngestReport {
        samples: counters.samples.load(Ordering::Relaxed),
        samples_failed: counters.failed.load(Ordering::Relaxed),
        requests: counters.requests.load(Ordering::Relaxed),
        series_created: counters.created.load(Ordering::Relaxed),
        active_series: (hosts * per_host) as u64,
        seconds,
        first_ts_ms: start_ms,
        last_ts_ms: start_ms + (steps as i64 - 1) * interval_ms,
        first_error: err,
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    steps: u64,
    start_ms: i64,
    interval_ms: i64,
    /// Samples per series per request.
    k: u64,
    /// Steps between barriers.
    slice: u64,
    live: bool,
}

struct Worker {
    args: IngestArgs,
    client: reqwest::Client,
    url: String,
    counters: Arc<Counters>,
    barrier: Arc<Barrier>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
    /// Ids of the hosts this connection owns; churn gives a host a new id.
    hosts: Vec<u64>,
    next_id: u64,
    started: Instant,
}

impl Worker {
    async fn run(mut self, plan: Plan) -> anyhow::Result<()> {
        let reset_prob = if self.args.reset_hours > 0.0 {
            (plan.interval_ms as f64 / 3.6e6 / self.args.reset_hours).min(1.0)
        } else {
            0.0
        };
        let mut hosts: Vec<Host> = self
            .hosts
            .iter()
            .map(|id| Host::new(*id, reset_prob))
            .collect();
        let per_host = Host::series_per_host() as u64;
        self.counters
            .created
            .fetch_add(per_host * hosts.len() as u64, Ordering::Relaxed);
        // Hosts to replace per step, accumulated until a whole one is due.
        let churn_per_step = self.args.churn / 100.0 * hosts.len() as f64 * plan.interval_ms as f64
            / (self.args.churn_interval.max(1) as f64 * 1000.0);
        let mut churn_due = 0.0;
        let mut next_churn = 0;
        let mut req = RequestBuilder::default();
        let mut values = Vec::new();
        let mut samples: Vec<Vec<(i64, f64)>> = Vec::new();
        let mut step = 0;
        while step < plan.steps {
            let k = plan.k.min(plan.steps - step);
            if plan.live {
                let due = Duration::from_millis((step as i64 * plan.interval_ms) as u64);
                tokio::time::sleep_until((self.started + due).into()).await;
            }
            for host in hosts.iter_mut() {
                samples.resize(host.len(), Vec::new());
                samples.iter_mut().for_each(Vec::clear);
                for i in 0..k {
                    let t = if plan.live {
                        now_ms()
                    } else {
                        plan.start_ms + (step + i) as i64 * plan.interval_ms
                    };
                    values.clear();
                    let ts = host.scrape(t, plan.interval_ms as f64 / 1000.0, &mut values);
                    for (s, v) in values.iter().enumerate() {
                        samples[s].push((ts, *v));
                    }
                }
                for (labels, smp) in host.labels().iter().zip(&samples) {
                    req.push(labels, smp);
                    if req.samples() >= self.args.batch {
                        self.send(&mut req).await?;
                    }
                }
            }
            step += k;
            churn_due += churn_per_step * k as f64;
            while churn_due >= 1.0 && !hosts.is_empty() {
                churn_due -= 1.0;
                let i = next_churn % hosts.len();
                next_churn += 1;
                hosts[i] = Host::new(self.next_id, reset_prob);
                self.next_id += self.args.connections as u64;
                self.counters.created.fetch_add(per_host, Ordering::Relaxed);
            }
            if step % plan.slice == 0 || step >= plan.steps {
                if req.samples() > 0 {
                    self.send(&mut req).await?;
                }
                self.barrier.wait().await;
            }
        }
        Ok(())
    }

    async fn send(&self, req: &mut RequestBuilder) -> anyhow::Result<()> {
        let (body, n) = req.take()?;
        if self.args.rate > 0 {
            // Pace the whole run: this connection's share of the rate.
            let sent = self.counters.samples.load(Ordering::Relaxed) + n as u64;
            let due = Duration::from_secs_f64(sent as f64 / self.args.rate as f64);
            tokio::time::sleep_until((self.started + due).into()).await;
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        match self.post(body).await {
            Ok(()) => self.counters.samples.fetch_add(n as u64, Ordering::Relaxed),
            Err(e) => {
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert(e);
                }
                self.counters.failed.fetch_add(n as u64, Ordering::Relaxed)
            }
        };
        Ok(())
    }

    /// Posts with Prometheus's retry rule: 429, 5xx and connection errors
    /// are retried with backoff, other answers are final.
    async fn post(&self, body: Bytes) -> Result<(), String> {
        let mut backoff = Duration::from_millis(50);
        let mut last = String::new();
        for _ in 0..10 {
            let req = self.client.post(&self.url);
            let res = crate::with_tenant(req, self.args.tenant.as_deref())
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .header("User-Agent", "tidemark-bench")
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    last = format!(
                        "{status}: {}",
                        text.lines().take(3).collect::<Vec<_>>().join(" | ")
                    );
                    if status.as_u16() != 429 && !status.is_server_error() {
                        return Err(last);
                    }
                }
                Err(e) => last = format!("request failed: {e}"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        Err(last)
    }
}
