//! Object storage for tidemark blocks.
//!
//! - [`BucketConfig`]: which object store (filesystem by default, S3, GCS,
//!   Azure) and its settings; [`BucketConfig::build`] makes the
//!   `Arc<dyn ObjectStore>`.
//! - [`Bucket`]: the layout `<tenant>/<block ULID>/{meta.json,index,chunks/..}`
//!   on top of any object store: upload a local block (meta.json last, so a
//!   half-uploaded block is never visible), download one, read ranges of a
//!   block file, deletion marks, hard deletion.
//! - [`BucketIndex`]: `<tenant>/bucket-index.json`, the per-tenant list of
//!   blocks and deletion marks that queriers read instead of listing the
//!   bucket; rebuilt from the bucket by the compactor.
//!
//! See `docs/compactor.md`.

mod bucket;
mod config;
mod error;
mod index;
mod layout;
mod source;

pub use bucket::{Bucket, BucketScan, PartialBlock, UploadedBlock};
pub use config::{AzureConfig, BackendKind, BucketConfig, FilesystemConfig, GcsConfig, S3Config};
pub use error::BucketError;
pub use index::{BucketIndex, DeletionMark, INDEX_VERSION, IndexedBlock};
pub use layout::{
    BUCKET_INDEX_FILENAME, DELETION_MARK_FILENAME, META_FILENAME, block_file_path, block_prefix,
    validate_block_file, validate_tenant,
};
pub use object_store::{ObjectStore, path::Path as ObjectPath};
pub use source::ObjectSource;

#[cfg(feature = "s3-test-server")]
pub mod s3_test_server;
