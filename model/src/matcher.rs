//! Label matchers with Prometheus semantics.
//!
//! Regular expressions are fully anchored and `.` matches a newline, as in
//! Prometheus. The Rust `regex` crate refuses the same constructs Go's RE2
//! refuses (backreferences, lookaround), so a query that Prometheus rejects
//! is rejected here too.

use std::fmt;

use regex::Regex;
use regex_syntax::hir::{Hir, HirKind, Literal};

use crate::ModelError;

/// The four matcher operators of PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        })
    }
}

/// A label matcher: `name op value`.
///
/// A missing label matches as the empty string, so `foo=""` selects series
/// without `foo` and `foo!=""` selects series that have it.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
    /// For regexes that are an alternation of literals (`a|b|c`), the exact values.
    set: Option<Vec<String>>,
    /// For regexes of the form `lit.*`, the literal prefix.
    prefix: Option<String>,
}

impl Matcher {
    /// Builds a matcher, compiling and checking a regex value.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let name = name.into();
        let value = value.into();
        let (re, set, prefix) = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                let anchored = format!("^(?s:{value})$");
                let re = Regex::new(&anchored).map_err(|e| ModelError::InvalidRegex {
                    name: name.clone(),
                    regex: value.clone(),
                    reason: e.to_string(),
                })?;
                let (set, prefix) = analyze(&value);
                (Some(re), set, prefix)
            }
            _ => (None, None, None),
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
            set,
            prefix,
        })
    }

    /// Shorthand for an equality matcher, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
            set: None,
            prefix: None,
        }
    }

    /// Whether a label value (empty for an absent label) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.regex_matches(v),
            MatchOp::NotRegex => !self.regex_matches(v),
        }
    }

    fn regex_matches(&self, v: &str) -> bool {
        if let Some(set) = &self.set {
            return set.iter().any(|s| s == v);
        }
        if let Some(p) = &self.prefix {
            return v.starts_with(p.as_str());
        }
        self.re.as_ref().is_some_and(|re| re.is_match(v))
    }

    /// Whether the matcher selects series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=` and for regexes that are a plain alternation of literals, the
    /// exact values that match, so an index can look them up directly.
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        match self.op {
            MatchOp::Equal => Some(vec![self.value.as_str()]),
            MatchOp::Regex => self
                .set
                .as_ref()
                .map(|s| s.iter().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// For `=~"lit.*"`, the literal prefix every matching value starts with.
    pub fn prefix(&self) -> Option<&str> {
        match self.op {
            MatchOp::Regex => self.prefix.as_deref(),
            _ => None,
        }
    }

    /// Whether this is `=~".*"` (or `.*` in a `!~`), which matches every value.
    pub fn is_match_all_regex(&self) -> bool {
        matches!(self.op, MatchOp::Regex | MatchOp::NotRegex) && self.value == ".*"
    }
}

/// Finds the fast paths of a regex: a set of literals or a literal prefix.
fn analyze(value: &str) -> (Option<Vec<String>>, Option<String>) {
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .parse(value)
    else {
        return (None, None);
    };
    if let Some(lit) = literal(&hir) {
        return (Some(vec![lit]), None);
    }
    if let HirKind::Alternation(alts) = hir.kind() {
        let lits: Option<Vec<String>> = alts.iter().map(literal).collect();
        if let Some(l) = lits {
            return (Some(l), None);
        }
    }
    if let HirKind::Concat(parts) = hir.kind()
        && parts.len() == 2
        && let Some(p) = literal(&parts[0])
        && is_dot_star(&parts[1])
    {
        return (None, Some(p));
    }
    (None, None)
}

fn literal(h: &Hir) -> Option<String> {
    match h.kind() {
        HirKind::Literal(Literal(bytes)) => String::from_utf8(bytes.to_vec()).ok(),
        HirKind::Empty => Some(String::new()),
        HirKind::Capture(c) => literal(&c.sub),
        _ => None,
    }
}

fn is_dot_star(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Repetition(r) => {
            r.min == 0
                && r.max.is_none()
                && matches!(r.sub.kind(), HirKind::Class(regex_syntax::hir::Class::Unicode(c))
                    if c.ranges().len() == 1 && c.ranges()[0].start() == '\0' && c.ranges()[0].end() == char::MAX)
        }
        HirKind::Capture(c) => is_dot_star(&c.sub),
        _ => false,
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op, self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).unwrap()
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let r = m(MatchOp::Regex, "fo.");
        assert!(r.matches("foo"));
        assert!(!r.matches("xfoo"));
        assert!(!r.matches("fooo"));
        assert!(m(MatchOp::Regex, "a.b").matches("a\nb"));
        assert!(!m(MatchOp::NotRegex, "a.b").matches("a\nb"));
    }

    #[test]
    fn empty_semantics() {
        assert!(m(MatchOp::Equal, "").matches_empty());
        assert!(!m(MatchOp::NotEqual, "").matches_empty());
        assert!(m(MatchOp::Regex, ".*").matches_empty());
        assert!(!m(MatchOp::Regex, ".+").matches_empty());
        assert!(m(MatchOp::NotRegex, "x").matches_empty());
    }

    #[test]
    fn fast_paths() {
        let s = m(MatchOp::Regex, "a|bb|c");
        assert_eq!(s.set_matches(), Some(vec!["a", "bb", "c"]));
        assert!(s.matches("bb") && !s.matches("b"));
        let p = m(MatchOp::Regex, "foo.*");
        assert_eq!(p.prefix(), Some("foo"));
        assert!(p.matches("foo\nbar") && !p.matches("fo"));
        assert_eq!(m(MatchOp::Regex, "a.+").prefix(), None);
        assert_eq!(m(MatchOp::Regex, "a+").set_matches(), None);
    }

    #[test]
    fn refuses_what_re2_refuses() {
        assert!(Matcher::new(MatchOp::Regex, "l", "(a)\\1").is_err());
        assert!(Matcher::new(MatchOp::Regex, "l", "a(?=b)").is_err());
        let e = Matcher::new(MatchOp::Regex, "job", "(")
            .unwrap_err()
            .to_string();
        assert!(e.contains("job"), "{e}");
    }
}
