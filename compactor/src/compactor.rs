//! The compactor service: the hand-off endpoint and the compaction loop
//! over the tenants this process owns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tidemark_bucket::Bucket;
use tidemark_proto::blocks::block_handoff_server::BlockHandoffServer;
use tidemark_tsdb::block::merge_blocks;
use tidemark_tsdb::{BlockId, BlockReader};
use tokio_util::sync::CancellationToken;

use crate::crash_point::{CrashPoint, Step};
use crate::handoff::HandoffService;
use crate::indexes::TenantIndexes;
use crate::planner::{MergeJob, MergeKind, PlanInput, plan};
use crate::{CompactorConfig, CompactorError, TenantOwnership, now_ms};

/// State shared by the hand-off service and the compaction loop.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: CompactorConfig,
    pub(crate) bucket: Bucket,
    pub(crate) indexes: TenantIndexes,
    pub(crate) staging_dir: PathBuf,
    work_dir: PathBuf,
    /// Off outside crash tests (see `crash_point.rs`).
    pub(crate) crash_point: CrashPoint,
}

/// What one cycle did to one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantCycle {
    pub vertical_merges: usize,
    pub level_merges: usize,
    /// Blocks marked for deletion by retention.
    pub expired: usize,
    /// Blocks deleted for good (deletion delay passed).
    pub deleted: usize,
    /// Abandoned partial uploads removed.
    pub partial_removed: usize,
}

/// The compactor role.
pub struct Compactor {
    shared: Arc<Shared>,
    ownership: Arc<dyn TenantOwnership>,
}

impl std::fmt::Debug for Compactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compactor")
            .field("shared", &self.shared)
            .finish()
    }
}

fn create_dir(dir: &Path) -> Result<(), CompactorError> {
    std::fs::create_dir_all(dir).map_err(|e| CompactorError::staging(dir, e))
}

impl Compactor {
    /// A compactor keeping its staging and work directories under
    /// `<data_dir>/compactor`. Leftovers of an earlier run's compactions
    /// are removed; staged hand-offs are kept so their senders resume.
    pub fn new(
        cfg: CompactorConfig,
        bucket: Bucket,
        ownership: Arc<dyn TenantOwnership>,
        data_dir: &Path,
    ) -> Result<Self, CompactorError> {
        let root = data_dir.join("compactor");
        let staging_dir = root.join("staging");
        let work_dir = root.join("work");
        if work_dir.exists() {
            std::fs::remove_dir_all(&work_dir)
                .map_err(|e| CompactorError::staging(&work_dir, e))?;
        }
        create_dir(&staging_dir)?;
        create_dir(&work_dir)?;
        Ok(Compactor {
            shared: Arc::new(Shared {
                indexes: TenantIndexes::new(bucket.clone()),
                cfg,
                bucket,
                staging_dir,
                work_dir,
                crash_point: CrashPoint::from_env(),
            }),
            ownership,
        })
    }

    /// The `BlockHandoff` gRPC service.
    pub fn handoff_server(
        &self,
        max_message_bytes: usize,
    ) -> BlockHandoffServer<impl tidemark_proto::blocks::block_handoff_server::BlockHandoff> {
        BlockHandoffServer::new(HandoffService::new(Arc::clone(&self.shared)))
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }

    /// Runs a cycle every `compaction_interval` until `shutdown`. A failed
    /// tenant is logged and retried next cycle; it never stops the loop.
    pub async fn run(&self, shutdown: CancellationToken) {
        let interval = self.shared.cfg.compaction_interval.as_std();
        loop {
            if let Err(e) = self.run_cycle(now_ms(), &shutdown).await {
                tracing::warn!(error = %e, "compaction cycle failed; retrying next cycle");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One cycle over every owned tenant with blocks in the bucket, as if
    /// the time were `now_ms`.
    pub async fn run_cycle(
        &self,
        now_ms: i64,
        shutdown: &CancellationToken,
    ) -> Result<Vec<(String, TenantCycle)>, CompactorError> {
        let mut out = Vec::new();
        for tenant in self.shared.bucket.tenants().await? {
            if shutdown.is_cancelled() {
                break;
            }
            if !self.ownership.owns_tenant(&tenant) {
                continue;
            }
            match self.compact_tenant(&tenant, now_ms).await {
                Ok(c) => out.push((tenant, c)),
                Err(e) => {
                    tracing::warn!(tenant, error = %e, "compacting tenant failed; retrying next cycle");
                }
            }
        }
        Ok(out)
    }

    /// Merges, compacts, expires and deletes a tenant's blocks until the
    /// plan has no more merges (a few rounds: replicas, then each level).
    pub async fn compact_tenant(
        &self,
        tenant: &str,
        now_ms: i64,
    ) -> Result<TenantCycle, CompactorError> {
        let shared = &self.shared;
        let cfg = &shared.cfg;
        let ranges = cfg.ranges_ms();
        let mut cycle = TenantCycle::default();
        for _round in 0..=ranges.len() * 2 {
            // Abandoned partial uploads are found and deleted under the
            // tenant's lock: every upload of this process holds it from its
            // first object to its meta.json, so a re-sent hand-off that is
            // overwriting an old partial upload is never deleted under it.
            let mut guard = shared.indexes.lock(tenant).await;
            let scan = shared.indexes.refresh(&mut guard, tenant, now_ms).await?;
            for partial in &scan.partial {
                if partial.last_modified_ms + cfg.partial_block_delay.as_millis_i64() <= now_ms {
                    tracing::info!(tenant, block = %partial.ulid, "removing an abandoned partial upload");
                    shared.bucket.delete_block(tenant, partial.ulid).await?;
                    cycle.partial_removed += 1;
                }
            }
            drop(guard);
            let p = plan(&PlanInput {
                index: &scan.index,
                now_ms,
                ranges_ms: &ranges,
                compaction_delay_ms: cfg.compaction_delay.as_millis_i64(),
                deletion_delay_ms: cfg.deletion_delay.as_millis_i64(),
                retention_ms: cfg.retention_ms(tenant),
            });
            for id in &p.expired {
                shared
                    .bucket
                    .mark_for_deletion(tenant, *id, now_ms / 1000)
                    .await?;
                cycle.expired += 1;
            }
            for id in &p.delete {
                shared.bucket.delete_block(tenant, *id).await?;
                cycle.deleted += 1;
            }
            if p.merges.is_empty() {
                let mut guard = shared.indexes.lock(tenant).await;
                shared.indexes.refresh(&mut guard, tenant, now_ms).await?;
                return Ok(cycle);
            }
            for job in &p.merges {
                self.merge(tenant, job, now_ms).await?;
                match job.kind {
                    MergeKind::Vertical => cycle.vertical_merges += 1,
                    MergeKind::Level { .. } => cycle.level_merges += 1,
                }
            }
        }
        Ok(cycle)
    }

    /// Downloads the job's blocks, merges them, and uploads the result;
    /// then, under the tenant's lock, marks the inputs and rewrites the
    /// index. A crash before the marks leaves inputs whose data the new
    /// block holds: the next refresh marks them.
    async fn merge(
        &self,
        tenant: &str,
        job: &MergeJob,
        now_ms: i64,
    ) -> Result<BlockId, CompactorError> {
        let shared = &self.shared;
        let work = shared
            .work_dir
            .join(tenant)
            .join(BlockId::new().to_string());
        let inputs = work.join("in");
        let output = work.join("out");
        create_dir(&inputs)?;
        create_dir(&output)?;
        let mut dirs = Vec::with_capacity(job.blocks.len());
        for id in &job.blocks {
            dirs.push(shared.bucket.download_block(tenant, *id, &inputs).await?);
        }
        let out = output.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let readers = dirs
                .iter()
                .map(|d| BlockReader::open(d))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&BlockReader> = readers.iter().collect();
            merge_blocks(&refs, &out)
        })
        .await??;
        let new_id = outcome.meta.ulid;
        let mut guard = shared.indexes.lock(tenant).await;
        let crash = shared.crash_point;
        shared
            .bucket
            .upload_block_with(tenant, &output.join(new_id.to_string()), |n| {
                crash.reached(Step::MergeUpload, n)
            })
            .await?;
        crash.reached(Step::MergeMarks, 0).await;
        for id in &job.blocks {
            shared
                .bucket
                .mark_for_deletion(tenant, *id, now_ms / 1000)
                .await?;
        }
        shared.indexes.refresh(&mut guard, tenant, now_ms).await?;
        drop(guard);
        tracing::info!(
            tenant,
            block = %new_id,
            kind = ?job.kind,
            inputs = job.blocks.len(),
            samples_in = outcome.stats.samples_in,
            samples_out = outcome.stats.samples_out,
            duplicates = outcome.stats.duplicates,
            "blocks merged"
        );
        let _ = tokio::fs::remove_dir_all(&work).await;
        Ok(new_id)
    }
}
