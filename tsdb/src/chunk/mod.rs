//! Compressed sample chunks.
//!
//! Only the Prometheus XOR float encoding exists today (Prometheus encoding
//! byte `1`); the [`Encoding`] enum names the byte written into chunk segment
//! files so that readers can refuse encodings they do not know (native
//! histograms) with a clear error rather than misdecode them.

mod bstream;
mod xor;
mod xor_iter;

pub use xor::{MAX_SAMPLES_PER_CHUNK, XorAppender, XorChunk, XorIter};

/// Chunk encodings as numbered by Prometheus (`tsdb/chunkenc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    /// Gorilla-style XOR float chunks.
    Xor = 1,
    /// Native histograms (not supported by tidemark).
    Histogram = 2,
    /// Native float histograms (not supported by tidemark).
    FloatHistogram = 3,
}

impl Encoding {
    /// The encoding for a byte read from disk, if it is a known one.
    pub fn from_byte(b: u8) -> Option<Encoding> {
        match b {
            1 => Some(Encoding::Xor),
            2 => Some(Encoding::Histogram),
            3 => Some(Encoding::FloatHistogram),
            _ => None,
        }
    }
}
