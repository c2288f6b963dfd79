//! The ingester's metrics (all prefixed `tidemark_` by the registry).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tidemark_server::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TenantLabel {
    pub(crate) tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RefusedLabels {
    pub(crate) tenant: String,
    pub(crate) reason: &'static str,
}

/// Handles to the ingester's metrics; cloning shares them.
#[derive(Clone)]
pub(crate) struct IngesterMetrics {
    pub(crate) ingested_samples: Family<TenantLabel, Counter>,
    pub(crate) refused_samples: Family<RefusedLabels, Counter>,
    pub(crate) ingested_exemplars: Family<TenantLabel, Counter>,
    pub(crate) refused_exemplars: Family<RefusedLabels, Counter>,
    pub(crate) memory_series: Family<TenantLabel, Gauge>,
    pub(crate) head_memory_bytes: Gauge,
    pub(crate) wal_fsyncs: Counter,
    pub(crate) wal_fsync_seconds: Counter<f64, AtomicU64>,
    pub(crate) push_duration: Histogram,
}

impl IngesterMetrics {
    pub(crate) fn register(m: &Metrics) -> Self {
        let s = IngesterMetrics {
            ingested_samples: Family::default(),
            refused_samples: Family::default(),
            ingested_exemplars: Family::default(),
            refused_exemplars: Family::default(),
            memory_series: Family::default(),
            head_memory_bytes: Gauge::default(),
            wal_fsyncs: Counter::default(),
            wal_fsync_seconds: Counter::default(),
            push_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        };
        m.register(
            "ingester_ingested_samples",
            "Samples appended to the head and acknowledged (in the WAL per the fsync policy).",
            s.ingested_samples.clone(),
        );
        m.register(
            "ingester_refused_samples",
            "Samples the ingester refused, by reason (out of order, duplicate, series limit...).",
            s.refused_samples.clone(),
        );
        m.register(
            "ingester_ingested_exemplars",
            "Exemplars stored in the head.",
            s.ingested_exemplars.clone(),
        );
        m.register(
            "ingester_refused_exemplars",
            "Exemplars refused, by reason (out of order, labels too long, unknown series, storage off).",
            s.refused_exemplars.clone(),
        );
        m.register(
            "ingester_memory_series",
            "Series in the tenant's head.",
            s.memory_series.clone(),
        );
        m.register(
            "ingester_head_memory_bytes",
            "Estimated heap bytes of all heads (series, chunks, postings, symbols).",
            s.head_memory_bytes.clone(),
        );
        m.register(
            "ingester_wal_fsyncs",
            "Fsyncs of WAL segment files.",
            s.wal_fsyncs.clone(),
        );
        m.register(
            "ingester_wal_fsync_seconds",
            "Time spent in WAL fsyncs.",
            s.wal_fsync_seconds.clone(),
        );
        m.register(
            "ingester_push_duration_seconds",
            "Time to append and log one push, WAL sync included.",
            s.push_duration.clone(),
        );
        s
    }
}
