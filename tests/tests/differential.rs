//! Differential test: the same synthetic data remote-written to tidemark
//! (`all`) and to Debian's Prometheus 2.42, then the same PromQL queries,
//! instant and range, asked of both. Results must be equal: the same label
//! sets, the same timestamps, values within 1e-9 relative.
//!
//! The data is written so that the places where Prometheus 2 and 3 differ
//! on purpose do not matter: sample timestamps are 7 s past a 15 s grid and
//! evaluation timestamps 3 s past a 60 s grid, so no sample ever sits on the
//! edge of a range window, a lookback window or a subquery window (closed in
//! Prometheus 2, left-open in 3). tidemark implements Prometheus 3. The one
//! remaining difference is kept on purpose, checked and explained in
//! [`rate_of_a_counter_born_inside_the_window`].

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tidemark_tests::Process;
use tidemark_tests::peer::Prometheus;

/// Samples 15 s apart, 7 s past the 15 s grid.
const SPACING_MS: i64 = 15_000;
const SAMPLE_PHASE_MS: i64 = 7_000;
/// Evaluation timestamps: 3 s past a 60 s grid.
const EVAL_PHASE_MS: i64 = 3_000;
/// Two hours of samples.
const STEPS: i64 = 480;

/// Debian's Prometheus with the remote-write receiver on.
fn start_prometheus() -> Option<Prometheus> {
    Prometheus::start(
        |_| "global:\n  evaluation_interval: 1m\n".to_string(),
        &["--web.enable-remote-write-receiver"],
    )
}

/// One synthetic series: labels (sorted by name) and samples.
struct SeriesData {
    labels: Vec<(String, String)>,
    samples: Vec<(i64, f64)>,
}

fn labels(name: &str, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.push(("__name__".into(), name.into()));
    l.sort();
    l
}

/// A deterministic pseudo-random sequence (xorshift), so failures repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The data both stores receive: counters with resets, gauges (one that
/// stops, one that starts late), a classic histogram with a reset, and an
/// info metric for joins. `base` is a multiple of 60 s.
fn synthetic(base: i64) -> Vec<SeriesData> {
    let t = |k: i64| base + SAMPLE_PHASE_MS + k * SPACING_MS;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let instances = ["i0", "i1", "i2", "i3"];

    // Counters: 16 series, increments with fractions, resets at
    // series-specific steps (two for some series).
    let mut s = 0i64;
    for inst in instances {
        for method in ["GET", "POST"] {
            for code in ["200", "500"] {
                let mut v = 100.0 * rng.next();
                let resets = [60 + (s * 37) % 300, 200 + (s * 53) % 250];
                let mut samples = Vec::new();
                for k in 0..STEPS {
                    if k == resets[0] || (s % 3 == 0 && k == resets[1]) {
                        v = 3.0 * rng.next();
                    } else {
                        v += (s + 1) as f64 * 0.7 * rng.next() + 0.25;
                    }
                    samples.push((t(k), v));
                }
                out.push(SeriesData {
                    labels: labels(
                        "dt_http_requests_total",
                        &[
                            ("job", "api"),
                            ("instance", inst),
                            ("method", method),
                            ("code", code),
                        ],
                    ),
                    samples,
                });
                s += 1;
            }
        }
    }

    // Gauges: temperatures around 20, some negative.
    for (i, inst) in instances.iter().enumerate() {
        for (j, room) in ["a", "b"].iter().enumerate() {
            let phase = (i * 2 + j) as f64;
            let offset = if j == 1 && i % 2 == 1 { -25.0 } else { 20.0 };
            let samples = (0..STEPS)
                .map(|k| {
                    let v = offset
                        + 6.0 * ((k as f64) / 25.0 + phase).sin()
                        + (rng.next() * 40.0).round() / 8.0;
                    (t(k), v)
                })
                .collect();
            out.push(SeriesData {
                labels: labels(
                    "dt_temperature_celsius",
                    &[("job", "api"), ("instance", inst), ("room", room)],
                ),
                samples,
            });
        }
        // up: 1, with i3 down for a stretch.
        let samples = (0..STEPS)
            .map(|k| {
                let down = *inst == "i3" && (250..330).contains(&k);
                (t(k), if down { 0.0 } else { 1.0 })
            })
            .collect();
        out.push(SeriesData {
            labels: labels("dt_up", &[("job", "api"), ("instance", inst)]),
            samples,
        });
        let version = if i < 2 { "1.0" } else { "1.1" };
        out.push(SeriesData {
            labels: labels(
                "dt_build_info",
                &[("job", "api"), ("instance", inst), ("version", version)],
            ),
            samples: (0..STEPS).map(|k| (t(k), 1.0)).collect(),
        });
    }

    // A gauge that stops at step 300 and one that starts at step 200.
    for (inst, range) in [("i0", 0..300), ("i1", 200..STEPS)] {
        let samples = range
            .map(|k| (t(k), ((k * 7) % 23) as f64 + (k % 5) as f64 * 0.5))
            .collect();
        out.push(SeriesData {
            labels: labels("dt_queue_length", &[("job", "api"), ("instance", inst)]),
            samples,
        });
    }

    // A classic histogram per instance; i2 restarts (all counters reset)
    // at step 250.
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    for (i, inst) in ["i0", "i1", "i2"].iter().enumerate() {
        let mut buckets = [0.0f64; 7];
        let mut sum = 0.0;
        let mut series: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 9];
        for k in 0..STEPS {
            if *inst == "i2" && k == 250 {
                buckets = [0.0; 7];
                sum = 0.0;
            }
            let n = 5 + (rng.next() * 20.0) as usize;
            for _ in 0..n {
                let x = rng.next().powi(2 + i as i32) * 3.0;
                sum += x;
                for (b, le) in bounds.iter().enumerate() {
                    let le: f64 = le.parse().unwrap();
                    if x <= le {
                        buckets[b] += 1.0;
                    }
                }
            }
            for b in 0..7 {
                series[b].push((t(k), buckets[b]));
            }
            series[7].push((t(k), sum));
            series[8].push((t(k), buckets[6]));
        }
        let mut it = series.into_iter();
        for le in bounds {
            out.push(SeriesData {
                labels: labels(
                    "dt_latency_seconds_bucket",
                    &[("job", "api"), ("instance", inst), ("le", le)],
                ),
                samples: it.next().unwrap(),
            });
        }
        for name in ["dt_latency_seconds_sum", "dt_latency_seconds_count"] {
            out.push(SeriesData {
                labels: labels(name, &[("job", "api"), ("instance", inst)]),
                samples: it.next().unwrap(),
            });
        }
    }

    // A counter that is born at step 200 with a small first value: the one
    // place where Prometheus 2 and 3 extrapolate `rate` differently.
    out.push(SeriesData {
        labels: labels("dt_jobs_total", &[("job", "batch")]),
        samples: (200..STEPS)
            .map(|k| (t(k), 2.0 + (k - 200) as f64 * 3.0))
            .collect(),
    });
    out
}

// --- remote write 1.0: protobuf and snappy framing by hand (no codec
// dependency in the test, so it checks tidemark's decoder independently) ---

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// `prometheus.WriteRequest` with the samples of `series` in `[from, to)`.
fn write_request(series: &[SeriesData], from: i64, to: i64) -> Vec<u8> {
    let mut req = Vec::new();
    for s in series {
        let mut ts = Vec::new();
        for (k, v) in &s.labels {
            let mut l = Vec::new();
            bytes_field(&mut l, 1, k.as_bytes());
            bytes_field(&mut l, 2, v.as_bytes());
            bytes_field(&mut ts, 1, &l);
        }
        let mut any = false;
        for &(t, v) in s.samples.iter().filter(|(t, _)| (from..to).contains(t)) {
            let mut smp = Vec::new();
            varint(&mut smp, (1 << 3) | 1);
            smp.extend_from_slice(&v.to_le_bytes());
            varint(&mut smp, 2 << 3);
            varint(&mut smp, t as u64);
            bytes_field(&mut ts, 2, &smp);
            any = true;
        }
        if any {
            bytes_field(&mut req, 1, &ts);
        }
    }
    snappy_literal(&req)
}

/// `raw` in the snappy block format as literals only: valid snappy that
/// every decoder reads, without compressing.
fn snappy_literal(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 65536 * 3 + 8);
    varint(&mut out, raw.len() as u64);
    for chunk in raw.chunks(65536) {
        let n = chunk.len() - 1;
        out.push(61 << 2); // literal, length-1 in the next two bytes
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn push(url: &str, body: Vec<u8>) {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone())
            .send()
            .expect("remote write request");
        let status = r.status();
        if status.is_success() {
            return;
        }
        let text = r.text().unwrap_or_default();
        // 429 and 5xx may be retried, as Prometheus does.
        if (status.as_u16() == 429 || status.is_server_error()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        panic!("remote write to {url} failed: {status} {text}");
    }
}

// --- queries and comparison ---

/// A query's result, normalised for comparison: label sets in order, each
/// with its (ms timestamp, value) points.
#[derive(Debug, PartialEq)]
enum Answer {
    Scalar(i64, f64),
    Series(BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>),
}

fn parse_value(p: &Json) -> (i64, f64) {
    let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
    let v = match p[1].as_str().unwrap() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().unwrap(),
    };
    (t, v)
}

fn ask(port: u16, path: &str, params: &[(&str, String)]) -> Result<Answer, String> {
    let url = format!("http://127.0.0.1:{port}/api/v1/{path}");
    let body: Json = reqwest::blocking::Client::new()
        .post(url)
        .form(params)
        .send()
        .map_err(|e| e.to_string())?
        .json()
        .map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    let data = &body["data"];
    match data["resultType"].as_str() {
        Some("scalar") => {
            let (t, v) = parse_value(&data["result"]);
            Ok(Answer::Scalar(t, v))
        }
        Some(kind @ ("vector" | "matrix")) => {
            let mut m = BTreeMap::new();
            for s in data["result"].as_array().unwrap() {
                let labels: BTreeMap<String, String> = s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let points = if kind == "vector" {
                    vec![parse_value(&s["value"])]
                } else {
                    s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(parse_value)
                        .collect()
                };
                assert!(
                    m.insert(labels, points).is_none(),
                    "duplicate series in {body}"
                );
            }
            Ok(Answer::Series(m))
        }
        other => Err(format!("unexpected result type {other:?}")),
    }
}

fn same_value(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Why `ours` and `theirs` differ, or `None` when they agree.
fn difference(ours: &Answer, theirs: &Answer) -> Option<String> {
    match (ours, theirs) {
        (Answer::Scalar(t1, v1), Answer::Scalar(t2, v2)) => {
            (t1 != t2 || !same_value(*v1, *v2)).then(|| format!("scalar {v1}@{t1} vs {v2}@{t2}"))
        }
        (Answer::Series(a), Answer::Series(b)) => {
            let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
            let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
            if !only_a.is_empty() || !only_b.is_empty() {
                return Some(format!(
                    "label sets differ: only tidemark {only_a:?}, only prometheus {only_b:?}"
                ));
            }
            for (k, pa) in a {
                let pb = &b[k];
                let ta: Vec<i64> = pa.iter().map(|p| p.0).collect();
                let tb: Vec<i64> = pb.iter().map(|p| p.0).collect();
                if ta != tb {
                    return Some(format!("{k:?}: timestamps differ: {ta:?} vs {tb:?}"));
                }
                for (x, y) in pa.iter().zip(pb) {
                    if !same_value(x.1, y.1) {
                        return Some(format!("{k:?} at {}: {} vs {}", x.0, x.1, y.1));
                    }
                }
            }
            None
        }
        _ => Some(format!("result types differ: {ours:?} vs {theirs:?}")),
    }
}

/// The queries; `{T}` stands for a fixed `@` timestamp inside the data.
/// Those marked `instant_only` return range vectors (no range query).
const QUERIES: &[&str] = &[
    // selectors
    "dt_http_requests_total",
    "dt_http_requests_total{code=\"500\"}",
    "dt_http_requests_total{method=~\"G.*\",instance!=\"i1\"}",
    "{__name__=~\"dt_temp.*\",room!~\"b\"}",
    "dt_queue_length",
    "dt_temperature_celsius offset 10m",
    "dt_temperature_celsius @ {T}",
    "dt_up @ start()",
    "sum(dt_temperature_celsius @ end())",
    // counters: rate and friends, over resets
    "rate(dt_http_requests_total[5m])",
    "rate(dt_http_requests_total[1m])",
    "increase(dt_http_requests_total[10m])",
    "irate(dt_http_requests_total[5m])",
    "resets(dt_http_requests_total[30m])",
    "rate(dt_http_requests_total[5m] offset 30m)",
    "increase(dt_latency_seconds_count[15m] @ {T})",
    // gauges
    "delta(dt_temperature_celsius[10m])",
    "idelta(dt_temperature_celsius[5m])",
    "deriv(dt_temperature_celsius[10m])",
    "predict_linear(dt_temperature_celsius[15m], 600)",
    "changes(dt_queue_length[20m])",
    // *_over_time
    "avg_over_time(dt_temperature_celsius[10m])",
    "min_over_time(dt_temperature_celsius[10m])",
    "max_over_time(dt_temperature_celsius[7m])",
    "sum_over_time(dt_queue_length[5m])",
    "count_over_time(dt_queue_length[15m])",
    "quantile_over_time(0.9, dt_temperature_celsius[30m])",
    "stddev_over_time(dt_temperature_celsius[20m])",
    "stdvar_over_time(dt_temperature_celsius[20m])",
    "last_over_time(dt_queue_length[10m])",
    "present_over_time(dt_queue_length[10m])",
    "absent_over_time(dt_queue_length{instance=\"i0\"}[10m])",
    // aggregations
    "sum(rate(dt_http_requests_total[5m]))",
    "sum by (code) (rate(dt_http_requests_total[5m]))",
    "sum without (instance, method) (rate(dt_http_requests_total[5m]))",
    "avg by (room) (dt_temperature_celsius)",
    "min by (instance) (dt_temperature_celsius)",
    "max(dt_temperature_celsius)",
    "count by (instance) (dt_http_requests_total)",
    "stddev by (room) (dt_temperature_celsius)",
    "stdvar(dt_temperature_celsius)",
    "topk(3, rate(dt_http_requests_total[5m]))",
    "topk by (code) (1, rate(dt_http_requests_total[5m]))",
    "bottomk(2, dt_temperature_celsius)",
    "quantile(0.75, dt_temperature_celsius)",
    "quantile by (room) (0.5, dt_temperature_celsius)",
    "count_values(\"bucket\", floor(dt_temperature_celsius / 5))",
    "group by (version) (dt_build_info)",
    "sum(dt_http_requests_total) by (code, method)",
    // binary operations
    "rate(dt_http_requests_total{code=\"500\"}[5m]) / ignoring(code) rate(dt_http_requests_total{code=\"200\"}[5m])",
    "sum by (instance) (rate(dt_http_requests_total[5m])) * on(instance) group_left(version) dt_build_info",
    "dt_temperature_celsius / on(instance) group_left sum by (instance) (dt_temperature_celsius)",
    "dt_build_info * on(instance) group_right(version) dt_up",
    "dt_temperature_celsius > 20",
    "dt_temperature_celsius > bool 20",
    "2 * dt_temperature_celsius + 1",
    "-dt_temperature_celsius",
    "dt_http_requests_total % 7",
    "dt_temperature_celsius ^ 2 - dt_temperature_celsius",
    "1 + 2 * 3 / 4",
    "scalar(sum(dt_up)) * 10",
    "dt_up == 0",
    // set operations
    "dt_temperature_celsius and on(instance) dt_up == 1",
    "dt_queue_length or dt_temperature_celsius{room=\"a\"}",
    "dt_http_requests_total unless on(instance) dt_up == 0",
    // subqueries
    "max_over_time(rate(dt_http_requests_total[5m])[30m:1m])",
    "avg_over_time(sum(dt_temperature_celsius)[20m:30s])",
    "rate(sum(dt_latency_seconds_count)[10m:15s])",
    "min_over_time(dt_temperature_celsius[10m:])",
    "max_over_time(deriv(dt_temperature_celsius[5m])[15m:1m] offset 5m)",
    // histograms
    "histogram_quantile(0.9, rate(dt_latency_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(dt_latency_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (le, instance) (increase(dt_latency_seconds_bucket[10m])))",
    "rate(dt_latency_seconds_sum[5m]) / rate(dt_latency_seconds_count[5m])",
    // labels
    "label_replace(dt_up, \"host\", \"$1.example\", \"instance\", \"i(.*)\")",
    "label_join(dt_build_info, \"id\", \"-\", \"instance\", \"version\")",
    "label_replace(rate(dt_http_requests_total[5m]), \"kind\", \"err\", \"code\", \"5..\")",
    // absent
    "absent(dt_nonexistent{job=\"x\"})",
    "absent(dt_up)",
    // time and math functions
    "time()",
    "timestamp(dt_temperature_celsius)",
    "minute(timestamp(dt_up))",
    "hour() + day_of_week() + days_in_month()",
    "vector(1)",
    "abs(dt_temperature_celsius)",
    "round(dt_temperature_celsius, 0.5)",
    "clamp(dt_temperature_celsius, -10, 22)",
    "sqrt(abs(dt_temperature_celsius)) + ln(abs(dt_temperature_celsius) + 1)",
    "exp(dt_temperature_celsius / 20) * sgn(dt_temperature_celsius)",
    "sort_desc(dt_temperature_celsius)",
];

/// Queries that return range vectors: instant queries only.
const RANGE_VECTOR_QUERIES: &[&str] = &[
    "dt_http_requests_total[5m]",
    "dt_temperature_celsius[2m] offset 30m",
    "rate(dt_http_requests_total[5m])[10m:2m]",
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Both stores filled with the same data; `base` is the first sample's
/// 60 s grid point.
struct Setup {
    tm: Process,
    prom: Prometheus,
    base: i64,
    data: Vec<SeriesData>,
}

fn setup() -> Option<Setup> {
    let prom = start_prometheus()?;
    let mut tm = Process::builder().start();
    tm.wait_ready(Duration::from_secs(30));
    // Data ends 15 minutes ago, so every range query below is in the past.
    let base = (now_ms() / 60_000) * 60_000 - STEPS * SPACING_MS - 15 * 60_000;
    let data = synthetic(base);
    // Write in time order, 10 minutes at a time, as a client would.
    let end = base + STEPS * SPACING_MS + SPACING_MS;
    let mut from = base;
    while from < end {
        let body = write_request(&data, from, from + 600_000);
        push(&tm.url("/api/v1/push"), body.clone());
        push(
            &format!("http://127.0.0.1:{}/api/v1/write", prom.port),
            body,
        );
        from += 600_000;
    }
    Some(Setup {
        tm,
        prom,
        base,
        data,
    })
}

#[test]
fn tidemark_answers_like_prometheus() {
    let Some(s) = setup() else { return };
    let at = s.base + 3_600_000 + EVAL_PHASE_MS;
    // Instant times: inside the data, after a reset-rich stretch, and after
    // the data ends (still within the 5 m lookback).
    let instants = [
        s.base + 47 * 60_000 + 33_000,
        s.base + 95 * 60_000 + EVAL_PHASE_MS,
        s.base + STEPS * SPACING_MS + 2 * 60_000 + EVAL_PHASE_MS,
    ];
    // Range: from 35 minutes in to 10 minutes past the data's end (series
    // fade out through the lookback), every minute, and a shorter stretch
    // every 15 s.
    let ranges = [
        (
            s.base + 35 * 60_000 + EVAL_PHASE_MS,
            s.base + STEPS * SPACING_MS + 10 * 60_000 + EVAL_PHASE_MS,
            60_000,
        ),
        (
            s.base + 80 * 60_000 + EVAL_PHASE_MS,
            s.base + 90 * 60_000 + EVAL_PHASE_MS,
            15_000,
        ),
    ];

    let mut failures = Vec::new();
    let mut compared = 0;
    // Queries with a non-empty answer at some time: every query must test
    // something (an answer may be empty at one time, e.g. after the data).
    let mut answered = std::collections::BTreeSet::new();
    let mut check = |q: &str, path: &str, params: Vec<(&str, String)>| {
        let ours = ask(s.tm.http_port, path, &params);
        let theirs = ask(s.prom.port, path, &params);
        compared += 1;
        let what = format!("{path} {q} {:?}", &params[1..]);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                if !matches!(&b, Answer::Series(m) if m.is_empty()) {
                    answered.insert(q.to_string());
                }
                if let Some(d) = difference(&a, &b) {
                    failures.push(format!("{what}: {d}"));
                }
            }
            (a, b) => failures.push(format!("{what}: tidemark {a:?}, prometheus {b:?}")),
        }
    };
    for q in QUERIES {
        let q = q.replace("{T}", &secs(at));
        for t in instants {
            check(&q, "query", vec![("query", q.clone()), ("time", secs(t))]);
        }
        for (start, end, step) in ranges {
            check(
                &q,
                "query_range",
                vec![
                    ("query", q.clone()),
                    ("start", secs(start)),
                    ("end", secs(end)),
                    ("step", secs(step)),
                ],
            );
        }
    }
    for q in RANGE_VECTOR_QUERIES {
        for t in instants {
            check(
                q,
                "query",
                vec![("query", q.to_string()), ("time", secs(t))],
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let all: Vec<String> = QUERIES
        .iter()
        .map(|q| q.replace("{T}", &secs(at)))
        .chain(RANGE_VECTOR_QUERIES.iter().map(|q| q.to_string()))
        .collect();
    let empty: Vec<&String> = all
        .iter()
        .filter(|q| !answered.contains(*q) && !q.starts_with("absent(dt_nonexistent"))
        .collect();
    assert!(
        empty.is_empty(),
        "queries that never return anything: {empty:?}"
    );
    eprintln!("{compared} comparisons of {} queries agree", all.len());
    assert!(QUERIES.len() + RANGE_VECTOR_QUERIES.len() >= 60);
    drop(s.data);
}

/// Prometheus 2.42's `rate` extrapolation at the start of the window
/// (`extrapolatedRate` before Prometheus 3): the counter's zero point is
/// considered *before* deciding whether the first sample is too far from
/// the window start to extrapolate to it. Prometheus 3 (and tidemark)
/// first limits the extrapolation to half a sample interval, then to the
/// zero point. The two differ when a counter is born inside the window with
/// a small first value and the zero point lies between half and 1.1 sample
/// intervals before its first sample.
fn rate_prometheus2(w: &[(i64, f64)], range_start: i64, range_end: i64) -> Option<f64> {
    let (first, last) = (w.first()?, w.last()?);
    if w.len() < 2 {
        return None;
    }
    let mut result = last.1 - first.1;
    for p in w.windows(2) {
        if p[1].1 < p[0].1 {
            result += p[0].1;
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        to_start = to_start.min(sampled * (first.1 / result));
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg / 2.0
    };
    Some(result * interval / sampled / ((range_end - range_start) as f64 / 1000.0))
}

/// The one known difference, checked rather than skipped: `rate` of a
/// counter born inside the window. Prometheus 2.42 returns what its own
/// extrapolation rule gives (see [`rate_prometheus2`]); tidemark returns
/// Prometheus 3's value, and agrees with Prometheus 2.42 at every step
/// where the rules agree. This is also what made
/// `sum(rate(prometheus_http_requests_total[10s]))` differ by ~0.05 in the
/// embedded test: Prometheus creates a new `handler` series the first time
/// an endpoint is called, and a 10 s window holding its birth is
/// extrapolated differently by Prometheus 2 and 3.
#[test]
fn rate_of_a_counter_born_inside_the_window() {
    let Some(s) = setup() else { return };
    let jobs = &s
        .data
        .iter()
        .find(|d| d.labels.iter().any(|(_, v)| v == "dt_jobs_total"))
        .unwrap()
        .samples;
    let born = jobs[0].0;
    let range = 60_000;
    // Evaluation times around the birth, on the usual 3 s phase.
    let start = (born / 60_000 - 2) * 60_000 + EVAL_PHASE_MS;
    let end = start + 10 * 60_000;
    let step = 15_000;
    let params = vec![
        ("query", "rate(dt_jobs_total[1m])".to_string()),
        ("start", secs(start)),
        ("end", secs(end)),
        ("step", secs(step)),
    ];
    let ours = ask(s.tm.http_port, "query_range", &params).unwrap();
    let theirs = ask(s.prom.port, "query_range", &params).unwrap();
    let (Answer::Series(ours), Answer::Series(theirs)) = (ours, theirs) else {
        panic!("matrix expected");
    };
    let ours = ours.values().next().expect("tidemark has the series");
    let theirs = theirs.values().next().expect("prometheus has the series");
    assert_eq!(
        ours.iter().map(|p| p.0).collect::<Vec<_>>(),
        theirs.iter().map(|p| p.0).collect::<Vec<_>>()
    );
    let mut differing = 0;
    for (o, p) in ours.iter().zip(theirs) {
        let t = o.0;
        let w: Vec<(i64, f64)> = jobs
            .iter()
            .copied()
            .filter(|&(st, _)| st > t - range && st <= t)
            .collect();
        let v2 = rate_prometheus2(&w, t - range, t).unwrap();
        assert!(
            same_value(p.1, v2),
            "at {t}: Prometheus 2.42 gives {}, its rule {v2}",
            p.1
        );
        if !same_value(o.1, p.1) {
            differing += 1;
            assert!(
                w[0].0 == born,
                "at {t}: tidemark {} vs Prometheus {} outside the birth window",
                o.1,
                p.1
            );
        }
    }
    // The data is built so that the rules differ at some steps: the test
    // shows the difference exists and is exactly this one.
    assert!(
        differing > 0,
        "expected Prometheus 2's extrapolation to differ at the series' birth"
    );
}
