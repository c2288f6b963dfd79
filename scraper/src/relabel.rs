//! Relabeling: `relabel_configs` and `metric_relabel_configs`.
//!
//! Semantics follow Prometheus's `model/relabel`: every action, the same
//! defaults (`source_labels` joined by `;`, regex `(.*)` anchored at both
//! ends, replacement `$1`, action `replace`), `$1`/`${1}`/`$name`
//! expansion with Go's rules (the longest run of word characters is the
//! name, unknown groups expand to nothing, `$$` is a literal `$`), and
//! hashmod over the MD5 of the joined values (its last 8 bytes, big-endian).
//! One difference: Rust's regex engine treats `\w`, `\d` and `\s` as Unicode
//! classes where Go's RE2 uses ASCII; patterns over ASCII label values
//! behave the same.

use std::fmt;

use serde::{Deserialize, Deserializer};
use tidemark_config::{ConfigError, Validate, join};
use tidemark_model::is_valid_label_name;

/// What a relabel step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// Parses an action name case-insensitively, as Prometheus does.
    pub fn from_name(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Action::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown relabel action {s:?}")))
    }
}

/// A regular expression anchored at both ends (`^(?:<re>)$`), as every
/// relabel regex is.
#[derive(Clone)]
pub struct AnchoredRegex {
    source: String,
    re: regex::Regex,
}

impl AnchoredRegex {
    /// Compiles `source` anchored; the error is the regex syntax error.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(AnchoredRegex {
            source: source.to_string(),
            re: regex::Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// The expression as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// Expands `template` against the match of `s`, if `s` matches.
    fn expand(&self, s: &str, template: &str) -> Option<String> {
        let caps = self.re.captures(s)?;
        let mut out = String::new();
        caps.expand(template, &mut out);
        Some(out)
    }
}

impl fmt::Debug for AnchoredRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for AnchoredRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for AnchoredRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AnchoredRegex::new(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_string()
}

fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.to_string()
}

/// One relabel step, as written in prometheus.yml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined by `separator` to form the input.
    #[serde(default)]
    pub source_labels: Option<Vec<String>>,
    #[serde(default = "default_separator")]
    pub separator: String,
    /// `None` is the default `(.*)`; an explicit regex is kept apart
    /// because keepequal/dropequal refuse any explicit one.
    #[serde(default)]
    pub regex: Option<AnchoredRegex>,
    #[serde(default)]
    pub modulus: u64,
    #[serde(default)]
    pub target_label: String,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: None,
            separator: default_separator(),
            regex: None,
            modulus: 0,
            target_label: String::new(),
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

/// Whether a replace `target_label` with `$` references has the shape
/// Prometheus allows: `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`.
fn is_valid_target_template(s: &str) -> bool {
    static SHAPE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    SHAPE
        .get_or_init(|| regex::Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(s))
}

impl Validate for RelabelConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let act = self.action;
        let bad = |field: &str, msg: String| Err(ConfigError::invalid(join(path, field), msg));
        if let Some(names) = &self.source_labels {
            for (i, n) in names.iter().enumerate() {
                if !is_valid_label_name(n) {
                    return bad(
                        &format!("source_labels[{i}]"),
                        format!("{n:?} is not a valid label name"),
                    );
                }
            }
        }
        if act == Action::HashMod && self.modulus == 0 {
            return bad(
                "modulus",
                "relabel configuration for hashmod requires non-zero modulus".into(),
            );
        }
        let needs_target = matches!(
            act,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return bad(
                "target_label",
                format!("relabel configuration for {act} action requires 'target_label' value"),
            );
        }
        let t = &self.target_label;
        let target_ok = match act {
            Action::Replace if t.contains('$') => is_valid_target_template(t),
            Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual => is_valid_label_name(t),
            _ => true,
        };
        if !target_ok {
            return bad(
                "target_label",
                format!("{t:?} is invalid 'target_label' for {act} action"),
            );
        }
        if matches!(
            act,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        ) && self.replacement != DEFAULT_REPLACEMENT
        {
            return bad(
                "replacement",
                format!("'replacement' can not be set for {act} action"),
            );
        }
        if act == Action::LabelMap && !is_valid_target_template(&self.replacement) {
            return bad(
                "replacement",
                format!(
                    "{:?} is invalid 'replacement' for {act} action",
                    self.replacement
                ),
            );
        }
        if matches!(act, Action::KeepEqual | Action::DropEqual)
            && (self.regex.is_some() || self.modulus != 0 || self.separator != DEFAULT_SEPARATOR)
        {
            return bad(
                "action",
                format!(
                    "{act} action requires only 'source_labels' and `target_label`, and no other fields"
                ),
            );
        }
        if matches!(act, Action::LabelDrop | Action::LabelKeep)
            && (self.source_labels.is_some()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return bad(
                "action",
                format!("{act} action requires only 'regex', and no other fields"),
            );
        }
        Ok(())
    }
}

/// A compiled relabel step: the config with its default regex resolved.
#[derive(Debug, Clone)]
pub struct Relabeler {
    cfg: RelabelConfig,
    regex: AnchoredRegex,
}

impl Relabeler {
    /// Compiles a (validated) config.
    pub fn new(cfg: RelabelConfig) -> Self {
        let regex = match &cfg.regex {
            Some(r) => r.clone(),
            // The default pattern is a constant that always compiles.
            None => AnchoredRegex::new(DEFAULT_REGEX).expect("the default relabel regex compiles"),
        };
        Relabeler { cfg, regex }
    }

    /// Applies this step; `false` means the label set is dropped.
    pub fn apply(&self, lb: &mut LabelSetBuilder) -> bool {
        let cfg = &self.cfg;
        let val = match &cfg.source_labels {
            None => String::new(),
            Some(names) => {
                let mut v = String::new();
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        v.push_str(&cfg.separator);
                    }
                    v.push_str(lb.get(n));
                }
                v
            }
        };
        match cfg.action {
            Action::Drop => return !self.regex.is_match(&val),
            Action::Keep => return self.regex.is_match(&val),
            Action::DropEqual => return lb.get(&cfg.target_label) != val,
            Action::KeepEqual => return lb.get(&cfg.target_label) == val,
            Action::Replace => {
                let Some(target) = self.regex.expand(&val, &cfg.target_label) else {
                    return true;
                };
                if !is_valid_label_name(&target) {
                    return true;
                }
                let res = self
                    .regex
                    .expand(&val, &cfg.replacement)
                    .unwrap_or_default();
                lb.set(&target, &res);
            }
            Action::Lowercase => lb.set(&cfg.target_label, &val.to_lowercase()),
            Action::Uppercase => lb.set(&cfg.target_label, &val.to_uppercase()),
            Action::HashMod => {
                let digest = md5::compute(val.as_bytes());
                let mut low = [0u8; 8];
                low.copy_from_slice(&digest.0[8..]);
                let m = u64::from_be_bytes(low) % cfg.modulus.max(1);
                lb.set(&cfg.target_label, &m.to_string());
            }
            Action::LabelMap => {
                for (name, value) in lb.snapshot() {
                    if let Some(new_name) = self.regex.expand(&name, &cfg.replacement) {
                        lb.set(&new_name, &value);
                    }
                }
            }
            Action::LabelDrop => lb.retain(|n| !self.regex.is_match(n)),
            Action::LabelKeep => lb.retain(|n| self.regex.is_match(n)),
        }
        true
    }
}

/// Applies `steps` in order; `false` as soon as one drops the label set.
pub fn process(lb: &mut LabelSetBuilder, steps: &[Relabeler]) -> bool {
    steps.iter().all(|s| s.apply(lb))
}

/// A mutable label set with Prometheus's builder semantics: a missing label
/// reads as `""`, and setting `""` deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSetBuilder {
    pairs: Vec<(String, String)>,
}

impl LabelSetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from `labels`.
    pub fn from_labels(labels: &tidemark_model::Labels) -> Self {
        LabelSetBuilder {
            pairs: labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The value of `name`, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Sets `name`; an empty value deletes it.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.del(name);
            return;
        }
        match self.pairs.iter_mut().find(|(n, _)| n == name) {
            Some(p) => value.clone_into(&mut p.1),
            None => self.pairs.push((name.to_string(), value.to_string())),
        }
    }

    pub fn del(&mut self, name: &str) {
        self.pairs.retain(|(n, _)| n != name);
    }

    /// Keeps the labels whose name satisfies `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.pairs.retain(|(n, _)| keep(n));
    }

    /// The current pairs (a copy, so callers may change the builder while
    /// walking it, as labelmap does).
    pub fn snapshot(&self) -> Vec<(String, String)> {
        self.pairs.clone()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The sorted label set. Names are unique by construction.
    pub fn labels(&self) -> tidemark_model::Labels {
        let mut v: Vec<(&str, &str)> = self.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        tidemark_model::Labels::from_sorted_pairs(v)
    }
}

#[cfg(test)]
#[path = "relabel_tests.rs"]
mod tests;
