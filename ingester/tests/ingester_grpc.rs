//! The ingester over real gRPC: push, select, labels, limits, WAL replay
//! after a restart.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures::StreamExt;
use tidemark_ingester::{Ingester, IngesterConfig};
use tidemark_model::{Labels, STALE_NAN_BITS, TenantId};
use tidemark_proto::ingester::{
    ExemplarsRequest, LabelNamesRequest, LabelValuesRequest, MatcherSet, PackedExemplar,
    PackedSeries, PushRequest, SelectRequest, ingester_client::IngesterClient,
    series_error::Reason,
};
use tidemark_proto::prometheus as pb;
use tidemark_server::{Metrics, RoleContext, Services, Tenancy, serve_grpc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct Running {
    ingester: Ingester,
    ctx: RoleContext,
    client: IngesterClient<tonic::transport::Channel>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

async fn start(dir: &std::path::Path, cfg: IngesterConfig) -> Running {
    let ctx = RoleContext {
        metrics: Arc::new(Metrics::new()),
        services: Services::new(),
        data_dir: dir.to_path_buf(),
        tenancy: Tenancy::single(TenantId::new("anonymous").unwrap()),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        advertise_grpc_addr: String::new(),
        grpc_max_message_bytes: 16 << 20,
    };
    let ingester = Ingester::start(cfg, ctx.clone()).await.unwrap();
    ingester.ready().await.unwrap();
    assert!(ctx.services.readiness().is_ok());
    let mut routes = tonic::service::RoutesBuilder::default();
    ingester.add_grpc(&mut routes);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_grpc(listener, routes.routes(), ctx.shutdown.clone()));
    let client = IngesterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Running {
        ingester,
        ctx,
        client,
        server,
    }
}

impl Running {
    async fn stop(self) {
        self.ctx.shutdown.cancel();
        let _ = self.server.await;
        self.ingester.stop().await;
        self.ctx.tasks.close();
        self.ctx.tasks.wait().await;
    }
}

fn ts(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> pb::TimeSeries {
    pb::TimeSeries {
        labels: pairs
            .iter()
            .map(|(n, v)| pb::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(t, v)| pb::Sample {
                timestamp: t,
                value: v,
            })
            .collect(),
        ..Default::default()
    }
}

fn eq(name: &str, value: &str) -> pb::LabelMatcher {
    pb::LabelMatcher {
        r#type: pb::label_matcher::Type::Eq as i32,
        name: name.into(),
        value: value.into(),
    }
}

async fn select(
    c: &mut IngesterClient<tonic::transport::Channel>,
    tenant: &str,
    matchers: Vec<pb::LabelMatcher>,
    max_series: u64,
) -> Result<Vec<Vec<tidemark_proto::ingester::StreamedSeries>>, tonic::Status> {
    let mut s = c
        .select(SelectRequest {
            tenant: tenant.into(),
            start_ms: 0,
            end_ms: i64::MAX,
            matchers,
            max_series,
        })
        .await?
        .into_inner();
    let mut batches = Vec::new();
    while let Some(m) = s.next().await {
        batches.push(m?.series);
    }
    Ok(batches)
}

#[tokio::test]
async fn acknowledged_samples_survive_a_restart_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = start(dir.path(), IngesterConfig::default()).await;
    let resp = r
        .client
        .push(PushRequest {
            tenant: "team-a".into(),
            timeseries: vec![ts(
                &[("__name__", "up"), ("job", "node")],
                &[(1000, 1.0), (2000, f64::from_bits(STALE_NAN_BITS))],
            )],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.samples_written, 2);
    assert!(resp.errors.is_empty());
    r.stop().await;
    assert!(dir.path().join("ingester/team-a/wal").is_dir());

    let mut r = start(dir.path(), IngesterConfig::default()).await;
    let got = select(&mut r.client, "team-a", vec![eq("job", "node")], 0)
        .await
        .unwrap();
    let series: Vec<_> = got.into_iter().flatten().collect();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].samples[1].value.to_bits(), STALE_NAN_BITS);
    assert!(
        select(&mut r.client, "team-b", vec![eq("job", "node")], 0)
            .await
            .unwrap()
            .is_empty(),
        "other tenants see nothing"
    );
    r.stop().await;
}

#[tokio::test]
async fn packed_series_are_written_next_to_remote_write_series_and_bad_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = start(dir.path(), IngesterConfig::default()).await;
    let packed = |pairs: &[(&str, &str)], samples: &[(i64, f64)]| PackedSeries {
        labels: bytes::Bytes::copy_from_slice(
            Labels::from_pairs(pairs.iter().copied()).unwrap().packed(),
        ),
        timestamps: samples.iter().map(|s| s.0).collect(),
        values: samples.iter().map(|s| s.1).collect(),
        ..Default::default()
    };
    let mut uneven = packed(&[("__name__", "uneven")], &[(1000, 1.0)]);
    uneven.values.push(2.0);
    let resp = r
        .client
        .push(PushRequest {
            tenant: "t".into(),
            timeseries: vec![ts(&[("__name__", "old_form")], &[(1000, 1.0)])],
            series: vec![
                packed(
                    &[("__name__", "up"), ("job", "node")],
                    &[(1000, 1.0), (2000, 2.0)],
                ),
                PackedSeries {
                    labels: bytes::Bytes::from_static(b"\x01b\x01x\x01a\x01y"),
                    timestamps: vec![1000],
                    values: vec![1.0],
                    ..Default::default()
                },
                uneven,
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.samples_written, 3);
    let errors: Vec<_> = resp
        .errors
        .iter()
        .map(|e| {
            (
                Reason::try_from(e.reason).unwrap(),
                e.series.as_str(),
                e.message.as_str(),
                e.samples_refused,
            )
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, Reason::InvalidLabels);
    assert!(
        errors[0].1.starts_with("series 1 of the request"),
        "{errors:?}"
    );
    assert!(errors[0].2.contains("names not sorted"), "{errors:?}");
    assert_eq!(errors[1].1, "uneven");
    assert!(
        errors[1].2.contains("1 timestamps but 2 values"),
        "{errors:?}"
    );
    assert_eq!(errors[1].3, 2);

    let got: Vec<_> = select(&mut r.client, "t", vec![], 0)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .map(|s| {
            let name = s
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .unwrap()
                .value
                .clone();
            (
                name,
                s.samples
                    .iter()
                    .map(|x| (x.timestamp, x.value))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("old_form".to_string(), vec![(1000, 1.0)]),
            ("up".to_string(), vec![(1000, 1.0), (2000, 2.0)]),
        ]
    );
    r.stop().await;
}

#[tokio::test]
async fn per_series_refusals_come_back_without_failing_the_push() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IngesterConfig {
        max_series_per_tenant: 2,
        select_batch_series: 1,
        ..Default::default()
    };
    let mut r = start(dir.path(), cfg).await;
    let push = |series: Vec<pb::TimeSeries>| PushRequest {
        tenant: "t".into(),
        timeseries: series,
        ..Default::default()
    };
    r.client
        .push(push(vec![
            ts(&[("__name__", "a")], &[(2000, 1.0)]),
            ts(&[("__name__", "b")], &[(2000, 1.0)]),
        ]))
        .await
        .unwrap();
    let resp = r
        .client
        .push(push(vec![
            ts(&[("__name__", "a")], &[(1000, 1.0), (3000, 3.0)]),
            ts(&[("__name__", "b")], &[(2000, 5.0)]),
            ts(&[("__name__", "c")], &[(2000, 1.0)]),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.samples_written, 1, "only a@3000 is new and in order");
    let reasons: Vec<_> = resp
        .errors
        .iter()
        .map(|e| (Reason::try_from(e.reason).unwrap(), e.series.as_str()))
        .collect();
    assert!(reasons.contains(&(Reason::SeriesLimit, "c")), "{reasons:?}");
    assert!(reasons.contains(&(Reason::OutOfOrder, "a")), "{reasons:?}");
    assert!(
        reasons.contains(&(Reason::DuplicateTimestamp, "b")),
        "{reasons:?}"
    );

    // Streamed one series per message; the series limit of a query names itself.
    let batches = select(&mut r.client, "t", vec![], 0).await.unwrap();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
    let err = select(&mut r.client, "t", vec![], 1).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(err.message().contains("max_series"), "{}", err.message());

    let names = r
        .client
        .label_names(LabelNamesRequest {
            tenant: "t".into(),
            start_ms: 0,
            end_ms: i64::MAX,
            matchers: vec![],
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .names;
    assert_eq!(names, ["__name__"]);
    let values = r
        .client
        .label_values(LabelValuesRequest {
            tenant: "t".into(),
            name: "__name__".into(),
            start_ms: 0,
            end_ms: i64::MAX,
            matchers: vec![],
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(values, ["a"]);
    let bad = r
        .client
        .push(PushRequest {
            tenant: "a/b".into(),
            ..push(vec![])
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    r.stop().await;
}

/// A series and its exemplars as (labels, time, value), printed.
type Shown = (String, Vec<(String, i64, f64)>);

#[tokio::test]
async fn exemplars_are_pushed_with_their_series_queried_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let labels = |pairs: &[(&str, &str)]| {
        bytes::Bytes::copy_from_slice(Labels::from_pairs(pairs.iter().copied()).unwrap().packed())
    };
    let exemplar = |trace: &str, t: i64, v: f64| PackedExemplar {
        labels: labels(&[("trace_id", trace)]),
        timestamp_ms: t,
        value: v,
    };
    let a = [("__name__", "req_total"), ("job", "api")];
    let mut b = ts(&[("__name__", "lat_bucket"), ("le", "0.5")], &[(1000, 3.0)]);
    b.exemplars.push(pb::Exemplar {
        labels: vec![pb::Label {
            name: "trace_id".into(),
            value: "bbb".into(),
        }],
        value: 0.42,
        timestamp: 1000,
    });
    let push = PushRequest {
        tenant: "t".into(),
        timeseries: vec![b],
        series: vec![
            PackedSeries {
                labels: labels(&a),
                timestamps: vec![1000],
                values: vec![1.0],
                exemplars: vec![exemplar("a1", 1000, 1.0)],
            },
            // Exemplars alone, as Prometheus sends them: its series has
            // samples in the same push.
            PackedSeries {
                labels: labels(&a),
                exemplars: vec![exemplar("a2", 2000, 2.0)],
                ..Default::default()
            },
            // No sample of this series is in the head: refused, counted.
            PackedSeries {
                labels: labels(&[("__name__", "never")]),
                exemplars: vec![exemplar("n", 1000, 1.0)],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let query = ExemplarsRequest {
        tenant: "t".into(),
        start_ms: 0,
        end_ms: 10_000,
        matcher_sets: vec![
            MatcherSet {
                matchers: vec![eq("__name__", "req_total")],
            },
            MatcherSet {
                matchers: vec![eq("le", "0.5")],
            },
            MatcherSet {
                matchers: vec![eq("__name__", "never")],
            },
        ],
    };
    let shown = |resp: tidemark_proto::ingester::ExemplarsResponse| -> Vec<Shown> {
        resp.series
            .into_iter()
            .map(|s| {
                let series = Labels::from_packed(&s.labels).unwrap().to_string();
                let ex = s
                    .exemplars
                    .into_iter()
                    .map(|e| {
                        let l = Labels::from_packed(&e.labels).unwrap();
                        (l.to_string(), e.timestamp_ms, e.value)
                    })
                    .collect();
                (series, ex)
            })
            .collect()
    };
    let want = vec![
        (
            r#"lat_bucket{le="0.5"}"#.to_string(),
            vec![(r#"{trace_id="bbb"}"#.to_string(), 1000, 0.42)],
        ),
        (
            r#"req_total{job="api"}"#.to_string(),
            vec![
                (r#"{trace_id="a1"}"#.to_string(), 1000, 1.0),
                (r#"{trace_id="a2"}"#.to_string(), 2000, 2.0),
            ],
        ),
    ];
    {
        let mut r = start(dir.path(), IngesterConfig::default()).await;
        let resp = r.client.push(push).await.unwrap().into_inner();
        assert_eq!(resp.samples_written, 2);
        assert_eq!(resp.exemplars_written, 3);
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
        let got = r.client.query_exemplars(query.clone()).await.unwrap();
        assert_eq!(shown(got.into_inner()), want);
        let text = r.ctx.metrics.encode();
        assert!(
            text.contains(
                r#"tidemark_ingester_refused_exemplars_total{tenant="t",reason="exemplar_unknown_series"} 1"#
            ),
            "{text}"
        );
        r.stop().await;
    }
    // After a restart the WAL brings them back.
    let mut r = start(dir.path(), IngesterConfig::default()).await;
    let got = r.client.query_exemplars(query).await.unwrap();
    assert_eq!(shown(got.into_inner()), want);
    r.stop().await;
}
