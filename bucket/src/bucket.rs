//! Blocks of tenants in an object store.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use tidemark_tsdb::{BlockId, BlockMeta};
use tokio::io::AsyncReadExt;

use crate::BucketError;
use crate::index::{BucketIndex, DeletionMark, IndexedBlock};
use crate::layout::{
    DELETION_MARK_FILENAME, META_FILENAME, block_file_path, block_prefix, index_path,
    validate_tenant,
};
use crate::source::ObjectSource;

/// Files above this size are uploaded in parts.
const MULTIPART_THRESHOLD: u64 = 32 << 20;
const PART_SIZE: usize = 16 << 20;

/// A block the bucket now holds.
#[derive(Debug, Clone)]
pub struct UploadedBlock {
    pub meta: BlockMeta,
    pub size_bytes: u64,
}

/// A block directory in the bucket without `meta.json`: an upload that has
/// not finished (or never will, if its writer died).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialBlock {
    pub ulid: BlockId,
    /// The newest object of the block, ms since the epoch.
    pub last_modified_ms: i64,
}

/// What a scan of a tenant's prefix found.
#[derive(Debug, Clone)]
pub struct BucketScan {
    pub index: BucketIndex,
    pub partial: Vec<PartialBlock>,
}

/// The tenant/block layout over any object store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
}

impl Bucket {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Bucket { store }
    }

    /// The underlying object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Tenants with at least one object in the bucket.
    pub async fn tenants(&self) -> Result<Vec<String>, BucketError> {
        let listing = self.store.list_with_delimiter(None).await?;
        let mut out: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|t| validate_tenant(t).is_ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Uploads the block in local directory `dir` under `<tenant>/<ulid>/`.
    /// `meta.json` goes last: until it is there, the block is partial and
    /// invisible to [`Bucket::rebuild_index`]. Uploading the same block
    /// again overwrites it with the same bytes.
    pub async fn upload_block(
        &self,
        tenant: &str,
        dir: &Path,
    ) -> Result<UploadedBlock, BucketError> {
        self.upload_block_with(tenant, dir, |_| std::future::ready(()))
            .await
    }

    /// [`Bucket::upload_block`], awaiting `after_object(n)` once the `n`-th
    /// object of the block is written (meta.json is the last `n`). Lets a
    /// crash test stop a real process between two objects of an upload.
    pub async fn upload_block_with<F, Fut>(
        &self,
        tenant: &str,
        dir: &Path,
        mut after_object: F,
    ) -> Result<UploadedBlock, BucketError>
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        validate_tenant(tenant)?;
        let meta = BlockMeta::read(dir)?;
        let mut files = Vec::new();
        list_local_files(dir, dir, &mut files)?;
        files.sort();
        let mut size_bytes = 0;
        let mut written = 0;
        for rel in files.iter().filter(|f| f.as_str() != META_FILENAME) {
            let key = block_file_path(tenant, meta.ulid, rel);
            size_bytes += self.put_file(&dir.join(rel), &key).await?;
            written += 1;
            after_object(written).await;
        }
        let meta_key = block_file_path(tenant, meta.ulid, META_FILENAME);
        size_bytes += self.put_file(&dir.join(META_FILENAME), &meta_key).await?;
        after_object(written + 1).await;
        tracing::info!(tenant, block = %meta.ulid, size_bytes, "block uploaded");
        Ok(UploadedBlock { meta, size_bytes })
    }

    async fn put_file(&self, local: &Path, key: &ObjectPath) -> Result<u64, BucketError> {
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| BucketError::io(local, e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| BucketError::io(local, e))?
            .len();
        if len <= MULTIPART_THRESHOLD {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)
                .await
                .map_err(|e| BucketError::io(local, e))?;
            self.store.put(key, PutPayload::from(buf)).await?;
            return Ok(len);
        }
        let upload = self.store.put_multipart(key).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; PART_SIZE];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| BucketError::io(local, e))?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(len)
    }

    /// Downloads a whole block into `<parent>/<ulid>/` (meta.json last) and
    /// returns that directory.
    pub async fn download_block(
        &self,
        tenant: &str,
        id: BlockId,
        parent: &Path,
    ) -> Result<PathBuf, BucketError> {
        let prefix = block_prefix(tenant, id);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let dir = parent.join(id.to_string());
        let mut meta = None;
        for o in objects {
            let Some(rel) = o.location.prefix_match(&prefix) else {
                continue;
            };
            let rel: Vec<String> = rel.map(|p| String::from(p.as_ref())).collect();
            let rel = rel.join("/");
            if rel == DELETION_MARK_FILENAME {
                continue;
            }
            if rel == META_FILENAME {
                meta = Some(o.location);
                continue;
            }
            let bytes = self.store.get(&o.location).await?.bytes().await?;
            write_local(&dir.join(&rel), &bytes).await?;
        }
        let Some(meta) = meta else {
            return Err(BucketError::Corrupt {
                key: prefix.to_string(),
                reason: "block has no meta.json (partial upload)".into(),
            });
        };
        let bytes = self.store.get(&meta).await?.bytes().await?;
        write_local(&dir.join(META_FILENAME), &bytes).await?;
        Ok(dir)
    }

    /// A block's `meta.json`.
    pub async fn read_meta(&self, tenant: &str, id: BlockId) -> Result<BlockMeta, BucketError> {
        let key = block_file_path(tenant, id, META_FILENAME);
        let bytes = self.store.get(&key).await?.bytes().await?;
        let name = key.to_string();
        Ok(BlockMeta::from_json(&bytes, Path::new(&name))?)
    }

    /// Bytes `range` of a block file (`index`, `chunks/000001`, ...): one
    /// ranged GET.
    pub async fn read_range(
        &self,
        tenant: &str,
        id: BlockId,
        file: &str,
        range: Range<u64>,
    ) -> Result<Bytes, BucketError> {
        let key = block_file_path(tenant, id, file);
        Ok(self.store.get_range(&key, range).await?)
    }

    /// A whole block file.
    pub async fn read_file(
        &self,
        tenant: &str,
        id: BlockId,
        file: &str,
    ) -> Result<Bytes, BucketError> {
        let key = block_file_path(tenant, id, file);
        Ok(self.store.get(&key).await?.bytes().await?)
    }

    /// A block file as a [`tidemark_tsdb::block::ByteSource`] read by
    /// ranged GETs (one HEAD now for its length).
    pub async fn source(
        &self,
        tenant: &str,
        id: BlockId,
        file: &str,
    ) -> Result<ObjectSource, BucketError> {
        let key = block_file_path(tenant, id, file);
        let len = self.store.head(&key).await?.size;
        Ok(ObjectSource::new(Arc::clone(&self.store), key, len))
    }

    /// Marks a block for deletion at `now_secs` unless it already is marked
    /// (an earlier mark keeps its earlier time).
    pub async fn mark_for_deletion(
        &self,
        tenant: &str,
        id: BlockId,
        now_secs: i64,
    ) -> Result<(), BucketError> {
        let key = block_file_path(tenant, id, DELETION_MARK_FILENAME);
        match self.store.head(&key).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let mark = DeletionMark {
            ulid: id,
            deletion_time: now_secs,
            version: 1,
        };
        let json = serde_json::to_vec(&mark).unwrap_or_default();
        self.store.put(&key, PutPayload::from(json)).await?;
        tracing::info!(tenant, block = %id, "block marked for deletion");
        Ok(())
    }

    /// Deletes a block for good: `meta.json` first (the block turns partial
    /// and leaves every index), then its files, the deletion mark last so
    /// that an interrupted deletion is resumed by the next one.
    pub async fn delete_block(&self, tenant: &str, id: BlockId) -> Result<(), BucketError> {
        let meta = block_file_path(tenant, id, META_FILENAME);
        ignore_not_found(self.store.delete(&meta).await)?;
        let prefix = block_prefix(tenant, id);
        let mark = block_file_path(tenant, id, DELETION_MARK_FILENAME);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        for o in objects.iter().filter(|o| o.location != mark) {
            ignore_not_found(self.store.delete(&o.location).await)?;
        }
        ignore_not_found(self.store.delete(&mark).await)?;
        tracing::info!(tenant, block = %id, "block deleted");
        Ok(())
    }

    /// The tenant's bucket index, `None` if it has none yet.
    pub async fn read_index(&self, tenant: &str) -> Result<Option<BucketIndex>, BucketError> {
        let key = index_path(tenant);
        match self.store.get(&key).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                Ok(Some(BucketIndex::from_json(&bytes, key.as_ref())?))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the tenant's bucket index (a single PUT, atomic for readers).
    pub async fn write_index(&self, tenant: &str, index: &BucketIndex) -> Result<(), BucketError> {
        self.store
            .put(&index_path(tenant), PutPayload::from(index.to_json()))
            .await?;
        Ok(())
    }

    /// Lists the tenant's prefix and builds its index: every block with a
    /// `meta.json`, every deletion mark, and the partial blocks. Entries of
    /// `previous` are reused (blocks never change once whole), so only new
    /// blocks cost a GET.
    pub async fn rebuild_index(
        &self,
        tenant: &str,
        previous: Option<&BucketIndex>,
        now_ms: i64,
    ) -> Result<BucketScan, BucketError> {
        validate_tenant(tenant)?;
        let prefix = ObjectPath::from(tenant);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        #[derive(Default)]
        struct Seen {
            size: u64,
            meta: bool,
            mark: bool,
            last_modified_ms: i64,
        }
        let mut blocks: BTreeMap<BlockId, Seen> = BTreeMap::new();
        for o in &objects {
            let parts: Vec<_> = o.location.parts().collect();
            let [_, id, rest @ ..] = parts.as_slice() else {
                continue;
            };
            let id: &str = id.as_ref();
            let Ok(id) = id.parse::<BlockId>() else {
                continue;
            };
            let seen = blocks.entry(id).or_default();
            seen.last_modified_ms = seen
                .last_modified_ms
                .max(o.last_modified.timestamp_millis());
            let rest: Vec<&str> = rest.iter().map(|p| p.as_ref()).collect();
            match rest.as_slice() {
                [META_FILENAME] => {
                    seen.meta = true;
                    seen.size += o.size;
                }
                [DELETION_MARK_FILENAME] => seen.mark = true,
                _ => seen.size += o.size,
            }
        }
        let mut index = BucketIndex::empty(now_ms);
        let mut partial = Vec::new();
        for (id, seen) in blocks {
            if !seen.meta {
                partial.push(PartialBlock {
                    ulid: id,
                    last_modified_ms: seen.last_modified_ms,
                });
                continue;
            }
            let known = previous.and_then(|p| p.blocks.iter().find(|b| b.ulid == id));
            let entry = match known {
                Some(b) => b.clone(),
                None => IndexedBlock::from_meta(&self.read_meta(tenant, id).await?, seen.size),
            };
            index.blocks.push(entry);
            if seen.mark {
                let known = previous.and_then(|p| p.deletion_mark(id)).copied();
                let mark = match known {
                    Some(m) => m,
                    None => self.read_deletion_mark(tenant, id).await?,
                };
                index.deletion_marks.push(mark);
            }
        }
        index.normalize();
        Ok(BucketScan { index, partial })
    }

    async fn read_deletion_mark(
        &self,
        tenant: &str,
        id: BlockId,
    ) -> Result<DeletionMark, BucketError> {
        let key = block_file_path(tenant, id, DELETION_MARK_FILENAME);
        let bytes = self.store.get(&key).await?.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| BucketError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }
}

fn ignore_not_found(r: Result<(), object_store::Error>) -> Result<(), BucketError> {
    match r {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Relative paths (with `/`) of the regular files under `dir`.
fn list_local_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), BucketError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BucketError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BucketError::io(dir, e))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| BucketError::io(&path, e))?;
        if ty.is_dir() {
            list_local_files(root, &path, out)?;
        } else if ty.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(rel.join("/"));
        }
    }
    Ok(())
}

async fn write_local(path: &Path, bytes: &[u8]) -> Result<(), BucketError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| BucketError::io(parent, e))?;
    }
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| BucketError::io(path, e))
}
