//! Exemplars end to end: Debian's Prometheus scrapes an OpenMetrics target
//! whose counter and histogram carry exemplars, keeps them
//! (`--enable-feature=exemplar-storage`) and remote-writes them
//! (`send_exemplars: true`) into tidemark `all`; `/api/v1/query_exemplars`
//! of both must then give the same exemplars for the same window. A
//! SIGKILL and restart of tidemark keeps them (WAL).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tidemark_tests::peer::Prometheus;
use tidemark_tests::{Process, wait_until};

/// An OpenMetrics target on 127.0.0.1: each scrape raises the counter and
/// the histogram and carries one new exemplar on each (without a
/// timestamp, so Prometheus stamps it with the scrape's). Stopped on drop.
struct Target {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Target {
    fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = AtomicU64::new(0);
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
                let body = format!(
                    "# TYPE req counter\n\
                     # HELP req Requests served.\n\
                     req_total{{path=\"/a\"}} {n} # {{trace_id=\"req-{n}\"}} 1\n\
                     # TYPE lat histogram\n\
                     lat_bucket{{le=\"0.5\"}} {n} # {{trace_id=\"lat-{n}\",span_id=\"s{n}\"}} 0.25\n\
                     lat_bucket{{le=\"+Inf\"}} {n}\n\
                     lat_sum {}\n\
                     lat_count {n}\n\
                     # EOF\n",
                    n as f64 * 0.25
                );
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Target { port, stop }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// `query_exemplars` over `[start, end]` (seconds), its series sorted by
/// labels (Prometheus returns them in no particular order).
fn exemplars(base: &str, query: &str, start: f64, end: f64) -> Vec<Value> {
    let body: Value = reqwest::blocking::Client::new()
        .get(format!("{base}/api/v1/query_exemplars"))
        .query(&[
            ("query", query),
            ("start", &format!("{start:.3}")),
            ("end", &format!("{end:.3}")),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{body}");
    let mut series = body["data"].as_array().cloned().unwrap_or_default();
    series.sort_by_key(|s| s["seriesLabels"].to_string());
    series
}

/// Newest exemplar timestamp in an answer.
fn newest(series: &[Value]) -> f64 {
    series
        .iter()
        .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["timestamp"].as_f64())
        .fold(f64::MIN, f64::max)
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn prometheus_exemplars_arrive_by_remote_write_and_answer_like_prometheus() {
    let mut tm = Process::builder().start();
    tm.wait_ready(Duration::from_secs(30));
    let target = Target::start();
    let push = tm.url("/api/v1/push");
    let Some(prom) = Prometheus::start(
        |_| {
            format!(
                "global:\n  scrape_interval: 1s\n\
                 scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n\
                 remote_write:\n  - url: {push}\n    send_exemplars: true\n    queue_config: {{batch_send_deadline: 1s}}\n",
                target.port
            )
        },
        &["--enable-feature=exemplar-storage"],
    ) else {
        return;
    };
    let base = tm.url("");
    let query = r#"req_total or lat_bucket{le="0.5"}"#;

    // A window of ten seconds that ended a little ago, once tidemark has
    // received exemplars past its end (remote write trails by seconds).
    let arrived = wait_until(Duration::from_secs(60), || {
        exemplars(&base, query, now() - 60.0, now()).len() == 2
            && newest(&exemplars(&base, query, now() - 60.0, now())) > now() - 30.0
    });
    assert!(arrived, "no exemplars arrived; tidemark log:\n{}", tm.log());
    std::thread::sleep(Duration::from_secs(12));
    let end = now() - 3.0;
    let start = end - 10.0;
    let caught_up = wait_until(Duration::from_secs(30), || {
        newest(&exemplars(&base, query, start, now())) >= end
    });
    assert!(
        caught_up,
        "tidemark's exemplars stay behind; log:\n{}",
        tm.log()
    );

    let theirs = exemplars(&prom.url(""), query, start, end);
    let ours = exemplars(&base, query, start, end);
    assert_eq!(theirs.len(), 2, "prometheus: {theirs:?}");
    let count = theirs[0]["exemplars"].as_array().unwrap().len();
    assert!(
        count >= 8,
        "one exemplar per 1 s scrape in 10 s: {theirs:?}"
    );
    assert_eq!(ours, theirs, "tidemark vs prometheus");
    // A selector that matches nothing, and a range before any data.
    assert!(exemplars(&base, "nothing_here", start, end).is_empty());
    assert!(exemplars(&base, query, 1.0, 2.0).is_empty());
    drop(prom);

    // Kill -9 and restart on the same data: the exemplars are still there.
    let data_dir = tm.data_dir.clone();
    tm.kill();
    let mut again = Process::builder().data_dir(&data_dir).start();
    again.wait_ready(Duration::from_secs(60));
    let after = exemplars(&again.url(""), query, start, end);
    assert_eq!(
        after,
        ours,
        "exemplars lost across SIGKILL; log:\n{}",
        again.log()
    );
}

#[test]
fn the_scraper_role_forwards_scraped_exemplars() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            target.port
        ),
    )
    .unwrap();
    let mut tm = Process::builder()
        .arg("-target=all")
        .arg(format!("--scraper.config-file={}", prom_yml.display()))
        .start();
    tm.wait_ready(Duration::from_secs(30));
    let base = tm.url("");
    let query = r#"req_total or lat_bucket{le="0.5"}"#;
    let got = || exemplars(&base, query, now() - 60.0, now() + 1.0);
    let arrived = wait_until(Duration::from_secs(30), || {
        let g = got();
        g.len() == 2
            && g.iter()
                .all(|s| s["exemplars"].as_array().is_some_and(|e| e.len() >= 3))
    });
    assert!(
        arrived,
        "scraped exemplars did not arrive: {:?}; log:\n{}",
        got(),
        tm.log()
    );
    for s in got() {
        let name = s["seriesLabels"]["__name__"].as_str().unwrap().to_string();
        assert_eq!(s["seriesLabels"]["job"], "app", "{s}");
        let mut last = (0.0, 0u64);
        for e in s["exemplars"].as_array().unwrap() {
            let trace = e["labels"]["trace_id"].as_str().unwrap();
            let (prefix, n) = trace.split_once('-').unwrap();
            let n: u64 = n.parse().unwrap();
            // Each scrape's own exemplar, stamped with its scrape's time.
            assert_eq!(
                prefix,
                if name == "req_total" { "req" } else { "lat" },
                "{e}"
            );
            let t = e["timestamp"].as_f64().unwrap();
            assert!(n > last.1 && t > last.0, "in scrape order: {s}");
            last = (t, n);
        }
        if name == "lat_bucket" {
            let e = &s["exemplars"][0];
            assert_eq!(e["value"], "0.25");
            assert!(e["labels"]["span_id"].as_str().unwrap().starts_with('s'));
        }
    }
}
