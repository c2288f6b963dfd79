//! The per-tenant record of cut and shipped blocks, kept in
//! `<tenant>/blocks/shipper.json` and replaced atomically (write to a
//! temporary file, fsync, rename, fsync the directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tidemark_tsdb::{BlockId, TsdbError};

/// File name of the state inside a tenant's block directory.
pub(crate) const STATE_FILENAME: &str = "shipper.json";

/// What survives a restart about a tenant's blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShipState {
    /// Every sample before this time (ms) is in a block: the head refuses
    /// them and a WAL replay drops them. Kept after the blocks themselves
    /// are deleted.
    pub(crate) cut_until: i64,
    /// Blocks the compactor confirmed, with the time of the confirmation
    /// (ms since the epoch): the recent-query window counts from there.
    pub(crate) uploaded: BTreeMap<BlockId, i64>,
}

impl ShipState {
    /// Reads the state in `dir`; a missing file is an empty state.
    pub(crate) fn read(dir: &Path) -> Result<Self, TsdbError> {
        let path = dir.join(STATE_FILENAME);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TsdbError::CorruptBlock {
                path,
                offset: 0,
                reason: format!("ingester block state is not valid: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ShipState {
                cut_until: i64::MIN,
                uploaded: BTreeMap::new(),
            }),
            Err(e) => Err(TsdbError::io(&path, e)),
        }
    }

    /// Replaces the state in `dir` durably.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), TsdbError> {
        let path = dir.join(STATE_FILENAME);
        let tmp: PathBuf = dir.join(format!("{STATE_FILENAME}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| TsdbError::InvalidBlockInput {
            reason: format!("encoding the ingester block state: {e}"),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| TsdbError::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| TsdbError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TsdbError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| TsdbError::io(&path, e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| TsdbError::io(dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let empty = ShipState::read(dir.path()).unwrap();
        assert_eq!(empty.cut_until, i64::MIN);
        let mut s = ShipState {
            cut_until: 7_200_000,
            ..ShipState::default()
        };
        s.uploaded.insert(BlockId::new(), 1234);
        s.write(dir.path()).unwrap();
        assert_eq!(ShipState::read(dir.path()).unwrap(), s);
        std::fs::write(dir.path().join(STATE_FILENAME), b"{").unwrap();
        let e = ShipState::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("shipper.json"), "{e}");
    }
}
