//! The local staging area of blocks being received: each piece is written
//! at its offset and fsynced before it counts as received, so the offsets
//! reported in `Status` survive a crash and a broken upload resumes there.
//!
//! Layout: `<staging>/<tenant>/<ulid>/<file>` and, beside it,
//! `<ulid>.sizes.json` with each file's announced size.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tidemark_tsdb::{BlockId, BlockReader};

use crate::CompactorError;

/// One block's staging directory and size manifest.
#[derive(Debug, Clone)]
pub(crate) struct StagedBlock {
    pub(crate) dir: PathBuf,
    manifest: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CompactorError + '_ {
    move |e| CompactorError::staging(path, e)
}

fn sync_dir(dir: &Path) -> Result<(), CompactorError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl StagedBlock {
    pub(crate) fn new(staging: &Path, tenant: &str, id: BlockId) -> Self {
        let parent = staging.join(tenant);
        StagedBlock {
            dir: parent.join(id.to_string()),
            manifest: parent.join(format!("{id}.sizes.json")),
        }
    }

    fn sizes(&self) -> Result<BTreeMap<String, u64>, CompactorError> {
        match std::fs::read(&self.manifest) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| CompactorError::Internal(format!("{}: {e}", self.manifest.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(CompactorError::staging(&self.manifest, e)),
        }
    }

    fn write_sizes(&self, sizes: &BTreeMap<String, u64>) -> Result<(), CompactorError> {
        let tmp = self.manifest.with_extension("json.tmp");
        let json = serde_json::to_vec(sizes).unwrap_or_default();
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&json).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.manifest).map_err(io(&self.manifest))?;
        let parent = self.manifest.parent().unwrap_or(Path::new("."));
        sync_dir(parent)
    }

    /// Bytes received of each file.
    pub(crate) fn progress(&self) -> Result<Vec<(String, u64)>, CompactorError> {
        let mut out = Vec::new();
        for name in self.sizes()?.into_keys() {
            let len = match std::fs::metadata(self.dir.join(&name)) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(CompactorError::staging(&self.dir.join(&name), e)),
            };
            out.push((name, len));
        }
        Ok(out)
    }

    /// Writes `data` at `offset` of `file` (announced as `file_size` bytes)
    /// and syncs it. The offset may repeat bytes already received (they
    /// are replaced) but not skip any.
    pub(crate) fn write_piece(
        &self,
        file: &str,
        offset: u64,
        data: &[u8],
        file_size: u64,
    ) -> Result<(), CompactorError> {
        let mut sizes = self.sizes()?;
        match sizes.get(file) {
            Some(&s) if s != file_size => {
                return Err(CompactorError::InvalidUpload(format!(
                    "{file} was announced as {s} bytes, now as {file_size}"
                )));
            }
            Some(_) => {}
            None => {
                let parent = self.manifest.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(parent).map_err(io(parent))?;
                sizes.insert(file.to_string(), file_size);
                self.write_sizes(&sizes)?;
            }
        }
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|e| e > file_size) {
            return Err(CompactorError::InvalidUpload(format!(
                "{} bytes at offset {offset} go past the {file_size} bytes of {file}",
                data.len()
            )));
        }
        let path = self.dir.join(file);
        let parent = path.parent().unwrap_or(&self.dir);
        let new_dir = !parent.exists();
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        if new_dir {
            sync_dir(parent)?;
            sync_dir(&self.dir)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        let have = f.metadata().map_err(io(&path))?.len();
        if offset > have {
            return Err(CompactorError::InvalidUpload(format!(
                "offset {offset} of {file} skips bytes: {have} received so far, resume from there"
            )));
        }
        if offset < have {
            f.set_len(offset).map_err(io(&path))?;
        }
        f.write_all_at(data, offset).map_err(io(&path))?;
        f.sync_data().map_err(io(&path))?;
        Ok(())
    }

    /// Checks that every announced file is whole and the block opens, and
    /// that it is the block the sender named.
    pub(crate) fn verify(&self, tenant: &str, id: BlockId) -> Result<(), CompactorError> {
        let incomplete = |reason: String| CompactorError::Incomplete {
            tenant: tenant.to_string(),
            block: id.to_string(),
            reason,
        };
        let sizes = self.sizes()?;
        if !sizes.contains_key("meta.json") {
            return Err(incomplete("meta.json was never sent".into()));
        }
        for (name, len) in self.progress()? {
            let want = sizes.get(&name).copied().unwrap_or(0);
            if len != want {
                return Err(incomplete(format!("{name} has {len} of {want} bytes")));
            }
        }
        let reader = BlockReader::open(&self.dir)
            .map_err(|e| incomplete(format!("the block does not open: {e}")))?;
        if reader.meta().ulid != id {
            return Err(CompactorError::InvalidUpload(format!(
                "meta.json names block {}, the upload names {id}",
                reader.meta().ulid
            )));
        }
        Ok(())
    }

    /// Removes the staged files once the block is in the bucket.
    pub(crate) fn remove(&self) -> Result<(), CompactorError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CompactorError::staging(&self.dir, e)),
        }
        match std::fs::remove_file(&self.manifest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CompactorError::staging(&self.manifest, e)),
        }
    }
}
