//! Flags named after field paths, derived from the default configuration.
//!
//! Every leaf of the default YAML document becomes a flag: the path
//! `server.http_listen_address` is the flag `--server.http-listen-address`.
//! Nothing is listed by hand, so a new config field has its flag and its
//! documented default the moment it exists.

use serde_yaml::{Mapping, Value};

use crate::ConfigError;

/// One flag derived from a config leaf.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagSpec {
    /// Dotted YAML path, e.g. `server.http_listen_address`.
    pub path: String,
    /// The flag without dashes, e.g. `server.http-listen-address`.
    pub flag: String,
    /// The default, rendered as the user would type it.
    pub default: String,
}

/// The flag name of a YAML path.
pub fn flag_name(path: &str) -> String {
    path.replace('_', "-")
}

/// All leaves of `defaults` as flags, in document order.
pub fn flag_specs(defaults: &Value) -> Vec<FlagSpec> {
    let mut out = Vec::new();
    walk(defaults, "", &mut out);
    out
}

fn walk(v: &Value, path: &str, out: &mut Vec<FlagSpec>) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, child) in m {
                if let Some(k) = k.as_str() {
                    walk(child, &crate::join(path, k), out);
                }
            }
        }
        _ => out.push(FlagSpec {
            path: path.to_string(),
            flag: flag_name(path),
            default: render(v),
        }),
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(s) => s.iter().map(render).collect::<Vec<_>>().join(","),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Sets the leaf at `path` in `doc` from a flag's raw text.
///
/// The raw text is read according to the type of the default at that path:
/// strings stay strings (so `--x=0123` is not turned into a number),
/// lists are comma-separated, everything else is parsed as a YAML scalar and
/// left to the config struct's deserializer to check.
pub fn set_path(
    doc: &mut Value,
    defaults: &Value,
    path: &str,
    raw: &str,
) -> Result<(), ConfigError> {
    let default = lookup(defaults, path);
    let value = match default {
        Some(Value::String(_)) => Value::String(raw.to_string()),
        Some(Value::Sequence(_)) => Value::Sequence(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        _ => serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
    };
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_mapping() {
            *cur = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = cur else {
            return Err(ConfigError::invalid(path, "not a section"));
        };
        let key = Value::String((*part).to_string());
        if i + 1 == parts.len() {
            m.insert(key, value);
            return Ok(());
        }
        cur = m.entry(key).or_insert(Value::Null);
    }
    Ok(())
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, part| cur.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Value {
        serde_yaml::from_str(
            "server:\n  http_listen_address: ':9009'\n  port: 1\n  seeds: []\nflag: false\n",
        )
        .unwrap()
    }

    #[test]
    fn specs_from_leaves() {
        let specs = flag_specs(&defaults());
        let flags: Vec<_> = specs.iter().map(|s| s.flag.as_str()).collect();
        assert_eq!(
            flags,
            [
                "server.http-listen-address",
                "server.port",
                "server.seeds",
                "flag"
            ]
        );
        assert_eq!(specs[0].default, ":9009");
    }

    #[test]
    fn set_respects_default_types() {
        let d = defaults();
        let mut doc = Value::Mapping(Mapping::new());
        set_path(&mut doc, &d, "server.http_listen_address", "0123").unwrap();
        set_path(&mut doc, &d, "server.port", "7").unwrap();
        set_path(&mut doc, &d, "server.seeds", "a:1, b:2").unwrap();
        assert_eq!(
            doc["server"]["http_listen_address"],
            Value::String("0123".into())
        );
        assert_eq!(doc["server"]["port"], Value::Number(7.into()));
        assert_eq!(doc["server"]["seeds"][1], Value::String("b:2".into()));
    }
}
