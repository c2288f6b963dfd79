//! JSON written byte for byte the way Prometheus writes it.
//!
//! Prometheus encodes with Go's `encoding/json` rules: `<`, `>` and `&` are
//! escaped as `\u003c`, `\u003e`, `\u0026`, U+2028/U+2029 as `\u2028`/`\u2029`,
//! control characters other than `\n`, `\r`, `\t` as `\u00XX`. Sample values
//! are strings in Go's shortest `'f'` form, `'e'` below 1e-6 and from 1e21
//! (`NaN`, `+Inf`, `-Inf`), and
//! timestamps are seconds with the milliseconds written out (`1.500`, `2`).

use std::fmt::Write as _;

use tidemark_model::Labels;

/// An append-only JSON text.
#[derive(Debug, Default)]
pub(crate) struct Json {
    out: String,
}

impl Json {
    pub(crate) fn new() -> Self {
        Json::default()
    }

    pub(crate) fn into_string(self) -> String {
        self.out
    }

    pub(crate) fn raw(&mut self, s: &str) -> &mut Self {
        self.out.push_str(s);
        self
    }

    /// A JSON string with Go's escaping.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.out.push('"');
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                '<' => Some("\\u003c"),
                '>' => Some("\\u003e"),
                '&' => Some("\\u0026"),
                '\u{2028}' => Some("\\u2028"),
                '\u{2029}' => Some("\\u2029"),
                c if (c as u32) < 0x20 => None,
                _ => continue,
            };
            self.out.push_str(&s[start..i]);
            match esc {
                Some(e) => self.out.push_str(e),
                None => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
            }
            start = i + c.len_utf8();
        }
        self.out.push_str(&s[start..]);
        self.out.push('"');
        self
    }

    /// A timestamp in ms as Prometheus's `jsonutil.MarshalTimestamp` writes it.
    pub(crate) fn ts(&mut self, t: i64) -> &mut Self {
        let mut t = i128::from(t);
        if t < 0 {
            self.out.push('-');
            t = -t;
        }
        let _ = write!(self.out, "{}", t / 1000);
        let frac = t % 1000;
        if frac != 0 {
            let _ = write!(self.out, ".{frac:03}");
        }
        self
    }

    /// A sample value as a quoted string, as Prometheus's `MarshalFloat`.
    pub(crate) fn float(&mut self, v: f64) -> &mut Self {
        self.out.push('"');
        push_float(&mut self.out, v);
        self.out.push('"');
        self
    }

    /// A label set as an object, names in order.
    pub(crate) fn labels(&mut self, l: &Labels) -> &mut Self {
        self.out.push('{');
        for (i, (name, value)) in l.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.str(name);
            self.out.push(':');
            self.str(value);
        }
        self.out.push('}');
        self
    }

    /// `[ts,"value"]`.
    pub(crate) fn point(&mut self, t: i64, v: f64) -> &mut Self {
        self.out.push('[');
        self.ts(t);
        self.out.push(',');
        self.float(v);
        self.out.push(']');
        self
    }

    /// A JSON array of `items`, each written by `item`.
    pub(crate) fn array<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut item: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.out.push('[');
        for (i, x) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            item(self, x);
        }
        self.out.push(']');
        self
    }

    /// An array of strings.
    pub(crate) fn strings<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.array(items, |j, s| {
            j.str(s);
        })
    }

    /// Any JSON value, with Go's string escaping.
    pub(crate) fn value(&mut self, v: &serde_json::Value) -> &mut Self {
        use serde_json::Value as V;
        match v {
            V::Null => self.raw("null"),
            V::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            V::Number(n) => {
                let _ = write!(self.out, "{n}");
                self
            }
            V::String(s) => self.str(s),
            V::Array(a) => {
                self.out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(x);
                }
                self.out.push(']');
                self
            }
            V::Object(m) => {
                self.out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.str(k);
                    self.out.push(':');
                    self.value(x);
                }
                self.out.push('}');
                self
            }
        }
    }
}

/// A sample value as Prometheus's `jsonutil.MarshalFloat` writes it: Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`, except `'e'` (`8.11e-07`,
/// `1e+21`) for magnitudes below 1e-6 or from 1e21 on, and Prometheus's
/// spelling of the special values. Rust's `Display` for `f64` is the same
/// shortest round-trip decimal without exponent; `LowerExp` has the same
/// digits with Rust's exponent spelling (`8.11e-7`), rewritten to Go's
/// (sign always, at least two digits).
pub(crate) fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e21) {
        let e = format!("{v:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut s = String::new();
        push_float(&mut s, v);
        s
    }

    #[test]
    fn floats_match_prometheus_marshal_float() {
        assert_eq!(f(1.0), "1");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(0.000001202), "0.000001202");
        assert_eq!(f(8.11e-7), "8.11e-07");
        assert_eq!(f(-1e-7), "-1e-07");
        assert_eq!(f(5e-324), "5e-324");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(-1.5e300), "-1.5e+300");
        assert_eq!(f(123456.789), "123456.789");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(tidemark_model::STALE_NAN), "NaN");
    }

    #[test]
    fn timestamps_keep_milliseconds_like_prometheus() {
        let ts = |t| Json::new().ts(t).out.clone();
        assert_eq!(ts(0), "0");
        assert_eq!(ts(1_500), "1.500");
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(1_001), "1.001");
        assert_eq!(ts(1_010), "1.010");
        assert_eq!(ts(-1_500), "-1.500");
        assert_eq!(ts(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn strings_are_escaped_like_go() {
        let s = Json::new()
            .str("a<b>&\"\\\n\t\u{1}\u{8}\u{2028}é")
            .out
            .clone();
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\t\u0001\u0008\u2028é""#);
    }
}
