//! The scrape loop against real HTTP servers: a small one in the test, and
//! Debian's prometheus-node-exporter when it is installed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidemark_model::{Labels, TenantId, is_stale_nan};
use tidemark_scraper::config::PrometheusConfig;
use tidemark_scraper::relabel::Relabeler;
use tidemark_scraper::scrape::{Fetcher, JobContext, MemorySink, ScrapeBatch, ScrapeLoop};
use tidemark_scraper::target::{Built, build_target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the test server answers: status, content type, gzip, body, delay.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    gzip: bool,
    body: Vec<u8>,
    delay: Duration,
}

/// Serves `reply` to every request; records each request head.
async fn server(reply: Arc<Mutex<Reply>>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let reply = reply.lock().unwrap().clone();
            let seen = Arc::clone(&seen2);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_string());
                tokio::time::sleep(reply.delay).await;
                let body = if reply.gzip {
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    enc.write_all(&reply.body).unwrap();
                    enc.finish().unwrap()
                } else {
                    reply.body.clone()
                };
                let mut resp = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reply.content_type,
                    body.len()
                );
                if reply.gzip {
                    resp.push_str("Content-Encoding: gzip\r\n");
                }
                resp.push_str("\r\n");
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    (port, seen)
}

fn make_loop(port: u16, extra: &str) -> ScrapeLoop {
    let yaml = format!(
        "scrape_configs:\n  - job_name: app\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n{extra}    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let cfg = PrometheusConfig::from_yaml(&yaml).unwrap();
    let job = &cfg.scrape_configs[0];
    let rl: Vec<Relabeler> = job
        .relabel_configs
        .iter()
        .cloned()
        .map(Relabeler::new)
        .collect();
    let addr = BTreeMap::from([("__address__".to_string(), format!("127.0.0.1:{port}"))]);
    let Built::Target(t) = build_target(job, &rl, &addr, &BTreeMap::new()).unwrap() else {
        panic!("target dropped")
    };
    let ctx = Arc::new(JobContext::new(job, &cfg.global));
    ScrapeLoop::new(
        t,
        ctx,
        TenantId::new("default").unwrap(),
        Fetcher::new().unwrap(),
        0,
    )
}

fn value(batch: &ScrapeBatch, name: &str) -> Option<f64> {
    batch
        .samples
        .iter()
        .find(|(l, _)| l.metric_name() == Some(name))
        .map(|(_, s)| s.v)
}

fn series<'a>(batch: &'a ScrapeBatch, name: &str) -> Vec<&'a Labels> {
    batch
        .samples
        .iter()
        .filter(|(l, _)| l.metric_name() == Some(name))
        .map(|(l, _)| l)
        .collect()
}

fn ok_reply(body: &str) -> Reply {
    Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4",
        gzip: false,
        body: body.as_bytes().to_vec(),
        delay: Duration::ZERO,
    }
}

#[tokio::test]
async fn scrapes_negotiates_and_reports() {
    let reply = Arc::new(Mutex::new(Reply {
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        gzip: true,
        ..ok_reply("# TYPE req counter\nreq_total{path=\"/\"} 7 1.5\nlive_total 3\n# EOF\n")
    }));
    let (port, seen) = server(Arc::clone(&reply)).await;
    let mut l = make_loop(port, "    tenant: team-a\n");
    let batch = l.scrape_once(10_000).await;
    assert_eq!(batch.tenant.as_str(), "team-a");
    let last = l.health().last();
    assert_eq!(
        (last.health.as_str(), last.at_ms, last.error.as_str()),
        ("up", 10_000, "")
    );
    assert_eq!(value(&batch, "up"), Some(1.0));
    assert_eq!(value(&batch, "scrape_samples_scraped"), Some(2.0));
    assert_eq!(value(&batch, "scrape_series_added"), Some(2.0));
    let (labels, sample) = batch
        .samples
        .iter()
        .find(|(l, _)| l.metric_name() == Some("req_total"))
        .unwrap();
    assert_eq!(
        labels.to_string(),
        format!(r#"req_total{{instance="127.0.0.1:{port}", job="app", path="/"}}"#)
    );
    // OpenMetrics timestamps are seconds.
    assert_eq!((sample.t, sample.v), (1500, 7.0));

    let head = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /metrics http/1.1"), "{head}");
    assert!(head.contains("accept: application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"), "{head}");
    assert!(head.contains("accept-encoding: gzip"), "{head}");
    assert!(
        head.contains("x-prometheus-scrape-timeout-seconds: 0.5"),
        "{head}"
    );

    // Both series disappear: a staleness marker at the next scrape for the
    // one without an exposed timestamp only, as in Prometheus.
    *reply.lock().unwrap() = ok_reply("other 1\n");
    let batch = l.scrape_once(11_000).await;
    let live: Vec<_> = batch
        .samples
        .iter()
        .filter(|(l, _)| l.metric_name() == Some("live_total"))
        .collect();
    assert_eq!(live.len(), 1, "{:?}", batch.samples);
    assert!(is_stale_nan(live[0].1.v));
    assert_eq!(live[0].1.t, 11_000);
    assert!(series(&batch, "req_total").is_empty());
}

#[tokio::test]
async fn failures_mark_the_target_down() {
    let reply = Arc::new(Mutex::new(ok_reply("a 1\n")));
    let (port, _) = server(Arc::clone(&reply)).await;
    let mut l = make_loop(port, "");
    assert_eq!(value(&l.scrape_once(1).await, "up"), Some(1.0));

    *reply.lock().unwrap() = Reply {
        status: 500,
        ..ok_reply("oops")
    };
    let batch = l.scrape_once(2).await;
    assert_eq!(value(&batch, "up"), Some(0.0));
    // The previous series goes stale when the scrape fails.
    assert!(is_stale_nan(value(&batch, "a").unwrap()));

    *reply.lock().unwrap() = ok_reply("a{b=\"unterminated} 1\n");
    assert_eq!(value(&l.scrape_once(3).await, "up"), Some(0.0));
    let last = l.health().last();
    assert_eq!(last.health.as_str(), "down");
    assert!(last.error.contains("parse error"), "{}", last.error);

    *reply.lock().unwrap() = Reply {
        delay: Duration::from_millis(900),
        ..ok_reply("a 1\n")
    };
    let started = std::time::Instant::now();
    let batch = l.scrape_once(4).await;
    assert_eq!(value(&batch, "up"), Some(0.0));
    assert!(
        started.elapsed() < Duration::from_millis(850),
        "timeout of 500ms not applied"
    );

    // Body size limit.
    let (port, _) = server(Arc::new(Mutex::new(ok_reply("a 1\nb 2\nc 3\n")))).await;
    let mut l = make_loop(port, "    body_size_limit: 5\n");
    assert_eq!(value(&l.scrape_once(5).await, "up"), Some(0.0));
}

#[tokio::test]
async fn run_scrapes_on_schedule_and_stales_on_stop() {
    let (port, seen) = server(Arc::new(Mutex::new(ok_reply("a 1\n")))).await;
    let l = make_loop(port, "");
    let sink = Arc::new(MemorySink::new());
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(l.run(Arc::clone(&sink), cancel.clone()));
    // The first scrape happens within one interval (1s), at the target's phase.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.batches().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    handle.await.unwrap();
    let batches = sink.batches();
    assert!(
        batches.len() >= 2,
        "expected a scrape and the end-of-run batch"
    );
    assert_eq!(value(&batches[0], "up"), Some(1.0));
    let last = batches.last().unwrap();
    assert!(is_stale_nan(value(last, "a").unwrap()));
    assert!(is_stale_nan(value(last, "up").unwrap()));
    assert!(!seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn scrapes_real_node_exporter() {
    let bin = "/usr/bin/prometheus-node-exporter";
    if !std::path::Path::new(bin).exists() {
        println!("skipping: {bin} is not installed");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    /// Stops the exporter however the test ends.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _exporter = Kill(
        std::process::Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut l = make_loop(port, "");
    let mut batch = l.scrape_once(1).await;
    for _ in 0..50 {
        if value(&batch, "up") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        batch = l.scrape_once(1).await;
    }
    assert_eq!(
        value(&batch, "up"),
        Some(1.0),
        "node exporter never answered"
    );
    let scraped = value(&batch, "scrape_samples_scraped").unwrap();
    assert!(scraped > 100.0, "only {scraped} samples");
    assert!(!series(&batch, "node_exporter_build_info").is_empty());
}

/// Accepts targets whose URL contains the given port only.
struct OwnPort(u16);

impl tidemark_scraper::scrape::TargetOwnership for OwnPort {
    fn owns(&self, target: &tidemark_scraper::target::Target) -> bool {
        target.url.contains(&format!(":{}/", self.0))
    }
}

#[tokio::test]
async fn manager_applies_reloads_and_refuses_bad_configs() {
    use tidemark_scraper::scrape::ScrapeManager;

    let (p1, _) = server(Arc::new(Mutex::new(ok_reply("a 1\n")))).await;
    let (p2, _) = server(Arc::new(Mutex::new(ok_reply("b 1\n")))).await;
    let yaml = |targets: &str| {
        format!(
            "global:\n  scrape_interval: 1s\nrule_files: [x.yml]\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{targets}]\n"
        )
    };
    let sink = Arc::new(MemorySink::new());
    let mut m = ScrapeManager::new(
        Arc::clone(&sink),
        Arc::new(tidemark_scraper::scrape::OwnAll),
        TenantId::new("default").unwrap(),
        7,
    )
    .unwrap();
    let r = m
        .apply_yaml(&yaml(&format!("'127.0.0.1:{p1}', '127.0.0.1:{p2}'")))
        .unwrap();
    assert_eq!((r.started, r.stopped), (2, 0));
    assert_eq!(m.running(), 2);

    // A bad config is refused with the field path; the loops keep running.
    let err = m
        .apply_yaml("scrape_configs:\n  - job_name: app\n    scrape_timeout: 2m\n")
        .unwrap_err();
    assert!(
        err.to_string().contains("scrape_configs[0].scrape_timeout"),
        "{err}"
    );
    assert_eq!(m.running(), 2);

    // Unchanged targets are kept, removed ones stopped.
    let r = m.apply_yaml(&yaml(&format!("'127.0.0.1:{p1}'"))).unwrap();
    assert_eq!((r.started, r.stopped, r.kept), (0, 1, 1));
    assert_eq!(
        m.targets(),
        vec![("app".to_string(), format!("http://127.0.0.1:{p1}/metrics"))]
    );

    // target_limit refuses the whole job.
    let limited = format!(
        "{}    target_limit: 1\n",
        yaml(&format!("'127.0.0.1:{p1}', '127.0.0.1:{p2}'"))
    );
    let r = m.apply_yaml(&limited).unwrap();
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].to_string().contains("target_limit"));
    assert_eq!(m.running(), 0);

    // Ownership: only the targets the ring gives this scraper.
    let mut m2 = ScrapeManager::new(
        Arc::new(MemorySink::new()),
        Arc::new(OwnPort(p2)),
        TenantId::new("t").unwrap(),
        7,
    )
    .unwrap();
    let r = m2
        .apply_yaml(&yaml(&format!("'127.0.0.1:{p1}', '127.0.0.1:{p2}'")))
        .unwrap();
    assert_eq!((r.started, r.not_owned), (1, 1));
    m2.shutdown().await;

    m.shutdown().await;
    // The stopped loop for p2 wrote its staleness markers.
    let stale_b = sink
        .batches()
        .iter()
        .flat_map(|b| b.samples.clone())
        .any(|(l, s)| {
            l.metric_name() == Some("up")
                && l.get("instance") == Some(&format!("127.0.0.1:{p2}"))
                && is_stale_nan(s.v)
        });
    assert!(stale_b, "no end-of-run markers for the removed target");
}

#[tokio::test]
async fn file_sd_targets_follow_the_file() {
    use tidemark_scraper::scrape::ScrapeManager;

    let (p1, _) = server(Arc::new(Mutex::new(ok_reply("a 1\n")))).await;
    let (p2, _) = server(Arc::new(Mutex::new(ok_reply("b 1\n")))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, format!(r#"[{{"targets": ["127.0.0.1:{p1}"]}}]"#)).unwrap();
    let yaml = format!(
        "scrape_configs:\n  - job_name: f\n    scrape_interval: 1s\n    file_sd_configs:\n      - files: ['{}/*.json']\n",
        dir.path().display()
    );
    let mut m = ScrapeManager::new(
        Arc::new(MemorySink::new()),
        Arc::new(tidemark_scraper::scrape::OwnAll),
        TenantId::new("t").unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(m.apply_yaml(&yaml).unwrap().started, 1);
    std::fs::write(&file, format!(r#"[{{"targets": ["127.0.0.1:{p2}"]}}]"#)).unwrap();
    let r = m.refresh_discovery().unwrap();
    assert_eq!((r.started, r.stopped), (1, 1));
    assert_eq!(
        m.targets(),
        vec![("f".to_string(), format!("http://127.0.0.1:{p2}/metrics"))]
    );
    m.shutdown().await;
}
