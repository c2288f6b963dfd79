//! Phase one of a query: find every selector, the time range it can be
//! evaluated over, and fetch its series from the storage.
//!
//! The walk mirrors evaluation: a subquery shifts and widens the range its
//! inner expression is evaluated over, `@` pins it, `offset` shifts it, a
//! range selector widens it by its range and an instant selector by the
//! lookback delta. Each selector node is fetched once; evaluation then finds
//! its series by the node's address in the (immutable, still borrowed) AST.

use std::collections::HashMap;
use std::time::SystemTime;

use futures::stream::{FuturesUnordered, StreamExt};
use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use tidemark_model::{MatchOp, Matcher};

use crate::durexpr::{INFO_MARKER, RangeMode, SMOOTHED_MARKER};
use crate::error::PromqlError;
use crate::eval::QueryCtx;
use crate::storage::{Queryable, SelectHints, Series};

/// One storage read the query needs.
pub(crate) struct SelectReq {
    key: usize,
    /// Alternatives (`{a="1" or b="2"}`): the union of their results.
    matcher_sets: Vec<Vec<Matcher>>,
    hints: SelectHints,
}

/// The series of every selector of a query, fetched before evaluation.
#[derive(Default)]
pub(crate) struct Fetched {
    sets: HashMap<usize, Vec<Series>>,
    /// Samples held by all fetched series, for the max-samples limit.
    pub(crate) total_samples: usize,
}

impl Fetched {
    /// The series fetched for a selector node of the query's AST.
    pub(crate) fn series(&self, vs: &VectorSelector) -> &[Series] {
        self.sets.get(&key(vs)).map_or(&[], |v| v.as_slice())
    }
}

/// The key under which the info series of an `info()` call are fetched.
pub(crate) fn call_key(c: &promql_parser::parser::Call) -> usize {
    c as *const promql_parser::parser::Call as usize
}

/// The `__name__` matchers of an `info()` data-label selector, converted:
/// `target_info` when there are none, and only `*_info` metrics when there
/// is no positive one.
pub(crate) fn info_name_matchers(
    sel: Option<&VectorSelector>,
) -> Result<Vec<Matcher>, PromqlError> {
    let mut out = Vec::new();
    if let Some(vs) = sel {
        if let Some(n) = &vs.name {
            out.push(Matcher::equal(tidemark_model::METRIC_NAME, n.clone()));
        }
        let names: Vec<PMatcher> = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name == tidemark_model::METRIC_NAME)
            .cloned()
            .collect();
        out.extend(convert_matchers(&names)?);
    }
    if out.is_empty() {
        out.push(Matcher::equal(tidemark_model::METRIC_NAME, "target_info"));
    } else if !out
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex))
    {
        let m = Matcher::new(MatchOp::Regex, tidemark_model::METRIC_NAME, ".+_info")
            .map_err(|e| PromqlError::exec(e.to_string()))?;
        out.push(m);
    }
    Ok(out)
}

/// The series fetched for an `info()` call.
impl Fetched {
    pub(crate) fn info_series(&self, c: &promql_parser::parser::Call) -> &[Series] {
        self.sets.get(&call_key(c)).map_or(&[], |v| v.as_slice())
    }
}

/// The times the data of `e` is read at when `e` is evaluated over
/// `[start, end]`: shifted by the `@` and `offset` of its first selector or
/// subquery (the reference time `info()` reads info series at).
pub(crate) fn reference_range(e: &Expr, start: i64, end: i64, ctx: &QueryCtx) -> (i64, i64) {
    match e {
        Expr::VectorSelector(vs) => shifted(start, end, &vs.at, &vs.offset, ctx),
        Expr::MatrixSelector(ms) => shifted(start, end, &ms.vs.at, &ms.vs.offset, ctx),
        Expr::Subquery(sq) => {
            let (s, e) = shifted(start, end, &sq.at, &sq.offset, ctx);
            reference_range(&sq.expr, s, e, ctx)
        }
        Expr::Paren(p) => reference_range(&p.expr, start, end, ctx),
        Expr::Unary(u) => reference_range(&u.expr, start, end, ctx),
        Expr::Aggregate(a) => reference_range(&a.expr, start, end, ctx),
        Expr::Binary(b) => reference_range(&b.lhs, start, end, ctx),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .find(|a| !matches!(a.as_ref(), Expr::NumberLiteral(_) | Expr::StringLiteral(_)))
            .map_or((start, end), |a| reference_range(a, start, end, ctx)),
        _ => (start, end),
    }
}

/// Whether an instant selector was written with the `smoothed` modifier.
pub(crate) fn is_smoothed(vs: &VectorSelector) -> bool {
    vs.matchers
        .matchers
        .iter()
        .any(|m| m.name == SMOOTHED_MARKER)
}

pub(crate) fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// Milliseconds of a parser `@` modifier, with `start()`/`end()` resolved
/// against the query.
pub(crate) fn at_ms(at: &AtModifier, ctx: &QueryCtx) -> i64 {
    match at {
        AtModifier::Start => ctx.start,
        AtModifier::End => ctx.end,
        AtModifier::At(t) => system_time_ms(*t),
    }
}

pub(crate) fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Signed milliseconds of an `offset` (negative offsets look ahead).
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// Maps the range modifiers the text rewrite removed (by ordinal of their
/// bracket) to the range selectors of the AST, walked in text order.
pub(crate) fn assign_range_modes(
    expr: &Expr,
    modes: &[(usize, RangeMode)],
) -> HashMap<usize, RangeMode> {
    fn walk(
        e: &Expr,
        n: &mut usize,
        modes: &[(usize, RangeMode)],
        out: &mut HashMap<usize, RangeMode>,
    ) {
        match e {
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    walk(p, n, modes, out);
                }
                walk(&a.expr, n, modes, out);
            }
            Expr::Unary(u) => walk(&u.expr, n, modes, out),
            Expr::Binary(b) => {
                walk(&b.lhs, n, modes, out);
                walk(&b.rhs, n, modes, out);
            }
            Expr::Paren(p) => walk(&p.expr, n, modes, out),
            Expr::Subquery(sq) => {
                walk(&sq.expr, n, modes, out);
                *n += 1;
            }
            Expr::MatrixSelector(ms) => {
                if let Some((_, m)) = modes.iter().find(|(o, _)| *o == *n) {
                    out.insert(key(&ms.vs), *m);
                }
                *n += 1;
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    walk(a, n, modes, out);
                }
            }
            _ => {}
        }
    }
    let mut out = HashMap::new();
    if !modes.is_empty() {
        walk(expr, &mut 0, modes, &mut out);
    }
    out
}

/// Lists the storage reads of a query evaluated over `[ctx.start, ctx.end]`.
pub(crate) fn plan(expr: &Expr, ctx: &QueryCtx) -> Result<Vec<SelectReq>, PromqlError> {
    let mut out = Vec::new();
    walk(expr, ctx.start, ctx.end, None, 0, ctx, &mut out)?;
    Ok(out)
}

fn walk(
    e: &Expr,
    start: i64,
    end: i64,
    func: Option<&str>,
    range: i64,
    ctx: &QueryCtx,
    out: &mut Vec<SelectReq>,
) -> Result<(), PromqlError> {
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, start, end, None, 0, ctx, out)?;
            }
            walk(&a.expr, start, end, None, 0, ctx, out)
        }
        Expr::Unary(u) => walk(&u.expr, start, end, None, 0, ctx, out),
        Expr::Binary(b) => {
            walk(&b.lhs, start, end, None, 0, ctx, out)?;
            walk(&b.rhs, start, end, None, 0, ctx, out)
        }
        Expr::Paren(p) => walk(&p.expr, start, end, func, range, ctx, out),
        Expr::Subquery(sq) => {
            let (s, e) = shifted(start, end, &sq.at, &sq.offset, ctx);
            let r = sq.range.as_millis() as i64;
            walk(&sq.expr, s - r, e, None, 0, ctx, out)
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
        Expr::VectorSelector(vs) => {
            let (s, e) = shifted(start, end, &vs.at, &vs.offset, ctx);
            let e = if is_smoothed(vs) { e + ctx.lookback } else { e };
            out.push(request(vs, s - ctx.lookback + 1, e, func, range, ctx)?);
            Ok(())
        }
        Expr::MatrixSelector(ms) => {
            let (s, e) = shifted(start, end, &ms.vs.at, &ms.vs.offset, ctx);
            let r = ms.range.as_millis() as i64;
            let (s, e) = match ctx.range_modes.get(&key(&ms.vs)) {
                Some(RangeMode::Anchored) => (s - ctx.lookback, e),
                Some(RangeMode::Smoothed) => (s - ctx.lookback, e + ctx.lookback),
                None => (s, e),
            };
            out.push(request(&ms.vs, s - r + 1, e, func, r, ctx)?);
            Ok(())
        }
        Expr::Call(c) if c.func.name == "info" => {
            let (rs, re) = match c.args.args.first() {
                Some(a) => {
                    walk(a, start, end, Some("info"), 0, ctx, out)?;
                    reference_range(a, start, end, ctx)
                }
                None => (start, end),
            };
            let sel = match c.args.args.get(1).map(|a| a.as_ref()) {
                Some(Expr::VectorSelector(vs)) => Some(vs),
                _ => None,
            };
            out.push(SelectReq {
                key: call_key(c),
                matcher_sets: vec![info_name_matchers(sel)?],
                hints: SelectHints {
                    start: rs - ctx.lookback + 1,
                    end: re,
                    step: if ctx.is_range { ctx.interval } else { 0 },
                    func: Some("info".to_string()),
                    range: 0,
                },
            });
            Ok(())
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, start, end, Some(c.func.name), 0, ctx, out)?;
            }
            Ok(())
        }
    }
}

fn shifted(
    start: i64,
    end: i64,
    at: &Option<AtModifier>,
    offset: &Option<Offset>,
    ctx: &QueryCtx,
) -> (i64, i64) {
    let (s, e) = match at {
        Some(a) => {
            let t = at_ms(a, ctx);
            (t, t)
        }
        None => (start, end),
    };
    let off = offset_ms(offset);
    (s - off, e - off)
}

fn request(
    vs: &VectorSelector,
    start: i64,
    end: i64,
    func: Option<&str>,
    range: i64,
    ctx: &QueryCtx,
) -> Result<SelectReq, PromqlError> {
    let mut base = convert_matchers(&vs.matchers.matchers)?;
    if let Some(name) = &vs.name {
        let has = base.iter().any(|m| {
            m.name == tidemark_model::METRIC_NAME && m.op == MatchOp::Equal && &m.value == name
        });
        if !has {
            base.push(Matcher::equal(tidemark_model::METRIC_NAME, name.clone()));
        }
    }
    let mut matcher_sets = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        matcher_sets.push(base);
    } else {
        for alt in &vs.matchers.or_matchers {
            let mut set = base.clone();
            set.extend(convert_matchers(alt)?);
            matcher_sets.push(set);
        }
    }
    Ok(SelectReq {
        key: key(vs),
        matcher_sets,
        hints: SelectHints {
            start,
            end,
            step: if ctx.is_range { ctx.interval } else { 0 },
            func: func.map(str::to_string),
            range,
        },
    })
}

pub(crate) fn convert_matchers(ms: &[PMatcher]) -> Result<Vec<Matcher>, PromqlError> {
    ms.iter()
        .filter(|m| m.name != SMOOTHED_MARKER && m.name != INFO_MARKER)
        .map(|m| {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| PromqlError::Parse { msg: e.to_string() })
        })
        .collect()
}

/// Runs the storage reads concurrently, stopping at the deadline, on
/// cancellation, or as soon as the fetched samples exceed the query's limit
/// (dropping the reads still in flight).
pub(crate) async fn fetch(
    q: &dyn Queryable,
    plan: Vec<SelectReq>,
    ctx: &QueryCtx,
) -> Result<Fetched, PromqlError> {
    let mut fetched = Fetched::default();
    let deadline = tokio::time::Instant::from_std(ctx.deadline);
    let mut results: Vec<Vec<Series>> = plan.iter().map(|_| Vec::new()).collect();
    let mut pending = FuturesUnordered::new();
    for (idx, req) in plan.iter().enumerate() {
        for set in &req.matcher_sets {
            pending.push(async move { (idx, q.select(&req.hints, set).await) });
        }
    }
    loop {
        let next = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(PromqlError::Canceled { phase: "query preparation" }),
            r = tokio::time::timeout_at(deadline, pending.next()) => r,
        };
        let (idx, res) = match next {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(_) => {
                return Err(PromqlError::Timeout {
                    phase: "query preparation",
                    timeout: ctx.timeout,
                });
            }
        };
        let multi = plan[idx].matcher_sets.len() > 1;
        let merged = &mut results[idx];
        for s in res? {
            if multi && merged.iter().any(|m| m.labels == s.labels) {
                continue;
            }
            fetched.total_samples += s.samples.len();
            if fetched.total_samples > ctx.max_samples {
                return Err(PromqlError::TooManySamples {
                    limit: ctx.max_samples,
                });
            }
            merged.push(s);
        }
    }
    drop(pending);
    for (req, mut merged) in plan.iter().zip(results) {
        // Deterministic order, as Prometheus's series sets are sorted.
        merged.sort_by(|a, b| a.labels.cmp(&b.labels));
        fetched.sets.insert(req.key, merged);
    }
    Ok(fetched)
}

/// The labels `absent()` gives its result: the equality matchers of the
/// selector (a label matched twice is left out, as in Prometheus).
pub(crate) fn convert_absent_labels(vs: &VectorSelector) -> tidemark_model::Labels {
    let mut seen: Vec<&str> = Vec::new();
    let mut b = tidemark_model::LabelsBuilder::new();
    for m in vs.matchers.matchers.iter() {
        if m.name == tidemark_model::METRIC_NAME || m.name == SMOOTHED_MARKER {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            seen.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}
