//! A remote write 1.0 sender that behaves like Prometheus's queue manager:
//! snappy-compressed protobuf `WriteRequest`s, retried with backoff on 5xx,
//! 429 and connection errors (switching distributor, as a load balancer
//! would), dropped on any other 4xx. [`Load`] keeps such senders busy in
//! background threads and records which samples were acknowledged, so a
//! test can check that every one of them can be read back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use tidemark_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

/// A label set (sorted `name=value` pairs) and its acknowledged samples.
pub type ExpectedSeries = (Vec<(String, String)>, Vec<(i64, f64)>);
/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One series: labels (the metric name under `__name__`) and its samples.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut labels: Vec<Label> = labels
        .iter()
        .map(|(n, v)| Label {
            name: (*n).to_string(),
            value: (*v).to_string(),
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

/// A remote write 1.0 body: protobuf `WriteRequest`, snappy block format.
pub fn encode(timeseries: Vec<TimeSeries>) -> Vec<u8> {
    let raw = WriteRequest {
        timeseries,
        ..Default::default()
    }
    .encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses any input")
}

/// Sends one remote write body to `url` (`.../api/v1/push`) with the
/// headers the spec requires; the answer's status and body.
pub fn push(
    client: &reqwest::blocking::Client,
    url: &str,
    tenant: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, String), reqwest::Error> {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let resp = req.send()?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().unwrap_or_default()))
}

/// Whether Prometheus retries a request that got this status.
pub fn is_retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// What a [`Load`] writes and where.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Base URLs of the distributors (`http://127.0.0.1:PORT`).
    pub targets: Vec<String>,
    /// `X-Scope-OrgID`, if any.
    pub tenant: Option<String>,
    pub metric: String,
    /// Senders (threads); sender `i` starts on target `i % targets.len()`
    /// and owns the series `{shard="i", series="0".."series_per_shard"}`.
    pub shards: usize,
    pub series_per_shard: usize,
    /// Pause between two requests of one sender.
    pub interval: Duration,
    /// Prometheus gives up on a batch only when it is too old to matter;
    /// here: after this long, and the test sees it as a dropped request.
    pub give_up_after: Duration,
}

impl LoadSpec {
    pub fn new(targets: Vec<String>, tenant: Option<&str>, metric: &str) -> Self {
        LoadSpec {
            targets,
            tenant: tenant.map(str::to_string),
            metric: metric.to_string(),
            shards: 2,
            series_per_shard: 20,
            interval: Duration::from_millis(10),
            give_up_after: Duration::from_secs(20),
        }
    }
}

/// A failed attempt: retried through (`retried`) or not.
#[derive(Debug, Clone)]
pub struct Failure {
    pub at: Instant,
    pub target: String,
    pub what: String,
    pub retried: bool,
}

/// What one sender had acknowledged: `(timestamp ms, value)` per request,
/// written to every series of its shard.
#[derive(Debug, Clone, Default)]
pub struct ShardLog {
    pub shard: usize,
    pub acked: Vec<(i64, f64)>,
}

/// Everything a [`Load`] saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub spec: LoadSpec,
    pub shards: Vec<ShardLog>,
    pub failures: Vec<Failure>,
}

impl LoadReport {
    /// Acknowledged samples in total (requests times series).
    pub fn acked_samples(&self) -> usize {
        self.shards.iter().map(|s| s.acked.len()).sum::<usize>() * self.spec.series_per_shard
    }

    /// Failures the sender did not retry through: dropped 4xx and requests
    /// given up on. A Prometheus would have lost these samples.
    pub fn unretried(&self) -> Vec<&Failure> {
        self.failures.iter().filter(|f| !f.retried).collect()
    }

    /// Failed attempts at or after `since`.
    pub fn failures_since(&self, since: Instant) -> Vec<&Failure> {
        self.failures.iter().filter(|f| f.at >= since).collect()
    }

    /// The expected series: label sets (sorted `name=value` pairs) with
    /// their acknowledged samples.
    pub fn expected(&self) -> Vec<ExpectedSeries> {
        let mut out = Vec::new();
        for log in &self.shards {
            for s in 0..self.spec.series_per_shard {
                let mut labels = vec![
                    ("__name__".to_string(), self.spec.metric.clone()),
                    ("series".to_string(), s.to_string()),
                    ("shard".to_string(), log.shard.to_string()),
                ];
                labels.sort();
                out.push((labels, log.acked.clone()));
            }
        }
        out
    }

    /// Only the samples acknowledged with a timestamp at or after `ms`.
    pub fn since(&self, ms: i64) -> LoadReport {
        let mut r = self.clone();
        for s in &mut r.shards {
            s.acked.retain(|(t, _)| *t >= ms);
        }
        r
    }

    /// Oldest and newest acknowledged timestamps (ms).
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let all = self.shards.iter().flat_map(|s| s.acked.iter().map(|a| a.0));
        let min = all.clone().min()?;
        Some((min, all.max()?))
    }
}

struct Shared {
    stop: AtomicBool,
    /// Held for reading by a sender around each request (retries included);
    /// [`Load::pause`] takes it for writing, so when it returns no request
    /// is in flight.
    gate: RwLock<()>,
    acked_requests: AtomicU64,
    failures: Mutex<Vec<Failure>>,
    /// One per sender, appended to on every acknowledgement.
    logs: Vec<Mutex<ShardLog>>,
}

/// Continuous remote write load in background threads. Stopped (and
/// joined) by [`Load::finish`] or on drop.
pub struct Load {
    spec: LoadSpec,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(spec: LoadSpec) -> Load {
        assert!(!spec.targets.is_empty(), "a load needs a target");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            gate: RwLock::new(()),
            acked_requests: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            logs: (0..spec.shards)
                .map(|shard| {
                    Mutex::new(ShardLog {
                        shard,
                        acked: Vec::new(),
                    })
                })
                .collect(),
        });
        let threads = (0..spec.shards)
            .map(|shard| {
                let spec = spec.clone();
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || run_shard(&spec, shard, &shared))
            })
            .collect();
        Load {
            spec,
            shared,
            threads,
        }
    }

    /// Requests acknowledged so far, all senders together.
    pub fn acked_requests(&self) -> u64 {
        self.shared.acked_requests.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests than now have been acknowledged.
    pub fn wait_for_acks(&self, n: u64, timeout: Duration) -> bool {
        let target = self.acked_requests() + n;
        crate::wait_until(timeout, || self.acked_requests() >= target)
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> Vec<Failure> {
        lock(&self.shared.failures).clone()
    }

    /// Stops every sender between two requests and keeps them stopped
    /// while the guard lives: then every acknowledged sample has reached
    /// every replica that was going to get it.
    pub fn pause(&self) -> RwLockWriteGuard<'_, ()> {
        self.shared.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// What the senders saw so far (they keep running).
    pub fn report(&self) -> LoadReport {
        LoadReport {
            spec: self.spec.clone(),
            shards: self.shared.logs.iter().map(|l| lock(l).clone()).collect(),
            failures: lock(&self.shared.failures).clone(),
        }
    }

    /// Stops the senders and returns what they saw.
    pub fn finish(mut self) -> LoadReport {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            t.join().expect("a load sender panicked");
        }
        self.report()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run_shard(spec: &LoadSpec, shard: usize, shared: &Shared) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client");
    let shard_label = shard.to_string();
    let names: Vec<String> = (0..spec.series_per_shard).map(|s| s.to_string()).collect();
    let mut target = shard % spec.targets.len();
    let mut last_ts = 0;
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let _in_flight = shared.gate.read().unwrap_or_else(|p| p.into_inner());
        let ts = now_ms().max(last_ts + 1);
        last_ts = ts;
        seq += 1;
        let value = seq as f64;
        let body = encode(
            names
                .iter()
                .map(|s| {
                    series(
                        &[
                            ("__name__", &spec.metric),
                            ("shard", &shard_label),
                            ("series", s),
                        ],
                        &[(ts, value)],
                    )
                })
                .collect(),
        );
        let started = Instant::now();
        let mut backoff = Duration::from_millis(30);
        loop {
            let base = &spec.targets[target];
            let url = format!("{base}/api/v1/push");
            let outcome = push(&client, &url, spec.tenant.as_deref(), body.clone());
            let failure = match outcome {
                Ok((s, _)) if (200..300).contains(&s) => {
                    lock(&shared.logs[shard]).acked.push((ts, value));
                    shared.acked_requests.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Ok((s, text)) => (format!("HTTP {s}: {}", text.trim()), is_retryable(s)),
                Err(e) => (format!("{e}"), true),
            };
            let give_up = !failure.1 || started.elapsed() >= spec.give_up_after;
            lock(&shared.failures).push(Failure {
                at: Instant::now(),
                target: base.clone(),
                what: failure.0,
                retried: !give_up,
            });
            if give_up {
                break;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(1));
            target = (target + 1) % spec.targets.len();
        }
        drop(_in_flight);
        std::thread::sleep(spec.interval);
    }
}
