//! The embedded `all` target as a user runs it: a real Prometheus
//! remote-writes into it, the data answers PromQL like Prometheus does, and
//! survives a SIGKILL through the WAL.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tidemark_tests::peer::Prometheus;
use tidemark_tests::{Process, wait_until};

fn start_prometheus(remote_write_port: u16) -> Option<Prometheus> {
    Prometheus::start(
        |port| {
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
                 remote_write:\n  - url: http://127.0.0.1:{remote_write_port}/api/v1/push\n    queue_config: {{batch_send_deadline: 1s}}\n"
            )
        },
        &[],
    )
}

fn query(port: u16, q: &str, time: f64) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let r = reqwest::blocking::Client::new()
        .post(url)
        .form(&[("query", q), ("time", &format!("{time:.3}"))])
        .send()
        .expect("query");
    r.json().expect("JSON body")
}

fn scalar_of(v: &serde_json::Value) -> Option<f64> {
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_remote_write_lands_and_survives_sigkill() {
    let mut tm = Process::builder().start();
    tm.wait_ready(Duration::from_secs(30));
    let Some(prom) = start_prometheus(tm.http_port) else {
        return;
    };

    // Wait until Prometheus has sent thirty seconds of scrapes of itself.
    let arrived = wait_until(Duration::from_secs(60), || {
        scalar_of(&query(
            tm.http_port,
            "count(count_over_time(up[1m]) >= 30)",
            now(),
        ))
        .is_some()
    });
    assert!(
        arrived,
        "no data arrived from Prometheus; tidemark log:\n{}",
        tm.log()
    );

    // The series and a rate agree with Prometheus at a time both have fully.
    // Remote write trails the local TSDB by a few seconds (the WAL watcher),
    // so compare at a time whose samples have certainly been sent.
    let t = now() - 20.0;
    for q in [
        "count(up)",
        "sum(prometheus_build_info)",
        "count({job=\"prometheus\"})",
        "sum(prometheus_http_requests_total)",
        "sum(prometheus_tsdb_head_series)",
    ] {
        let ours = scalar_of(&query(tm.http_port, q, t));
        let theirs = scalar_of(&query(prom.port, q, t));
        assert!(ours.is_some(), "{q}: tidemark has no result");
        // Remote write lags the local TSDB by a batch; series that exist in
        // Prometheus for 5 s exist in tidemark too.
        if q.starts_with("count({job") {
            assert!(
                ours >= Some(theirs.unwrap() * 0.9),
                "{q}: tidemark {ours:?} vs prometheus {theirs:?}"
            );
        } else {
            assert_eq!(ours, theirs, "{q}");
        }
    }
    drop(prom);

    // Everything acknowledged is in the WAL: kill -9 and restart on the same data.
    let before = scalar_of(&query(
        tm.http_port,
        "count(count_over_time({job=\"prometheus\"}[5m]))",
        now(),
    ));
    let data_dir = tm.data_dir.clone();
    tm.kill();
    let mut again = Process::builder().data_dir(&data_dir).start();
    again.wait_ready(Duration::from_secs(60));
    let after = scalar_of(&query(
        again.http_port,
        "count(count_over_time({job=\"prometheus\"}[5m]))",
        now(),
    ));
    assert_eq!(
        before,
        after,
        "series lost across SIGKILL; log:\n{}",
        again.log()
    );
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
