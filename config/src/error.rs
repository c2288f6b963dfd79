use thiserror::Error;

/// A configuration problem, naming the path of the field and what was expected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value for `{path}`: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot parse configuration: {message}")]
    Parse { message: String },
    #[error("unknown flag `--{flag}`")]
    UnknownFlag { flag: String },
    #[error("cannot read configuration file {file}: {message}")]
    Read { file: String, message: String },
}

impl ConfigError {
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
