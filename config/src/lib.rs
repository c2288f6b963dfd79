//! Configuration plumbing shared by every tidemark component.
//!
//! Each component owns one config struct (`#[serde(deny_unknown_fields)]`,
//! defaults in `Default`) and implements [`Validate`]. The binary composes
//! them into one YAML document; [`overlay`] applies command-line flags named
//! after field paths, so the same structs produce the YAML, the flags and the
//! documentation of defaults.

mod duration;
mod error;
mod overlay;

pub use duration::Duration;
pub use error::ConfigError;
pub use overlay::{FlagSpec, flag_name, flag_specs, set_path};

/// A config section that can check itself.
///
/// `path` is where the section sits in the whole document (e.g.
/// `ingester.wal`), so errors name the full path of the bad field.
pub trait Validate {
    fn validate(&self, path: &str) -> Result<(), ConfigError>;
}

/// Joins a section path and a field name: `join("a.b", "c") == "a.b.c"`.
pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}
