//! Duration expressions (`foo[5m+1m]`, `offset (2 * step())`, `[min_of(range(), 1h):]`).
//!
//! Prometheus 3 accepts arithmetic on durations inside range brackets and
//! after `offset`, with the functions `step()`, `range()`, `min_of()` and
//! `max_of()`. The parser tidemark uses does not, so the engine resolves
//! them before parsing: each such expression is evaluated against the
//! query's start, end and step and replaced by a plain duration in
//! milliseconds. Text that is not a duration expression is left untouched,
//! so the parser reports its own errors for it.

/// The query's time parameters that `step()` and `range()` resolve to (ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationCtx {
    pub(crate) step_ms: i64,
    pub(crate) range_ms: i64,
}

/// The experimental modifiers of a range selector (`x[5m] anchored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeMode {
    /// The window also takes the last sample before its start (within the
    /// lookback delta) as its anchor; no extrapolation.
    Anchored,
    /// Like anchored, plus the first sample after the end; the values at
    /// both edges are interpolated.
    Smoothed,
}

/// What [`rewrite`] did: the new text (if changed) and the modifiers it
/// removed, by ordinal of the range bracket (`[`) they followed.
#[derive(Debug, Default)]
pub(crate) struct Rewritten {
    pub(crate) text: Option<String>,
    pub(crate) modes: Vec<(usize, RangeMode)>,
}

/// Rewrites every duration expression of `query` into a plain duration and
/// removes `anchored`/`smoothed` range modifiers (returned separately).
pub(crate) fn rewrite(query: &str, ctx: DurationCtx) -> Rewritten {
    let mut modes = Vec::new();
    let info_marked = mark_info_selectors(query);
    let q1 = info_marked.as_deref().unwrap_or(query);
    let marked = mark_smoothed_selectors(q1).or(info_marked);
    let base = marked.as_deref().unwrap_or(query);
    let text = rewrite_inner(base, ctx, &mut modes).or(marked);
    Rewritten { text, modes }
}

/// The label matcher that marks an instant selector written with the
/// `smoothed` modifier (`metric smoothed`). It matches every series (the
/// label never exists) and is removed again before storage sees it.
pub(crate) const SMOOTHED_MARKER: &str = "__tidemark_smoothed__";

/// A matcher added to the data-label selector of `info()` so that the
/// parser accepts selectors whose matchers all match the empty string
/// (`info(x, {data=~".*"})`), which Prometheus allows there. It is ignored
/// by the engine.
pub(crate) const INFO_MARKER: &str = "__tidemark_info__";

/// Adds [`INFO_MARKER`] to the nameless selector given as `info()`'s
/// second argument.
fn mark_info_selectors(query: &str) -> Option<String> {
    let b = query.as_bytes();
    let mut inserts = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let open = skip_ws(b, i);
                if &query[start..i] != "info" || b.get(open) != Some(&b'(') {
                    continue;
                }
                // Find the top-level comma of the call.
                let mut depth = 0i32;
                let mut j = open;
                while j < b.len() {
                    match b[j] {
                        b'"' | b'\'' | b'`' => {
                            j = skip_string(b, j);
                            continue;
                        }
                        b'(' | b'[' | b'{' => depth += 1,
                        b')' | b']' | b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b',' if depth == 1 => {
                            let k = skip_ws(b, j + 1);
                            if b.get(k) == Some(&b'{') {
                                inserts.push(k + 1);
                            }
                            break;
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => i += 1,
        }
    }
    if inserts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(query.len() + 32 * inserts.len());
    let mut last = 0;
    for at in inserts {
        out.push_str(&query[last..at]);
        let empty = b.get(skip_ws(b, at)) == Some(&b'}');
        out.push_str(if empty {
            "__tidemark_info__!=\"\""
        } else {
            "__tidemark_info__!=\"\","
        });
        last = at;
    }
    out.push_str(&query[last..]);
    Some(out)
}

const KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
];

/// Replaces `<selector> [@ t] [offset d] smoothed` by the selector with the
/// [`SMOOTHED_MARKER`] matcher added, since the parser knows no such modifier
/// on instant selectors.
fn mark_smoothed_selectors(query: &str) -> Option<String> {
    let b = query.as_bytes();
    let mut i = 0;
    let mut edits: Vec<(usize, usize, usize, &'static str)> = Vec::new();
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            b'{' => {
                while i < b.len() && b[i] != b'}' {
                    if matches!(b[i], b'"' | b'\'' | b'`') {
                        i = skip_string(b, i);
                    } else {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let next = skip_ws(b, i);
                if query[start..i].eq_ignore_ascii_case("smoothed")
                    && !matches!(b.get(next), Some(b'(' | b'{'))
                    && let Some((insert_at, text)) = selector_before(query, start)
                {
                    edits.push((insert_at, start, i, text));
                }
            }
            _ => i += 1,
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(query.len() + 32 * edits.len());
    let mut last = 0;
    for (insert_at, kw_start, kw_end, text) in edits {
        out.push_str(&query[last..insert_at]);
        out.push_str(text);
        out.push_str(&query[insert_at..kw_start]);
        last = kw_end;
    }
    out.push_str(&query[last..]);
    Some(out)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn skip_ws_back(b: &[u8], mut j: usize) -> usize {
    while j > 0 && b[j - 1].is_ascii_whitespace() {
        j -= 1;
    }
    j
}

/// Scans back from `kw` over `@ x` and `offset x` to the instant selector;
/// returns where to insert the marker matcher and the text to insert.
fn selector_before(query: &str, kw: usize) -> Option<(usize, &'static str)> {
    let b = query.as_bytes();
    let mut j = skip_ws_back(b, kw);
    loop {
        let end = j;
        // One token backwards: a parenthesised group with its function
        // name, or a word/number.
        if j > 0 && b[j - 1] == b')' {
            let mut depth = 0;
            while j > 0 {
                j -= 1;
                match b[j] {
                    b')' => depth += 1,
                    b'(' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            while j > 0 && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] == b'_') {
                j -= 1;
            }
        } else if j > 0 && b[j - 1] == b'}' {
            // The selector's matchers: insert the marker before the brace.
            let close = j - 1;
            let open = query[..close].rfind('{')?;
            let empty = query[open + 1..close].trim().is_empty();
            return Some((
                close,
                if empty {
                    "__tidemark_smoothed__=\"\""
                } else {
                    ",__tidemark_smoothed__=\"\""
                },
            ));
        } else {
            while j > 0
                && (b[j - 1].is_ascii_alphanumeric() || matches!(b[j - 1], b'_' | b':' | b'.'))
            {
                j -= 1;
            }
        }
        if j == end {
            return None;
        }
        let token_start = j;
        // A sign belongs to an `@`/`offset` operand.
        let mut k = skip_ws_back(b, j);
        if k > 0 && matches!(b[k - 1], b'-' | b'+') {
            k = skip_ws_back(b, k - 1);
        }
        let word_end = k;
        let mut w = k;
        while w > 0 && (b[w - 1].is_ascii_alphanumeric() || b[w - 1] == b'_') {
            w -= 1;
        }
        if query[w..word_end].eq_ignore_ascii_case("offset") {
            j = skip_ws_back(b, w);
            continue;
        }
        if k > 0 && b[k - 1] == b'@' {
            j = skip_ws_back(b, k - 1);
            continue;
        }
        // The token is the selector itself: a bare metric name.
        let name = &query[token_start..end];
        let first = name.as_bytes().first()?;
        if !(first.is_ascii_alphabetic() || *first == b'_' || *first == b':')
            || KEYWORDS.iter().any(|k| name.eq_ignore_ascii_case(k))
        {
            return None;
        }
        return Some((end, "{__tidemark_smoothed__=\"\"}"));
    }
}

fn rewrite_inner(
    query: &str,
    ctx: DurationCtx,
    modes: &mut Vec<(usize, RangeMode)>,
) -> Option<String> {
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut changed = false;
    let mut brackets = 0usize;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => {
                i += 1;
                while i < b.len() && b[i] != b'}' {
                    if matches!(b[i], b'"' | b'\'' | b'`') {
                        i = skip_string(b, i);
                    } else {
                        i += 1;
                    }
                }
            }
            b'[' => {
                let ordinal = brackets;
                brackets += 1;
                let Some(close) = query[i..].find(']').map(|p| p + i) else {
                    break;
                };
                let inner = &query[i + 1..close];
                if let Some(new_inner) = rewrite_brackets(inner, ctx) {
                    out.push_str(&query[last..=i]);
                    out.push_str(&new_inner);
                    last = close;
                    changed = true;
                }
                i = close + 1;
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                for (word, mode) in [
                    ("anchored", RangeMode::Anchored),
                    ("smoothed", RangeMode::Smoothed),
                ] {
                    let end = j + word.len();
                    let is_word = b
                        .get(j..end)
                        .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
                        && !b
                            .get(end)
                            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
                    if is_word {
                        out.push_str(&query[last..i]);
                        last = end;
                        i = end;
                        changed = true;
                        modes.push((ordinal, mode));
                        break;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                if query[start..i].eq_ignore_ascii_case("offset")
                    && let Some((end, text)) = rewrite_offset(query, i, ctx)
                {
                    {
                        if text == "0ms" {
                            // `offset 0` is no offset (the parser refuses a zero duration).
                            out.push_str(&query[last..start]);
                        } else {
                            out.push_str(&query[last..i]);
                            out.push(' ');
                            out.push_str(&text);
                        }
                        last = end;
                        i = end;
                        changed = true;
                    }
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&query[last..]);
    Some(out)
}

fn skip_string(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() && b[i] != q {
        if b[i] == b'\\' && q != b'`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// `[range]` or `[range:step]` contents with at least one expression.
fn rewrite_brackets(inner: &str, ctx: DurationCtx) -> Option<String> {
    let parts: Vec<&str> = inner.splitn(2, ':').collect();
    let mut changed = false;
    let mut out = Vec::with_capacity(parts.len());
    for p in &parts {
        let t = p.trim();
        if t.is_empty() || is_duration_literal(t) {
            out.push(t.to_string());
            continue;
        }
        let mut parser = Parser {
            s: t.as_bytes(),
            i: 0,
            ctx,
        };
        let v = parser.expr()?;
        parser.ws();
        if parser.i != t.len() {
            return None;
        }
        out.push(format_ms(v));
        changed = true;
    }
    changed.then(|| out.join(":"))
}

/// After `offset`: an optional sign and one atom (literal, function call or
/// parenthesised expression); binary operators after it belong to the
/// enclosing PromQL expression.
fn rewrite_offset(query: &str, pos: usize, ctx: DurationCtx) -> Option<(usize, String)> {
    let b = query.as_bytes();
    let mut i = pos;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let atom_start = i;
    let mut p = Parser { s: b, i, ctx };
    let v = p.signed_atom()?;
    let text = &query[atom_start..p.i];
    let plain = text.trim_start_matches(['-', '+']).trim();
    if is_duration_literal(plain) {
        return None;
    }
    Some((p.i, format_ms(v)))
}

fn format_ms(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    if ms < 0 {
        format!("-{}ms", -ms)
    } else {
        format!("{ms}ms")
    }
}

fn is_duration_literal(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let d = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == d {
            return false;
        }
        let u = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        if !matches!(&s[u..i], "ms" | "s" | "m" | "h" | "d" | "w" | "y") {
            return false;
        }
    }
    true
}

/// A recursive-descent evaluator of duration arithmetic, in seconds.
struct Parser<'s> {
    s: &'s [u8],
    i: usize,
    ctx: DurationCtx,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn expr(&mut self) -> Option<f64> {
        let mut v = self.term()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let r = self.term()?;
            v = if c == b'+' { v + r } else { v - r };
        }
        Some(v)
    }

    fn term(&mut self) -> Option<f64> {
        let mut v = self.unary()?;
        while let Some(c @ (b'*' | b'/' | b'%')) = self.peek() {
            self.i += 1;
            let r = self.unary()?;
            v = match c {
                b'*' => v * r,
                b'/' => v / r,
                _ => v % r,
            };
        }
        Some(v)
    }

    fn unary(&mut self) -> Option<f64> {
        match self.peek()? {
            b'-' => {
                self.i += 1;
                Some(-self.unary()?)
            }
            b'+' => {
                self.i += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Option<f64> {
        let base = self.atom()?;
        if self.peek() == Some(b'^') {
            self.i += 1;
            let e = self.unary()?;
            return Some(base.powf(e));
        }
        Some(base)
    }

    /// `offset`'s operand: a sign and an atom, no binary operators.
    fn signed_atom(&mut self) -> Option<f64> {
        match self.peek()? {
            b'-' => {
                self.i += 1;
                Some(-self.signed_atom()?)
            }
            b'+' => {
                self.i += 1;
                self.signed_atom()
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Option<f64> {
        let c = self.peek()?;
        if c == b'(' {
            self.i += 1;
            let v = self.expr()?;
            if self.peek()? != b')' {
                return None;
            }
            self.i += 1;
            return Some(v);
        }
        if c.is_ascii_digit() || c == b'.' {
            return self.number_or_duration();
        }
        if c.is_ascii_alphabetic() {
            let start = self.i;
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
            {
                self.i += 1;
            }
            let name = std::str::from_utf8(&self.s[start..self.i])
                .ok()?
                .to_ascii_lowercase();
            if self.peek()? != b'(' {
                return None;
            }
            self.i += 1;
            let mut args = Vec::new();
            if self.peek()? != b')' {
                loop {
                    args.push(self.expr()?);
                    match self.peek()? {
                        b',' => self.i += 1,
                        b')' => break,
                        _ => return None,
                    }
                }
            }
            self.i += 1;
            return match (name.as_str(), args.as_slice()) {
                ("step", []) => Some(self.ctx.step_ms as f64 / 1000.0),
                ("range", []) => Some(self.ctx.range_ms as f64 / 1000.0),
                ("min_of", [a, rest @ ..]) => Some(rest.iter().fold(*a, |m, x| m.min(*x))),
                ("max_of", [a, rest @ ..]) => Some(rest.iter().fold(*a, |m, x| m.max(*x))),
                _ => None,
            };
        }
        None
    }

    fn number_or_duration(&mut self) -> Option<f64> {
        let start = self.i;
        let s = self.s;
        while self.i < s.len() && (s[self.i].is_ascii_digit() || s[self.i] == b'.') {
            self.i += 1;
        }
        let num_end = self.i;
        if self.i < s.len() && s[self.i].is_ascii_alphabetic() {
            // A duration literal such as 1h30m or 8000ms.
            while self.i < s.len() && s[self.i].is_ascii_alphanumeric() {
                self.i += 1;
            }
            let text = std::str::from_utf8(&s[start..self.i]).ok()?;
            return duration_secs(text);
        }
        std::str::from_utf8(&s[start..num_end]).ok()?.parse().ok()
    }
}

fn duration_secs(text: &str) -> Option<f64> {
    if !is_duration_literal(text) {
        return None;
    }
    let b = text.as_bytes();
    let mut i = 0;
    let mut total = 0.0;
    while i < b.len() {
        let d = i;
        while b[i].is_ascii_digit() {
            i += 1;
        }
        let n: f64 = text[d..i].parse().ok()?;
        let u = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        total += n * match &text[u..i] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604_800.0,
            _ => 31_536_000.0,
        };
    }
    Some(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rewrite_text(q: &str, ctx: DurationCtx) -> Option<String> {
        rewrite(q, ctx).text
    }

    #[test]
    fn range_modifiers_are_removed_and_reported() {
        let r = rewrite("increase(x[1m] anchored) + rate(y[5m:1m]  smoothed)", CTX);
        assert_eq!(r.text.unwrap(), "increase(x[1m]) + rate(y[5m:1m])");
        assert_eq!(
            r.modes,
            vec![(0, RangeMode::Anchored), (1, RangeMode::Smoothed)]
        );
    }

    const CTX: DurationCtx = DurationCtx {
        step_ms: 5_000,
        range_ms: 10_000,
    };

    #[test]
    fn brackets_are_evaluated() {
        assert_eq!(
            rewrite_text("rate(x[26m+4m])", CTX).unwrap(),
            "rate(x[1800000ms])"
        );
        assert_eq!(
            rewrite_text("x[29s+1s:5s+5s]", CTX).unwrap(),
            "x[30000ms:10000ms]"
        );
        assert_eq!(rewrite_text("x[1+(STep()-5)*2]", CTX).unwrap(), "x[1000ms]");
        assert_eq!(
            rewrite_text("x[min_of(step()+1,1h)]", CTX).unwrap(),
            "x[6000ms]"
        );
    }

    #[test]
    fn offset_takes_one_atom() {
        assert_eq!(
            rewrite_text("x offset 100 + 2", CTX).unwrap(),
            "x offset 100000ms + 2"
        );
        assert_eq!(
            rewrite_text("x offset -step()*2", CTX).unwrap(),
            "x offset -5000ms*2"
        );
        assert_eq!(
            rewrite_text("x offset (-2 ^ 2)", CTX).unwrap(),
            "x offset -4000ms"
        );
    }

    #[test]
    fn smoothed_instant_selectors_get_the_marker() {
        assert_eq!(
            rewrite_text("metric smoothed", CTX).unwrap(),
            "metric{__tidemark_smoothed__=\"\"} "
        );
        assert_eq!(
            rewrite_text("m{a=\"b\"} @ 100 smoothed + 0", CTX).unwrap(),
            "m{a=\"b\",__tidemark_smoothed__=\"\"} @ 100  + 0"
        );
        assert_eq!(
            rewrite_text("metric offset -100 smoothed", CTX).unwrap(),
            "metric{__tidemark_smoothed__=\"\"} offset -100000ms "
        );
        assert!(rewrite_text("sum by (smoothed) (smoothed)", CTX).is_none());
    }

    #[test]
    fn info_selectors_get_a_non_empty_matcher() {
        assert_eq!(
            rewrite_text("info(m, {data=~\".*\"})", CTX).unwrap(),
            "info(m, {__tidemark_info__!=\"\",data=~\".*\"})"
        );
        assert!(rewrite_text("info(m)", CTX).is_none());
    }

    proptest::proptest! {
        /// The rewrite runs on untrusted query text before the parser: it
        /// must never panic, whatever the bytes.
        #[test]
        fn rewrite_never_panics(q in "[a-z0-9_ {}()\\[\\]:,.@+*/%^\"'=~!#-]{0,40}|\\PC{0,20}") {
            let _ = rewrite(&q, CTX);
            let _ = crate::parse_error::describe(&q, "invalid promql query");
        }

        #[test]
        fn rewrite_never_panics_on_query_shapes(
            sel in "(m|x_total|smoothed|info)(\\{a=\"ü\"\\})?",
            range in "(5m|1m\\+\\(2\\*step\\(\\)\\)|min_of\\(range\\(\\),1h\\)|)",
            modifier in "( anchored| smoothed| offset -?\\(1m\\*2\\)| @ 100|)",
        ) {
            let q = format!("rate({sel}[{range}]{modifier}) + {sel}{modifier} + info({sel}, {{a=~\".*\"}})");
            let _ = rewrite(&q, CTX);
        }
    }

    #[test]
    fn zero_offset_is_removed() {
        let ctx = DurationCtx {
            step_ms: 0,
            range_ms: 0,
        };
        assert_eq!(rewrite_text("x offset range()", ctx).unwrap(), "x ");
    }

    #[test]
    fn plain_queries_are_untouched() {
        assert!(rewrite_text("rate(x{a=\"[1+1]\"}[5m]) offset 1h", CTX).is_none());
        assert!(rewrite_text("x[5m:1m] offset -1h", CTX).is_none());
        assert!(rewrite_text("sum by (offset) (x)", CTX).is_none());
    }
}
