//! `meta.json`: a block's identity, time range, statistics and compaction
//! lineage, in the JSON layout of Prometheus's `tsdb/block.go`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TsdbError;

/// The name of the metadata file in a block directory.
pub(crate) const META_FILENAME: &str = "meta.json";

/// A block's identity: a ULID, which sorts by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub ulid::Ulid);

impl BlockId {
    /// A fresh id for a block created now.
    pub fn new() -> Self {
        BlockId(ulid::Ulid::new())
    }
}

impl Default for BlockId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for BlockId {
    type Err = ulid::DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ulid::Ulid::from_string(s).map(BlockId)
    }
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The contents of `meta.json`.
///
/// `max_time` is exclusive, as in Prometheus: a block holding samples up to
/// `t` has `max_time = t + 1`. Fields other programs add (Thanos's `thanos`
/// section, for example) are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: BlockId,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    pub compaction: BlockCompaction,
    pub version: u32,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Counts over the whole block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

/// Where a block comes from: level 1 is a block cut from a head; a merge
/// of blocks takes the highest level of its inputs plus one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockCompaction {
    pub level: u32,
    /// The level-1 blocks whose data this block holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<BlockId>,
    /// The blocks merged directly into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletable: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// A parent block in a compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    pub ulid: BlockId,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

/// The only `meta.json` version Prometheus 2.x and 3.x write.
pub const META_VERSION: u32 = 1;

impl BlockMeta {
    /// Parses `meta.json` bytes; `path` names the file in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, TsdbError> {
        let meta: BlockMeta =
            serde_json::from_slice(bytes).map_err(|e| TsdbError::InvalidMeta {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if meta.version != META_VERSION {
            return Err(TsdbError::InvalidMeta {
                path: path.to_path_buf(),
                reason: format!("unsupported meta.json version {}", meta.version),
            });
        }
        Ok(meta)
    }

    /// Reads `<dir>/meta.json`.
    pub fn read(dir: &Path) -> Result<Self, TsdbError> {
        let path = dir.join(META_FILENAME);
        let bytes = std::fs::read(&path).map_err(|e| TsdbError::io(&path, e))?;
        Self::from_json(&bytes, &path)
    }

    /// The JSON Prometheus writes (tab-indented).
    pub fn to_json(&self) -> Result<Vec<u8>, TsdbError> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser)
            .map_err(|e| TsdbError::InvalidMeta {
                path: META_FILENAME.into(),
                reason: e.to_string(),
            })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prometheus_meta_parses_and_keeps_unknown_fields() {
        let json = br#"{
            "ulid": "01M897FGZ2ZDKC0AAHEBVVAF2V",
            "minTime": 1700000000000,
            "maxTime": 1700000030001,
            "stats": {"numSamples": 4, "numSeries": 2, "numChunks": 2, "numFloatSamples": 4},
            "compaction": {"level": 2, "sources": ["01M897FGZ2ZDKC0AAHEBVVAF2V"],
                "parents": [{"ulid": "01M897FGZ2ZDKC0AAHEBVVAF2V", "minTime": 1, "maxTime": 2}]},
            "version": 1,
            "thanos": {"labels": {"replica": "a"}}
        }"#;
        let meta = BlockMeta::from_json(json, Path::new("meta.json")).unwrap();
        assert_eq!(meta.ulid.to_string(), "01M897FGZ2ZDKC0AAHEBVVAF2V");
        assert_eq!(
            (meta.min_time, meta.max_time),
            (1700000000000, 1700000030001)
        );
        assert_eq!(meta.stats.num_samples, 4);
        assert_eq!(meta.compaction.level, 2);
        assert_eq!(meta.compaction.parents[0].max_time, 2);
        let again = meta.to_json().unwrap();
        let back = BlockMeta::from_json(&again, Path::new("meta.json")).unwrap();
        assert_eq!(back, meta);
        let v: serde_json::Value = serde_json::from_slice(&again).unwrap();
        assert_eq!(v["thanos"]["labels"]["replica"], "a");
        assert_eq!(v["stats"]["numFloatSamples"], 4);
    }

    #[test]
    fn wrong_version_and_bad_json_are_refused() {
        let json = br#"{"ulid": "01M897FGZ2ZDKC0AAHEBVVAF2V", "minTime": 0, "maxTime": 1,
            "compaction": {"level": 1}, "version": 2}"#;
        let err = BlockMeta::from_json(json, Path::new("x/meta.json")).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        assert!(BlockMeta::from_json(b"{", Path::new("m")).is_err());
    }
}
