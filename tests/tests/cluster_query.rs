//! The querier of a multi-process cluster answers the Prometheus HTTP API
//! correctly while one ingester of the replication set is down.
//!
//! The data is written in three segments, each while a different ingester
//! is down, so every ingester lacks one segment: a querier that read only
//! one replica, or failed on a missing one, would answer wrongly. Every
//! answer is compared with what follows from the data written.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use tidemark_tests::cluster::{Cluster, ClusterSpec, TENANT};
use tidemark_tests::prom::{self, Labels, secs, strings};
use tidemark_tests::remote_write::{encode, now_ms, push, series};

const STEP_MS: i64 = 15_000;
const POINTS_PER_SEGMENT: i64 = 40;
/// Counters: (job, instance, increase per sample).
const COUNTERS: [(&str, &str, f64); 4] = [
    ("api", "0", 1.0),
    ("api", "1", 2.0),
    ("db", "0", 3.0),
    ("db", "1", 5.0),
];
const ROOMS: [&str; 3] = ["a", "b", "c"];

/// The data: every series with all its samples, and the first timestamp.
struct Data {
    t0: i64,
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    l.sort();
    l
}

impl Data {
    fn new() -> Data {
        // 120 points of 15 s ending about now, aligned to the minute.
        let t0 = (now_ms() - 3 * POINTS_PER_SEGMENT * STEP_MS) / 60_000 * 60_000;
        let mut series = BTreeMap::new();
        let ks = 0..3 * POINTS_PER_SEGMENT;
        for (job, instance, inc) in COUNTERS {
            let l = labels(&[
                ("__name__", "cq_requests_total"),
                ("job", job),
                ("instance", instance),
            ]);
            let samples = ks
                .clone()
                .map(|k| (t0 + k * STEP_MS, 1000.0 + inc * k as f64))
                .collect();
            series.insert(l, samples);
        }
        for (i, room) in ROOMS.iter().enumerate() {
            let l = labels(&[("__name__", "cq_temperature"), ("room", room)]);
            let samples = ks
                .clone()
                .map(|k| (t0 + k * STEP_MS, 18.0 + i as f64 + (k % 7) as f64 * 0.25))
                .collect();
            series.insert(l, samples);
        }
        Data { t0, series }
    }

    fn end(&self) -> i64 {
        self.t0 + (3 * POINTS_PER_SEGMENT - 1) * STEP_MS
    }

    /// Writes segment `seg` (0..3) through a distributor.
    fn write_segment(&self, c: &Cluster, seg: i64) {
        let lo = self.t0 + seg * POINTS_PER_SEGMENT * STEP_MS;
        let hi = lo + POINTS_PER_SEGMENT * STEP_MS;
        let ts = self
            .series
            .iter()
            .map(|(l, s)| {
                let pairs: Vec<(&str, &str)> =
                    l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let samples: Vec<(i64, f64)> = s
                    .iter()
                    .copied()
                    .filter(|(t, _)| (lo..hi).contains(t))
                    .collect();
                series(&pairs, &samples)
            })
            .collect();
        let client = reqwest::blocking::Client::new();
        let url = format!("{}/api/v1/push", c.distributor_urls()[(seg % 2) as usize]);
        let (status, body) = push(&client, &url, Some(TENANT), encode(ts)).expect("push");
        assert_eq!(status, 204, "segment {seg}: {body}\n{}", c.logs());
    }

    /// The value of every series at `t` (a sample timestamp).
    fn at(&self, name: &str, t: i64) -> BTreeMap<Labels, f64> {
        self.series
            .iter()
            .filter(|(l, _)| l.contains(&("__name__".into(), name.into())))
            .filter_map(|(l, s)| Some((l.clone(), s.iter().find(|p| p.0 == t)?.1)))
            .collect()
    }
}

fn api(c: &Cluster, path: &str, params: &[(&str, &str)]) -> Value {
    let (status, body) = prom::get(&c.querier_url(), Some(TENANT), path, params);
    assert_eq!(status, 200, "{path} {params:?}: {body}\n{}", c.logs());
    assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
    body
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Every endpoint the issue names, each answer checked against the data.
fn check_api(c: &Cluster, d: &Data, when: &str) {
    // Raw samples: one instant query of a range selector returns every
    // sample of every series exactly once (replicas merged, deduplicated).
    let range = format!("{}s", (d.end() - d.t0) / 1000 + 1);
    let body = api(
        c,
        "/api/v1/query",
        &[
            ("query", &format!("{{__name__=~\"cq_.*\"}}[{range}]")),
            ("time", &secs(d.end())),
        ],
    );
    let got = prom::matrix(&body).unwrap_or_default();
    assert!(got == d.series, "{when}: raw samples differ: got {got:?}");

    // Instant vector and aggregation at a sample timestamp.
    let t = d.t0 + 50 * STEP_MS;
    let want = d.at("cq_temperature", t);
    let body = api(
        c,
        "/api/v1/query",
        &[("query", "cq_temperature"), ("time", &secs(t))],
    );
    let got: BTreeMap<Labels, f64> = body["data"]["result"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let v = r["value"][1].as_str()?.parse().ok()?;
                    Some((prom::labels_of(&r["metric"]), v))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(got, want, "{when}: cq_temperature at {t}");
    let body = api(
        c,
        "/api/v1/query",
        &[("query", "sum(cq_temperature)"), ("time", &secs(t))],
    );
    let sum: f64 = body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    assert!(close(sum, want.values().sum()), "{when}: sum {sum}");

    // A range query of rates: each counter grows by `inc` per 15 s.
    let (start, end) = (d.t0 + 2 * 60_000, d.end());
    let body = api(
        c,
        "/api/v1/query_range",
        &[
            ("query", "sum by (job) (rate(cq_requests_total[1m]))"),
            ("start", &secs(start)),
            ("end", &secs(end)),
            ("step", "60"),
        ],
    );
    let got = prom::matrix(&body).unwrap_or_default();
    let points = (end - start) / 60_000 + 1;
    for job in ["api", "db"] {
        let want: f64 = COUNTERS
            .iter()
            .filter(|c| c.0 == job)
            .map(|c| c.2 / 15.0)
            .sum();
        let s = got
            .get(&labels(&[("job", job)]))
            .unwrap_or_else(|| panic!("{when}: no rate for job {job}: {body}"));
        assert_eq!(s.len() as i64, points, "{when}: points of job {job}");
        for (i, (t, v)) in s.iter().enumerate() {
            assert_eq!(*t, start + i as i64 * 60_000, "{when}: step alignment");
            assert!(
                close(*v, want),
                "{when}: rate of {job} at {t}: {v}, want {want}"
            );
        }
    }

    // Series, label names, label values.
    let (s, e) = (secs(d.t0), secs(d.end()));
    let body = api(
        c,
        "/api/v1/series",
        &[("match[]", "cq_temperature"), ("start", &s), ("end", &e)],
    );
    let got: BTreeSet<Labels> = body["data"]
        .as_array()
        .map(|a| a.iter().map(prom::labels_of).collect())
        .unwrap_or_default();
    let want: BTreeSet<Labels> = d.at("cq_temperature", d.t0).into_keys().collect();
    assert_eq!(got, want, "{when}: series");

    let body = api(c, "/api/v1/labels", &[("start", &s), ("end", &e)]);
    let want: BTreeSet<String> = d.series.keys().flatten().map(|l| l.0.clone()).collect();
    assert_eq!(
        strings::<Vec<String>>(&body["data"]),
        Vec::from_iter(want),
        "{when}: labels"
    );

    for name in ["__name__", "room", "job"] {
        let body = api(
            c,
            &format!("/api/v1/label/{name}/values"),
            &[("start", &s), ("end", &e)],
        );
        let want: BTreeSet<String> = d
            .series
            .keys()
            .flatten()
            .filter(|l| l.0 == name)
            .map(|l| l.1.clone())
            .collect();
        assert_eq!(
            strings::<Vec<String>>(&body["data"]),
            Vec::from_iter(want),
            "{when}: values of {name}"
        );
    }
}

fn wait_down(c: &Cluster) {
    assert!(
        c.wait_healthy_ingesters(2, Duration::from_secs(10)),
        "the ring still shows 3 healthy ingesters with one killed: {}",
        c.ring()
    );
}

#[test]
fn querier_answers_correctly_with_any_one_ingester_down() {
    let mut c = Cluster::start(ClusterSpec::default());
    let d = Data::new();

    // Segment i is written while ingester i is down: each ingester misses
    // one third of the data.
    for i in 0..3 {
        c.kill_ingester(i);
        wait_down(&c);
        d.write_segment(&c, i as i64);
        if i < 2 {
            c.restart_ingester(i);
        }
    }
    // Every answer, with each ingester down in turn and then all up.
    check_api(&c, &d, "with ingester-2 down");
    for i in 0..2 {
        c.restart_ingester((i + 2) % 3);
        c.kill_ingester(i);
        wait_down(&c);
        check_api(&c, &d, &format!("with ingester-{i} down"));
    }
    c.restart_ingester(1);
    check_api(&c, &d, "with all ingesters up");
}
