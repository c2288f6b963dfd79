//! Blocks cut from the heads, kept on local disk until the compactor has
//! them and the recent-query window has passed.
//!
//! Layout: `<data_dir>/ingester/<tenant>/blocks/<ULID>/` (a Prometheus
//! block) and `<tenant>/blocks/shipper.json` ([`ShipState`]): the time up
//! to which the head was cut and the blocks the compactor confirmed.
//!
//! Invariant kept across crashes: every acknowledged sample is in a local
//! block or in the WAL. A block is written and fsynced before the head and
//! its WAL are truncated; at start, samples the WAL still holds below the
//! cut time are dropped again ([`TenantBlocks::cut_until`]).

mod cut;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tidemark_model::{Labels, Matcher, Sample, TenantId};
use tidemark_tsdb::{BlockId, BlockReader, SeriesSamples, TsdbError};

pub(crate) use cut::{CutMode, cut_tenant, truncate_replayed};
pub(crate) use state::ShipState;

/// Name of the per-tenant directory holding blocks.
pub(crate) const BLOCKS_DIR: &str = "blocks";

/// One local block, open for queries.
pub(crate) struct LocalBlock {
    pub(crate) id: BlockId,
    pub(crate) dir: PathBuf,
    pub(crate) reader: Arc<BlockReader>,
}

/// One tenant's local blocks and their hand-off state.
pub(crate) struct TenantBlocks {
    tenant: TenantId,
    dir: PathBuf,
    blocks: RwLock<BTreeMap<BlockId, Arc<LocalBlock>>>,
    state: Mutex<ShipState>,
    /// Held for the whole of a cut, so the periodic cut and a flush never
    /// write the same range twice.
    pub(crate) cut_lock: Mutex<()>,
}

impl TenantBlocks {
    /// Opens `<tenant_dir>/blocks`: reads the state and opens every block.
    /// Leftovers of an interrupted block write (`*.tmp-for-creation`) are
    /// removed: the WAL still holds their samples.
    fn open(tenant: TenantId, tenant_dir: &Path) -> Result<Self, TsdbError> {
        let dir = tenant_dir.join(BLOCKS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| TsdbError::io(&dir, e))?;
        let mut state = ShipState::read(&dir)?;
        let mut blocks = BTreeMap::new();
        let rd = std::fs::read_dir(&dir).map_err(|e| TsdbError::io(&dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| TsdbError::io(&dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp-for-creation") {
                std::fs::remove_dir_all(&path).map_err(|e| TsdbError::io(&path, e))?;
                continue;
            }
            let Ok(id) = name.parse::<BlockId>() else {
                continue;
            };
            let reader = BlockReader::open(&path)?;
            state.cut_until = state.cut_until.max(reader.meta().max_time);
            blocks.insert(
                id,
                Arc::new(LocalBlock {
                    id,
                    dir: path,
                    reader: Arc::new(reader),
                }),
            );
        }
        // Confirmations of blocks deleted meanwhile are of no use.
        state.uploaded.retain(|id, _| blocks.contains_key(id));
        Ok(TenantBlocks {
            tenant,
            dir,
            blocks: RwLock::new(blocks),
            state: Mutex::new(state),
            cut_lock: Mutex::new(()),
        })
    }

    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The directory new blocks are written into.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every sample before this time is in a block.
    pub(crate) fn cut_until(&self) -> i64 {
        self.state.lock().cut_until
    }

    /// Registers a block just written and moves the cut time to `cut_until`.
    pub(crate) fn add(&self, block: LocalBlock, cut_until: i64) -> Result<(), TsdbError> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        next.cut_until = next.cut_until.max(cut_until);
        next.write(&self.dir)?;
        *state = next;
        self.blocks.write().insert(block.id, Arc::new(block));
        Ok(())
    }

    /// Moves the cut time without a block (the range held no samples).
    pub(crate) fn advance(&self, cut_until: i64) -> Result<(), TsdbError> {
        self.add_state(|s| s.cut_until = s.cut_until.max(cut_until))
    }

    fn add_state(&self, f: impl FnOnce(&mut ShipState)) -> Result<(), TsdbError> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        f(&mut next);
        next.write(&self.dir)?;
        *state = next;
        Ok(())
    }

    /// All local blocks, oldest first.
    #[cfg(test)]
    pub(crate) fn all(&self) -> Vec<Arc<LocalBlock>> {
        self.blocks.read().values().map(Arc::clone).collect()
    }

    /// Blocks the compactor has not confirmed yet, oldest first.
    pub(crate) fn pending(&self) -> Vec<Arc<LocalBlock>> {
        let state = self.state.lock();
        self.blocks
            .read()
            .values()
            .filter(|b| !state.uploaded.contains_key(&b.id))
            .map(Arc::clone)
            .collect()
    }

    /// Records the compactor's confirmation of `id` at `now_ms`.
    pub(crate) fn confirm(&self, id: BlockId, now_ms: i64) -> Result<(), TsdbError> {
        self.add_state(|s| {
            s.uploaded.entry(id).or_insert(now_ms);
        })
    }

    /// Deletes blocks confirmed at least `window_ms` before `now_ms`;
    /// returns their ids. Queries already holding a block keep reading
    /// its open files.
    pub(crate) fn delete_expired(
        &self,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Vec<BlockId>, TsdbError> {
        let expired: Vec<BlockId> = self
            .state
            .lock()
            .uploaded
            .iter()
            .filter(|&(_, &at)| now_ms.saturating_sub(at) >= window_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            let removed = self.blocks.write().remove(id);
            if let Some(b) = removed {
                std::fs::remove_dir_all(&b.dir).map_err(|e| TsdbError::io(&b.dir, e))?;
            }
            self.add_state(|s| {
                s.uploaded.remove(id);
            })?;
        }
        Ok(expired)
    }

    /// Series of the local blocks overlapping `[mint, maxt]`, per block.
    pub(crate) fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>, TsdbError> {
        let mut out = Vec::new();
        for b in self.overlapping(mint, maxt) {
            out.extend(b.reader.select(matchers, mint, maxt)?);
        }
        Ok(out)
    }

    /// Label names of the block series matching `matchers`.
    pub(crate) fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out = Vec::new();
        for b in self.overlapping(mint, maxt) {
            if matchers.is_empty() {
                out.extend(b.reader.label_names().into_iter().map(str::to_string));
                continue;
            }
            for r in b.reader.select_refs(matchers)? {
                let s = b.reader.series(r)?;
                out.extend(s.labels.iter().map(|(n, _)| n.to_string()));
            }
        }
        Ok(out)
    }

    /// Values of label `name` among the block series matching `matchers`.
    pub(crate) fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        let mut out = Vec::new();
        for b in self.overlapping(mint, maxt) {
            if matchers.is_empty() {
                out.extend(b.reader.label_values(name).into_iter().map(str::to_string));
                continue;
            }
            for r in b.reader.select_refs(matchers)? {
                let s = b.reader.series(r)?;
                out.extend(s.labels.get(name).map(str::to_string));
            }
        }
        Ok(out)
    }

    fn overlapping(&self, mint: i64, maxt: i64) -> Vec<Arc<LocalBlock>> {
        self.blocks
            .read()
            .values()
            .filter(|b| {
                let m = b.reader.meta();
                m.min_time <= maxt && mint < m.max_time
            })
            .map(Arc::clone)
            .collect()
    }
}

/// The local blocks of every tenant of this ingester.
pub(crate) struct LocalBlocks {
    root: PathBuf,
    tenants: RwLock<HashMap<TenantId, Arc<TenantBlocks>>>,
}

impl LocalBlocks {
    /// Opens the blocks of every tenant directory under `root`
    /// (`<data_dir>/ingester`).
    pub(crate) fn open(root: &Path, tenants: &[TenantId]) -> Result<Self, TsdbError> {
        let mut map = HashMap::new();
        for t in tenants {
            let tb = TenantBlocks::open(t.clone(), &root.join(t.as_str()))?;
            map.insert(t.clone(), Arc::new(tb));
        }
        Ok(LocalBlocks {
            root: root.to_path_buf(),
            tenants: RwLock::new(map),
        })
    }

    /// The blocks of `tenant`, if it has a block directory open.
    pub(crate) fn get(&self, tenant: &TenantId) -> Option<Arc<TenantBlocks>> {
        self.tenants.read().get(tenant).map(Arc::clone)
    }

    /// The blocks of `tenant`, opened (and the directory created) if needed.
    pub(crate) fn get_or_open(&self, tenant: &TenantId) -> Result<Arc<TenantBlocks>, TsdbError> {
        if let Some(tb) = self.get(tenant) {
            return Ok(tb);
        }
        let mut tenants = self.tenants.write();
        if let Some(tb) = tenants.get(tenant) {
            return Ok(Arc::clone(tb));
        }
        let tb = Arc::new(TenantBlocks::open(
            tenant.clone(),
            &self.root.join(tenant.as_str()),
        )?);
        tenants.insert(tenant.clone(), Arc::clone(&tb));
        Ok(tb)
    }

    /// Every tenant with a block directory open, sorted.
    pub(crate) fn all(&self) -> Vec<Arc<TenantBlocks>> {
        let mut v: Vec<Arc<TenantBlocks>> = self.tenants.read().values().map(Arc::clone).collect();
        v.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        v
    }
}

/// Merges series of the head and the local blocks: equal labels become one
/// series with one sample per timestamp (the head's copy wins), sorted by
/// labels. A head truncated at a cut keeps the chunks crossing the cut
/// time, so both hold some samples.
pub(crate) fn merge_series(
    head: Vec<SeriesSamples>,
    blocks: Vec<SeriesSamples>,
) -> Vec<SeriesSamples> {
    if blocks.is_empty() {
        return head;
    }
    let mut map: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for s in head.into_iter().chain(blocks) {
        match map.get_mut(&s.labels) {
            Some(existing) => existing.extend(s.samples),
            None => {
                map.insert(s.labels, s.samples);
            }
        }
    }
    map.into_iter()
        .map(|(labels, mut samples)| {
            // Stable: of equal timestamps, the first added (the head's) stays.
            samples.sort_by_key(|s| s.t);
            samples.dedup_by_key(|s| s.t);
            SeriesSamples { labels, samples }
        })
        .collect()
}
