//! The write path's promise under faults, with real processes: a
//! 3-ingester cluster with replication factor 3 takes continuous remote
//! write load through two distributors while ingesters are killed with
//! SIGKILL and restarted, and nothing it acknowledged is lost.
//!
//! The load is a Prometheus-like sender (`tidemark_tests::remote_write`):
//! snappy protobuf remote write 1.0, retried with backoff on 5xx, 429 and
//! connection errors, dropped on other 4xx; it records every acknowledged
//! sample, and the tests read each one back through the querier.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tidemark_tests::cluster::{Cluster, ClusterSpec, TENANT};
use tidemark_tests::remote_write::{Load, LoadReport, LoadSpec, now_ms};
use tidemark_tests::{ingester, prom};

const ACK_TIMEOUT: Duration = Duration::from_secs(20);

fn start_load(c: &Cluster, metric: &str) -> Load {
    let load = Load::start(LoadSpec::new(c.distributor_urls(), Some(TENANT), metric));
    assert!(
        load.wait_for_acks(20, ACK_TIMEOUT),
        "no write acknowledged by a healthy cluster: {:?}\n{}",
        load.failures().first(),
        c.logs()
    );
    load
}

/// Lets the load run for `n` more acknowledged requests, or fails naming
/// the last failure and the logs.
fn keep_writing(c: &Cluster, load: &Load, n: u64, when: &str) {
    assert!(
        load.wait_for_acks(n, ACK_TIMEOUT),
        "writes stopped being acknowledged {when}; last failure: {:?}\n{}",
        load.failures().last(),
        c.logs()
    );
}

/// Every acknowledged sample is readable through the querier.
fn assert_all_readable(c: &Cluster, report: &LoadReport, when: &str) {
    let got = prom::read_back(&c.querier_url(), report)
        .unwrap_or_else(|e| panic!("reading back {when}: {e}\n{}", c.logs()));
    let missing = prom::missing(report, &got);
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged samples missing {when}, e.g. {:?}",
        missing.len(),
        report.acked_samples(),
        &missing[..missing.len().min(5)]
    );
}

/// Waits until the ring no longer counts the stopped ingester (unhealthy
/// after a SIGKILL, gone after a clean leave), so that its restart is a
/// rejoin the test can observe.
fn wait_down(c: &Cluster) {
    assert!(
        c.wait_healthy_ingesters(2, Duration::from_secs(10)),
        "the ring still shows 3 healthy ingesters with one stopped: {}",
        c.ring()
    );
}

/// What the load acknowledged up to now, taken while no request is in
/// flight, so every replica that was to receive it has answered.
fn quiesced_report(load: &Load) -> LoadReport {
    let _paused = load.pause();
    std::thread::sleep(Duration::from_millis(300));
    load.report()
}

#[test]
fn sigkill_of_one_ingester_fails_no_write_and_loses_no_acknowledged_sample() {
    let mut c = Cluster::start(ClusterSpec::default());
    let load = start_load(&c, "faults_kill");

    c.kill_ingester(1);
    let killed = Instant::now();
    keep_writing(&c, &load, 100, "after the SIGKILL");
    // Past the heartbeat timeout the ring marks it unhealthy: writes go on
    // to the two that remain.
    wait_down(&c);
    keep_writing(&c, &load, 100, "once the killed ingester is unhealthy");

    let report = load.finish();
    let failed = report.failures_since(killed);
    assert!(
        failed.is_empty(),
        "with 2 of 3 replicas up no write may fail, yet {} attempts did, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(report.unretried().is_empty(), "{:?}", report.unretried());
    assert_all_readable(&c, &report, "with one ingester killed");
}

#[test]
fn killed_ingester_replays_its_wal_rejoins_and_serves_its_data() {
    let mut c = Cluster::start(ClusterSpec::default());
    let metric = "faults_replay";
    let load = start_load(&c, metric);
    keep_writing(&c, &load, 50, "before the kill");

    // Everything acknowledged so far reached all three replicas: nothing
    // was in flight when the snapshot was taken and all three were up.
    let before_kill = quiesced_report(&load);
    c.kill_ingester(0);
    keep_writing(&c, &load, 100, "with ingester-0 killed");
    wait_down(&c);

    c.restart_ingester(0);
    // Give the distributors' rings time to see it active again.
    std::thread::sleep(Duration::from_secs(1));
    let rejoined_ms = now_ms();
    keep_writing(&c, &load, 100, "after ingester-0 rejoined");
    let after_rejoin = quiesced_report(&load).since(rejoined_ms);
    assert!(after_rejoin.acked_samples() > 0);

    // Ask ingester-0 alone: what it had before the SIGKILL came back from
    // its WAL, and what was written after it rejoined reached it.
    let (min, max) = after_rejoin.time_range().unwrap_or((0, now_ms()));
    let (first, _) = before_kill.time_range().unwrap_or((min, max));
    let held = ingester::select(&c.ingesters[0].grpc_addr(), TENANT, metric, first, max)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    for (what, report) in [
        ("acknowledged before its SIGKILL", &before_kill),
        ("written after it rejoined", &after_rejoin),
    ] {
        let missing = prom::missing(report, &held);
        assert!(
            missing.is_empty(),
            "ingester-0 lacks {} of {} samples {what}, e.g. {:?}",
            missing.len(),
            report.acked_samples(),
            &missing[..missing.len().min(5)]
        );
    }

    let report = load.finish();
    assert!(report.unretried().is_empty(), "{:?}", report.unretried());
    assert_all_readable(&c, &report, "after the restart");
}

#[test]
fn rolling_restart_of_every_ingester_under_load_loses_nothing() {
    let mut c = Cluster::start(ClusterSpec::default());
    let load = start_load(&c, "faults_rolling");

    // One at a time, each back in the ring before the next goes down:
    // ingester-1 crashes (SIGKILL), the others are restarted cleanly.
    for i in 0..c.ingesters.len() {
        if i == 1 {
            c.kill_ingester(i);
        } else {
            let stopped = c.ingesters[i].terminate(Duration::from_secs(20));
            assert!(stopped.is_some(), "ingester-{i} ignored SIGTERM");
        }
        keep_writing(&c, &load, 50, &format!("with ingester-{i} down"));
        wait_down(&c);
        c.restart_ingester(i);
        keep_writing(&c, &load, 50, &format!("after ingester-{i} restarted"));
    }

    let report = load.finish();
    let unretried = report.unretried();
    assert!(
        unretried.is_empty(),
        "the writer saw {} errors it could not retry through, e.g. {:?}",
        unretried.len(),
        unretried.first()
    );
    eprintln!(
        "rolling restart: {} samples acknowledged, {} attempts retried",
        report.acked_samples(),
        report.failures.len()
    );
    assert_all_readable(&c, &report, "after a rolling restart");
}
