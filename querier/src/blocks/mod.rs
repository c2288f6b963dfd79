//! Reading blocks from the bucket: the long-term half of a query.
//!
//! [`BucketSource`] is a [`ReadSource`] over a [`BucketStore`]: for each
//! select it lists the tenant's blocks overlapping the range from the
//! bucket index (re-read when older than `index_refresh_interval`), opens
//! them with their index file cached on local disk (LRU by file under
//! `index_cache_max_bytes`) and their chunks read by ranged GETs through
//! `object_store`, and merges the series of all blocks. Joined with the
//! ingesters through [`MergedSource`](crate::MergedSource), a sample held
//! both by an ingester (its head or a block not yet deleted) and by the
//! bucket is returned once.

mod index_cache;
mod store;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};
use tidemark_model::{Matcher, TenantId};
use tidemark_promql::{Queryable, SelectHints, Series, StorageError};
use tidemark_tsdb::BlockReader;

pub use store::BucketStore;

use crate::fanout::{LabelsRequest, QueryLimiter, ReadSource, SeriesMerger, TenantReader};

/// How the querier reads blocks from the bucket (`querier.blocks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BucketStoreConfig {
    /// A tenant's bucket index is read again when older than this: new
    /// blocks become visible to queries within it.
    pub index_refresh_interval: Duration,
    /// Where block index files are cached; empty means
    /// `<storage.data_dir>/querier/index-cache`.
    pub index_cache_dir: PathBuf,
    /// Most bytes of index files kept in the cache; the least recently
    /// used file goes first.
    pub index_cache_max_bytes: u64,
}

impl Default for BucketStoreConfig {
    fn default() -> Self {
        BucketStoreConfig {
            index_refresh_interval: Duration::from_secs(60),
            index_cache_dir: PathBuf::new(),
            index_cache_max_bytes: 1 << 30,
        }
    }
}

impl Validate for BucketStoreConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.index_cache_max_bytes == 0 {
            return Err(ConfigError::invalid(
                join(path, "index_cache_max_bytes"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

impl BucketStoreConfig {
    /// The index cache directory under `data_dir` unless set.
    pub fn cache_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        if self.index_cache_dir.as_os_str().is_empty() {
            data_dir.join("querier").join("index-cache")
        } else {
            self.index_cache_dir.clone()
        }
    }
}

/// The bucket's blocks as a [`ReadSource`].
pub struct BucketSource {
    store: Arc<BucketStore>,
}

impl BucketSource {
    pub fn new(store: Arc<BucketStore>) -> Self {
        BucketSource { store }
    }
}

impl ReadSource for BucketSource {
    fn reader(&self, tenant: &TenantId, limiter: Arc<QueryLimiter>) -> Arc<dyn TenantReader> {
        Arc::new(BucketReader {
            store: Arc::clone(&self.store),
            tenant: tenant.as_str().to_string(),
            limiter,
        })
    }
}

struct BucketReader {
    store: Arc<BucketStore>,
    tenant: String,
    limiter: Arc<QueryLimiter>,
}

impl BucketReader {
    /// Runs `f` over every block of the range, each block on its own
    /// blocking thread (block reads are synchronous ranged GETs), so the
    /// blocks of a long range are read in parallel.
    async fn over_blocks<T: Send + 'static>(
        &self,
        mint: i64,
        maxt: i64,
        f: impl Fn(&BlockReader) -> Result<Vec<T>, tidemark_tsdb::TsdbError> + Send + Sync + 'static,
    ) -> Result<Vec<T>, StorageError> {
        let blocks = self.store.blocks(&self.tenant, mint, maxt).await?;
        let f = Arc::new(f);
        let reads = blocks.into_iter().map(|b| {
            let f = Arc::clone(&f);
            tokio::task::spawn_blocking(move || {
                f(&b).map_err(|e| {
                    StorageError::Unavailable(format!("reading block {}: {e}", b.dir().display()))
                })
            })
        });
        let mut out = Vec::new();
        for r in futures::future::join_all(reads).await {
            out.extend(
                r.map_err(|e| StorageError::Message(format!("block read task failed: {e}")))??,
            );
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Queryable for BucketReader {
    async fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let (mint, maxt) = (hints.start, hints.end);
        let m = matchers.to_vec();
        let found = self
            .over_blocks(mint, maxt, move |b| b.select(&m, mint, maxt))
            .await?;
        // Blocks of one range from several ingesters (before compaction)
        // hold the same samples: merged like replicas.
        let mut merger = SeriesMerger::new();
        for s in found {
            merger.add(s.labels, s.samples);
        }
        let series = merger.finish();
        self.limiter.add_series(series.len() as u64)?;
        self.limiter
            .add_samples(series.iter().map(|s| s.samples.len() as u64).sum())?;
        Ok(series)
    }
}

#[async_trait::async_trait]
impl TenantReader for BucketReader {
    async fn label_names(&self, req: &LabelsRequest) -> Result<Vec<String>, StorageError> {
        let m = req.matchers.clone();
        let names = self
            .over_blocks(req.start, req.end, move |b| {
                if m.is_empty() {
                    return Ok(b.label_names().into_iter().map(str::to_string).collect());
                }
                let mut out = Vec::new();
                for r in b.select_refs(&m)? {
                    out.extend(b.series(r)?.labels.iter().map(|(n, _)| n.to_string()));
                }
                Ok(out)
            })
            .await?;
        Ok(names
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect())
    }

    async fn label_values(
        &self,
        name: &str,
        req: &LabelsRequest,
    ) -> Result<Vec<String>, StorageError> {
        let (m, name) = (req.matchers.clone(), name.to_string());
        let values = self
            .over_blocks(req.start, req.end, move |b| {
                if m.is_empty() {
                    return Ok(b
                        .label_values(&name)
                        .into_iter()
                        .map(str::to_string)
                        .collect());
                }
                let mut out = Vec::new();
                for r in b.select_refs(&m)? {
                    out.extend(b.series(r)?.labels.get(&name).map(str::to_string));
                }
                Ok(out)
            })
            .await?;
        Ok(values
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect())
    }
}
