//! A real client end to end: Debian's Prometheus scrapes Debian's
//! `prometheus-node-exporter` and remote-writes everything it scrapes to
//! tidemark (`all`). After a few scrapes tidemark holds exactly the series
//! Prometheus holds, with exactly the same samples.
//!
//! Prometheus remote-writes every series it appends, including the
//! synthetic per-target series (`up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`,
//! `scrape_series_added`), so no series is expected to be missing.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;
use tidemark_tests::{Process, free_port, wait_until};

/// A child process killed on drop, with the temp dir it uses.
struct Peer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed(bin: &str) -> bool {
    Command::new(bin).arg("--version").output().is_ok()
}

fn spawn(bin: &str, args: &[String], dir: tempfile::TempDir, port: u16) -> Peer {
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
    Peer {
        child,
        port,
        _dir: dir,
    }
}

fn get(port: u16, path: &str, params: &[(&str, String)]) -> Json {
    reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .form(params)
        .send()
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{path} on port {port}: {e}"))
}

type LabelSet = BTreeMap<String, String>;

fn label_set(m: &Json) -> LabelSet {
    m.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// `/api/v1/series` for every series with samples in `[start, end]`.
fn series(port: u16, start: &str, end: &str) -> BTreeSet<LabelSet> {
    let body = get(
        port,
        "/api/v1/series",
        &[
            ("match[]", "{__name__=~\".+\"}".to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
        ],
    );
    assert_eq!(body["status"], "success", "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(label_set)
        .collect()
}

/// Every raw sample in `(end - range, end]`, bit for bit (values as the
/// API writes them).
fn samples(port: u16, range_s: u64, end: &str) -> BTreeMap<LabelSet, Vec<(String, String)>> {
    let body = get(
        port,
        "/api/v1/query",
        &[
            ("query", format!("{{__name__=~\".+\"}}[{range_s}s]")),
            ("time", end.to_string()),
        ],
    );
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].to_string(), p[1].as_str().unwrap().to_string()))
                .collect();
            (label_set(&s["metric"]), points)
        })
        .collect()
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn prometheus_scraping_node_exporter_writes_every_series_to_tidemark() {
    for bin in ["prometheus", "prometheus-node-exporter"] {
        if !installed(bin) {
            eprintln!("SKIPPED: Debian's `{bin}` is not installed (apt-get install {bin})");
            return;
        }
    }
    let mut tm = Process::builder().start();
    tm.wait_ready(Duration::from_secs(30));

    let ne_port = free_port();
    let exporter = spawn(
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{ne_port}")],
        tempfile::tempdir().unwrap(),
        ne_port,
    );
    let up = wait_until(Duration::from_secs(15), || {
        reqwest::blocking::get(format!("http://127.0.0.1:{}/metrics", exporter.port))
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    });
    assert!(up, "node exporter did not answer on its port");

    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{ne_port}']}}]\n\
             remote_write:\n  - url: http://127.0.0.1:{}/api/v1/push\n    queue_config: {{batch_send_deadline: 1s}}\n",
            tm.http_port
        ),
    )
    .unwrap();
    let args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--web.listen-address=127.0.0.1:{prom_port}"),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
    ];
    let start = format!("{:.3}", now_s() - 60.0);
    let prom = spawn("prometheus", &args, dir, prom_port);
    let ready = wait_until(Duration::from_secs(30), || {
        reqwest::blocking::get(format!("http://127.0.0.1:{}/-/ready", prom.port))
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    });
    assert!(ready, "prometheus did not become ready");

    // Five scrapes into Prometheus's own TSDB.
    let scraped = wait_until(Duration::from_secs(30), || {
        let body = get(
            prom.port,
            "/api/v1/query",
            &[("query", "count_over_time(up[1m]) >= 5".to_string())],
        );
        body["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    assert!(
        scraped,
        "prometheus did not scrape the node exporter 5 times"
    );
    // A fixed end in the past: Prometheus's answer for the window no longer
    // changes; tidemark's catches up as remote write delivers.
    let end_s = now_s() - 1.0;
    let end = format!("{end_s:.3}");
    let theirs = series(prom.port, &start, &end);
    assert!(
        theirs.len() > 100,
        "node exporter exposes hundreds of series, Prometheus holds {}",
        theirs.len()
    );
    let names: BTreeSet<&str> = theirs
        .iter()
        .filter_map(|l| l.get("__name__").map(String::as_str))
        .collect();
    for n in ["up", "scrape_duration_seconds", "node_cpu_seconds_total"] {
        assert!(names.contains(n), "Prometheus has no {n}");
    }
    let mut ours = BTreeSet::new();
    let same = wait_until(Duration::from_secs(30), || {
        ours = series(tm.http_port, &start, &end);
        ours == theirs
    });
    assert!(
        same,
        "series differ: only in tidemark {:?}; only in Prometheus {:?}\ntidemark log:\n{}",
        ours.difference(&theirs).take(20).collect::<Vec<_>>(),
        theirs.difference(&ours).take(20).collect::<Vec<_>>(),
        tm.log()
    );

    // And every sample of the window, values bit for bit (as the API
    // prints them) and timestamps to the millisecond.
    let range_s = (end_s - start.parse::<f64>().unwrap()).ceil() as u64;
    let theirs = samples(prom.port, range_s, &end);
    let ours = samples(tm.http_port, range_s, &end);
    assert_eq!(
        ours.len(),
        theirs.len(),
        "series with samples in the window"
    );
    let total: usize = theirs.values().map(Vec::len).sum();
    for (labels, points) in &theirs {
        assert_eq!(
            ours.get(labels),
            Some(points),
            "samples of {labels:?} differ"
        );
    }
    eprintln!(
        "{} series, {total} samples identical in Prometheus and tidemark",
        theirs.len()
    );
}
