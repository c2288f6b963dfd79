//! Parsing of promqltest files into commands (`load`, `clear`, `eval`).
//!
//! Follows the structure of Prometheus's `promql/promqltest/test.go`: lines
//! are trimmed, `#` lines are comments, a blank line ends a command's block.
//! Unlike upstream, a malformed block does not abort the whole file: the
//! command is kept with the reason, so the runner can count the affected
//! evals as skipped with that reason.

use regex::Regex;
use tidemark_model::Labels;

use super::series::{
    SeqValue, SeriesError, parse_duration, parse_labels, parse_number, parse_quoted,
    parse_series_line,
};

/// One command of a test file.
#[derive(Debug)]
pub(crate) enum Command {
    Load(Load),
    Clear,
    Eval(Box<Eval>),
    /// A line that is no known command (the reason says what it was).
    Invalid {
        line: usize,
        reason: String,
    },
}

/// `load <interval>` (or `load_with_nhcb`) and its series.
#[derive(Debug)]
pub(crate) struct Load {
    pub(crate) line: usize,
    pub(crate) interval_ms: i64,
    pub(crate) series: Vec<(Labels, Vec<SeqValue>)>,
    /// The block loads native histograms (`{{...}}` or `load_with_nhcb`).
    pub(crate) native_histograms: bool,
    /// Labels of the native histogram series the block creates (including
    /// those `load_with_nhcb` derives from classic bucket series).
    pub(crate) histogram_series: Vec<Labels>,
    /// The block sets start timestamps (`@st` lines).
    pub(crate) start_timestamps: bool,
    /// Why (part of) the block could not be understood.
    pub(crate) error: Option<String>,
}

/// How an eval is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EvalKind {
    Instant { at: i64 },
    Range { start: i64, end: i64, step: i64 },
}

/// An expected annotation or error message: exact text or a regex.
#[derive(Debug, Clone)]
pub(crate) enum MessageMatch {
    Exact(String),
    Pattern(Regex),
}

impl MessageMatch {
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            MessageMatch::Exact(m) => m == s,
            MessageMatch::Pattern(r) => r.is_match(s),
        }
    }
}

impl std::fmt::Display for MessageMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageMatch::Exact(m) => write!(f, "message {m:?}"),
            MessageMatch::Pattern(r) => write!(f, "pattern {:?}", r.as_str()),
        }
    }
}

/// One expected result series: labels, values (one for instant vectors),
/// and its 1-based position among the result lines (for `ordered`).
#[derive(Debug, Clone)]
pub(crate) struct ExpectedSeries {
    pub(crate) labels: Labels,
    pub(crate) values: Vec<SeqValue>,
    pub(crate) pos: usize,
}

/// An `eval` command with everything its block expects.
#[derive(Debug)]
pub(crate) struct Eval {
    pub(crate) line: usize,
    pub(crate) expr: String,
    pub(crate) kind: EvalKind,
    pub(crate) fail: bool,
    pub(crate) warn: bool,
    pub(crate) info: bool,
    pub(crate) ordered: bool,
    /// `expected_fail_message`, `expected_fail_regexp` or `expect fail msg:/regex:`.
    pub(crate) fail_match: Option<MessageMatch>,
    pub(crate) expect_warn: Vec<MessageMatch>,
    pub(crate) expect_info: Vec<MessageMatch>,
    pub(crate) no_warn: bool,
    pub(crate) no_info: bool,
    pub(crate) expect_scalar: Option<f64>,
    pub(crate) expected: Vec<ExpectedSeries>,
    pub(crate) expected_string: Option<String>,
    /// `expect range vector from .. to .. step ..` for an instant query.
    pub(crate) range_vector: Option<(i64, i64, i64)>,
    /// The expected output contains native histograms.
    pub(crate) expects_histograms: bool,
    /// The block could not be parsed; the eval is skipped with this reason.
    pub(crate) parse_error: Option<String>,
}

impl Eval {
    /// Whether the eval's time is that of an instant query, and which.
    pub(crate) fn instant_time(&self) -> Option<i64> {
        match self.kind {
            EvalKind::Instant { at } => Some(self.range_vector.map_or(at, |(_, end, _)| end)),
            EvalKind::Range { .. } => None,
        }
    }

    /// Upstream's `excludeFromRangeQuery`: range-vector and string results
    /// are not re-checked as range queries.
    pub(crate) fn excluded_from_range_check(&self) -> bool {
        self.range_vector.is_some() || self.expected_string.is_some()
    }

    /// The start/end/step against which expected matrix values are placed.
    pub(crate) fn matrix_frame(&self) -> (i64, i64, i64) {
        match (self.kind, self.range_vector) {
            (_, Some(rv)) => rv,
            (EvalKind::Range { start, end, step }, None) => (start, end, step),
            (EvalKind::Instant { at }, None) => (at, at, 0),
        }
    }
}

/// Parses a whole test file.
pub(crate) fn parse_file(input: &str) -> Vec<Command> {
    let lines: Vec<&str> = input
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') { "" } else { l }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, load) = parse_load(&lines, i);
            cmds.push(Command::Load(load));
            i = next;
        } else if word.starts_with("eval") {
            let (next, eval) = parse_eval(&lines, i);
            cmds.push(Command::Eval(Box::new(eval)));
            i = next;
        } else {
            cmds.push(Command::Invalid {
                line: i + 1,
                reason: format!("invalid command {l:?}"),
            });
            i += 1;
        }
    }
    cmds
}

/// Lines of the block after line `i`, up to the next blank line.
fn block<'a>(lines: &[&'a str], i: usize) -> impl Iterator<Item = (usize, &'a str)> {
    lines
        .iter()
        .enumerate()
        .skip(i + 1)
        .take_while(|(_, l)| !l.is_empty())
        .map(|(n, l)| (n, *l))
}

fn parse_load(lines: &[&str], i: usize) -> (usize, Load) {
    let mut parts = lines[i].split_whitespace();
    let cmd = parts.next().unwrap_or("");
    let step = parts.next().unwrap_or("");
    let mut load = Load {
        line: i + 1,
        interval_ms: 0,
        series: Vec::new(),
        native_histograms: cmd.eq_ignore_ascii_case("load_with_nhcb"),
        histogram_series: Vec::new(),
        start_timestamps: false,
        error: None,
    };
    match parse_duration(step) {
        Some(ms)
            if cmd.eq_ignore_ascii_case("load") || cmd.eq_ignore_ascii_case("load_with_nhcb") =>
        {
            load.interval_ms = ms
        }
        _ => load.error = Some(format!("invalid load command {:?}", lines[i])),
    }
    let mut last = i;
    for (n, l) in block(lines, i) {
        last = n;
        let first = l.split_whitespace().next().unwrap_or("");
        if first.ends_with("@st") {
            load.start_timestamps = true;
            continue;
        }
        match parse_series_line(l) {
            Ok(s) => load.series.push(s),
            Err(SeriesError::NativeHistogram) => {
                load.native_histograms = true;
                match parse_labels(l) {
                    Ok((labels, _)) => load.histogram_series.push(labels),
                    Err(e) => {
                        load.error.get_or_insert(format!("line {}: {e}", n + 1));
                    }
                }
            }
            Err(SeriesError::Syntax(m)) => {
                load.error.get_or_insert(format!("line {}: {m}", n + 1));
            }
        }
    }
    if cmd.eq_ignore_ascii_case("load_with_nhcb") {
        // Classic histogram series become native histograms with custom
        // buckets named after the base name.
        for (labels, _) in &load.series {
            let Some(name) = labels.metric_name() else {
                continue;
            };
            let Some(base) = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suf| name.strip_suffix(suf))
            else {
                continue;
            };
            let mut b = labels.builder();
            b.set("__name__", base);
            b.del("le");
            let h = b.build();
            if !load.histogram_series.contains(&h) {
                load.histogram_series.push(h);
            }
        }
    }
    (last + 1, load)
}

fn parse_eval(lines: &[&str], i: usize) -> (usize, Eval) {
    let l = lines[i];
    let mut ev = Eval {
        line: i + 1,
        expr: String::new(),
        kind: EvalKind::Instant { at: 0 },
        fail: false,
        warn: false,
        info: false,
        ordered: false,
        fail_match: None,
        expect_warn: Vec::new(),
        expect_info: Vec::new(),
        no_warn: false,
        no_info: false,
        expect_scalar: None,
        expected: Vec::new(),
        expected_string: None,
        range_vector: None,
        expects_histograms: false,
        parse_error: None,
    };
    if let Err(e) = parse_eval_line(l, &mut ev) {
        ev.parse_error = Some(e);
    }
    let is_instant = matches!(ev.kind, EvalKind::Instant { .. });
    let mut last = i;
    let mut pos = 0;
    for (n, def) in block(lines, i) {
        last = n;
        if ev.parse_error.is_some() {
            continue;
        }
        if let Err(e) = parse_block_line(def, is_instant, &mut ev, &mut pos) {
            ev.parse_error = Some(format!("line {}: {e}", n + 1));
        }
        if ev.fail
            && (def.starts_with("expected_fail_message") || def.starts_with("expected_fail_regexp"))
        {
            // Upstream ends the block here.
            return (n + 1, ev);
        }
        if ev.expect_scalar.is_some() {
            return (n + 1, ev);
        }
    }
    (last + 1, ev)
}

fn parse_eval_line(l: &str, ev: &mut Eval) -> Result<(), String> {
    let (head, rest) = l
        .split_once(char::is_whitespace)
        .ok_or("eval without a query")?;
    let modifier = head.strip_prefix("eval").ok_or("not an eval")?;
    match modifier {
        "" => {}
        "_fail" => ev.fail = true,
        "_warn" => ev.warn = true,
        "_info" => ev.info = true,
        "_ordered" => ev.ordered = true,
        other => return Err(format!("unknown eval modifier {other:?}")),
    }
    let rest = rest.trim_start();
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.first() {
        Some(&"instant") => {
            if ev.ordered && words.get(1) != Some(&"at") {
                return Err("eval_ordered needs 'at'".into());
            }
            if words.get(1) != Some(&"at") || words.len() < 4 {
                return Err(format!("invalid instant eval {l:?}"));
            }
            let at = parse_duration(words[2])
                .ok_or_else(|| format!("invalid timestamp {:?}", words[2]))?;
            ev.kind = EvalKind::Instant { at };
            ev.expr = after_words(rest, 3).to_string();
        }
        Some(&"range") => {
            if ev.ordered {
                return Err("eval_ordered is not allowed for range queries".into());
            }
            if words.len() < 8 || words[1] != "from" || words[3] != "to" || words[5] != "step" {
                return Err(format!("invalid range eval {l:?}"));
            }
            let d = |s: &str| parse_duration(s).ok_or_else(|| format!("invalid duration {s:?}"));
            let (start, end, step) = (d(words[2])?, d(words[4])?, d(words[6])?);
            if end < start {
                return Err("end timestamp before start".into());
            }
            ev.kind = EvalKind::Range { start, end, step };
            ev.expr = after_words(rest, 7).to_string();
        }
        _ => return Err(format!("invalid eval command {l:?}")),
    }
    if ev.expr.is_empty() {
        return Err("eval without a query".into());
    }
    Ok(())
}

/// The text after the first `n` whitespace-separated words.
fn after_words(s: &str, n: usize) -> &str {
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

fn parse_block_line(
    def: &str,
    is_instant: bool,
    ev: &mut Eval,
    pos: &mut usize,
) -> Result<(), String> {
    if ev.fail {
        if let Some(m) = def.strip_prefix("expected_fail_message") {
            ev.fail_match = Some(MessageMatch::Exact(m.trim().to_string()));
            return Ok(());
        }
        if let Some(p) = def.strip_prefix("expected_fail_regexp") {
            let re = Regex::new(p.trim()).map_err(|e| format!("bad regexp: {e}"))?;
            ev.fail_match = Some(MessageMatch::Pattern(re));
            return Ok(());
        }
    }
    *pos += 1;
    if let Some(r) = def.strip_prefix("expect range vector") {
        let w: Vec<&str> = r.split_whitespace().collect();
        if w.len() != 6 || w[0] != "from" || w[2] != "to" || w[4] != "step" {
            return Err(format!("invalid range vector definition {def:?}"));
        }
        let d = |s: &str| parse_duration(s).ok_or_else(|| format!("invalid duration {s:?}"));
        ev.range_vector = Some((d(w[1])?, d(w[3])?, d(w[5])?));
        return Ok(());
    }
    if let Some(r) = def.strip_prefix("expect string") {
        let r = r.trim_start();
        let (s, rest) = parse_quoted(r).map_err(|e| format!("expected string literal: {e}"))?;
        if !rest.trim().is_empty() {
            return Err("trailing text after expected string".into());
        }
        ev.expected_string = Some(s);
        return Ok(());
    }
    if def.split(' ').next() == Some("expect") {
        *pos -= 1;
        return parse_expect(def, ev);
    }
    if let Some(v) = parse_number(def) {
        ev.expect_scalar = Some(v);
        return Ok(());
    }
    match parse_series_line(def) {
        Ok((labels, values)) => {
            if values.len() > 1 && is_instant && ev.range_vector.is_none() {
                return Err("multiple values in an instant evaluation".into());
            }
            ev.expected.retain(|e| e.labels != labels);
            ev.expected.push(ExpectedSeries {
                labels,
                values,
                pos: *pos,
            });
            Ok(())
        }
        Err(SeriesError::NativeHistogram) => {
            ev.expects_histograms = true;
            Ok(())
        }
        Err(SeriesError::Syntax(m)) => Err(format!("expected result {def:?}: {m}")),
    }
}

fn parse_expect(def: &str, ev: &mut Eval) -> Result<(), String> {
    let rest = def.trim().strip_prefix("expect").unwrap_or("").trim_start();
    let (kind, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let tail = tail.trim();
    let matcher = if tail.is_empty() {
        None
    } else if let Some(m) = tail.strip_prefix("msg:") {
        Some(MessageMatch::Exact(m.trim().to_string()))
    } else if let Some(p) = tail.strip_prefix("regex:") {
        Some(MessageMatch::Pattern(
            Regex::new(p.trim()).map_err(|e| format!("invalid regex: {e}"))?,
        ))
    } else {
        return Err(format!("invalid expect statement {def:?}"));
    };
    let any = || MessageMatch::Pattern(Regex::new("^.*$").expect("constant regex"));
    match kind {
        "fail" => {
            if ev.fail && ev.fail_match.is_some() {
                return Err("multiple expect fail lines".into());
            }
            ev.fail = true;
            ev.fail_match = matcher;
        }
        "warn" => ev.expect_warn.push(matcher.unwrap_or_else(any)),
        "info" => ev.expect_info.push(matcher.unwrap_or_else(any)),
        "no_warn" => ev.no_warn = true,
        "no_info" => ev.no_info = true,
        "ordered" => ev.ordered = true,
        other => return Err(format!("invalid expect type {other:?}")),
    }
    if (!ev.expect_warn.is_empty() && ev.no_warn) || (!ev.expect_info.is_empty() && ev.no_info) {
        return Err("expect warn/info and no_warn/no_info together".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# comment
load 5m
  http_requests{job="api"} 0+10x10
  hist {{schema:0 sum:1 count:1}}

eval instant at 50m sum(http_requests)
  expect no_warn
  expect info msg: something (1:2)
  {} 100

eval range from 0 to 10m step 5m http_requests
  http_requests{job="api"} 0 10 _

eval_fail instant at 0 foo(
  expected_fail_message unexpected end

eval instant at 1m scalar(vector(1))
  1

clear
bogus
"#;

    #[test]
    fn parses_the_commands_of_a_file() {
        let cmds = parse_file(SAMPLE);
        assert_eq!(cmds.len(), 7, "{cmds:#?}");
        let Command::Load(l) = &cmds[0] else { panic!() };
        assert_eq!(l.interval_ms, 300_000);
        assert_eq!(l.series.len(), 1);
        assert!(l.native_histograms);
        assert_eq!(l.histogram_series.len(), 1);
        assert_eq!(l.histogram_series[0].metric_name(), Some("hist"));
        let Command::Eval(e) = &cmds[1] else { panic!() };
        assert_eq!(e.expr, "sum(http_requests)");
        assert_eq!(e.kind, EvalKind::Instant { at: 3_000_000 });
        assert!(e.no_warn);
        assert_eq!(e.expect_info.len(), 1);
        assert!(e.expect_info[0].matches("something (1:2)"));
        assert_eq!(e.expected.len(), 1);
        assert_eq!(e.expected[0].pos, 1);
        let Command::Eval(r) = &cmds[2] else { panic!() };
        assert_eq!(
            r.kind,
            EvalKind::Range {
                start: 0,
                end: 600_000,
                step: 300_000
            }
        );
        assert_eq!(r.expected[0].values.len(), 3);
        let Command::Eval(f) = &cmds[3] else { panic!() };
        assert!(f.fail);
        assert!(
            f.fail_match
                .as_ref()
                .is_some_and(|m| m.matches("unexpected end"))
        );
        let Command::Eval(s) = &cmds[4] else { panic!() };
        assert_eq!(s.expect_scalar, Some(1.0));
        assert!(matches!(cmds[5], Command::Clear));
        assert!(matches!(cmds[6], Command::Invalid { line: 22, .. }));
    }

    #[test]
    fn range_vector_and_string_expectations() {
        let cmds = parse_file(
            "eval instant at 1m metric[1m]\n  expect range vector from 10s to 1m step 10s\n  metric 1 2 3\n\neval instant at 0 \"Foo\"\n  expect string `Foo`\n",
        );
        let Command::Eval(e) = &cmds[0] else { panic!() };
        assert_eq!(e.range_vector, Some((10_000, 60_000, 10_000)));
        assert_eq!(e.instant_time(), Some(60_000));
        assert!(e.excluded_from_range_check());
        let Command::Eval(s) = &cmds[1] else { panic!() };
        assert_eq!(s.expected_string.as_deref(), Some("Foo"));
    }

    #[test]
    fn malformed_blocks_keep_a_reason() {
        let cmds = parse_file("eval instant at 1m x\n  {a=} 1\n\neval instant at 1m y\n  x 1 2\n");
        let Command::Eval(e) = &cmds[0] else { panic!() };
        assert!(e.parse_error.is_some());
        let Command::Eval(e) = &cmds[1] else { panic!() };
        assert!(
            e.parse_error
                .as_deref()
                .is_some_and(|m| m.contains("multiple values"))
        );
    }
}
