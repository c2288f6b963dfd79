//! The write path end to end in one process: remote write over HTTP (and
//! gRPC) into a distributor, through the ring, into real ingesters, read
//! back with the ingesters' Select.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use prost::Message;
use tidemark_distributor::{DistributorConfig, LimitsOverride, SAMPLES_WRITTEN};
use tidemark_ingester::IngesterConfig;
use tidemark_ingester_client::StaticRing;
use tidemark_model::STALE_NAN_BITS;
use tidemark_proto::write_v2;
use tidemark_server::{MultitenancyMode, Tenancy, TenancyConfig};

#[tokio::test]
async fn remote_write_v1_round_trip_keeps_stale_nan_bits() {
    let dir = tempfile::tempdir().unwrap();
    let ing = TestIngester::start(dir.path(), IngesterConfig::default()).await;
    let d = TestDistributor::start(
        dir.path(),
        DistributorConfig::default(),
        anonymous(),
        single_ring(&ing),
    )
    .await;
    let t = now_ms();
    let stale = f64::from_bits(STALE_NAN_BITS);
    let body = v1_body(vec![
        // Unsorted on purpose: sorted by the distributor.
        series(
            &[("job", "node"), ("__name__", "up")],
            &[(t - 1000, 1.0), (t, stale)],
        ),
        series(&[("__name__", "up"), ("job", "api")], &[(t, 0.0)]),
    ]);
    let r = d
        .post(body, V1, &[("X-Prometheus-Remote-Write-Version", "0.1.0")])
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let got = ing.select("anonymous", "up").await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].0,
        vec![
            ("__name__".to_string(), "up".to_string()),
            ("job".into(), "node".into())
        ]
    );
    assert_eq!(got[1].1.len(), 2);
    assert_eq!(got[1].1[1].value.to_bits(), STALE_NAN_BITS);
    assert_eq!(got[1].1[0].timestamp, t - 1000);
}

#[tokio::test]
async fn remote_write_v2_round_trip_reports_written_counts() {
    let dir = tempfile::tempdir().unwrap();
    let ing = TestIngester::start(dir.path(), IngesterConfig::default()).await;
    let d = TestDistributor::start(
        dir.path(),
        DistributorConfig::default(),
        anonymous(),
        single_ring(&ing),
    )
    .await;
    let t = now_ms();
    let req = write_v2::Request {
        symbols: vec![
            "".into(),
            "__name__".into(),
            "http_requests_total".into(),
            "code".into(),
            "200".into(),
            "500".into(),
            "trace_id".into(),
            "abc".into(),
        ],
        timeseries: vec![
            write_v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![
                    write_v2::Sample {
                        value: 1.0,
                        timestamp: t - 15_000,
                    },
                    write_v2::Sample {
                        value: 2.0,
                        timestamp: t,
                    },
                ],
                exemplars: vec![
                    write_v2::Exemplar {
                        labels_refs: vec![6, 7],
                        value: 2.0,
                        timestamp: t,
                    },
                    // A ref past the symbols: this exemplar is dropped, the
                    // write still succeeds.
                    write_v2::Exemplar {
                        labels_refs: vec![6, 99],
                        value: 2.0,
                        timestamp: t,
                    },
                ],
                ..Default::default()
            },
            write_v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 5],
                samples: vec![write_v2::Sample {
                    value: 7.0,
                    timestamp: t,
                }],
                ..Default::default()
            },
        ],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let r = d
        .post(body, V2, &[("X-Prometheus-Remote-Write-Version", "2.0.0")])
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()[SAMPLES_WRITTEN], "3");
    assert_eq!(
        r.headers()["X-Prometheus-Remote-Write-Histograms-Written"],
        "0"
    );
    assert_eq!(
        r.headers()["X-Prometheus-Remote-Write-Exemplars-Written"],
        "1"
    );
    let got = ing.select("anonymous", "http_requests_total").await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0[1], ("code".to_string(), "200".to_string()));
    assert_eq!(
        got[0].1.iter().map(|s| s.value).collect::<Vec<_>>(),
        [1.0, 2.0]
    );
}

#[tokio::test]
async fn bad_series_are_named_and_good_ones_written() {
    let dir = tempfile::tempdir().unwrap();
    let ing = TestIngester::start(dir.path(), IngesterConfig::default()).await;
    let d = TestDistributor::start(
        dir.path(),
        DistributorConfig::default(),
        anonymous(),
        single_ring(&ing),
    )
    .await;
    let t = now_ms();
    let body = v1_body(vec![
        series(&[("__name__", "good")], &[(t, 1.0)]),
        series(&[("__name__", "bad"), ("0rg", "x")], &[(t, 1.0)]),
        series(&[("__name__", "future")], &[(t + 3_600_000, 1.0)]),
    ]);
    let r = d
        .post(
            body,
            V2.replace("io.prometheus.write.v2.Request", "prometheus.WriteRequest")
                .as_str(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("2 series refused"), "{text}");
    assert!(
        text.contains("bad{0rg=\"x\"}") && text.contains("label_name_invalid"),
        "{text}"
    );
    assert!(
        text.contains("series future:") && text.contains("limits.creation_grace_period"),
        "{text}"
    );
    assert_eq!(ing.select("anonymous", "good").await.len(), 1);
    assert!(ing.select("anonymous", "bad|future").await.is_empty());

    // An out-of-order sample is refused by the ingester and named too.
    let body = v1_body(vec![series(&[("__name__", "good")], &[(t - 60_000, 2.0)])]);
    let r = d.post(body, V1, &[]).await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("sample_out_of_order") && text.contains("good"),
        "{text}"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_and_series_limit_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let ing = TestIngester::start(dir.path(), IngesterConfig::default()).await;
    let cfg = DistributorConfig {
        overrides: BTreeMap::from([(
            "anonymous".to_string(),
            LimitsOverride {
                ingestion_rate: Some(0.001),
                ingestion_burst: Some(4),
                max_series: Some(2),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    let d = TestDistributor::start(dir.path(), cfg, anonymous(), single_ring(&ing)).await;
    let t = now_ms();
    let body = v1_body(vec![
        series(&[("__name__", "a")], &[(t, 1.0)]),
        series(&[("__name__", "b")], &[(t, 1.0)]),
        series(&[("__name__", "c")], &[(t, 1.0)]),
    ]);
    let r = d.post(body, V1, &[]).await;
    assert_eq!(r.status(), 400, "the third series is over the series limit");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("per_user_series_limit") && text.contains("series c:"),
        "{text}"
    );
    assert!(text.contains("limits.max_series"), "{text}");
    let body = v1_body(vec![series(
        &[("__name__", "a")],
        &[(t + 1, 1.0), (t + 2, 1.0)],
    )]);
    let r = d.post(body, V1, &[]).await;
    assert_eq!(r.status(), 429);
    let text = r.text().await.unwrap();
    assert!(text.contains("limits.ingestion_rate"), "{text}");
}

#[tokio::test]
async fn tenancy_content_type_and_encoding_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ing = TestIngester::start(dir.path(), IngesterConfig::default()).await;
    let tenancy = Tenancy::new(
        &TenancyConfig {
            multitenancy_enabled: MultitenancyMode::True,
            default_tenant: "anonymous".into(),
        },
        false,
    )
    .unwrap();
    let d = TestDistributor::start(
        dir.path(),
        DistributorConfig::default(),
        tenancy,
        single_ring(&ing),
    )
    .await;
    let t = now_ms();
    let body = || v1_body(vec![series(&[("__name__", "up")], &[(t, 1.0)])]);
    let r = d.post(body(), V1, &[]).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("X-Scope-OrgID"));
    let r = d
        .post(body(), "application/json", &[("X-Scope-OrgID", "team-a")])
        .await;
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("application/json"));
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/write", d.base))
        .header("Content-Type", V1)
        .header("Content-Encoding", "gzip")
        .header("X-Scope-OrgID", "team-a")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = d
        .post(
            b"not snappy at all".to_vec(),
            V1,
            &[("X-Scope-OrgID", "team-a")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = d.post(body(), V1, &[("X-Scope-OrgID", "team-a")]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(ing.select("team-a", "up").await.len(), 1);
    assert!(
        ing.select("team-b", "up").await.is_empty(),
        "tenants are isolated"
    );
}

#[tokio::test]
async fn body_size_limit_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let ing = TestIngester::start(dir.path(), IngesterConfig::default()).await;
    let cfg = DistributorConfig {
        max_recv_msg_size: 200,
        ..Default::default()
    };
    let d = TestDistributor::start(dir.path(), cfg, anonymous(), single_ring(&ing)).await;
    let t = now_ms();
    let many: Vec<_> = (0..50)
        .map(|i| series(&[("__name__", "up"), ("i", &i.to_string())], &[(t, 1.0)]))
        .collect();
    let r = d.post(v1_body(many), V1, &[]).await;
    assert_eq!(r.status(), 413);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("distributor.max_recv_msg_size")
    );
}

#[tokio::test]
async fn writes_survive_one_of_three_ingesters_down_and_fail_retryably_with_two() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut ings = Vec::new();
    for d in &dirs {
        ings.push(TestIngester::start(d.path(), IngesterConfig::default()).await);
    }
    let ring = Arc::new(StaticRing::new(
        ings.iter()
            .enumerate()
            .map(|(i, x)| x.instance(&format!("i{i}")))
            .collect(),
    ));
    let ddir = tempfile::tempdir().unwrap();
    let d =
        TestDistributor::start(ddir.path(), DistributorConfig::default(), anonymous(), ring).await;
    let t = now_ms();
    let r = d
        .post(
            v1_body(vec![series(&[("__name__", "up")], &[(t - 2, 1.0)])]),
            V1,
            &[],
        )
        .await;
    assert_eq!(r.status(), 204);
    for i in &ings {
        assert_eq!(
            i.select("anonymous", "up").await.len(),
            1,
            "replicated to all three"
        );
    }
    ings[0].stop().await;
    let r = d
        .post(
            v1_body(vec![series(&[("__name__", "up")], &[(t - 1, 1.0)])]),
            V1,
            &[],
        )
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    ings[1].stop().await;
    let r = d
        .post(
            v1_body(vec![series(&[("__name__", "up")], &[(t, 1.0)])]),
            V1,
            &[],
        )
        .await;
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(text.contains("quorum"), "{text}");
    assert_eq!(ings[2].select("anonymous", "up").await[0].1.len(), 3);
}

#[tokio::test]
async fn grpc_push_from_scrapers_reports_refusals_in_the_response() {
    use tidemark_proto::distributor::{PushRequest, distributor_client::DistributorClient};
    let dir = tempfile::tempdir().unwrap();
    let ing = TestIngester::start(dir.path(), IngesterConfig::default()).await;
    let d = TestDistributor::start(
        dir.path(),
        DistributorConfig::default(),
        anonymous(),
        single_ring(&ing),
    )
    .await;
    let mut c = DistributorClient::connect(format!("http://{}", d.grpc_addr))
        .await
        .unwrap();
    let t = now_ms();
    let resp = c
        .push(PushRequest {
            tenant: String::new(),
            timeseries: vec![
                series(&[("__name__", "scrape_ok")], &[(t, 1.0)]),
                series(&[("job", "x")], &[(t, 1.0)]),
            ],
            metadata: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((resp.samples_written, resp.samples_refused), (1, 1));
    assert!(
        resp.refusals[0].contains("missing_metric_name"),
        "{:?}",
        resp.refusals
    );
    assert_eq!(ing.select("anonymous", "scrape_ok").await.len(), 1);
}
