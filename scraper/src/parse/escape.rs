//! Escaping in the exposition formats.
//!
//! Label values (and quoted metric and label names, and OpenMetrics HELP
//! text) escape `\`, `"` and line feed as `\\`, `\"` and `\n`. HELP text in
//! the Prometheus text format escapes only `\` and line feed. Like
//! Prometheus, unescaping leaves any other backslash sequence as it is.

use std::borrow::Cow;

/// Which escaping rules a string in the exposition follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapeKind {
    /// Label values, quoted names, OpenMetrics HELP: `\\`, `\"`, `\n`.
    Quoted,
    /// HELP text in the Prometheus text format: `\\` and `\n`.
    TextHelp,
}

/// A string as it appears in the exposition, borrowed from the scraped body
/// and unescaped only on demand, so that the common case (no backslash)
/// costs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a> {
    raw: &'a str,
    kind: EscapeKind,
}

impl<'a> Escaped<'a> {
    /// Wraps `raw` (without surrounding quotes) escaped by `kind`'s rules.
    pub fn new(raw: &'a str, kind: EscapeKind) -> Self {
        Escaped { raw, kind }
    }

    /// The text exactly as exposed, escapes included.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the text contains a backslash, i.e. unescaping may allocate.
    pub fn has_escapes(&self) -> bool {
        self.raw.as_bytes().contains(&b'\\')
    }

    /// The text with escapes resolved; borrowed when there were none.
    pub fn unescape(&self) -> Cow<'a, str> {
        if !self.has_escapes() {
            return Cow::Borrowed(self.raw);
        }
        let mut out = String::with_capacity(self.raw.len());
        let mut chars = self.raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if self.kind == EscapeKind::Quoted => out.push('"'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        Cow::Owned(out)
    }
}

/// Escapes a label value (or quoted name) for the exposition formats.
pub fn escape_label_value(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Escapes HELP text for the Prometheus text format.
pub fn escape_help(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

fn escape(s: &str, quote: bool) -> Cow<'_, str> {
    let needs = s
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"'));
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unescape_follows_prometheus() {
        let q = |s| Escaped::new(s, EscapeKind::Quoted).unescape().into_owned();
        assert_eq!(q(r#"a\\b\"c\nd"#), "a\\b\"c\nd");
        // Unknown escapes are kept verbatim, as Prometheus's replacer does.
        assert_eq!(q(r"tab\there"), r"tab\there");
        assert_eq!(q(r"\\n"), r"\n");
        assert_eq!(q("trailing\\"), "trailing\\");
        let h = |s| {
            Escaped::new(s, EscapeKind::TextHelp)
                .unescape()
                .into_owned()
        };
        assert_eq!(h(r#"say \"hi\"\nbye\\"#), "say \\\"hi\\\"\nbye\\");
        assert!(matches!(
            Escaped::new("plain", EscapeKind::Quoted).unescape(),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn escape_only_what_is_needed() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(escape_help("a\"b\\c\nd"), r#"a"b\\c\nd"#);
        assert!(matches!(escape_label_value("plain"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn label_value_round_trip(s in any::<String>()) {
            let esc = escape_label_value(&s);
            prop_assert_eq!(Escaped::new(&esc, EscapeKind::Quoted).unescape(), s.as_str());
        }

        #[test]
        fn help_round_trip(s in any::<String>()) {
            let esc = escape_help(&s);
            prop_assert_eq!(Escaped::new(&esc, EscapeKind::TextHelp).unescape(), s.as_str());
        }
    }
}
