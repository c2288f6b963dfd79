//! Parse errors: the line and what was expected there.

use thiserror::Error;

/// Why a scraped body could not be parsed. The scrape marks the target down
/// with this message, so it names the line and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line of the body where parsing stopped.
    pub line: usize,
    pub kind: ParseErrorKind,
}

/// The specific problem behind a [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("expected {expected}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("unterminated quoted {what}")]
    UnterminatedString { what: &'static str },
    #[error("invalid UTF-8 in {what}")]
    InvalidUtf8 { what: &'static str },
    #[error("invalid sample value {text:?}: {reason}")]
    InvalidValue { text: String, reason: &'static str },
    #[error("invalid timestamp {text:?}: {reason}")]
    InvalidTimestamp { text: String, reason: &'static str },
    #[error("invalid metric type {text:?} (expected one of {allowed})")]
    InvalidType { text: String, allowed: &'static str },
    #[error("unit {unit:?} is not a suffix of metric {metric:?}")]
    UnitNotSuffix { unit: String, metric: String },
    #[error("metric name given twice in one series")]
    DuplicateMetricName,
    #[error("series has no metric name")]
    MissingMetricName,
    #[error("OpenMetrics body does not end with `# EOF`")]
    MissingEof,
    #[error("data after `# EOF`")]
    DataAfterEof,
}
