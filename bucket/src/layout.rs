//! Object keys: `<tenant>/<block ULID>/<file>`, `<tenant>/bucket-index.json`,
//! `<tenant>/<block ULID>/deletion-mark.json`.

use object_store::path::Path;
use tidemark_tsdb::BlockId;

use crate::BucketError;

/// A block's metadata; uploaded last, so its presence means the block is whole.
pub const META_FILENAME: &str = "meta.json";
/// The per-tenant bucket index.
pub const BUCKET_INDEX_FILENAME: &str = "bucket-index.json";
/// Marks a block for deletion after a delay.
pub const DELETION_MARK_FILENAME: &str = "deletion-mark.json";

/// Checks that a tenant id can be used as the first segment of an object
/// key: not empty, at most 150 bytes, no `/`, not `.` or `..`, no control
/// characters.
pub fn validate_tenant(tenant: &str) -> Result<(), BucketError> {
    let bad = |reason| BucketError::InvalidName {
        what: "tenant",
        value: tenant.to_string(),
        reason,
    };
    if tenant.is_empty() {
        return Err(bad("is empty"));
    }
    if tenant.len() > 150 {
        return Err(bad("is longer than 150 bytes"));
    }
    if tenant == "." || tenant == ".." {
        return Err(bad("is a relative path"));
    }
    if tenant
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(bad("contains '/', '\\' or a control character"));
    }
    Ok(())
}

/// Checks a file path inside a block directory, as sent by an ingester:
/// `meta.json`, `index`, `tombstones` or `chunks/NNNNNN`.
pub fn validate_block_file(file: &str) -> Result<(), BucketError> {
    let ok = matches!(file, "meta.json" | "index" | "tombstones")
        || file
            .strip_prefix("chunks/")
            .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(BucketError::InvalidName {
            what: "block file",
            value: file.to_string(),
            reason: "expected meta.json, index, tombstones or chunks/NNNNNN",
        })
    }
}

/// `<tenant>/<ulid>`.
pub fn block_prefix(tenant: &str, id: BlockId) -> Path {
    Path::from(format!("{tenant}/{id}"))
}

/// `<tenant>/<ulid>/<file>`.
pub fn block_file_path(tenant: &str, id: BlockId, file: &str) -> Path {
    Path::from(format!("{tenant}/{id}/{file}"))
}

pub(crate) fn index_path(tenant: &str) -> Path {
    Path::from(format!("{tenant}/{BUCKET_INDEX_FILENAME}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_tenant("team-a_1").is_ok());
        for bad in ["", ".", "..", "a/b", "a\nb"] {
            assert!(validate_tenant(bad).is_err(), "{bad:?}");
        }
        for good in ["meta.json", "index", "tombstones", "chunks/000001"] {
            assert!(validate_block_file(good).is_ok(), "{good}");
        }
        for bad in [
            "../x",
            "chunks/1",
            "chunks/../../etc",
            "/index",
            "chunks/00000a",
        ] {
            assert!(validate_block_file(bad).is_err(), "{bad}");
        }
    }
}
