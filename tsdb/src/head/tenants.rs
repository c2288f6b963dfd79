//! One head per tenant, created on first use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use tidemark_model::TenantId;

use super::{Head, HeadOptions};
use crate::TsdbError;
use crate::wal::{ReplayStats, WalOptions};

/// The heads of all tenants of an ingester. With a data directory, tenant
/// `t` keeps its WAL in `<dir>/<t>/wal`; tenant ids are valid directory
/// names by construction ([`TenantId`]).
pub struct TenantHeads {
    root: Option<PathBuf>,
    head_opts: HeadOptions,
    wal_opts: WalOptions,
    heads: RwLock<HashMap<TenantId, Arc<Head>>>,
}

impl std::fmt::Debug for TenantHeads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantHeads")
            .field("root", &self.root)
            .field("tenants", &self.heads.read().len())
            .finish()
    }
}

impl TenantHeads {
    /// Heads without WALs (tests, or data that need not survive a restart).
    pub fn in_memory(head_opts: HeadOptions) -> Self {
        TenantHeads {
            root: None,
            head_opts,
            wal_opts: WalOptions::default(),
            heads: RwLock::new(HashMap::new()),
        }
    }

    /// Opens every tenant found under `root`, replaying its WAL, and returns
    /// the replay stats per tenant. Directories that are not valid tenant
    /// ids are skipped with a warning.
    pub fn open(
        root: &Path,
        head_opts: HeadOptions,
        wal_opts: WalOptions,
    ) -> Result<(Self, Vec<(TenantId, ReplayStats)>), TsdbError> {
        std::fs::create_dir_all(root).map_err(|e| TsdbError::io(root, e))?;
        let mut heads = HashMap::new();
        let mut stats = Vec::new();
        let rd = std::fs::read_dir(root).map_err(|e| TsdbError::io(root, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| TsdbError::io(root, e))?;
            let path = entry.path();
            if !path.join("wal").is_dir() {
                continue;
            }
            let name = entry.file_name();
            let Some(tenant) = name.to_str().and_then(|n| TenantId::new(n).ok()) else {
                tracing::warn!(dir = %path.display(), "skipping a directory that is not a tenant id");
                continue;
            };
            let (head, s) = Head::open(&path.join("wal"), head_opts.clone(), wal_opts.clone())?;
            heads.insert(tenant.clone(), Arc::new(head));
            stats.push((tenant, s));
        }
        stats.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((
            TenantHeads {
                root: Some(root.to_path_buf()),
                head_opts,
                wal_opts,
                heads: RwLock::new(heads),
            },
            stats,
        ))
    }

    /// The head of `tenant`, if it has one.
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<Head>> {
        self.heads.read().get(tenant).map(Arc::clone)
    }

    /// The head of `tenant`, created (with its WAL) if needed.
    pub fn get_or_create(&self, tenant: &TenantId) -> Result<Arc<Head>, TsdbError> {
        if let Some(h) = self.get(tenant) {
            return Ok(h);
        }
        let mut heads = self.heads.write();
        if let Some(h) = heads.get(tenant) {
            return Ok(Arc::clone(h));
        }
        let head = match &self.root {
            Some(root) => {
                let dir = root.join(tenant.as_str()).join("wal");
                Head::open(&dir, self.head_opts.clone(), self.wal_opts.clone())?.0
            }
            None => Head::new(self.head_opts.clone())?,
        };
        let head = Arc::new(head);
        heads.insert(tenant.clone(), Arc::clone(&head));
        tracing::info!(tenant = %tenant, "created tenant head");
        Ok(head)
    }

    /// Tenants with a head, sorted.
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut t: Vec<TenantId> = self.heads.read().keys().cloned().collect();
        t.sort();
        t
    }

    /// Sum of [`Head::memory_bytes`] over all tenants.
    pub fn memory_bytes(&self) -> usize {
        self.heads.read().values().map(|h| h.memory_bytes()).sum()
    }
}
