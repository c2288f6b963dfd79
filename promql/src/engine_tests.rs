//! Engine behaviour a user relies on: limits, cancellation, error wording,
//! staleness and name dropping, checked over the in-memory store.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tidemark_model::{Labels, STALE_NAN, Sample};
use tokio_util::sync::CancellationToken;

use crate::memstore::MemStore;
use crate::storage::{Queryable, SelectHints, Series, StorageError};
use crate::{Engine, EngineOpts, PromqlError, Value};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

/// `http_requests_total{job="a"|"b"}` counting up by 1 per 15s sample for 10 minutes.
fn store() -> MemStore {
    let mut s = MemStore::new();
    for (job, step) in [("a", 1.0), ("b", 2.0)] {
        let samples: Vec<Sample> = (0..=40)
            .map(|i| Sample::new(i * 15_000, i as f64 * step))
            .collect();
        s.add(
            labels(&[("__name__", "http_requests_total"), ("job", job)]),
            &samples,
        );
    }
    s
}

fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(v) => {
            let mut out: Vec<_> = v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[tokio::test]
async fn rate_and_sum_by_drop_the_metric_name() {
    let e = Engine::default();
    let r = e
        .instant_query(
            &store(),
            "sum by (job) (rate(http_requests_total[1m]))",
            600_000,
        )
        .await
        .unwrap();
    let v = vector(r.value);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].0, r#"{job="a"}"#);
    assert!((v[0].1 - 1.0 / 15.0).abs() < 1e-12, "{v:?}");
    assert!((v[1].1 - 2.0 / 15.0).abs() < 1e-12, "{v:?}");
}

#[tokio::test]
async fn range_query_returns_one_series_per_label_set() {
    let e = Engine::default();
    let r = e
        .range_query(
            &store(),
            "http_requests_total{job=\"a\"} * 2",
            0,
            60_000,
            15_000,
        )
        .await
        .unwrap();
    let Value::Matrix(m) = r.value else {
        panic!("expected a matrix")
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].labels.to_string(), r#"{job="a"}"#);
    let vals: Vec<f64> = m[0].samples.iter().map(|s| s.v).collect();
    assert_eq!(vals, vec![0.0, 2.0, 4.0, 6.0, 8.0]);
}

#[tokio::test]
async fn a_stale_marker_ends_the_series_before_the_lookback_does() {
    let mut s = MemStore::new();
    s.add(
        labels(&[("__name__", "up")]),
        &[Sample::new(0, 1.0), Sample::new(10_000, STALE_NAN)],
    );
    let e = Engine::default();
    let at5 = e.instant_query(&s, "up", 5_000).await.unwrap();
    assert_eq!(vector(at5.value).len(), 1);
    let at20 = e.instant_query(&s, "up", 20_000).await.unwrap();
    assert!(vector(at20.value).is_empty());
}

#[tokio::test]
async fn many_to_many_matching_is_refused_with_prometheus_wording() {
    let mut s = store();
    s.add(
        labels(&[("__name__", "other"), ("job", "a"), ("x", "1")]),
        &[Sample::new(0, 1.0)],
    );
    s.add(
        labels(&[("__name__", "other"), ("job", "a"), ("x", "2")]),
        &[Sample::new(0, 1.0)],
    );
    let err = Engine::default()
        .instant_query(&s, "http_requests_total + on(job) other", 0)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("found duplicate series for the match group {job=\"a\"}"),
        "{msg}"
    );
    assert!(msg.contains("many-to-many matching not allowed"), "{msg}");
}

#[tokio::test]
async fn parse_errors_are_reported_as_bad_data() {
    let err = Engine::default()
        .instant_query(&store(), "sum(", 0)
        .await
        .unwrap_err();
    assert!(matches!(err, PromqlError::Parse { .. }));
    assert!(err.is_bad_data());
}

#[tokio::test]
async fn sample_limit_fails_the_query_not_the_engine() {
    let e = Engine::new(EngineOpts {
        max_samples: 10,
        ..EngineOpts::default()
    });
    let err = e
        .instant_query(&store(), "sum_over_time(http_requests_total[10m])", 600_000)
        .await
        .unwrap_err();
    assert!(matches!(err, PromqlError::TooManySamples { limit: 10 }));
    assert!(err.to_string().contains("too many samples"));
    // The same engine still answers small queries.
    let ok = e.instant_query(&store(), "vector(1)", 0).await.unwrap();
    assert_eq!(vector(ok.value).len(), 1);
}

#[tokio::test]
async fn a_cancelled_query_stops_with_canceled() {
    let token = CancellationToken::new();
    token.cancel();
    let err = Engine::default()
        .range_query_with_cancel(&store(), "http_requests_total", 0, 600_000, 15_000, &token)
        .await
        .unwrap_err();
    assert!(matches!(err, PromqlError::Canceled { .. }), "{err}");
}

/// A storage that never answers, to exercise the timeout.
struct Hang;

#[async_trait::async_trait]
impl Queryable for Hang {
    async fn select(
        &self,
        _: &SelectHints,
        _: &[tidemark_model::Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_slow_storage_hits_the_timeout() {
    let e = Engine::new(EngineOpts {
        timeout: Duration::from_millis(50),
        ..EngineOpts::default()
    });
    let err = e.instant_query(&Hang, "up", 0).await.unwrap_err();
    assert!(matches!(err, PromqlError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn range_queries_refuse_range_vector_results() {
    let err = Engine::default()
        .range_query(&store(), "http_requests_total[5m]", 0, 60_000, 15_000)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid expression type \"range vector\" for range query")
    );
}

#[tokio::test]
async fn offset_and_at_modifiers_move_the_evaluation_time() {
    let e = Engine::default();
    let r = e
        .instant_query(
            &store(),
            "http_requests_total{job=\"a\"} offset 1m",
            600_000,
        )
        .await
        .unwrap();
    assert_eq!(vector(r.value)[0].1, 36.0);
    let r = e
        .instant_query(&store(), "http_requests_total{job=\"a\"} @ 60", 600_000)
        .await
        .unwrap();
    assert_eq!(vector(r.value)[0].1, 4.0);
}

#[tokio::test]
async fn duration_expressions_resolve_before_parsing() {
    let e = Engine::default();
    let r = e
        .instant_query(
            &store(),
            "count_over_time(http_requests_total{job=\"a\"}[30s+30s])",
            600_000,
        )
        .await
        .unwrap();
    assert_eq!(vector(r.value)[0].1, 4.0);
}

/// A storage that records the hints of every select and returns nothing.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<SelectHints>>);

#[async_trait::async_trait]
impl Queryable for Recorder {
    async fn select(
        &self,
        hints: &SelectHints,
        _: &[tidemark_model::Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        self.0.lock().unwrap().push(hints.clone());
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn storage_is_asked_for_exactly_the_range_the_query_reads() {
    let r = Recorder::default();
    let e = Engine::default();
    // Range query 1h..2h: rate over 5m, offset 10m, plus a subquery of 30m.
    e.range_query(
        &r,
        "rate(a[5m] offset 10m) + max_over_time(b[30m:1m]) + c @ 100",
        3_600_000,
        7_200_000,
        60_000,
    )
    .await
    .unwrap();
    let hints = r.0.lock().unwrap().clone();
    assert_eq!(hints.len(), 3);
    // a: (start - 10m - 5m, end - 10m]
    assert_eq!(
        (hints[0].start, hints[0].end),
        (3_600_000 - 900_000 + 1, 7_200_000 - 600_000)
    );
    assert_eq!(hints[0].range, 300_000);
    assert_eq!(hints[0].func.as_deref(), Some("rate"));
    // b inside the subquery: lookback before the subquery's first step.
    assert_eq!(
        (hints[1].start, hints[1].end),
        (3_600_000 - 1_800_000 - 300_000 + 1, 7_200_000)
    );
    // c @ 100: only around t = 100s, whatever the query range.
    assert_eq!(
        (hints[2].start, hints[2].end),
        (100_000 - 300_000 + 1, 100_000)
    );
    assert!(hints.iter().all(|h| h.step == 60_000));
}

#[test]
fn query_futures_can_move_across_threads() {
    // The HTTP layer runs queries on a multi-threaded runtime.
    fn assert_send<T: Send>(_: &T) {}
    let s = MemStore::new();
    let e = Engine::default();
    let f = e.instant_query(&s, "up", 0);
    assert_send(&f);
    let g = e.range_query(&s, "up", 0, 60_000, 15_000);
    assert_send(&g);
}

#[tokio::test]
async fn odd_query_text_gives_errors_not_panics() {
    let e = Engine::default();
    for q in [
        "SORT(x{a=\"İİİ\"})",
        "x offset -",
        "x[",
        "x[5m+]",
        "info(",
        "info(x, {",
        "ü smoothed",
        "x{a=\"b\"} @ 1 offset (1 smoothed",
        "rate(x[1m] anchored",
        "\"unterminated",
        "x offset ((((",
    ] {
        let _ = e.instant_query(&store(), q, 0).await;
        let _ = e.range_query(&store(), q, 0, 60_000, 15_000).await;
    }
}
