//! Reading from ingesters: every select, label names, label values and
//! exemplars call goes to each ingester of the ring's read set in parallel.

use std::sync::Arc;

use futures::future::join_all;
use prost::Message as _;
use tidemark_ingester_client::{ClientPool, IngesterRing, Instance, ReplicationSet};
use tidemark_model::{Exemplar, Labels, MatchOp, Matcher, Sample, TenantId};
use tidemark_promql::{Queryable, SelectHints, Series, StorageError};
use tidemark_proto::ingester::ingester_client::IngesterClient;
use tidemark_proto::ingester::{
    self as ing, LabelNamesRequest, LabelValuesRequest, SelectRequest, StreamedSeries,
    chunk::Encoding,
};
use tidemark_proto::prometheus::{LabelMatcher, label_matcher};
use tidemark_tsdb::{SeriesExemplars, XorChunk};
use tonic::transport::Channel;

use super::limits::QueryLimiter;
use super::merge::SeriesMerger;
use super::source::{ExemplarsRequest, LabelsRequest, ReadSource, TenantReader, union};

/// Reads recent data from the ingesters the ring names.
///
/// Every ingester of the read set is asked; the answers are merged and
/// replica duplicates removed. Up to the set's `max_errors` ingesters may
/// fail without failing the query (their data is held by the others);
/// more failures fail the query as `unavailable`. A limit exceeded, here or
/// reported by an ingester, fails the query at once.
pub struct IngesterSource {
    ring: Arc<dyn IngesterRing>,
    pool: Arc<ClientPool>,
}

impl IngesterSource {
    pub fn new(ring: Arc<dyn IngesterRing>, pool: Arc<ClientPool>) -> Self {
        IngesterSource { ring, pool }
    }
}

impl ReadSource for IngesterSource {
    fn reader(&self, tenant: &TenantId, limiter: Arc<QueryLimiter>) -> Arc<dyn TenantReader> {
        Arc::new(IngesterReader {
            ring: Arc::clone(&self.ring),
            pool: Arc::clone(&self.pool),
            tenant: tenant.clone(),
            limiter,
        })
    }
}

/// One tenant's view of the ingesters for one query.
pub struct IngesterReader {
    ring: Arc<dyn IngesterRing>,
    pool: Arc<ClientPool>,
    tenant: TenantId,
    limiter: Arc<QueryLimiter>,
}

/// How one ingester's call ended, when it did not succeed.
enum CallError {
    /// The ingester is unreachable or failed: counts against `max_errors`.
    Failed(String),
    /// A query limit was exceeded: fails the query whatever the others say.
    Limit(StorageError),
}

impl CallError {
    fn from_status(inst: &Instance, s: &tonic::Status) -> CallError {
        if s.code() == tonic::Code::ResourceExhausted {
            return CallError::Limit(StorageError::Limit(format!(
                "ingester {} refused the query: {}",
                inst.grpc_addr,
                s.message()
            )));
        }
        CallError::Failed(format!(
            "{} ({}): {}",
            inst.grpc_addr,
            s.code(),
            s.message()
        ))
    }
}

impl IngesterReader {
    /// The pooled gRPC client of one ingester, failing as that ingester's call.
    fn client(&self, inst: &Instance) -> Result<IngesterClient<Channel>, CallError> {
        self.pool
            .client(&inst.grpc_addr)
            .map_err(|e| CallError::Failed(format!("{}: {e}", inst.grpc_addr)))
    }

    fn read_set(&self) -> Result<ReplicationSet, StorageError> {
        self.ring
            .read_set()
            .map_err(|e| StorageError::Unavailable(e.to_string()))
    }

    /// Runs `call` on every ingester of the read set in parallel and returns
    /// the answers of those that succeeded, in read-set order, unless more
    /// than `max_errors` failed or a limit was hit.
    async fn fan_out<T, F, Fut>(&self, what: &str, call: F) -> Result<Vec<T>, StorageError>
    where
        F: Fn(Instance) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let set = self.read_set()?;
        let total = set.instances.len();
        let results = join_all(set.instances.iter().cloned().map(call)).await;
        let mut ok = Vec::with_capacity(total);
        let mut failures = Vec::new();
        for r in results {
            match r {
                Ok(v) => ok.push(v),
                Err(CallError::Limit(e)) => return Err(e),
                Err(CallError::Failed(msg)) => failures.push(msg),
            }
        }
        if failures.len() > set.max_errors {
            return Err(StorageError::Unavailable(format!(
                "{what}: {} of {total} ingesters failed, at most {} may: {}",
                failures.len(),
                set.max_errors,
                failures.join("; ")
            )));
        }
        for f in &failures {
            tracing::warn!(tenant = %self.tenant, call = what, error = %f, "ingester failed; answering from its replicas");
        }
        Ok(ok)
    }

    /// Streams one ingester's answer to a select, decoding and counting it.
    async fn select_one(
        &self,
        inst: Instance,
        req: SelectRequest,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, CallError> {
        let mut client = self.client(&inst)?;
        let mut stream = client
            .select(req)
            .await
            .map_err(|s| CallError::from_status(&inst, &s))?
            .into_inner();
        let mut out = Vec::new();
        loop {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(s) => return Err(CallError::from_status(&inst, &s)),
            };
            self.limiter
                .add_bytes(msg.encoded_len() as u64)
                .map_err(CallError::Limit)?;
            for s in msg.series {
                let series = decode_series(s).map_err(|e| {
                    CallError::Failed(format!("{}: bad series in answer: {e}", inst.grpc_addr))
                })?;
                self.limiter
                    .add_samples(series.1.len() as u64)
                    .map_err(CallError::Limit)?;
                out.push(series);
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Queryable for IngesterReader {
    async fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let req = SelectRequest {
            tenant: self.tenant.as_str().to_string(),
            start_ms: hints.start,
            end_ms: hints.end,
            matchers: to_proto_matchers(matchers),
            max_series: self.limiter.limits().max_series,
        };
        let answers = self
            .fan_out("select", |inst| self.select_one(inst, req.clone()))
            .await?;
        let mut merger = SeriesMerger::new();
        for answer in answers {
            for (labels, samples) in answer {
                if merger.add(labels, samples) {
                    self.limiter.add_series(1)?;
                }
            }
        }
        Ok(merger.finish())
    }
}

#[async_trait::async_trait]
impl TenantReader for IngesterReader {
    async fn label_names(&self, req: &LabelsRequest) -> Result<Vec<String>, StorageError> {
        let msg = LabelNamesRequest {
            tenant: self.tenant.as_str().to_string(),
            start_ms: req.start,
            end_ms: req.end,
            matchers: to_proto_matchers(&req.matchers),
            limit: req.limit as u64,
        };
        let answers = self
            .fan_out("label names", |inst| {
                let msg = msg.clone();
                async move {
                    let mut c = self.client(&inst)?;
                    c.label_names(msg)
                        .await
                        .map(|r| r.into_inner().names)
                        .map_err(|s| CallError::from_status(&inst, &s))
                }
            })
            .await?;
        union(answers.into_iter().map(Ok))
    }

    async fn label_values(
        &self,
        name: &str,
        req: &LabelsRequest,
    ) -> Result<Vec<String>, StorageError> {
        let msg = LabelValuesRequest {
            tenant: self.tenant.as_str().to_string(),
            name: name.to_string(),
            start_ms: req.start,
            end_ms: req.end,
            matchers: to_proto_matchers(&req.matchers),
            limit: req.limit as u64,
        };
        let answers = self
            .fan_out("label values", |inst| {
                let msg = msg.clone();
                async move {
                    let mut c = self.client(&inst)?;
                    c.label_values(msg)
                        .await
                        .map(|r| r.into_inner().values)
                        .map_err(|s| CallError::from_status(&inst, &s))
                }
            })
            .await?;
        union(answers.into_iter().map(Ok))
    }

    async fn exemplars(
        &self,
        req: &ExemplarsRequest,
    ) -> Result<Vec<SeriesExemplars>, StorageError> {
        let msg = ing::ExemplarsRequest {
            tenant: self.tenant.as_str().to_string(),
            start_ms: req.start,
            end_ms: req.end,
            matcher_sets: req
                .matcher_sets
                .iter()
                .map(|ms| ing::MatcherSet {
                    matchers: to_proto_matchers(ms),
                })
                .collect(),
        };
        let answers = self
            .fan_out("exemplars", |inst| {
                let msg = msg.clone();
                async move {
                    let mut c = self.client(&inst)?;
                    let resp = c
                        .query_exemplars(msg)
                        .await
                        .map_err(|s| CallError::from_status(&inst, &s))?;
                    decode_exemplars(resp.into_inner()).map_err(|e| {
                        CallError::Failed(format!("{}: bad exemplars answer: {e}", inst.grpc_addr))
                    })
                }
            })
            .await?;
        Ok(super::exemplars::merge(answers))
    }
}

/// An ingester's exemplars answer in the data model.
fn decode_exemplars(resp: ing::ExemplarsResponse) -> Result<Vec<SeriesExemplars>, String> {
    resp.series
        .into_iter()
        .map(|s| {
            let labels = Labels::from_packed(&s.labels).map_err(|e| e.to_string())?;
            let exemplars = s
                .exemplars
                .into_iter()
                .map(|e| {
                    Ok(Exemplar {
                        labels: Labels::from_packed(&e.labels).map_err(|e| e.to_string())?,
                        t: e.timestamp_ms,
                        v: e.value,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(SeriesExemplars { labels, exemplars })
        })
        .collect()
}

/// The wire form of matchers.
pub(crate) fn to_proto_matchers(ms: &[Matcher]) -> Vec<LabelMatcher> {
    ms.iter()
        .map(|m| LabelMatcher {
            r#type: match m.op {
                MatchOp::Equal => label_matcher::Type::Eq,
                MatchOp::NotEqual => label_matcher::Type::Neq,
                MatchOp::Regex => label_matcher::Type::Re,
                MatchOp::NotRegex => label_matcher::Type::Nre,
            } as i32,
            name: m.name.clone(),
            value: m.value.clone(),
        })
        .collect()
}

/// Labels and samples of one streamed series; chunks are decoded.
fn decode_series(s: StreamedSeries) -> Result<(Labels, Vec<Sample>), String> {
    let labels = Labels::from_pairs(s.labels.into_iter().map(|l| (l.name, l.value)))
        .map_err(|e| e.to_string())?;
    let mut samples: Vec<Sample> = s
        .samples
        .into_iter()
        .map(|p| Sample::new(p.timestamp, p.value))
        .collect();
    for c in s.chunks {
        match Encoding::try_from(c.encoding) {
            Ok(Encoding::Xor) => {
                let chunk = XorChunk::from_bytes(c.data).map_err(|e| e.to_string())?;
                samples.extend(chunk.samples().map_err(|e| format!("{labels}: {e}"))?);
            }
            _ => {
                return Err(format!(
                    "{labels}: chunk encoding {} is not supported",
                    c.encoding
                ));
            }
        }
    }
    Ok((labels, samples))
}
