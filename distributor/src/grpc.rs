//! The `Distributor` gRPC service: batches from scrapers.

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use tidemark_model::TenantId;
use tidemark_proto::distributor::{PushRequest, PushResponse, distributor_server::Distributor};
use tidemark_server::TenantError;
use tonic::{Request, Response, Status};

use crate::DistributorError;
use crate::distributor::Inner;
use crate::metrics::RequestLabels;

pub(crate) struct DistributorService {
    pub(crate) inner: Arc<Inner>,
}

impl DistributorService {
    /// The request's tenant under the process's tenancy rule: the `tenant`
    /// field plays the role of `X-Scope-OrgID` (ignored when multi-tenancy
    /// is off, required when it is on).
    fn tenant(&self, raw: &str) -> Result<TenantId, DistributorError> {
        if !self.inner.tenancy.enabled() || raw.is_empty() {
            return Ok(self.inner.tenancy.tenant(&HeaderMap::new())?);
        }
        TenantId::new(raw)
            .map_err(|e| DistributorError::Tenant(TenantError::Invalid(e.to_string())))
    }
}

#[tonic::async_trait]
impl Distributor for DistributorService {
    /// Writes the batch. Refused series do not fail the call: they are
    /// counted and named (up to `distributor.max_reported_refusals`) in
    /// the response; rate limits and missing quorums fail it with a
    /// retryable code.
    async fn push(&self, request: Request<PushRequest>) -> Result<Response<PushResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let result = async {
            let tenant = self.tenant(&req.tenant)?;
            self.inner
                .pusher
                .push_series(&tenant, &req.timeseries)
                .await
        }
        .await;
        let status = match &result {
            Ok(_) => "2xx",
            Err(e) => crate::http::status_class(e.http_status()),
        };
        self.inner
            .metrics
            .request_duration
            .get_or_create(&RequestLabels {
                protocol: "grpc",
                status,
            })
            .observe(started.elapsed().as_secs_f64());
        let outcome = result?;
        let max = self.inner.cfg.max_reported_refusals;
        let mut refusals: Vec<String> = outcome
            .refusals
            .iter()
            .take(max)
            .map(|r| format!("series {}: {} (reason {})", r.series, r.message, r.reason))
            .collect();
        if outcome.refusals.len() > max {
            refusals.push(format!(
                "... and {} more refused series",
                outcome.refusals.len() - max
            ));
        }
        Ok(Response::new(PushResponse {
            samples_written: outcome.samples_written,
            samples_refused: outcome.samples_refused,
            refusals,
        }))
    }
}
