//! The write path shared by HTTP and gRPC: validate, rate-limit, shard
//! onto the ring, write each series to its replication set, and count.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use tidemark_ingester_client::{ClientPool, IngesterRing};
use tidemark_model::{TenantId, series_hash};
use tidemark_proto::ingester::{self as ing, series_error::Reason};
use tidemark_proto::prometheus as pb;
use tidemark_server::ErrorKind;
use tracing::{debug, warn};

use crate::DistributorError;
use crate::limits::Limits;
use crate::limits::LimitsResolver;
use crate::metrics::{DistributorMetrics, TenantLabel};
use crate::rate::RateLimiter;
use crate::validate::{RawSeries, Refusal, ValidSeries, Validated, validate};

/// What of a request was written, for remote write 2.0's `-Written` headers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub samples: u64,
    pub exemplars: u64,
}

/// What a push did. Refusals do not fail the push: the HTTP layer turns
/// them into a 400 that names them, gRPC returns them in the response.
#[derive(Debug, Default)]
pub struct PushOutcome {
    pub samples_written: u64,
    /// Exemplars of the series a quorum acknowledged (an ingester may still
    /// drop one, e.g. out of order, without failing anything).
    pub exemplars_written: u64,
    pub samples_refused: u64,
    /// Every refusal, validation and ingesters' alike (one per series and
    /// reason; replicas refusing the same series count once).
    pub refusals: Vec<Refusal>,
}

impl PushOutcome {
    /// `Err(Refused)` naming the first `max_reported` refusals when there
    /// are any.
    pub fn into_result(self, max_reported: usize) -> Result<Written, DistributorError> {
        if self.refusals.is_empty() {
            return Ok(Written {
                samples: self.samples_written,
                exemplars: self.exemplars_written,
            });
        }
        let mut summary = format!(
            "{} series refused ({} samples), {} samples written",
            self.refusals.len(),
            self.samples_refused,
            self.samples_written
        );
        for r in self.refusals.iter().take(max_reported) {
            summary.push_str(&format!(
                "\nseries {}: {} (reason {})",
                r.series, r.message, r.reason
            ));
        }
        if self.refusals.len() > max_reported {
            summary.push_str(&format!(
                "\n... and {} more refused series (distributor.max_reported_refusals)",
                self.refusals.len() - max_reported
            ));
        }
        Err(DistributorError::Refused {
            summary,
            written: Written {
                samples: self.samples_written,
                exemplars: self.exemplars_written,
            },
            samples_refused: self.samples_refused,
        })
    }
}

pub(crate) struct Pusher {
    pub(crate) ring: Arc<dyn IngesterRing>,
    pub(crate) pool: ClientPool,
    pub(crate) limits: LimitsResolver,
    pub(crate) rate: RateLimiter,
    pub(crate) metrics: DistributorMetrics,
}

/// Wall-clock time in ms: the reference of the timestamp limits.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ingester_reason(code: i32) -> &'static str {
    match Reason::try_from(code) {
        Ok(Reason::OutOfOrder) => "sample_out_of_order",
        Ok(Reason::DuplicateTimestamp) => "sample_duplicate_timestamp",
        Ok(Reason::TooOld) => "sample_out_of_bounds",
        Ok(Reason::InvalidLabels) => "label_invalid",
        Ok(Reason::SeriesLimit) => "per_user_series_limit",
        Ok(Reason::Unknown) | Err(_) => "ingester_refused",
    }
}

/// Replies of the replicas of one push.
struct Replicated {
    /// Samples of the series acknowledged by a quorum.
    samples_acked: u64,
    /// Exemplars of those series.
    exemplars_acked: u64,
    /// Series short of a quorum, and whether any of their failures can
    /// heal on retry.
    failed_series: usize,
    retryable: bool,
    causes: Vec<String>,
    /// Ingesters' per-series refusals, by series.
    refusals: HashMap<String, Refusal>,
}

impl Pusher {
    /// The tenant's limits, for validating its requests.
    pub(crate) fn limits(&self, tenant: &TenantId) -> Limits {
        self.limits.for_tenant(tenant)
    }

    /// Validates `timeseries` and pushes them (the gRPC path: the scrapers'
    /// batches, already decoded).
    pub(crate) async fn push_series(
        &self,
        tenant: &TenantId,
        timeseries: &[pb::TimeSeries],
    ) -> Result<PushOutcome, DistributorError> {
        let raw: Vec<RawSeries<'_>> = timeseries.iter().map(RawSeries::from_proto).collect();
        let received = raw.iter().map(RawSeries::received).sum();
        let limits = self.limits(tenant);
        let validated = validate(raw, &limits, now_ms());
        self.push(tenant, &limits, received, validated, Vec::new())
            .await
    }

    /// Pushes the validated series of one request of `tenant`, which
    /// carried `received` samples and was validated against `limits` (the
    /// same ones then rate-limit it). `pre_refused` are refusals found
    /// while decoding (counted and reported like validation's).
    pub(crate) async fn push(
        &self,
        tenant: &TenantId,
        limits: &Limits,
        received: u64,
        mut validated: Validated,
        pre_refused: Vec<Refusal>,
    ) -> Result<PushOutcome, DistributorError> {
        let t = tenant.as_str();
        self.metrics
            .received_samples
            .get_or_create(&TenantLabel {
                tenant: t.to_string(),
            })
            .inc_by(received);
        let label = TenantLabel {
            tenant: t.to_string(),
        };
        self.metrics
            .received_exemplars
            .get_or_create(&label)
            .inc_by(validated.exemplars + validated.exemplars_dropped);
        self.metrics
            .dropped_exemplars
            .get_or_create(&label)
            .inc_by(validated.exemplars_dropped);
        let mut refusals = pre_refused;
        refusals.append(&mut validated.refusals);

        if !self.rate.allow(
            tenant,
            validated.samples,
            limits.ingestion_rate,
            limits.ingestion_burst,
            Instant::now(),
        ) {
            self.metrics.discard(t, "rate_limited", validated.samples);
            for r in &refusals {
                self.metrics.discard(t, r.reason, r.samples);
            }
            return Err(DistributorError::RateLimited {
                tenant: t.to_string(),
                samples: validated.samples,
                rate: limits.ingestion_rate,
                burst: limits.ingestion_burst,
            });
        }

        let replicated = if validated.series.is_empty() {
            None
        } else {
            Some(
                self.replicate(tenant, &validated.series, limits.max_series)
                    .await?,
            )
        };
        let mut written = 0;
        let mut exemplars_written = 0;
        let mut failure = None;
        if let Some(rep) = replicated {
            exemplars_written = rep.exemplars_acked;
            let mut ingester_refused: Vec<Refusal> = rep.refusals.into_values().collect();
            ingester_refused.sort_by(|a, b| a.series.cmp(&b.series));
            let refused_by_ingesters: u64 = ingester_refused.iter().map(|r| r.samples).sum();
            written = rep.samples_acked.saturating_sub(refused_by_ingesters);
            refusals.extend(ingester_refused);
            if rep.failed_series > 0 {
                failure = Some((rep.failed_series, rep.retryable, rep.causes));
            }
        }
        for r in &refusals {
            self.metrics.discard(t, r.reason, r.samples);
        }
        self.metrics
            .written_samples
            .get_or_create(&TenantLabel {
                tenant: t.to_string(),
            })
            .inc_by(written);
        if let Some((series, retryable, causes)) = failure {
            let cause = causes.join("; ");
            warn!(tenant = t, series, %cause, "write quorum not reached");
            if !retryable {
                refusals.push(Refusal {
                    series: format!("{series} series"),
                    reason: "ingester_refused",
                    message: cause,
                    samples: 0,
                });
            } else {
                return Err(DistributorError::QuorumNotReached {
                    series,
                    written: Written {
                        samples: written,
                        exemplars: exemplars_written,
                    },
                    cause,
                });
            }
        }
        let samples_refused = refusals.iter().map(|r| r.samples).sum();
        Ok(PushOutcome {
            samples_written: written,
            exemplars_written,
            samples_refused,
            refusals,
        })
    }

    /// Writes every series to its replication set, in parallel per ingester.
    async fn replicate(
        &self,
        tenant: &TenantId,
        series: &[ValidSeries],
        max_series: u64,
    ) -> Result<Replicated, DistributorError> {
        let mut quorum = Vec::with_capacity(series.len());
        let mut per_ingester: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in series.iter().enumerate() {
            let set = self.ring.write_set(series_hash(tenant, &s.labels))?;
            quorum.push(set.quorum());
            for inst in set.instances {
                per_ingester.entry(inst.grpc_addr).or_default().push(i);
            }
        }
        let calls = per_ingester.into_iter().map(|(addr, idx)| async move {
            let req = ing::PushRequest {
                tenant: tenant.as_str().to_string(),
                timeseries: Vec::new(),
                metadata: Vec::new(),
                max_series,
                series: idx.iter().map(|&i| series[i].packed.clone()).collect(),
            };
            let result = match self.pool.client(&addr) {
                Ok(mut c) => c.push(req).await.map(|r| r.into_inner()),
                Err(e) => Err(tonic::Status::unavailable(e.to_string())),
            };
            (addr, idx, result)
        });
        let mut acks = vec![0usize; series.len()];
        let mut rep = Replicated {
            samples_acked: 0,
            exemplars_acked: 0,
            failed_series: 0,
            retryable: false,
            causes: Vec::new(),
            refusals: HashMap::new(),
        };
        let mut failures: Vec<(String, tonic::Status)> = Vec::new();
        for (addr, idx, result) in join_all(calls).await {
            match result {
                Ok(resp) => {
                    for &i in &idx {
                        acks[i] += 1;
                    }
                    for e in resp.errors {
                        let refusal = Refusal {
                            series: e.series.clone(),
                            reason: ingester_reason(e.reason),
                            message: e.message,
                            samples: e.samples_refused,
                        };
                        rep.refusals
                            .entry(e.series)
                            .and_modify(|r| {
                                if refusal.samples > r.samples {
                                    *r = refusal.clone();
                                }
                            })
                            .or_insert(refusal);
                    }
                }
                Err(status) => {
                    debug!(ingester = %addr, error = %status, "push to ingester failed");
                    failures.push((addr, status));
                }
            }
        }
        for (i, s) in series.iter().enumerate() {
            if acks[i] >= quorum[i] {
                rep.samples_acked += s.packed.timestamps.len() as u64;
                rep.exemplars_acked += s.packed.exemplars.len() as u64;
            } else {
                rep.failed_series += 1;
            }
        }
        if rep.failed_series > 0 {
            failures.sort_by(|a, b| a.0.cmp(&b.0));
            rep.retryable = failures.is_empty()
                || failures
                    .iter()
                    .any(|(_, s)| ErrorKind::from_grpc_code(s.code()).retryable());
            rep.causes = failures
                .iter()
                .map(|(addr, s)| format!("ingester {addr}: {}", s.message()))
                .collect();
        }
        Ok(rep)
    }
}
