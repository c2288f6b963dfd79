//! The distributor's metrics (all prefixed `tidemark_` by the registry).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tidemark_server::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TenantLabel {
    pub(crate) tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DiscardLabels {
    pub(crate) tenant: String,
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `remote_write_v1`, `remote_write_v2` or `grpc`.
    pub(crate) protocol: &'static str,
    /// The HTTP status class or gRPC outcome: `2xx`, `4xx`, `5xx`.
    pub(crate) status: &'static str,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn new_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Handles to the distributor's metrics; cloning shares them.
#[derive(Clone)]
pub(crate) struct DistributorMetrics {
    pub(crate) received_samples: Family<TenantLabel, Counter>,
    pub(crate) written_samples: Family<TenantLabel, Counter>,
    pub(crate) discarded_samples: Family<DiscardLabels, Counter>,
    pub(crate) received_exemplars: Family<TenantLabel, Counter>,
    pub(crate) dropped_exemplars: Family<TenantLabel, Counter>,
    pub(crate) request_duration: HistogramFamily,
}

impl DistributorMetrics {
    pub(crate) fn register(m: &Metrics) -> Self {
        let s = Self::unregistered();
        m.register(
            "distributor_received_samples",
            "Samples received in push requests, before validation and limits.",
            s.received_samples.clone(),
        );
        m.register(
            "distributor_written_samples",
            "Samples written to a quorum of ingesters.",
            s.written_samples.clone(),
        );
        m.register(
            "discarded_samples",
            "Samples refused, by tenant and reason (validation rule, limit, ingester refusal).",
            s.discarded_samples.clone(),
        );
        m.register(
            "distributor_received_exemplars",
            "Exemplars received in push requests.",
            s.received_exemplars.clone(),
        );
        m.register(
            "distributor_dropped_exemplars",
            "Exemplars dropped for invalid or too long labels (they fail no request).",
            s.dropped_exemplars.clone(),
        );
        m.register(
            "distributor_request_duration_seconds",
            "Time to handle one push request, by protocol and status class.",
            s.request_duration.clone(),
        );
        s
    }

    pub(crate) fn unregistered() -> Self {
        DistributorMetrics {
            received_samples: Family::default(),
            written_samples: Family::default(),
            discarded_samples: Family::default(),
            received_exemplars: Family::default(),
            dropped_exemplars: Family::default(),
            request_duration: Family::new_with_constructor(new_histogram),
        }
    }

    pub(crate) fn discard(&self, tenant: &str, reason: &'static str, n: u64) {
        if n > 0 {
            self.discarded_samples
                .get_or_create(&DiscardLabels {
                    tenant: tenant.to_string(),
                    reason,
                })
                .inc_by(n);
        }
    }
}
