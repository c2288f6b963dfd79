//! The `Ingester` gRPC service.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use tidemark_model::{Exemplar, Labels, Sample, TenantId};
use tidemark_proto::ingester::{
    ExemplarsRequest, ExemplarsResponse, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest,
    LabelValuesResponse, PushRequest, PushResponse, SelectRequest, SelectResponse, SeriesError,
    StreamedSeries, ingester_server::Ingester, series_error::Reason,
};
use tidemark_proto::prometheus as pb;
use tidemark_tsdb::{AppendResult, ExemplarAppend, TenantHeads, TsdbError};
use tonic::{Request, Response, Status};
use tracing::warn;

use crate::blocks::merge_series;
use crate::convert::{
    describe_packed, describe_proto_labels, labels_from_proto, labels_to_proto,
    matchers_from_proto, packed_series,
};
use crate::ingester::Shared;
use crate::metrics::{RefusedLabels, TenantLabel};
use crate::{IngesterError, exemplars, series_limit};

pub(crate) struct IngesterService {
    shared: Arc<Shared>,
}

impl IngesterService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        IngesterService { shared }
    }
}

pub(crate) fn tenant_of(raw: &str) -> Result<TenantId, IngesterError> {
    TenantId::new(raw).map_err(|e| IngesterError::InvalidTenant {
        tenant: raw.to_string(),
        reason: e.to_string(),
    })
}

/// The smaller of two limits where 0 means "none".
fn min_limit(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

fn reason_of(e: &TsdbError) -> (Reason, &'static str) {
    match e {
        TsdbError::HeadOutOfOrder { .. } => (Reason::OutOfOrder, "sample_out_of_order"),
        TsdbError::HeadDuplicateTimestamp { .. } => {
            (Reason::DuplicateTimestamp, "sample_duplicate_timestamp")
        }
        TsdbError::HeadOutOfBounds { .. } => (Reason::TooOld, "sample_out_of_bounds"),
        TsdbError::EmptyLabels => (Reason::InvalidLabels, "missing_labels"),
        _ => (Reason::Unknown, "unknown"),
    }
}

/// What a push did, assembled on the blocking thread.
struct PushOutcome {
    batch: Vec<(Labels, Vec<Sample>)>,
    appended: AppendResult,
    over_limit: Vec<(Labels, usize)>,
    exemplars: ExemplarAppend,
}

/// Appends a push's samples, then its exemplars (whose series the samples
/// may have just created).
fn push_blocking(
    heads: &TenantHeads,
    tenant: &TenantId,
    mut batch: Vec<(Labels, Vec<Sample>)>,
    exemplar_batch: Vec<(Labels, Vec<Exemplar>)>,
    max_series: u64,
) -> Result<PushOutcome, IngesterError> {
    let storage = |source| IngesterError::Storage {
        tenant: tenant.as_str().to_string(),
        source,
    };
    let head = heads.get_or_create(tenant).map_err(storage)?;
    let over_limit = series_limit::enforce(&head, &mut batch, max_series);
    let appended = head.append(&batch).map_err(storage)?;
    let exemplars = if exemplar_batch.is_empty() {
        ExemplarAppend::default()
    } else {
        head.append_exemplars(&exemplar_batch).map_err(storage)?
    };
    Ok(PushOutcome {
        batch,
        appended,
        over_limit,
        exemplars,
    })
}

type SelectStream = Pin<Box<dyn Stream<Item = Result<SelectResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingester for IngesterService {
    async fn push(&self, request: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let started = Instant::now();
        let heads = self.shared.heads()?;
        let req = request.into_inner();
        let tenant = tenant_of(&req.tenant)?;
        let metrics = &self.shared.metrics;
        let mut errors = Vec::new();
        let mut refused_by_reason: Vec<(&'static str, u64)> = Vec::new();
        let mut batch = Vec::with_capacity(req.timeseries.len() + req.series.len());
        let mut exemplar_batch: Vec<(Labels, Vec<Exemplar>)> = Vec::new();
        let mut exemplars_dropped = 0u64;
        for ts in req.timeseries {
            let samples: Vec<Sample> = ts
                .samples
                .iter()
                .map(|s| Sample::new(s.timestamp, s.value))
                .collect();
            match labels_from_proto(&ts.labels) {
                Ok(labels) => {
                    if !ts.exemplars.is_empty() {
                        let ex = exemplars::from_proto(&ts.exemplars, &mut exemplars_dropped);
                        exemplar_batch.push((labels.clone(), ex));
                    }
                    batch.push((labels, samples));
                }
                Err(message) => {
                    refused_by_reason.push(("label_invalid", samples.len() as u64));
                    errors.push(SeriesError {
                        reason: Reason::InvalidLabels as i32,
                        series: describe_proto_labels(&ts.labels),
                        message,
                        samples_refused: samples.len() as u64,
                    });
                }
            }
        }
        for (i, ps) in req.series.into_iter().enumerate() {
            match packed_series(&ps) {
                Ok(entry) => {
                    if !ps.exemplars.is_empty() {
                        let ex = exemplars::from_packed(&ps.exemplars, &mut exemplars_dropped);
                        exemplar_batch.push((entry.0.clone(), ex));
                    }
                    batch.push(entry);
                }
                Err(message) => {
                    let refused = ps.timestamps.len().max(ps.values.len()) as u64;
                    refused_by_reason.push(("label_invalid", refused));
                    errors.push(SeriesError {
                        reason: Reason::InvalidLabels as i32,
                        series: describe_packed(i, &ps.labels),
                        message,
                        samples_refused: refused,
                    });
                }
            }
        }
        let max_series = min_limit(self.shared.cfg.max_series_per_tenant, req.max_series);
        let t = tenant.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            push_blocking(&heads, &t, batch, exemplar_batch, max_series)
        })
        .await
        .map_err(|e| IngesterError::Internal(format!("push task failed: {e}")))?;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                warn!(tenant = %tenant, error = %e, "push failed");
                return Err(e.into());
            }
        };
        for (labels, samples) in &outcome.over_limit {
            refused_by_reason.push(("per_user_series_limit", *samples as u64));
            errors.push(SeriesError {
                reason: Reason::SeriesLimit as i32,
                series: labels.to_string(),
                message: format!(
                    "per-tenant series limit of {max_series} reached for tenant {tenant} (ingester.max_series_per_tenant / limits.max_series): new series {labels} refused"
                ),
                samples_refused: *samples as u64,
            });
        }
        for r in &outcome.appended.refused {
            let (reason, label) = reason_of(&r.error);
            refused_by_reason.push((label, r.samples as u64));
            let series = outcome
                .batch
                .get(r.index)
                .map(|(l, _)| l.to_string())
                .unwrap_or_default();
            errors.push(SeriesError {
                reason: reason as i32,
                series,
                message: r.error.to_string(),
                samples_refused: r.samples as u64,
            });
        }
        let written =
            (outcome.appended.samples_written + outcome.appended.samples_duplicate) as u64;
        let tenant_label = TenantLabel {
            tenant: tenant.as_str().to_string(),
        };
        metrics
            .ingested_samples
            .get_or_create(&tenant_label)
            .inc_by(written);
        for (reason, n) in refused_by_reason {
            metrics
                .refused_samples
                .get_or_create(&RefusedLabels {
                    tenant: tenant.as_str().to_string(),
                    reason,
                })
                .inc_by(n);
        }
        exemplars::count(&self.shared, &tenant, &outcome.exemplars, exemplars_dropped);
        metrics
            .push_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(Response::new(PushResponse {
            samples_written: written,
            errors,
            exemplars_written: outcome.exemplars.written as u64,
        }))
    }

    async fn query_exemplars(
        &self,
        request: Request<ExemplarsRequest>,
    ) -> Result<Response<ExemplarsResponse>, Status> {
        Ok(Response::new(
            exemplars::query(&self.shared, request.into_inner()).await?,
        ))
    }

    type SelectStream = SelectStream;

    async fn select(
        &self,
        request: Request<SelectRequest>,
    ) -> Result<Response<Self::SelectStream>, Status> {
        let (heads, blocks) = self.shared.tsdb()?;
        let req = request.into_inner();
        let tenant = tenant_of(&req.tenant)?;
        let matchers = matchers_from_proto(&req.matchers)?;
        let limit = min_limit(self.shared.cfg.max_series_per_query, req.max_series);
        let setting = if limit == req.max_series {
            "the request's max_series"
        } else {
            "ingester.max_series_per_query"
        };
        let (head, local) = (heads.get(&tenant), blocks.get(&tenant));
        if head.is_none() && local.is_none() {
            return Ok(Response::new(futures::stream::empty().boxed()));
        }
        let t = tenant.clone();
        let found = tokio::task::spawn_blocking(move || {
            let in_head = head
                .map(|h| h.select(&matchers, req.start_ms, req.end_ms))
                .unwrap_or_default();
            let in_blocks = match local {
                Some(b) => b.select(&matchers, req.start_ms, req.end_ms),
                None => Ok(Vec::new()),
            };
            in_blocks.map(|b| merge_series(in_head, b))
        })
        .await
        .map_err(|e| IngesterError::Internal(format!("select task failed: {e}")))?
        .map_err(|source| IngesterError::Storage {
            tenant: t.as_str().to_string(),
            source,
        })?;
        if limit > 0 && found.len() as u64 > limit {
            return Err(IngesterError::TooManySeries { limit, setting }.into());
        }
        let batch = self.shared.cfg.select_batch_series.max(1);
        let mut responses = Vec::with_capacity(found.len().div_ceil(batch));
        let mut it = found.into_iter().peekable();
        while it.peek().is_some() {
            let series = it
                .by_ref()
                .take(batch)
                .map(|s| StreamedSeries {
                    labels: labels_to_proto(&s.labels),
                    samples: s
                        .samples
                        .iter()
                        .map(|x| pb::Sample {
                            value: x.v,
                            timestamp: x.t,
                        })
                        .collect(),
                    chunks: Vec::new(),
                })
                .collect();
            responses.push(Ok(SelectResponse { series }));
        }
        Ok(Response::new(futures::stream::iter(responses).boxed()))
    }

    async fn label_names(
        &self,
        request: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        let (heads, blocks) = self.shared.tsdb()?;
        let req = request.into_inner();
        let tenant = tenant_of(&req.tenant)?;
        let matchers = matchers_from_proto(&req.matchers)?;
        let (head, local) = (heads.get(&tenant), blocks.get(&tenant));
        let (start, end) = (req.start_ms, req.end_ms);
        let t = tenant.clone();
        let mut names = tokio::task::spawn_blocking(move || {
            let mut names = head
                .map(|h| h.label_names(&matchers, start, end))
                .unwrap_or_default();
            if let Some(b) = local {
                names.extend(b.label_names(&matchers, start, end)?);
                names.sort_unstable();
                names.dedup();
            }
            Ok::<_, TsdbError>(names)
        })
        .await
        .map_err(|e| IngesterError::Internal(format!("label names task failed: {e}")))?
        .map_err(|source| IngesterError::Storage {
            tenant: t.as_str().to_string(),
            source,
        })?;
        if req.limit > 0 {
            names.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(Response::new(LabelNamesResponse { names }))
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        let (heads, blocks) = self.shared.tsdb()?;
        let req = request.into_inner();
        let tenant = tenant_of(&req.tenant)?;
        let matchers = matchers_from_proto(&req.matchers)?;
        let (head, local) = (heads.get(&tenant), blocks.get(&tenant));
        let (name, start, end) = (req.name, req.start_ms, req.end_ms);
        let t = tenant.clone();
        let mut values = tokio::task::spawn_blocking(move || {
            let mut values = head
                .map(|h| h.label_values(&name, &matchers, start, end))
                .unwrap_or_default();
            if let Some(b) = local {
                values.extend(b.label_values(&name, &matchers, start, end)?);
                values.sort_unstable();
                values.dedup();
            }
            Ok::<_, TsdbError>(values)
        })
        .await
        .map_err(|e| IngesterError::Internal(format!("label values task failed: {e}")))?
        .map_err(|source| IngesterError::Storage {
            tenant: t.as_str().to_string(),
            source,
        })?;
        if req.limit > 0 {
            values.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
        }
        Ok(Response::new(LabelValuesResponse { values }))
    }
}
