//! What the API reads from: sources of one tenant's series and labels.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark_model::{MatchOp, Matcher, TenantId};
use tidemark_promql::{Queryable, SelectHints, Series, StorageError};
use tidemark_tsdb::SeriesExemplars;

use super::limits::QueryLimiter;
use super::merge::SeriesMerger;

/// A label names or label values request over one matcher set.
#[derive(Debug, Clone, Default)]
pub struct LabelsRequest {
    /// First timestamp, ms, inclusive.
    pub start: i64,
    /// Last timestamp, ms, inclusive.
    pub end: i64,
    /// Only series matching all of these count; empty means every series.
    pub matchers: Vec<Matcher>,
    /// A hint that at most this many results are needed; 0 means all.
    /// Readers may return more; the API truncates.
    pub limit: usize,
}

/// An exemplars request.
#[derive(Debug, Clone, Default)]
pub struct ExemplarsRequest {
    /// First timestamp, ms, inclusive.
    pub start: i64,
    /// Last timestamp, ms, inclusive.
    pub end: i64,
    /// A series counts when it matches all matchers of any one set.
    pub matcher_sets: Vec<Vec<Matcher>>,
}

/// One tenant's data as one query sees it: series for the engine, plus
/// label names and values for the metadata endpoints.
#[async_trait::async_trait]
pub trait TenantReader: Queryable {
    /// Sorted, unique label names of the series matching the request.
    async fn label_names(&self, req: &LabelsRequest) -> Result<Vec<String>, StorageError>;

    /// Sorted, unique values of label `name` over the series matching the request.
    async fn label_values(
        &self,
        name: &str,
        req: &LabelsRequest,
    ) -> Result<Vec<String>, StorageError>;

    /// Exemplars of the matching series in the range, sorted by series
    /// labels, each series' oldest first. Only the ingesters' heads hold
    /// exemplars (as in Prometheus, blocks carry none): other sources
    /// have none.
    async fn exemplars(
        &self,
        _req: &ExemplarsRequest,
    ) -> Result<Vec<SeriesExemplars>, StorageError> {
        Ok(Vec::new())
    }
}

/// Opens a [`TenantReader`] per query: tenant and limits are fixed for the
/// reader's life, so the engine's tenant-less [`Queryable`] calls stay
/// scoped to the right tenant.
pub trait ReadSource: Send + Sync {
    fn reader(&self, tenant: &TenantId, limiter: Arc<QueryLimiter>) -> Arc<dyn TenantReader>;
}

/// A [`ReadSource`] over any [`Queryable`], answering label questions by
/// selecting series. Every tenant sees the same data: it serves tests and
/// single-tenant tools, e.g. the API over a `MemStore`.
pub struct QueryableSource {
    inner: Arc<dyn Queryable>,
}

impl QueryableSource {
    pub fn new(inner: Arc<dyn Queryable>) -> Self {
        QueryableSource { inner }
    }
}

impl ReadSource for QueryableSource {
    fn reader(&self, _tenant: &TenantId, limiter: Arc<QueryLimiter>) -> Arc<dyn TenantReader> {
        Arc::new(QueryableReader {
            inner: Arc::clone(&self.inner),
            limiter,
        })
    }
}

struct QueryableReader {
    inner: Arc<dyn Queryable>,
    limiter: Arc<QueryLimiter>,
}

impl QueryableReader {
    async fn matching(&self, req: &LabelsRequest) -> Result<Vec<Series>, StorageError> {
        let hints = SelectHints {
            start: req.start,
            end: req.end,
            func: Some("series".into()),
            ..SelectHints::default()
        };
        let any_series;
        let matchers = if req.matchers.is_empty() {
            any_series = [
                Matcher::new(MatchOp::Regex, tidemark_model::METRIC_NAME, ".+")
                    .map_err(|e| StorageError::Message(e.to_string()))?,
            ];
            &any_series[..]
        } else {
            &req.matchers[..]
        };
        self.select(&hints, matchers).await
    }
}

#[async_trait::async_trait]
impl Queryable for QueryableReader {
    async fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let series = self.inner.select(hints, matchers).await?;
        self.limiter.add_series(series.len() as u64)?;
        self.limiter
            .add_samples(series.iter().map(|s| s.samples.len() as u64).sum())?;
        Ok(series)
    }
}

#[async_trait::async_trait]
impl TenantReader for QueryableReader {
    async fn label_names(&self, req: &LabelsRequest) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for s in self.matching(req).await? {
            for (name, _) in s.labels.iter() {
                if !names.contains(name) {
                    names.insert(name.to_string());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    async fn label_values(
        &self,
        name: &str,
        req: &LabelsRequest,
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for s in self.matching(req).await? {
            if let Some(v) = s.labels.get(name)
                && !v.is_empty()
                && !values.contains(v)
            {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}

/// Several sources merged into one: series with equal labels are merged
/// and duplicate samples removed by the same code that merges replicas, and
/// label names and values are unioned. This is where block storage joins
/// the ingesters once the querier reads blocks.
pub struct MergedSource {
    sources: Vec<Arc<dyn ReadSource>>,
}

impl MergedSource {
    /// Sources earlier in the list win when two hold a sample at the same
    /// timestamp with different values.
    pub fn new(sources: Vec<Arc<dyn ReadSource>>) -> Self {
        MergedSource { sources }
    }
}

impl ReadSource for MergedSource {
    fn reader(&self, tenant: &TenantId, limiter: Arc<QueryLimiter>) -> Arc<dyn TenantReader> {
        Arc::new(MergedReader {
            readers: self
                .sources
                .iter()
                .map(|s| s.reader(tenant, Arc::clone(&limiter)))
                .collect(),
        })
    }
}

struct MergedReader {
    readers: Vec<Arc<dyn TenantReader>>,
}

#[async_trait::async_trait]
impl Queryable for MergedReader {
    async fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let results =
            futures::future::join_all(self.readers.iter().map(|r| r.select(hints, matchers))).await;
        let mut merger = SeriesMerger::new();
        for series in results {
            for s in series? {
                merger.add(s.labels, s.samples);
            }
        }
        Ok(merger.finish())
    }
}

#[async_trait::async_trait]
impl TenantReader for MergedReader {
    async fn label_names(&self, req: &LabelsRequest) -> Result<Vec<String>, StorageError> {
        let results =
            futures::future::join_all(self.readers.iter().map(|r| r.label_names(req))).await;
        union(results)
    }

    async fn label_values(
        &self,
        name: &str,
        req: &LabelsRequest,
    ) -> Result<Vec<String>, StorageError> {
        let results =
            futures::future::join_all(self.readers.iter().map(|r| r.label_values(name, req))).await;
        union(results)
    }

    async fn exemplars(
        &self,
        req: &ExemplarsRequest,
    ) -> Result<Vec<SeriesExemplars>, StorageError> {
        let results =
            futures::future::join_all(self.readers.iter().map(|r| r.exemplars(req))).await;
        Ok(super::exemplars::merge(
            results.into_iter().collect::<Result<Vec<_>, _>>()?,
        ))
    }
}

/// Sorted union of string lists.
pub(crate) fn union(
    lists: impl IntoIterator<Item = Result<Vec<String>, StorageError>>,
) -> Result<Vec<String>, StorageError> {
    let mut all = BTreeSet::new();
    for l in lists {
        all.extend(l?);
    }
    Ok(all.into_iter().collect())
}
