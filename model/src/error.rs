use thiserror::Error;

/// Why a piece of outside input does not fit the data model.
///
/// Every variant names the offending label, value or tenant so that the
/// message can be returned to the client unchanged.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    #[error("invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidLabelName { name: String },
    #[error("invalid metric name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName { name: String },
    #[error("duplicate label name {name:?}")]
    DuplicateLabelName { name: String },
    #[error("label {name:?} has an empty value")]
    EmptyLabelValue { name: String },
    #[error("label {name:?} value is not valid UTF-8")]
    InvalidUtf8 { name: String },
    #[error("invalid regular expression {regex:?} in matcher for label {name:?}: {reason}")]
    InvalidRegex {
        name: String,
        regex: String,
        reason: String,
    },
    #[error("malformed packed label set at byte {offset}: {reason}")]
    MalformedPacked { offset: usize, reason: &'static str },
    #[error("invalid tenant id {tenant:?}: {reason}")]
    InvalidTenant { tenant: String, reason: String },
}
