//! Block index files cached on local disk under a size cap, least recently
//! used file evicted first.
//!
//! Layout: `<dir>/<tenant>/<ULID>.index`. A file is downloaded to a
//! temporary name and renamed, so the cache never holds a partial index;
//! what is on disk at start is adopted (oldest modification first in line
//! for eviction).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use tidemark_tsdb::BlockId;
use tidemark_tsdb::block::FileSource;

/// One cached file: its size and when it was last used (a counter).
struct Entry {
    bytes: u64,
    used: u64,
}

/// The cache's bookkeeping; the files are the truth on disk.
#[derive(Default)]
struct Lru {
    files: HashMap<PathBuf, Entry>,
    total: u64,
    clock: u64,
}

/// Index files on local disk, at most `max_bytes` of them (a single file
/// larger than the cap is kept until the next one arrives).
pub(crate) struct IndexCache {
    dir: PathBuf,
    max_bytes: u64,
    lru: Mutex<Lru>,
}

impl IndexCache {
    /// Opens (creating) the cache directory and adopts files found there.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut found: Vec<(std::time::SystemTime, PathBuf, u64)> = Vec::new();
        for tenant in std::fs::read_dir(dir)? {
            let tenant = tenant?;
            if !tenant.file_type()?.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(tenant.path())? {
                let f = f?;
                let path = f.path();
                if path.extension().is_some_and(|e| e == "tmp") {
                    std::fs::remove_file(&path)?;
                    continue;
                }
                let md = f.metadata()?;
                found.push((md.modified()?, path, md.len()));
            }
        }
        found.sort();
        let mut lru = Lru::default();
        for (_, path, bytes) in found {
            lru.clock += 1;
            lru.total += bytes;
            lru.files.insert(
                path,
                Entry {
                    bytes,
                    used: lru.clock,
                },
            );
        }
        let cache = IndexCache {
            dir: dir.to_path_buf(),
            max_bytes,
            lru: Mutex::new(lru),
        };
        cache.evict(None)?;
        Ok(cache)
    }

    /// Where the index of `block` of `tenant` is cached.
    pub(crate) fn path(&self, tenant: &str, block: BlockId) -> PathBuf {
        self.dir.join(tenant).join(format!("{block}.index"))
    }

    /// The cached file of `block`, opened and marked as just used; `None`
    /// when absent. Opened under the cache lock, so a concurrent eviction
    /// cannot remove it in between (an open file stays readable).
    pub(crate) fn get(&self, tenant: &str, block: BlockId) -> Option<FileSource> {
        let path = self.path(tenant, block);
        let mut lru = self.lru.lock();
        lru.clock += 1;
        let now = lru.clock;
        let e = lru.files.get_mut(&path)?;
        e.used = now;
        FileSource::open(&path).ok()
    }

    /// Stores `bytes` as the index of `block` (durably renamed into place)
    /// and evicts least recently used files beyond the cap; returns the
    /// evicted paths so readers over them can be dropped.
    pub(crate) fn put(
        &self,
        tenant: &str,
        block: BlockId,
        bytes: &[u8],
    ) -> std::io::Result<(FileSource, Vec<PathBuf>)> {
        let path = self.path(tenant, block);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        let opened = FileSource::open(&path).map_err(std::io::Error::other)?;
        {
            let mut lru = self.lru.lock();
            lru.clock += 1;
            let used = lru.clock;
            let old = lru.files.insert(
                path.clone(),
                Entry {
                    bytes: bytes.len() as u64,
                    used,
                },
            );
            lru.total = lru.total - old.map_or(0, |e| e.bytes) + bytes.len() as u64;
        }
        let evicted = self.evict(Some(&path))?;
        Ok((opened, evicted))
    }

    /// Bytes of index files now cached.
    #[cfg(test)]
    pub(crate) fn total_bytes(&self) -> u64 {
        self.lru.lock().total
    }

    /// Deletes least recently used files until the total fits the cap,
    /// never `keep`.
    fn evict(&self, keep: Option<&Path>) -> std::io::Result<Vec<PathBuf>> {
        let mut evicted = Vec::new();
        let mut lru = self.lru.lock();
        while lru.total > self.max_bytes {
            let victim = lru
                .files
                .iter()
                .filter(|(p, _)| Some(p.as_path()) != keep)
                .min_by_key(|(_, e)| e.used)
                .map(|(p, _)| p.clone());
            let Some(victim) = victim else { break };
            if let Some(e) = lru.files.remove(&victim) {
                lru.total -= e.bytes;
            }
            match std::fs::remove_file(&victim) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            evicted.push(victim);
        }
        Ok(evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_files_go_first_and_the_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let cache = IndexCache::open(dir.path(), 250).unwrap();
        let (a, b, c) = (BlockId::new(), BlockId::new(), BlockId::new());
        cache.put("t", a, &[1; 100]).unwrap();
        cache.put("t", b, &[2; 100]).unwrap();
        assert!(cache.get("t", a).is_some()); // a is now newer than b
        let (_, evicted) = cache.put("t", c, &[3; 100]).unwrap();
        assert_eq!(evicted, vec![cache.path("t", b)]);
        assert!(cache.get("t", b).is_none());
        assert!(!cache.path("t", b).exists());
        assert_eq!(cache.total_bytes(), 200);
        assert_eq!(std::fs::read(cache.path("t", a)).unwrap(), vec![1; 100]);
    }

    #[test]
    fn files_on_disk_are_adopted_at_start_and_trimmed_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<BlockId> = (0..3).map(|_| BlockId::new()).collect();
        {
            let cache = IndexCache::open(dir.path(), 1000).unwrap();
            for id in &ids {
                cache.put("t", *id, &[0; 100]).unwrap();
            }
            std::fs::write(dir.path().join("t").join("x.tmp"), b"partial").unwrap();
        }
        let cache = IndexCache::open(dir.path(), 150).unwrap();
        assert_eq!(cache.total_bytes(), 100);
        assert!(!dir.path().join("t").join("x.tmp").exists());
        assert_eq!(
            ids.iter()
                .filter(|id| cache.get("t", **id).is_some())
                .count(),
            1
        );
    }
}
