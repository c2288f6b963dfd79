//! The bucket index of each tenant, kept by this compactor.
//!
//! Both the hand-off (a block arrived) and the compaction loop (blocks
//! merged, marked, deleted) change a tenant's blocks; each change and the
//! index rewrite that follows happen under the tenant's lock, so a querier
//! never reads an index holding a merged block while its inputs are still
//! unmarked.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tidemark_bucket::{Bucket, BucketIndex, BucketScan, DeletionMark};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::CompactorError;
use crate::planner::covered_blocks;

/// A tenant's cached index, locked while the tenant's blocks change.
pub(crate) type TenantGuard = OwnedMutexGuard<Option<BucketIndex>>;

/// Per-tenant locks and cached indexes.
#[derive(Debug)]
pub(crate) struct TenantIndexes {
    bucket: Bucket,
    tenants: Mutex<HashMap<String, Arc<AsyncMutex<Option<BucketIndex>>>>>,
}

impl TenantIndexes {
    pub(crate) fn new(bucket: Bucket) -> Self {
        TenantIndexes {
            bucket,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Locks the tenant; the guard holds the last index this process built.
    pub(crate) async fn lock(&self, tenant: &str) -> TenantGuard {
        let slot = Arc::clone(self.tenants.lock().entry(tenant.to_string()).or_default());
        slot.lock_owned().await
    }

    /// Rebuilds the tenant's index from the bucket, marks blocks whose data
    /// another block holds (the trace of a compaction interrupted between
    /// upload and marking its inputs), and writes the index.
    pub(crate) async fn refresh(
        &self,
        guard: &mut TenantGuard,
        tenant: &str,
        now_ms: i64,
    ) -> Result<BucketScan, CompactorError> {
        let previous = match (**guard).as_ref() {
            Some(i) => Some(i.clone()),
            None => self.bucket.read_index(tenant).await.unwrap_or(None),
        };
        let mut scan = self
            .bucket
            .rebuild_index(tenant, previous.as_ref(), now_ms)
            .await?;
        for id in covered_blocks(&scan.index) {
            self.bucket
                .mark_for_deletion(tenant, id, now_ms / 1000)
                .await?;
            scan.index.deletion_marks.push(DeletionMark {
                ulid: id,
                deletion_time: now_ms / 1000,
                version: 1,
            });
        }
        scan.index.deletion_marks.sort_by_key(|m| m.ulid);
        self.bucket.write_index(tenant, &scan.index).await?;
        **guard = Some(scan.index.clone());
        Ok(scan)
    }
}
