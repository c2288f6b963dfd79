//! The API over a `MemStore`: exact JSON for each endpoint and Prometheus's
//! error answers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Method, StatusCode};
use tidemark_model::{Labels, Sample, TenantId};
use tidemark_promql::memstore::MemStore;
use tidemark_server::{Tenancy, TenancyConfig};
use tower::ServiceExt;

use crate::{Querier, QuerierConfig};

/// Sends one request to the router; `form` makes it a POST form body.
pub(crate) async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    form: Option<&str>,
    tenant: Option<&str>,
) -> (StatusCode, String) {
    let mut b = http::Request::builder().method(method).uri(uri);
    if let Some(t) = tenant {
        b = b.header("X-Scope-OrgID", t);
    }
    let req = match form {
        Some(f) => b
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from(f.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/json"
        );
    }
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

/// Two `up` series and a counter, every 15s over the first 10 minutes.
pub(crate) fn store() -> MemStore {
    let mut s = MemStore::new();
    let every = |v: &dyn Fn(i64) -> f64| -> Vec<Sample> {
        (0..=40).map(|i| Sample::new(i * 15_000, v(i))).collect()
    };
    s.add(
        l(&[("__name__", "up"), ("job", "api"), ("instance", "a:9090")]),
        &every(&|_| 1.0),
    );
    s.add(
        l(&[("__name__", "up"), ("job", "db"), ("instance", "b:9090")]),
        &every(&|_| 0.0),
    );
    s.add(
        l(&[
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("code", "200"),
        ]),
        &every(&|i| (i * 10) as f64),
    );
    s
}

pub(crate) fn single_tenant(cfg: QuerierConfig) -> Router {
    let tenancy = Tenancy::single(TenantId::new("anonymous").unwrap());
    Querier::from_queryable(cfg, tenancy, Arc::new(store()))
        .with_clock(Arc::new(|| 600_000))
        .http_routes()
}

async fn get(uri: &str) -> (StatusCode, String) {
    call(
        &single_tenant(QuerierConfig::default()),
        Method::GET,
        uri,
        None,
        None,
    )
    .await
}

async fn ok(uri: &str) -> String {
    let (status, body) = get(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

async fn err(uri: &str) -> (u16, serde_json::Value) {
    let (status, body) = get(uri).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error", "{body}");
    (status.as_u16(), v)
}

#[tokio::test]
async fn instant_vector_query() {
    assert_eq!(
        ok("/api/v1/query?query=up&time=300").await,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"a:9090","job":"api"},"value":[300,"1"]},{"metric":{"__name__":"up","instance":"b:9090","job":"db"},"value":[300,"0"]}]}}"#
    );
}

#[tokio::test]
async fn scalar_string_and_special_values() {
    assert_eq!(
        ok("/api/v1/query?query=1%2B1&time=1.5").await,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1.500,"2"]}}"#
    );
    assert_eq!(
        ok("/api/v1/query?query=%22a%3Cb%22&time=2").await,
        r#"{"status":"success","data":{"resultType":"string","result":[2,"a\u003cb"]}}"#
    );
    assert_eq!(
        ok("/api/v1/query?query=vector(1)%2F0&time=2").await,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[2,"+Inf"]}]}}"#
    );
    assert_eq!(
        ok("/api/v1/query?query=-1%2F0&time=2").await,
        r#"{"status":"success","data":{"resultType":"scalar","result":[2,"-Inf"]}}"#
    );
    assert_eq!(
        ok("/api/v1/query?query=0%2F0&time=2").await,
        r#"{"status":"success","data":{"resultType":"scalar","result":[2,"NaN"]}}"#
    );
}

#[tokio::test]
async fn range_query_with_rfc3339_and_duration_step() {
    let want = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"api"},"values":[[60,"40"],[90,"40"],[120,"40"]]}]}}"#;
    assert_eq!(
        ok("/api/v1/query_range?query=sum%20by%20(job)%20(rate(http_requests_total%5B1m%5D))*60&start=60&end=120&step=30").await,
        want
    );
    assert_eq!(
        ok("/api/v1/query_range?query=sum%20by%20(job)%20(rate(http_requests_total%5B1m%5D))*60&start=1970-01-01T00:01:00Z&end=1970-01-01T00:02:00.000Z&step=30s").await,
        want
    );
}

#[tokio::test]
async fn same_answers_under_prometheus_prefix_and_as_post_forms() {
    let r = single_tenant(QuerierConfig::default());
    let (_, a) = call(
        &r,
        Method::GET,
        "/api/v1/query?query=up&time=300",
        None,
        None,
    )
    .await;
    let (s, b) = call(
        &r,
        Method::POST,
        "/prometheus/api/v1/query",
        Some("query=up&time=300"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(a, b);
    // Body values come before URL values, as in Go's FormValue.
    let (_, c) = call(
        &r,
        Method::POST,
        "/api/v1/query?query=nope",
        Some("query=up&time=300"),
        None,
    )
    .await;
    assert_eq!(a, c);
}

#[tokio::test]
async fn lookback_delta_and_timeout_parameters() {
    // The last sample is at 600s: at 700s it is within 5m, but not within 1m.
    let body = ok("/api/v1/query?query=up&time=700&lookback_delta=1m").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
    );
    let body = ok("/api/v1/query?query=count(up)&time=700&timeout=30s").await;
    assert!(body.contains(r#""value":[700,"2"]"#), "{body}");
    let (code, v) = err("/api/v1/query?query=up&timeout=abc").await;
    assert_eq!(code, 400);
    assert_eq!(
        v["error"],
        "invalid parameter \"timeout\": cannot parse \"abc\" to a valid duration"
    );
}

#[tokio::test]
async fn series_labels_and_label_values() {
    assert_eq!(
        ok("/api/v1/series?match%5B%5D=up&start=0&end=600").await,
        r#"{"status":"success","data":[{"__name__":"up","instance":"a:9090","job":"api"},{"__name__":"up","instance":"b:9090","job":"db"}]}"#
    );
    assert_eq!(
        ok("/api/v1/series?match%5B%5D=up%7Bjob%3D%22db%22%7D&match%5B%5D=http_requests_total")
            .await,
        r#"{"status":"success","data":[{"__name__":"http_requests_total","code":"200","job":"api"},{"__name__":"up","instance":"b:9090","job":"db"}]}"#
    );
    assert_eq!(
        ok("/api/v1/labels").await,
        r#"{"status":"success","data":["__name__","code","instance","job"]}"#
    );
    assert_eq!(
        ok("/api/v1/labels?match%5B%5D=up").await,
        r#"{"status":"success","data":["__name__","instance","job"]}"#
    );
    assert_eq!(
        ok("/api/v1/label/job/values").await,
        r#"{"status":"success","data":["api","db"]}"#
    );
    assert_eq!(
        ok("/api/v1/label/__name__/values?match%5B%5D=%7Bjob%3D%22api%22%7D").await,
        r#"{"status":"success","data":["http_requests_total","up"]}"#
    );
    assert_eq!(
        ok("/api/v1/label/job/values?limit=1").await,
        r#"{"status":"success","data":["api"],"warnings":["results truncated due to limit"]}"#
    );
    assert_eq!(
        ok("/api/v1/label/nope/values").await,
        r#"{"status":"success","data":[]}"#
    );
    // Outside the data's time range nothing matches.
    assert_eq!(
        ok("/api/v1/series?match%5B%5D=up&start=10000&end=20000").await,
        r#"{"status":"success","data":[]}"#
    );
}

#[tokio::test]
async fn status_and_empty_endpoints() {
    let b: serde_json::Value = serde_json::from_str(&ok("/api/v1/status/buildinfo").await).unwrap();
    assert_eq!(b["data"]["version"], crate::PROMETHEUS_COMPATIBLE_VERSION);
    assert_eq!(b["data"]["tidemarkVersion"], env!("CARGO_PKG_VERSION"));
    for k in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(b["data"][k].is_string(), "{k}");
    }
    assert_eq!(
        ok("/api/v1/metadata").await,
        r#"{"status":"success","data":{}}"#
    );
    assert_eq!(
        ok("/api/v1/rules").await,
        r#"{"status":"success","data":{"groups":[]}}"#
    );
    assert_eq!(
        ok("/api/v1/alerts").await,
        r#"{"status":"success","data":{"alerts":[]}}"#
    );
    assert_eq!(
        ok("/api/v1/query_exemplars?query=up&start=0&end=10").await,
        r#"{"status":"success","data":[]}"#
    );
    let c: serde_json::Value = serde_json::from_str(&ok("/api/v1/status/config").await).unwrap();
    assert!(c["data"]["yaml"].as_str().unwrap().contains("timeout: 2m"));
    let f: serde_json::Value = serde_json::from_str(&ok("/api/v1/status/flags").await).unwrap();
    assert_eq!(f["data"]["query.max-samples"], "50000000");
    let r: serde_json::Value =
        serde_json::from_str(&ok("/api/v1/status/runtimeinfo").await).unwrap();
    assert!(r["data"]["startTime"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn format_and_parse_query() {
    assert_eq!(
        ok("/api/v1/format_query?query=sum(up)by(job)").await,
        r#"{"status":"success","data":"sum by (job) (up)"}"#
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok("/api/v1/parse_query?query=rate(up%5B5m%5D)").await).unwrap();
    assert_eq!(v["data"]["type"], "call");
    assert_eq!(v["data"]["func"]["name"], "rate");
    assert_eq!(v["data"]["args"][0]["type"], "matrixSelector");
    let (code, v) = err("/api/v1/parse_query?query=sum(").await;
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
}

#[tokio::test]
async fn bad_expression_is_bad_data_with_position() {
    let (code, v) = err("/api/v1/query?query=sum(up").await;
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.starts_with("invalid parameter \"query\": 1:"), "{msg}");
    assert!(msg.contains("parse error"), "{msg}");
}

#[tokio::test]
async fn missing_query_is_bad_data() {
    let (code, v) = err("/api/v1/query?time=1").await;
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": "),
        "{v}"
    );
}

#[tokio::test]
async fn range_query_parameter_errors_are_worded_like_prometheus() {
    let cases = [
        (
            "/api/v1/query_range?query=up&end=10&step=1",
            "invalid parameter \"start\": cannot parse \"\" to a valid timestamp",
        ),
        (
            "/api/v1/query_range?query=up&start=x&end=10&step=1",
            "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp",
        ),
        (
            "/api/v1/query_range?query=up&start=0&step=1",
            "invalid parameter \"end\": cannot parse \"\" to a valid timestamp",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=0&step=1",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=abc",
            "invalid parameter \"step\": cannot parse \"abc\" to a valid duration",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10",
            "invalid parameter \"step\": cannot parse \"\" to a valid duration",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=0",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=11001&step=1",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query_range?query=up%5B5m%5D&start=0&end=10&step=1",
            "invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
        ),
        ("/api/v1/series", "no match[] parameter provided"),
        ("/api/v1/label/1bad/values", "invalid label name: \"1bad\""),
    ];
    for (uri, want) in cases {
        let (code, v) = err(uri).await;
        assert_eq!(code, 400, "{uri}: {v}");
        assert_eq!(v["errorType"], "bad_data", "{uri}");
        assert_eq!(v["error"], want, "{uri}");
    }
    // 11,000 points exactly is still allowed.
    ok("/api/v1/query_range?query=up&start=0&end=11000&step=1").await;
}

#[tokio::test]
async fn missing_tenant_in_a_cluster_is_401() {
    let tenancy = Tenancy::new(&TenancyConfig::default(), false).unwrap();
    let r =
        Querier::from_queryable(QuerierConfig::default(), tenancy, Arc::new(store())).http_routes();
    let (status, body) = call(&r, Method::GET, "/api/v1/query?query=up&time=1", None, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("X-Scope-OrgID"), "{body}");
    let (status, _) = call(
        &r,
        Method::GET,
        "/api/v1/query?query=up&time=1",
        None,
        Some("t1"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn query_limits_fail_the_query_as_execution_errors() {
    let cfg = QuerierConfig {
        max_samples: 50,
        ..QuerierConfig::default()
    };
    let r = single_tenant(cfg);
    let (status, body) = call(
        &r,
        Method::GET,
        "/api/v1/query?query=up%5B10m%5D&time=600",
        None,
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errorType"], "execution");
    assert!(
        v["error"].as_str().unwrap().contains("querier.max_samples"),
        "{body}"
    );

    let cfg = QuerierConfig {
        max_fetched_series_per_query: 1,
        ..QuerierConfig::default()
    };
    let (status, body) = call(
        &single_tenant(cfg),
        Method::GET,
        "/api/v1/query?query=up&time=600",
        None,
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("querier.max_fetched_series_per_query"),
        "{body}"
    );
}
