//! Replays the requests Grafana's Prometheus data source makes, in the form
//! it makes them (POST forms by default, Unix-second timestamps, `match[]`,
//! step-aligned ranges, the `X-Scope-OrgID` custom header), and checks each
//! answer has the fields and types Grafana's parser reads.

use std::sync::Arc;

use http::Method;
use serde_json::Value;
use tidemark_server::{Tenancy, TenancyConfig};

use crate::api_tests::{call, store};
use crate::{Querier, QuerierConfig};

const TENANT: Option<&str> = Some("grafana-org");

fn router() -> axum::Router {
    // A cluster: the tenant comes from the data source's custom header.
    let tenancy = Tenancy::new(&TenancyConfig::default(), false).unwrap();
    Querier::from_queryable(QuerierConfig::default(), tenancy, Arc::new(store()))
        .with_clock(Arc::new(|| 600_000))
        .http_routes()
}

async fn grafana(method: Method, uri: &str, form: Option<&str>) -> Value {
    let (status, body) = call(&router(), method, uri, form, TENANT).await;
    assert_eq!(status, 200, "{uri}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    v
}

/// `[<unix seconds as number>, "<value as string>"]`, as Grafana's
/// `transformV2` reads sample pairs.
fn assert_point(p: &Value) -> (f64, f64) {
    let a = p.as_array().expect("a point is an array");
    assert_eq!(a.len(), 2);
    let t = a[0].as_f64().expect("timestamp is a JSON number");
    let v: f64 = a[1]
        .as_str()
        .expect("value is a JSON string")
        .parse()
        .unwrap();
    (t, v)
}

fn assert_metric(m: &Value) {
    let o = m.as_object().expect("metric is an object");
    assert!(
        o.values().all(Value::is_string),
        "label values are strings: {m}"
    );
}

#[tokio::test]
async fn health_check_one_plus_one() {
    // Grafana's "Save & test": GET with the current time in seconds.
    let v = grafana(
        Method::GET,
        "/api/v1/query?query=1%2B1&time=1700000000.123",
        None,
    )
    .await;
    assert_eq!(v["data"]["resultType"], "scalar");
    let (t, val) = assert_point(&v["data"]["result"]);
    assert_eq!((t, val), (1_700_000_000.123, 2.0));
    // The same check through the /prometheus prefix and as a POST form.
    let (s, _) = call(
        &router(),
        Method::POST,
        "/prometheus/api/v1/query",
        Some("query=1%2B1&time=1700000000.123"),
        TENANT,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn buildinfo_version_is_semver() {
    let v = grafana(Method::GET, "/api/v1/status/buildinfo", None).await;
    let version = v["data"]["version"].as_str().unwrap();
    let parts: Vec<u64> = version.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 3);
    assert!(
        parts[0] >= 2,
        "Grafana enables label/series POST and match[] from 2.x"
    );
    assert!(
        v["data"].get("features").is_none(),
        "features would make Grafana think it is Mimir"
    );
}

#[tokio::test]
async fn labels_and_metric_names_for_the_query_builder() {
    let v = grafana(
        Method::POST,
        "/api/v1/labels",
        Some("start=1700000000&end=1700003600"),
    )
    .await;
    assert!(v["data"].as_array().unwrap().iter().all(Value::is_string));
    // Our data is at the start of the epoch, so a range in 2023 is empty
    // but still a list.
    assert_eq!(v["data"], serde_json::json!([]));
    let v = grafana(Method::POST, "/api/v1/labels", Some("start=0&end=600")).await;
    assert_eq!(
        v["data"],
        serde_json::json!(["__name__", "code", "instance", "job"])
    );

    let v = grafana(
        Method::GET,
        "/api/v1/label/__name__/values?start=0&end=600",
        None,
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["http_requests_total", "up"]));
    let v = grafana(
        Method::GET,
        "/api/v1/label/job/values?match%5B%5D=up&start=0&end=600",
        None,
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["api", "db"]));
}

#[tokio::test]
async fn series_with_match_for_label_browser() {
    let v = grafana(
        Method::POST,
        "/api/v1/series",
        Some("match%5B%5D=up&start=0&end=600"),
    )
    .await;
    let series = v["data"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    for s in series {
        assert_metric(s);
        assert_eq!(s["__name__"], "up");
    }
}

#[tokio::test]
async fn dashboard_range_query_is_step_aligned() {
    // Grafana aligns start and end down to a multiple of the step.
    let step = 30;
    let (from, to) = (47, 571);
    let (start, end) = (from / step * step, to / step * step);
    let form = format!("query=up&start={start}&end={end}&step={step}");
    let v = grafana(Method::POST, "/api/v1/query_range", Some(&form)).await;
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    for s in result {
        assert_metric(&s["metric"]);
        let values = s["values"].as_array().unwrap();
        assert_eq!(values.len() as i64, (end - start) / step + 1);
        for p in values {
            let (t, _) = assert_point(p);
            assert_eq!(t as i64 % step, 0, "timestamps fall on the step");
            assert!(t >= start as f64 && t <= end as f64);
        }
    }
}

#[tokio::test]
async fn instant_table_query() {
    let v = grafana(
        Method::POST,
        "/api/v1/query",
        Some("query=sum%20by%20(job)%20(up)&time=600"),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "vector");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    for s in result {
        assert_metric(&s["metric"]);
        assert!(s["metric"]["job"].is_string());
        let (t, _) = assert_point(&s["value"]);
        assert_eq!(t, 600.0);
    }
}

#[tokio::test]
async fn errors_are_what_grafana_shows() {
    // Grafana shows `error` and keys behaviour off `errorType`.
    let (status, body) = call(
        &router(),
        Method::POST,
        "/api/v1/query_range",
        Some("query=rate(up%5B5m%5D&start=0&end=600&step=15"),
        TENANT,
    )
    .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    assert!(v["error"].is_string());
    // Without the header of a multi-tenant cluster: 401.
    let (status, _) = call(&router(), Method::GET, "/api/v1/labels", None, None).await;
    assert_eq!(status, 401);
}
