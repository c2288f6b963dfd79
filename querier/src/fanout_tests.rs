//! Fan-out over real gRPC: fake ingesters implementing the `Ingester`
//! service on 127.0.0.1:0, some of them down or misbehaving.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tidemark_ingester_client::{ClientPool, IngesterRing, Instance, ReplicationSet, RingError};
use tidemark_model::{Labels, MatchOp, Matcher, STALE_NAN, Sample, TenantId, is_stale_nan};
use tidemark_promql::{SelectHints, StorageError};
use tidemark_proto::ingester::ingester_server::{Ingester, IngesterServer};
use tidemark_proto::ingester::{
    Chunk, ExemplarsRequest, ExemplarsResponse, LabelNamesRequest, LabelNamesResponse,
    LabelValuesRequest, LabelValuesResponse, PackedExemplar, PushRequest, PushResponse,
    SelectRequest, SelectResponse, SeriesExemplars, StreamedSeries, chunk::Encoding,
};
use tidemark_proto::prometheus::{self as pb, label_matcher};
use tidemark_server::Tenancy;
use tidemark_tsdb::XorAppender;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::fanout::{self, IngesterSource, LabelsRequest, QueryLimiter, QueryLimits, ReadSource};
use crate::{Querier, QuerierConfig};

/// How a fake ingester behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Healthy,
    /// Sends samples as XOR chunks instead of decoded samples.
    Chunks,
    /// Answers every call with UNAVAILABLE.
    Failing,
    /// Refuses with RESOURCE_EXHAUSTED, as an ingester over its own limit.
    OverLimit,
}

struct FakeIngester {
    tenant: String,
    series: Vec<(Labels, Vec<Sample>)>,
    mode: Mode,
}

fn to_matchers(ms: &[pb::LabelMatcher]) -> Vec<Matcher> {
    ms.iter()
        .map(|m| {
            let op = match label_matcher::Type::try_from(m.r#type).unwrap() {
                label_matcher::Type::Eq => MatchOp::Equal,
                label_matcher::Type::Neq => MatchOp::NotEqual,
                label_matcher::Type::Re => MatchOp::Regex,
                label_matcher::Type::Nre => MatchOp::NotRegex,
            };
            Matcher::new(op, m.name.clone(), m.value.clone()).unwrap()
        })
        .collect()
}

impl FakeIngester {
    fn check(&self, tenant: &str) -> Result<(), Status> {
        match self.mode {
            Mode::Failing => Err(Status::unavailable("ingester is stopping")),
            Mode::OverLimit => Err(Status::resource_exhausted(
                "too many series for this query (limit 10)",
            )),
            _ if tenant != self.tenant => Err(Status::invalid_argument("wrong tenant")),
            _ => Ok(()),
        }
    }

    fn matching(&self, ms: &[pb::LabelMatcher]) -> Vec<&(Labels, Vec<Sample>)> {
        let ms = to_matchers(ms);
        self.series
            .iter()
            .filter(|(l, _)| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            .collect()
    }
}

type SelectStream = Pin<Box<dyn Stream<Item = Result<SelectResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingester for FakeIngester {
    async fn push(&self, _r: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        Err(Status::unimplemented("read-only fake"))
    }

    type SelectStream = SelectStream;

    async fn select(
        &self,
        r: Request<SelectRequest>,
    ) -> Result<Response<Self::SelectStream>, Status> {
        let r = r.into_inner();
        self.check(&r.tenant)?;
        // One series per message, so the querier reads a real stream.
        let msgs: Vec<Result<SelectResponse, Status>> = self
            .matching(&r.matchers)
            .into_iter()
            .map(|(l, samples)| {
                let samples: Vec<&Sample> = samples
                    .iter()
                    .filter(|s| s.t >= r.start_ms && s.t <= r.end_ms)
                    .collect();
                let labels = l
                    .iter()
                    .map(|x| pb::Label {
                        name: x.0.to_string(),
                        value: x.1.to_string(),
                    })
                    .collect();
                let mut s = StreamedSeries {
                    labels,
                    ..StreamedSeries::default()
                };
                if self.mode == Mode::Chunks {
                    let mut app = XorAppender::new();
                    for p in &samples {
                        app.append(p.t, p.v).unwrap();
                    }
                    s.chunks.push(Chunk {
                        min_time_ms: app.min_time().unwrap_or(0),
                        max_time_ms: app.max_time().unwrap_or(0),
                        encoding: Encoding::Xor as i32,
                        data: app.into_chunk().into_bytes(),
                    });
                } else {
                    s.samples = samples
                        .iter()
                        .map(|p| pb::Sample {
                            value: p.v,
                            timestamp: p.t,
                        })
                        .collect();
                }
                Ok(SelectResponse { series: vec![s] })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(msgs))))
    }

    async fn label_names(
        &self,
        r: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        let r = r.into_inner();
        self.check(&r.tenant)?;
        let mut names: Vec<String> = self
            .matching(&r.matchers)
            .iter()
            .flat_map(|(l, _)| l.iter().map(|x| x.0.to_string()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(Response::new(LabelNamesResponse { names }))
    }

    async fn label_values(
        &self,
        r: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        let r = r.into_inner();
        self.check(&r.tenant)?;
        let mut values: Vec<String> = self
            .matching(&r.matchers)
            .iter()
            .filter_map(|(l, _)| l.get(&r.name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(Response::new(LabelValuesResponse { values }))
    }

    /// One exemplar per sample in range, its trace the sample's time.
    async fn query_exemplars(
        &self,
        r: Request<ExemplarsRequest>,
    ) -> Result<Response<ExemplarsResponse>, Status> {
        let r = r.into_inner();
        self.check(&r.tenant)?;
        let mut series = Vec::new();
        for (l, samples) in &self.series {
            let matched = r.matcher_sets.iter().any(|set| {
                to_matchers(&set.matchers)
                    .iter()
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            });
            if !matched {
                continue;
            }
            let exemplars = samples
                .iter()
                .filter(|s| s.t >= r.start_ms && s.t <= r.end_ms)
                .map(|s| PackedExemplar {
                    labels: bytes::Bytes::from_owner(
                        Labels::from_pairs([("trace_id", s.t.to_string())]).unwrap(),
                    ),
                    timestamp_ms: s.t,
                    value: s.v,
                })
                .collect();
            series.push(SeriesExemplars {
                labels: bytes::Bytes::from_owner(l.clone()),
                exemplars,
            });
        }
        Ok(Response::new(ExemplarsResponse { series }))
    }
}

/// A ring that answers with a fixed read set.
struct FixedRing(ReplicationSet);

impl IngesterRing for FixedRing {
    fn write_set(&self, _h: u64) -> Result<ReplicationSet, RingError> {
        Ok(self.0.clone())
    }
    fn read_set(&self) -> Result<ReplicationSet, RingError> {
        Ok(self.0.clone())
    }
}

/// Fake ingesters on real listeners; stopped when dropped.
struct Cluster {
    addrs: Vec<String>,
    stop: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Cluster {
    async fn start(fakes: Vec<Option<FakeIngester>>) -> Cluster {
        let stop = CancellationToken::new();
        let mut addrs = Vec::new();
        for fake in fakes {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            match fake {
                // A down ingester: the port was bound and released, so
                // connecting is refused.
                None => drop(listener),
                Some(f) => {
                    let stop = stop.clone();
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                    tokio::spawn(async move {
                        tonic::transport::Server::builder()
                            .add_service(IngesterServer::new(f))
                            .serve_with_incoming_shutdown(incoming, stop.cancelled())
                            .await
                            .unwrap();
                    });
                }
            }
            addrs.push(addr);
        }
        Cluster { addrs, stop }
    }

    fn source(&self, max_errors: usize) -> IngesterSource {
        let instances = self
            .addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Instance {
                id: format!("ingester-{i}"),
                grpc_addr: a.clone(),
                zone: String::new(),
            })
            .collect();
        IngesterSource::new(
            Arc::new(FixedRing(ReplicationSet {
                instances,
                max_errors,
            })),
            Arc::new(ClientPool::new(16 << 20, std::time::Duration::from_secs(5))),
        )
    }
}

fn lbl(job: &str) -> Labels {
    Labels::from_pairs([("__name__", "up"), ("job", job)]).unwrap()
}

/// Samples every 15s from `from` to `to` seconds, value = t in seconds.
fn samples(from: i64, to: i64) -> Vec<Sample> {
    (from..=to)
        .step_by(15)
        .map(|s| Sample::new(s * 1000, s as f64))
        .collect()
}

fn fake(mode: Mode, series: Vec<(Labels, Vec<Sample>)>) -> Option<FakeIngester> {
    Some(FakeIngester {
        tenant: "team-a".into(),
        series,
        mode,
    })
}

fn tenant() -> TenantId {
    TenantId::new("team-a").unwrap()
}

fn up_api() -> Vec<Matcher> {
    vec![
        Matcher::equal("__name__", "up"),
        Matcher::equal("job", "api"),
    ]
}

fn hints(start: i64, end: i64) -> SelectHints {
    SelectHints {
        start,
        end,
        ..SelectHints::default()
    }
}

#[tokio::test]
async fn replicas_merge_and_duplicates_appear_once_with_one_ingester_down() {
    // Three replicas of the same series; each copy is partial (as after a
    // restart) and they overlap; the third ingester is down.
    let cluster = Cluster::start(vec![
        fake(Mode::Healthy, vec![(lbl("api"), samples(0, 300))]),
        fake(
            Mode::Chunks,
            vec![(lbl("api"), samples(150, 600)), (lbl("db"), samples(0, 60))],
        ),
        None,
    ])
    .await;
    let reader = cluster
        .source(1)
        .reader(&tenant(), Arc::new(QueryLimiter::unlimited()));
    let got = reader.select(&hints(0, 600_000), &up_api()).await.unwrap();
    assert_eq!(got.len(), 1, "one series for job=api: {got:?}");
    assert_eq!(got[0].labels, lbl("api"));
    assert_eq!(
        got[0].samples,
        samples(0, 600),
        "every timestamp exactly once"
    );

    let names = reader.label_names(&LabelsRequest::default()).await.unwrap();
    assert_eq!(names, vec!["__name__", "job"]);
    let jobs = reader
        .label_values("job", &LabelsRequest::default())
        .await
        .unwrap();
    assert_eq!(jobs, vec!["api", "db"], "union over replicas");
}

#[tokio::test]
async fn exemplars_of_replicas_merge_once_with_one_ingester_down() {
    let cluster = Cluster::start(vec![
        fake(Mode::Healthy, vec![(lbl("api"), samples(0, 30))]),
        fake(
            Mode::Healthy,
            vec![(lbl("api"), samples(15, 45)), (lbl("db"), samples(0, 0))],
        ),
        None,
    ])
    .await;
    let reader = cluster
        .source(1)
        .reader(&tenant(), Arc::new(QueryLimiter::unlimited()));
    let req = fanout::ExemplarsRequest {
        start: 0,
        end: 40_000,
        matcher_sets: vec![up_api(), vec![Matcher::equal("job", "db")]],
    };
    let got = reader.exemplars(&req).await.unwrap();
    let shown: Vec<(String, Vec<i64>)> = got
        .iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.exemplars.iter().map(|e| e.t).collect(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            (r#"up{job="api"}"#.to_string(), vec![0, 15_000, 30_000]),
            (r#"up{job="db"}"#.to_string(), vec![0]),
        ]
    );

    // Two down of three is more than max_errors allows.
    let down = Cluster::start(vec![fake(Mode::Failing, vec![]), None]).await;
    let err = down
        .source(0)
        .reader(&tenant(), Arc::new(QueryLimiter::unlimited()))
        .exemplars(&req)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn stale_markers_survive_the_fan_out_bit_exact() {
    let mut s = samples(0, 30);
    s.push(Sample::new(45_000, STALE_NAN));
    let cluster = Cluster::start(vec![
        fake(Mode::Healthy, vec![(lbl("api"), s.clone())]),
        fake(Mode::Chunks, vec![(lbl("api"), s)]),
    ])
    .await;
    let reader = cluster
        .source(1)
        .reader(&tenant(), Arc::new(QueryLimiter::unlimited()));
    let got = reader.select(&hints(0, 60_000), &up_api()).await.unwrap();
    let last = got[0].samples.last().unwrap();
    assert_eq!(last.t, 45_000);
    assert!(is_stale_nan(last.v));
}

#[tokio::test]
async fn more_failures_than_max_errors_fail_as_unavailable() {
    let cluster = Cluster::start(vec![
        fake(Mode::Healthy, vec![(lbl("api"), samples(0, 60))]),
        fake(Mode::Failing, vec![]),
        None,
    ])
    .await;
    let reader = cluster
        .source(1)
        .reader(&tenant(), Arc::new(QueryLimiter::unlimited()));
    let err = reader
        .select(&hints(0, 60_000), &up_api())
        .await
        .unwrap_err();
    let StorageError::Unavailable(msg) = &err else {
        panic!("expected unavailable, got {err}");
    };
    assert!(
        msg.contains("2 of 3 ingesters failed, at most 1 may"),
        "{msg}"
    );
    assert!(
        msg.contains(&cluster.addrs[1]),
        "names the failed ingester: {msg}"
    );
    assert!(msg.contains("ingester is stopping"), "{msg}");
}

#[tokio::test]
async fn an_ingester_over_its_limit_fails_the_query_even_within_max_errors() {
    let cluster = Cluster::start(vec![
        fake(Mode::Healthy, vec![(lbl("api"), samples(0, 60))]),
        fake(Mode::OverLimit, vec![]),
        fake(Mode::Healthy, vec![(lbl("api"), samples(0, 60))]),
    ])
    .await;
    let reader = cluster
        .source(1)
        .reader(&tenant(), Arc::new(QueryLimiter::unlimited()));
    let err = reader
        .select(&hints(0, 60_000), &up_api())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Limit(_)), "{err}");
    assert!(err.to_string().contains("limit 10"), "{err}");
}

#[tokio::test]
async fn querier_limits_name_their_setting() {
    let all: Vec<(Labels, Vec<Sample>)> = ["a", "b", "c"]
        .iter()
        .map(|j| (lbl(j), samples(0, 600)))
        .collect();
    let cluster = Cluster::start(vec![
        fake(Mode::Healthy, all.clone()),
        fake(Mode::Healthy, all),
    ])
    .await;
    let src = cluster.source(1);
    let any = [Matcher::equal("__name__", "up")];
    let series_limited = src.reader(
        &tenant(),
        Arc::new(QueryLimiter::new(QueryLimits {
            max_series: 2,
            ..QueryLimits::default()
        })),
    );
    let e = series_limited
        .select(&hints(0, 600_000), &any)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("querier.max_fetched_series_per_query"),
        "{e}"
    );
    // Replicas count: 3 series x 41 samples x 2 copies are fetched.
    let samples_limited = src.reader(
        &tenant(),
        Arc::new(QueryLimiter::new(QueryLimits {
            max_samples: 200,
            ..QueryLimits::default()
        })),
    );
    let e = samples_limited
        .select(&hints(0, 600_000), &any)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("querier.max_samples"), "{e}");
    let bytes_limited = src.reader(
        &tenant(),
        Arc::new(QueryLimiter::new(QueryLimits {
            max_bytes: 100,
            ..QueryLimits::default()
        })),
    );
    let e = bytes_limited
        .select(&hints(0, 600_000), &any)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("querier.max_fetched_bytes_per_query"),
        "{e}"
    );
}

/// The whole path: HTTP API -> engine -> fan-out -> gRPC fakes.
#[tokio::test]
async fn query_range_over_ingesters_with_one_down() {
    let cluster = Cluster::start(vec![
        None,
        fake(Mode::Healthy, vec![(lbl("api"), samples(0, 300))]),
        fake(Mode::Chunks, vec![(lbl("api"), samples(0, 300))]),
    ])
    .await;
    let tenancy = Tenancy::new(&tidemark_server::TenancyConfig::default(), false).unwrap();
    let q = Querier::with_source(
        QuerierConfig::default(),
        tenancy,
        Arc::new(cluster.source(1)),
    );
    let router = q.http_routes();
    let (status, body) = crate::api_tests::call(
        &router,
        http::Method::GET,
        "/prometheus/api/v1/query_range?query=sum(up)&start=0&end=60&step=30",
        None,
        Some("team-a"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[0,"0"],[30,"30"],[60,"60"]]}]}}"#
    );
    // Another tenant sees nothing (the fakes refuse other tenants, so the
    // querier must have sent team-a above and team-b here).
    let (status, body) = crate::api_tests::call(
        &router,
        http::Method::GET,
        "/api/v1/query?query=up&time=60",
        None,
        Some("team-b"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("wrong tenant"), "{body}");
}
