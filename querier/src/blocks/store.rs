//! One querier's view of the bucket: each tenant's bucket index, refreshed
//! when older than `index_refresh_interval`, and the blocks opened so far
//! (index from the local disk cache, chunks by ranged GETs).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tidemark_bucket::{Bucket, BucketIndex};
use tidemark_promql::StorageError;
use tidemark_tsdb::block::{ByteSource, ChunkReader, IndexReader, Tombstones};
use tidemark_tsdb::{BlockId, BlockReader};
use tracing::debug;

use super::BucketStoreConfig;
use super::index_cache::IndexCache;

fn storage_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("reading blocks from the bucket: {e}"))
}

/// Bucket indexes and open blocks of every tenant queried.
pub struct BucketStore {
    bucket: Arc<Bucket>,
    refresh: std::time::Duration,
    cache: IndexCache,
    indexes: Mutex<HashMap<String, (Instant, Arc<BucketIndex>)>>,
    readers: Mutex<HashMap<(String, BlockId), Arc<BlockReader>>>,
}

impl BucketStore {
    /// A store over `bucket` caching index files in `cache_dir`.
    pub fn open(
        bucket: Arc<Bucket>,
        cfg: &BucketStoreConfig,
        cache_dir: PathBuf,
    ) -> std::io::Result<Self> {
        Ok(BucketStore {
            bucket,
            refresh: cfg.index_refresh_interval.as_std(),
            cache: IndexCache::open(&cache_dir, cfg.index_cache_max_bytes)?,
            indexes: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
        })
    }

    /// The tenant's bucket index, read again when older than the refresh
    /// interval; an empty index when the tenant has none yet.
    async fn index(&self, tenant: &str) -> Result<Arc<BucketIndex>, StorageError> {
        if let Some((at, idx)) = self.indexes.lock().get(tenant)
            && at.elapsed() < self.refresh
        {
            return Ok(Arc::clone(idx));
        }
        let idx = match self.bucket.read_index(tenant).await.map_err(storage_err)? {
            Some(i) => Arc::new(i),
            None => Arc::new(BucketIndex::empty(0)),
        };
        let live: Vec<BlockId> = idx.blocks.iter().map(|b| b.ulid).collect();
        self.readers
            .lock()
            .retain(|(t, id), _| t != tenant || live.contains(id));
        self.indexes
            .lock()
            .insert(tenant.to_string(), (Instant::now(), Arc::clone(&idx)));
        Ok(idx)
    }

    /// The tenant's blocks that a query over `mint..=maxt` reads, opened.
    pub(crate) async fn blocks(
        &self,
        tenant: &str,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Arc<BlockReader>>, StorageError> {
        let idx = self.index(tenant).await?;
        let ids: Vec<BlockId> = idx
            .queryable_blocks(mint, maxt)
            .into_iter()
            .map(|b| b.ulid)
            .collect();
        let opened = futures::future::join_all(ids.iter().map(|id| self.block(tenant, *id))).await;
        opened.into_iter().collect()
    }

    async fn block(&self, tenant: &str, id: BlockId) -> Result<Arc<BlockReader>, StorageError> {
        let key = (tenant.to_string(), id);
        if let Some(r) = self.readers.lock().get(&key) {
            return Ok(Arc::clone(r));
        }
        let index_file = match self.cache.get(tenant, id) {
            Some(p) => p,
            None => {
                let bytes = self
                    .bucket
                    .read_file(tenant, id, "index")
                    .await
                    .map_err(storage_err)?;
                let (file, evicted) = self.cache.put(tenant, id, &bytes).map_err(storage_err)?;
                debug!(tenant, block = %id, bytes = bytes.len(), evicted = evicted.len(), "cached block index");
                if !evicted.is_empty() {
                    self.readers
                        .lock()
                        .retain(|(t, b), _| !evicted.contains(&self.cache.path(t, *b)));
                }
                file
            }
        };
        let meta = self
            .bucket
            .read_meta(tenant, id)
            .await
            .map_err(storage_err)?;
        let mut segments: Vec<Box<dyn ByteSource>> = Vec::new();
        for n in 0u32.. {
            let file = format!("chunks/{}", tidemark_tsdb::block::segment_file_name(n));
            match self.bucket.source(tenant, id, &file).await {
                Ok(s) => segments.push(Box::new(s)),
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(storage_err(e)),
            }
        }
        let tombstones = match self.bucket.read_file(tenant, id, "tombstones").await {
            Ok(bytes) => Some(bytes),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(storage_err(e)),
        };
        let name = PathBuf::from(format!("{tenant}/{id}"));
        let reader = tokio::task::spawn_blocking(move || {
            let index = IndexReader::open(Box::new(index_file))?;
            let chunks = ChunkReader::new(segments)?;
            let tombstones = match tombstones {
                Some(b) => Tombstones::decode(&b, &name.join("tombstones"))?,
                None => Tombstones::default(),
            };
            Ok::<_, tidemark_tsdb::TsdbError>(BlockReader::from_parts(
                name, meta, index, chunks, tombstones,
            ))
        })
        .await
        .map_err(storage_err)?
        .map_err(storage_err)?;
        let reader = Arc::new(reader);
        self.readers.lock().insert(key, Arc::clone(&reader));
        Ok(reader)
    }
}
