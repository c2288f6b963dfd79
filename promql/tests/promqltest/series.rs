//! The series notation of promqltest files: `metric{a="b"} 1+2x3 _ stale`,
//! Prometheus durations (`1h30m`, `10s53ms`) and plain numbers.
//!
//! Written from the format description in Prometheus's
//! `promql/promqltest/README.md` and the series-description grammar of its
//! parser: `a+bxN` expands to N+1 values starting at `a` stepping by `b`,
//! `axN` repeats `a` N+1 times, `_` is a missing sample, `_xN` N missing
//! samples, `stale` a staleness marker. Hexadecimal is not allowed in series
//! values (`0x10` is 0 repeated 11 times), as upstream.

use tidemark_model::{Labels, STALE_NAN};

/// One position of an expanded value sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SeqValue {
    /// No sample at this position.
    Omitted,
    /// A float sample (may be NaN, ±Inf or the StaleNaN bit pattern).
    Value(f64),
}

/// Why a series line could not be used.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SeriesError {
    /// The line uses native histogram notation (`{{...}}`).
    NativeHistogram,
    /// The line is malformed; the message says where.
    Syntax(String),
}

impl std::fmt::Display for SeriesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeriesError::NativeHistogram => f.write_str("native histogram notation"),
            SeriesError::Syntax(m) => f.write_str(m),
        }
    }
}

fn syntax(msg: impl Into<String>) -> SeriesError {
    SeriesError::Syntax(msg.into())
}

/// Parses `labels values...` into the label set and the expanded values.
pub(crate) fn parse_series_line(line: &str) -> Result<(Labels, Vec<SeqValue>), SeriesError> {
    let line = line.trim();
    let (labels, rest) = parse_labels(line)?;
    let values = parse_values(rest)?;
    Ok((labels, values))
}

/// Parses the label part of a series line (`name{...}`, `{...}` or `name`)
/// and returns the labels and the rest of the line.
pub(crate) fn parse_labels(s: &str) -> Result<(Labels, &str), SeriesError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
    {
        i += 1;
    }
    if i > 0 {
        pairs.push(("__name__".to_string(), s[..i].to_string()));
    }
    let mut rest = &s[i..];
    if let Some(inner) = rest.strip_prefix('{') {
        if inner.starts_with('{') {
            return Err(SeriesError::NativeHistogram);
        }
        rest = inner;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            // A label name (identifier or quoted), then `=` and a quoted value;
            // a quoted string alone is the metric name.
            let (name, r) = if rest.starts_with(['"', '\'', '`']) {
                let (n, r) = parse_quoted(rest)?;
                (n, r)
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                if end == 0 {
                    return Err(syntax(format!(
                        "unexpected {:?} in label set",
                        first_char(rest)
                    )));
                }
                (rest[..end].to_string(), &rest[end..])
            };
            let r = r.trim_start();
            if let Some(r) = r.strip_prefix('=') {
                let (v, r) = parse_quoted(r.trim_start())?;
                pairs.push((name, v));
                rest = r;
            } else {
                pairs.push(("__name__".to_string(), name));
                rest = r;
            }
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(syntax(format!(
                    "expected ',' or '}}' in label set, got {:?}",
                    first_char(rest)
                )));
            }
        }
    } else if i == 0 {
        return Err(syntax(format!(
            "expected a metric name or '{{', got {:?}",
            first_char(s)
        )));
    }
    let labels = Labels::from_pairs(pairs).map_err(|e| syntax(e.to_string()))?;
    Ok((labels, rest))
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or(' ')
}

/// Parses a Go-style quoted string (`"..."` with escapes, `'...'`, or a raw
/// backquoted string); returns it and the rest of the input.
pub(crate) fn parse_quoted(s: &str) -> Result<(String, &str), SeriesError> {
    let quote = first_char(s);
    if !matches!(quote, '"' | '\'' | '`') {
        return Err(syntax(format!("expected a quoted string at {s:?}")));
    }
    let body = &s[1..];
    if quote == '`' {
        let end = body
            .find('`')
            .ok_or_else(|| syntax("unterminated raw string"))?;
        return Ok((body[..end].to_string(), &body[end + 1..]));
    }
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((idx, c)) = chars.next() {
        if c == quote {
            return Ok((out, &body[idx + 1..]));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next().ok_or_else(|| syntax("unterminated escape"))?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' | '"' | '\'' => out.push(e),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n)
                    .filter_map(|_| chars.next().map(|(_, c)| c))
                    .collect();
                let code = u32::from_str_radix(&hex, 16).map_err(|_| syntax("bad escape"))?;
                out.push(char::from_u32(code).ok_or_else(|| syntax("bad code point"))?);
            }
            other => return Err(syntax(format!("unknown escape \\{other}"))),
        }
    }
    Err(syntax("unterminated string"))
}

/// Expands the value part of a series line.
pub(crate) fn parse_values(s: &str) -> Result<Vec<SeqValue>, SeriesError> {
    if s.contains("{{") {
        return Err(SeriesError::NativeHistogram);
    }
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        expand_token(tok, &mut out)?;
    }
    Ok(out)
}

fn expand_token(tok: &str, out: &mut Vec<SeqValue>) -> Result<(), SeriesError> {
    if tok == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n
            .parse()
            .map_err(|_| syntax(format!("bad repeat count in {tok:?}")))?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
        return Ok(());
    }
    if tok == "stale" {
        out.push(SeqValue::Value(STALE_NAN));
        return Ok(());
    }
    let (start, rest) =
        scan_number(tok, true).ok_or_else(|| syntax(format!("bad value {tok:?}")))?;
    if rest.is_empty() {
        out.push(SeqValue::Value(start));
        return Ok(());
    }
    let (step, rest) = if rest.starts_with(['+', '-']) {
        let (step, r) =
            scan_number(rest, true).ok_or_else(|| syntax(format!("bad step in {tok:?}")))?;
        (step, r)
    } else {
        (0.0, rest)
    };
    let n = rest
        .strip_prefix('x')
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| syntax(format!("bad value {tok:?}")))?;
    let mut cur = start;
    out.push(SeqValue::Value(cur));
    for _ in 0..n {
        cur += step;
        out.push(SeqValue::Value(cur));
    }
    Ok(())
}

/// Scans a (signed, if allowed) decimal number, `Inf` or `NaN` at the start
/// of `s`; returns it and the unconsumed rest.
fn scan_number(s: &str, signed: bool) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if signed && i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let body = &s[i..];
    for word in ["Inf", "inf", "NaN", "nan", "Infinity", "infinity"] {
        if let Some(r) = body.strip_prefix(word)
            && (r.is_empty() || r.starts_with(['x', '+', '-']))
        {
            let v: f64 = s[..i + word.len()].parse().ok()?;
            return Some((v, r));
        }
    }
    let start_digits = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == start_digits || (i == start_digits + 1 && b[start_digits] == b'.') {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_digits = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_digits {
            i = j;
        }
    }
    let v: f64 = s[..i].parse().ok()?;
    Some((v, &s[i..]))
}

/// Parses a whole line as one number, as the runner does for scalar
/// expectations: Go's `ParseInt(s, 0, 64)` (so hex and octal work), then
/// `ParseFloat`.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bin) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(bin, 2).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        None
    };
    if let Some(v) = int {
        return Some(if neg { -(v as f64) } else { v as f64 });
    }
    if s.is_empty() || s.contains('_') {
        return None;
    }
    // Rust's parser accepts what Go's does for decimals, inf/infinity/nan.
    s.parse::<f64>().ok()
}

/// Parses a Prometheus duration (`1h30m`, `10s53ms`, `0`, `2d`) into ms.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_unit = 0usize;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        // Units must come in decreasing order, each at most once.
        if idx < last_unit || (last_unit > 0 && idx == last_unit - 1) {
            return None;
        }
        last_unit = idx + 1;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tidemark_model::is_stale_nan;

    fn vals(s: &str) -> Vec<Option<f64>> {
        parse_values(s)
            .unwrap()
            .into_iter()
            .map(|v| match v {
                SeqValue::Omitted => None,
                SeqValue::Value(f) => Some(f),
            })
            .collect()
    }

    #[test]
    fn expands_steps_and_repeats() {
        assert_eq!(
            vals("1+2x3"),
            vec![Some(1.0), Some(3.0), Some(5.0), Some(7.0)]
        );
        assert_eq!(
            vals("1-1x5"),
            vec![
                Some(1.0),
                Some(0.0),
                Some(-1.0),
                Some(-2.0),
                Some(-3.0),
                Some(-4.0)
            ]
        );
        assert_eq!(vals("_x3"), vec![None, None, None]);
        assert_eq!(vals("1x2"), vec![Some(1.0); 3]);
        // Hex is not allowed in series values: 0x10 is 0 repeated 11 times.
        assert_eq!(vals("0x10"), vec![Some(0.0); 11]);
        assert_eq!(
            vals("-2+0.5x2 _ 7"),
            vec![Some(-2.0), Some(-1.5), Some(-1.0), None, Some(7.0)]
        );
        assert_eq!(
            vals("1e3 .5 -Inf"),
            vec![Some(1000.0), Some(0.5), Some(f64::NEG_INFINITY)]
        );
    }

    #[test]
    fn stale_and_nan() {
        let v = parse_values("1 stale NaN").unwrap();
        assert!(matches!(v[1], SeqValue::Value(f) if is_stale_nan(f)));
        assert!(matches!(v[2], SeqValue::Value(f) if f.is_nan() && !is_stale_nan(f)));
    }

    #[test]
    fn native_histograms_are_recognised() {
        assert_eq!(
            parse_series_line("h {{schema:0 sum:5 count:4 buckets:[1 2 1]}}x2"),
            Err(SeriesError::NativeHistogram)
        );
    }

    #[test]
    fn label_sets() {
        let (l, rest) = parse_labels(r#"http_requests{job="api", path="/a b\"c", } 1"#).unwrap();
        assert_eq!(l.get("__name__"), Some("http_requests"));
        assert_eq!(l.get("path"), Some("/a b\"c"));
        assert_eq!(rest.trim(), "1");
        let (l, _) = parse_labels(r#"{__name__="m", a='x'} 1"#).unwrap();
        assert_eq!(l.get("__name__"), Some("m"));
        assert_eq!(l.get("a"), Some("x"));
        let (l, _) = parse_labels(r#"{"my.metric", "a.b"="c"} 1"#).unwrap();
        assert_eq!(l.get("__name__"), Some("my.metric"));
        assert_eq!(l.get("a.b"), Some("c"));
        let (l, rest) = parse_labels("{} 15").unwrap();
        assert!(l.is_empty());
        assert_eq!(rest.trim(), "15");
        assert!(parse_labels("{a=}").is_err());
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(parse_number("0x1F"), Some(31.0));
        assert_eq!(parse_number("-3.5"), Some(-3.5));
        assert!(parse_number("NaN").unwrap().is_nan());
        assert_eq!(parse_number("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_number("{} 1"), None);
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("10s53ms"), Some(10_053));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5m0s"), Some(300_000));
        assert_eq!(parse_duration("1m1h"), None);
        assert_eq!(parse_duration("abc"), None);
    }
}
