//! Backfill: the blocks of a Prometheus data directory (or of `promtool
//! tsdb create-blocks-from`) into a tenant's bucket prefix. The migration
//! path from Prometheus: blocks keep their ULIDs, overlapping ones are
//! merged by the compactor like any overlap.

use std::path::{Path, PathBuf};

use tidemark_bucket::{Bucket, validate_tenant};
use tidemark_tsdb::{BlockId, BlockReader};

use crate::{CompactorError, now_ms};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: Vec<BlockId>,
    /// Blocks the bucket already holds (an earlier import).
    pub skipped: Vec<BlockId>,
    pub bytes: u64,
}

/// Block directories directly under `dir`: named by a ULID and holding a
/// `meta.json`. The WAL, `chunks_head` and temporary directories are not
/// blocks and are left out.
fn block_dirs(dir: &Path) -> Result<Vec<(BlockId, PathBuf)>, CompactorError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CompactorError::staging(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CompactorError::staging(dir, e))?;
        let path = entry.path();
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<BlockId>().ok())
        else {
            continue;
        };
        if path.join("meta.json").is_file() {
            out.push((id, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Uploads every block of `dir` that the tenant's bucket does not hold
/// yet, each checked to open first, then rewrites the tenant's index.
pub async fn import_blocks(
    bucket: &Bucket,
    tenant: &str,
    dir: &Path,
) -> Result<ImportReport, CompactorError> {
    validate_tenant(tenant).map_err(|e| CompactorError::InvalidUpload(e.to_string()))?;
    let blocks = block_dirs(dir)?;
    if blocks.is_empty() {
        return Err(CompactorError::InvalidUpload(format!(
            "{} holds no blocks (directories named by a ULID with a meta.json)",
            dir.display()
        )));
    }
    let previous = bucket.read_index(tenant).await?;
    let mut report = ImportReport::default();
    for (id, path) in blocks {
        if previous.as_ref().is_some_and(|i| i.holds_source(id))
            || bucket.read_meta(tenant, id).await.is_ok()
        {
            report.skipped.push(id);
            continue;
        }
        let p = path.clone();
        tokio::task::spawn_blocking(move || BlockReader::open(&p)).await??;
        let up = bucket.upload_block(tenant, &path).await?;
        report.bytes += up.size_bytes;
        report.imported.push(id);
    }
    let scan = bucket
        .rebuild_index(tenant, previous.as_ref(), now_ms())
        .await?;
    bucket.write_index(tenant, &scan.index).await?;
    Ok(report)
}
