//! The `BlockHandoff` gRPC service: ingesters stream finished blocks here.
//!
//! Each piece is checked (CRC32C), written at its offset in the staging
//! area and fsynced; `Status` reports what arrived, so a broken stream
//! resumes where it stopped. On `complete` the block is verified, uploaded
//! (meta.json last), the bucket index is rewritten, and only then does the
//! answer say `uploaded = true`: the sender may delete its copy.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tidemark_bucket::{Bucket, validate_block_file, validate_tenant};
use tidemark_proto::blocks::block_handoff_server::BlockHandoff;
use tidemark_proto::blocks::{
    BlockFileChunk, BlockStatusRequest, BlockStatusResponse, FileProgress, UploadResponse,
};
use tidemark_tsdb::BlockId;
use tonic::{Request, Response, Status, Streaming};

use crate::compactor::Shared;
use crate::crash_point::Step;
use crate::staging::StagedBlock;
use crate::{CompactorError, now_ms};

/// The gRPC service over the compactor's state.
#[derive(Debug, Clone)]
pub(crate) struct HandoffService {
    shared: Arc<Shared>,
    active: Arc<Mutex<HashSet<(String, BlockId)>>>,
}

/// Holds a block's slot in the set of uploads in progress.
struct ActiveUpload {
    set: Arc<Mutex<HashSet<(String, BlockId)>>>,
    key: (String, BlockId),
}

impl Drop for ActiveUpload {
    fn drop(&mut self) {
        self.set.lock().remove(&self.key);
    }
}

fn parse_block(tenant: &str, block_id: &str) -> Result<BlockId, CompactorError> {
    validate_tenant(tenant).map_err(|e| CompactorError::InvalidUpload(e.to_string()))?;
    block_id
        .parse()
        .map_err(|_| CompactorError::InvalidUpload(format!("block id {block_id:?} is not a ULID")))
}

impl HandoffService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        HandoffService {
            shared,
            active: Arc::default(),
        }
    }

    fn begin(&self, tenant: &str, id: BlockId) -> Result<ActiveUpload, CompactorError> {
        let key = (tenant.to_string(), id);
        if !self.active.lock().insert(key.clone()) {
            return Err(CompactorError::UploadInProgress {
                tenant: tenant.to_string(),
                block: id.to_string(),
            });
        }
        Ok(ActiveUpload {
            set: Arc::clone(&self.active),
            key,
        })
    }

    async fn write(&self, staged: &StagedBlock, msg: BlockFileChunk) -> Result<(), CompactorError> {
        validate_block_file(&msg.path).map_err(|e| CompactorError::InvalidUpload(e.to_string()))?;
        let crc = crc32c::crc32c(&msg.data);
        if crc != msg.crc32c {
            return Err(CompactorError::InvalidUpload(format!(
                "checksum mismatch in {} at offset {}: CRC32C {crc:#010x}, sender said {:#010x}",
                msg.path, msg.offset, msg.crc32c
            )));
        }
        let staged = staged.clone();
        tokio::task::spawn_blocking(move || {
            staged.write_piece(&msg.path, msg.offset, &msg.data, msg.file_size)
        })
        .await?
    }

    async fn finish(
        &self,
        tenant: &str,
        id: BlockId,
        staged: StagedBlock,
    ) -> Result<(), CompactorError> {
        let (t, s) = (tenant.to_string(), staged.clone());
        tokio::task::spawn_blocking(move || s.verify(&t, id)).await??;
        let shared = &self.shared;
        let mut guard = shared.indexes.lock(tenant).await;
        let crash = shared.crash_point;
        shared
            .bucket
            .upload_block_with(tenant, &staged.dir, |n| {
                crash.reached(Step::HandoffUpload, n)
            })
            .await?;
        crash.reached(Step::HandoffIndex, 0).await;
        shared.indexes.refresh(&mut guard, tenant, now_ms()).await?;
        drop(guard);
        tracing::info!(tenant, block = %id, "handed-off block is in the bucket");
        tokio::task::spawn_blocking(move || staged.remove()).await?
    }

    async fn upload_stream(
        &self,
        mut stream: Streaming<BlockFileChunk>,
    ) -> Result<bool, CompactorError> {
        let mut current: Option<(String, BlockId, StagedBlock, ActiveUpload, bool)> = None;
        loop {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(false),
                Err(status) => {
                    tracing::info!(error = %status, "block upload stream broke; the sender resumes from Status");
                    return Ok(false);
                }
            };
            let id = parse_block(&msg.tenant, &msg.block_id)?;
            if let Some((t, i, ..)) = &current {
                if *t != msg.tenant || *i != id {
                    return Err(CompactorError::InvalidUpload(
                        "one Upload stream carries one block; start a new stream for the next"
                            .into(),
                    ));
                }
            } else {
                let active = self.begin(&msg.tenant, id)?;
                let done = is_uploaded(&self.shared.bucket, &self.shared, &msg.tenant, id).await?;
                let staged = StagedBlock::new(&self.shared.staging_dir, &msg.tenant, id);
                current = Some((msg.tenant.clone(), id, staged, active, done));
            }
            let Some((tenant, id, staged, _, done)) = &current else {
                continue;
            };
            let complete = msg.complete;
            if !*done && !msg.path.is_empty() {
                self.write(staged, msg).await?;
            }
            if complete {
                if !*done {
                    self.finish(tenant, *id, staged.clone()).await?;
                }
                return Ok(true);
            }
        }
    }
}

/// Whether the block's data is in the bucket: in the index (as itself or
/// as a source of a compacted block), or whole in the bucket. A whole block
/// missing from the index (the compactor died between its upload and the
/// index rewrite) is put in the index first: the sender deletes its copy
/// once told `uploaded`, and queriers find blocks through the index only.
async fn is_uploaded(
    bucket: &Bucket,
    shared: &Shared,
    tenant: &str,
    id: BlockId,
) -> Result<bool, CompactorError> {
    let mut guard = shared.indexes.lock(tenant).await;
    let index = match (*guard).clone() {
        Some(i) => Some(i),
        None => bucket.read_index(tenant).await?,
    };
    if index.is_some_and(|i| i.holds_source(id)) {
        return Ok(true);
    }
    match bucket.read_meta(tenant, id).await {
        Ok(_) => {
            tracing::info!(tenant, block = %id, "a whole block was missing from the index; rewriting it");
            shared.indexes.refresh(&mut guard, tenant, now_ms()).await?;
            Ok(true)
        }
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[tonic::async_trait]
impl BlockHandoff for HandoffService {
    async fn status(
        &self,
        request: Request<BlockStatusRequest>,
    ) -> Result<Response<BlockStatusResponse>, Status> {
        let req = request.into_inner();
        let id = parse_block(&req.tenant, &req.block_id)?;
        if is_uploaded(&self.shared.bucket, &self.shared, &req.tenant, id).await? {
            return Ok(Response::new(BlockStatusResponse {
                uploaded: true,
                files: Vec::new(),
            }));
        }
        let staged = StagedBlock::new(&self.shared.staging_dir, &req.tenant, id);
        let progress = tokio::task::spawn_blocking(move || staged.progress())
            .await
            .map_err(CompactorError::from)??;
        Ok(Response::new(BlockStatusResponse {
            uploaded: false,
            files: progress
                .into_iter()
                .map(|(path, received_bytes)| FileProgress {
                    path,
                    received_bytes,
                })
                .collect(),
        }))
    }

    async fn upload(
        &self,
        request: Request<Streaming<BlockFileChunk>>,
    ) -> Result<Response<UploadResponse>, Status> {
        let uploaded = self.upload_stream(request.into_inner()).await?;
        Ok(Response::new(UploadResponse { uploaded }))
    }
}
