//! The one error type of the TSDB engine.

use std::path::PathBuf;

/// Everything that can go wrong in the TSDB engine.
///
/// Variants carry what an operator needs to act: the file and offset of a
/// corrupt structure, the sample that was refused.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// A sample older than the last one appended to the same chunk or series.
    #[error("out-of-order sample: timestamp {t} is before the last timestamp {last}")]
    OutOfOrderSample { t: i64, last: i64 },

    /// A second sample with the timestamp of the last one.
    #[error("duplicate sample for timestamp {t}")]
    DuplicateSample { t: i64 },

    /// A chunk is full (the 2-byte sample counter would overflow).
    #[error("chunk is full ({max} samples)")]
    ChunkFull { max: usize },

    /// Encoded chunk bytes that cannot be decoded.
    #[error("corrupt chunk: {reason}")]
    CorruptChunk { reason: String },

    /// A block file whose content does not match the format.
    #[error("corrupt block file {path}: at offset {offset}: {reason}")]
    CorruptBlock {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A CRC32 Castagnoli checksum mismatch.
    #[error(
        "checksum mismatch in {path} at offset {offset}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        path: PathBuf,
        offset: u64,
        stored: u32,
        computed: u32,
    },

    /// An I/O error on a file.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A `meta.json` that cannot be parsed or written.
    #[error("invalid block meta {path}: {reason}")]
    InvalidMeta { path: PathBuf, reason: String },

    /// Series given to a block writer are not usable (e.g. duplicate labels).
    #[error("invalid block input: {reason}")]
    InvalidBlockInput { reason: String },

    // --- head and WAL ---
    /// A sample older than the newest sample of its series in the head.
    #[error(
        "out-of-order sample for series {series}: timestamp {t} is before the newest timestamp {last}"
    )]
    HeadOutOfOrder {
        series: tidemark_model::Labels,
        t: i64,
        last: i64,
    },

    /// A sample with the timestamp of the newest sample of its series but a
    /// different value (the same value is accepted as a no-op, like Prometheus).
    #[error("duplicate timestamp {t} with a different value for series {series}")]
    HeadDuplicateTimestamp {
        series: tidemark_model::Labels,
        t: i64,
    },

    /// A sample older than the head's lower bound: that time range was
    /// already cut into a block, so the head no longer accepts it.
    #[error(
        "sample for series {series} at {t} is older than the head's minimum valid time {min_valid} (that range is already in a block)"
    )]
    HeadOutOfBounds {
        series: tidemark_model::Labels,
        t: i64,
        min_valid: i64,
    },

    /// Head or WAL options that cannot work; the reason names the field.
    #[error("invalid options: {reason}")]
    InvalidOptions { reason: String },

    /// A series without any label cannot be stored.
    #[error("series without labels cannot be stored")]
    EmptyLabels,

    /// A WAL record that fails its checksum or cannot be decoded, before the
    /// end of the log (so it is not a torn final write). Nothing after it is
    /// replayed; `WalOptions::repair` truncates the log here.
    #[error(
        "corrupt WAL segment {segment} at byte offset {offset}: {reason} (set the WAL repair option to truncate the log at this point, losing what follows)"
    )]
    WalCorruption {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A gap in the sequence of WAL segment files.
    #[error("WAL directory {dir}: segment {missing:08} is missing (found {found:08} after it)")]
    WalMissingSegment {
        dir: PathBuf,
        missing: u32,
        found: u32,
    },

    /// A previous WAL write or fsync failed; the log may hold a partial
    /// record, so the head refuses further writes until it is reopened.
    #[error("WAL in {dir} failed earlier and refuses writes until reopened: {reason}")]
    WalFailed { dir: PathBuf, reason: String },
}

impl TsdbError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TsdbError::Io {
            path: path.into(),
            source,
        }
    }
}
