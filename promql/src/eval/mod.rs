//! Phase two of a query: evaluation over the fetched series.
//!
//! A range query evaluates the subtrees that allow it series by series over
//! all steps at once (`series_major`); the rest is evaluated at one
//! timestamp at a time, the instant evaluation repeated at each step and
//! stitched into series, reading the series-by-series results of its
//! subtrees step by step.
//! Selectors, subqueries and functions read only the pre-fetched data, so
//! evaluation never blocks on I/O; it checks the deadline, the cancellation
//! token and the sample limit at every step.

mod aggregate;
mod binary;
mod call;
mod histogram_fns;
mod info;
mod labels_fns;
mod range_fn;
mod selector;
mod series_major;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::parser::Expr;
use tidemark_model::{Labels, Sample};
use tokio_util::sync::CancellationToken;

use crate::error::PromqlError;
use crate::prepare::Fetched;
use crate::storage::Series;
use crate::value::{Value, VectorSample};

/// Everything evaluation needs to know about the query being run.
pub(crate) struct QueryCtx {
    /// First evaluation timestamp, ms (the only one for an instant query).
    pub(crate) start: i64,
    /// Last evaluation timestamp, ms.
    pub(crate) end: i64,
    /// Step between evaluations, ms (1 for an instant query).
    pub(crate) interval: i64,
    pub(crate) is_range: bool,
    pub(crate) lookback: i64,
    pub(crate) subquery_step: i64,
    pub(crate) max_samples: usize,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) cancel: CancellationToken,
    /// The query text, for the positions Prometheus puts in annotations.
    pub(crate) query: String,
    /// `anchored`/`smoothed` range selectors, by the address of their
    /// vector selector in the AST.
    pub(crate) range_modes: HashMap<usize, crate::durexpr::RangeMode>,
}

/// One element of an instant vector during evaluation.
///
/// `drop_name` implements Prometheus 3's delayed name removal: functions and
/// arithmetic mark the element instead of removing `__name__` at once, so
/// `label_replace` and friends can still read the name; the metadata labels
/// are removed when the query's result is produced.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub(crate) labels: Labels,
    pub(crate) v: f64,
    pub(crate) drop_name: bool,
}

/// One series of a range vector during evaluation; samples borrowed from the
/// fetched data where possible.
#[derive(Debug, Clone)]
pub(crate) struct RangeSeries<'a> {
    pub(crate) labels: Labels,
    pub(crate) samples: Cow<'a, [Sample]>,
    pub(crate) drop_name: bool,
}

/// A value during evaluation.
pub(crate) enum Val<'a> {
    Scalar(f64),
    Str(String),
    Vector(Vec<Elem>),
    Matrix(Vec<RangeSeries<'a>>),
}

impl Val<'_> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// Evaluates one query over its fetched data.
pub(crate) struct Evaluator<'a> {
    ctx: &'a QueryCtx,
    data: &'a Fetched,
    warnings: Vec<String>,
    infos: Vec<String>,
    /// Counts calls to [`Evaluator::check_limits`], to read the clock only
    /// every few calls.
    ticks: u32,
    /// Inner results of subqueries in range queries, by subquery node and
    /// inner timestamp (see `eval_subquery`).
    subquery_cache: HashMap<usize, BTreeMap<i64, Arc<Vec<Elem>>>>,
    /// Samples held by `subquery_cache`, counted against the sample limit.
    cached_samples: usize,
    /// Window cursors of the selectors, by selector node.
    cursors: HashMap<usize, selector::Cursors>,
    /// Grouping keys of the aggregations' inputs, by aggregation node.
    group_caches: HashMap<usize, aggregate::GroupCache>,
    /// Join keys and result labels of vector-vector operations, by node.
    binary_caches: HashMap<usize, binary::BinaryCache>,
    /// Subtrees of a range query evaluated series by series, by node, read
    /// by their step-by-step parents.
    precomputed: HashMap<usize, series_major::Precomputed>,
    /// (argument node, metric name) pairs `rate`/`increase` already noted
    /// as possibly not counters.
    noted_non_counters: Vec<(usize, String)>,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(ctx: &'a QueryCtx, data: &'a Fetched) -> Self {
        Evaluator {
            ctx,
            data,
            warnings: Vec::new(),
            infos: Vec::new(),
            ticks: 0,
            subquery_cache: HashMap::new(),
            cached_samples: 0,
            cursors: HashMap::new(),
            group_caches: HashMap::new(),
            binary_caches: HashMap::new(),
            precomputed: HashMap::new(),
            noted_non_counters: Vec::new(),
        }
    }

    /// The annotations collected while evaluating: (warnings, infos).
    pub(crate) fn into_annotations(self) -> (Vec<String>, Vec<String>) {
        (self.warnings, self.infos)
    }

    pub(crate) fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub(crate) fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    /// Prometheus's ` (line:column)` suffix of annotations, for the first
    /// occurrence of `needle` in the query (the parser keeps no positions).
    fn position_of(&self, needle: &str) -> String {
        let q = &self.ctx.query;
        let at = q
            .find(needle)
            .or_else(|| {
                // Case-insensitive fallback (function names); lowercasing
                // may change byte offsets outside ASCII, so only trust a
                // position that is a boundary in the original text.
                q.to_lowercase()
                    .find(&needle.to_lowercase())
                    .filter(|&p| q.is_char_boundary(p))
            })
            .unwrap_or(0);
        let line = q[..at].matches('\n').count() + 1;
        let col = at - q[..at].rfind('\n').map_or(0, |p| p + 1) + 1;
        format!("({line}:{col})")
    }

    pub(crate) fn position_of_expr(&self, e: &Expr) -> String {
        let text = match e {
            Expr::MatrixSelector(ms) => ms.vs.to_string(),
            Expr::VectorSelector(vs) => vs.name.clone().unwrap_or_else(|| vs.to_string()),
            other => other.to_string(),
        };
        self.position_of(&text)
    }

    pub(crate) fn position_of_call(&self, name: &str) -> String {
        self.position_of(&format!("{name}("))
    }

    /// Fails the query if it was cancelled or ran out of time.
    pub(crate) fn check_limits(&mut self) -> Result<(), PromqlError> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ctx.cancel.is_cancelled() {
            return Err(PromqlError::Canceled {
                phase: "expression evaluation",
            });
        }
        if self.ticks % 16 == 1 && Instant::now() >= self.ctx.deadline {
            return Err(PromqlError::Timeout {
                phase: "expression evaluation",
                timeout: self.ctx.timeout,
            });
        }
        Ok(())
    }

    /// Fails the query if holding `extra` more samples would exceed the limit.
    pub(crate) fn check_samples(&self, extra: usize) -> Result<(), PromqlError> {
        let held = self.data.total_samples.saturating_add(self.cached_samples);
        if held.saturating_add(extra) > self.ctx.max_samples {
            return Err(PromqlError::TooManySamples {
                limit: self.ctx.max_samples,
            });
        }
        Ok(())
    }

    /// Evaluates the query's root expression over the whole query range.
    pub(crate) fn run(&mut self, expr: &'a Expr) -> Result<Value, PromqlError> {
        if !self.ctx.is_range {
            self.check_limits()?;
            let t = self.ctx.start;
            return match self.eval(expr, t)? {
                Val::Scalar(v) => Ok(Value::Scalar { t, v }),
                Val::Str(s) => Ok(Value::String { t, s }),
                Val::Vector(elems) => {
                    let elems = finish_names(elems)?;
                    Ok(Value::Vector(
                        elems
                            .into_iter()
                            .map(|e| VectorSample {
                                labels: e.labels,
                                t,
                                v: e.v,
                            })
                            .collect(),
                    ))
                }
                Val::Matrix(m) => {
                    let mut out: Vec<Series> = m
                        .into_iter()
                        .map(|s| Series {
                            labels: if s.drop_name {
                                drop_metadata(&s.labels)
                            } else {
                                s.labels
                            },
                            samples: s.samples.into_owned(),
                        })
                        .collect();
                    for w in 1..out.len() {
                        if out[..w].iter().any(|o| o.labels == out[w].labels) {
                            return Err(duplicate_labelset());
                        }
                    }
                    out.sort_by(|a, b| a.labels.cmp(&b.labels));
                    Ok(Value::Matrix(out))
                }
            };
        }

        if let Some(v) = self.run_series_major(expr)? {
            return Ok(v);
        }
        let mut out = RangeOutput::default();
        let mut produced = 0usize;
        let mut ts = self.ctx.start;
        while ts <= self.ctx.end {
            self.check_limits()?;
            match self.eval(expr, ts)? {
                Val::Scalar(v) => {
                    out.push(0, Labels::empty(), false, Sample::new(ts, v))?;
                    produced += 1;
                }
                Val::Vector(elems) => {
                    produced += elems.len();
                    for (pos, e) in elems.into_iter().enumerate() {
                        out.push(pos, e.labels, e.drop_name, Sample::new(ts, e.v))?;
                    }
                }
                other => {
                    return Err(PromqlError::exec(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        other.type_name()
                    )));
                }
            }
            self.check_samples(produced)?;
            ts += self.ctx.interval;
        }
        let mut out = out.series;
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Value::Matrix(out))
    }

    /// Evaluates `e` at timestamp `ts` (ms).
    pub(crate) fn eval(&mut self, e: &'a Expr, ts: i64) -> Result<Val<'a>, PromqlError> {
        if !self.precomputed.is_empty()
            && let Some(v) = self.precomputed_at(e, ts)
        {
            return Ok(Val::Vector(v));
        }
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(mut elems) => {
                    for el in &mut elems {
                        el.v = -el.v;
                        el.drop_name = true;
                    }
                    Ok(Val::Vector(elems))
                }
                other => Err(PromqlError::exec(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.select_instant(vs, ts))),
            Expr::MatrixSelector(ms) => Ok(Val::Matrix(self.select_range(ms, ts))),
            Expr::Subquery(sq) => Ok(Val::Matrix(self.eval_subquery(sq, ts)?)),
            Expr::Aggregate(a) => self.eval_aggregate(a, ts),
            Expr::Binary(b) => self.eval_binary(b, ts),
            Expr::Call(c) => self.eval_call(c, ts),
            Expr::Extension(_) => Err(PromqlError::exec(
                "extension expressions are not supported by this engine",
            )),
        }
    }

    /// Evaluates `e` and requires an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &'a Expr, ts: i64) -> Result<Vec<Elem>, PromqlError> {
        match self.eval(e, ts)? {
            Val::Vector(v) => Ok(v),
            other => Err(PromqlError::exec(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e` and requires a scalar.
    pub(crate) fn eval_scalar(&mut self, e: &'a Expr, ts: i64) -> Result<f64, PromqlError> {
        match self.eval(e, ts)? {
            Val::Scalar(v) => Ok(v),
            other => Err(PromqlError::exec(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e` and requires a range vector.
    pub(crate) fn eval_matrix(
        &mut self,
        e: &'a Expr,
        ts: i64,
    ) -> Result<Vec<RangeSeries<'a>>, PromqlError> {
        match self.eval(e, ts)? {
            Val::Matrix(m) => Ok(m),
            other => Err(PromqlError::exec(format!(
                "expected range vector, got {}",
                other.type_name()
            ))),
        }
    }
}

/// The series of a range query's result being assembled step by step.
///
/// Elements are looked up by their evaluation labels and name-drop flag, so
/// the delayed name removal (which allocates a new label set) runs once per
/// series, not once per step. Series that end up with the same labels are
/// merged, as Prometheus does, unless they have a point at the same step.
///
/// A step's vector usually lists the same series in the same order as the
/// step before (same label sets, mostly the very same shared allocation),
/// so each position remembers its output series of the previous step: the
/// maps are only consulted when a position changes series.
#[derive(Default)]
struct RangeOutput {
    by_source: HashMap<(Labels, bool), usize>,
    by_final: HashMap<Labels, usize>,
    series: Vec<Series>,
    /// Per position in the previous step's vector: labels, name-drop flag
    /// and output series.
    last: Vec<(Labels, bool, usize)>,
}

impl RangeOutput {
    fn push(
        &mut self,
        pos: usize,
        labels: Labels,
        drop_name: bool,
        p: Sample,
    ) -> Result<(), PromqlError> {
        let i = match self.last.get(pos) {
            Some((l, d, i)) if *d == drop_name && *l == labels => *i,
            _ => {
                let i = self.lookup(labels.clone(), drop_name);
                if pos < self.last.len() {
                    self.last[pos] = (labels, drop_name, i);
                } else {
                    self.last.push((labels, drop_name, i));
                }
                i
            }
        };
        let samples = &mut self.series[i].samples;
        if samples.last().is_some_and(|last| last.t == p.t) {
            return Err(duplicate_labelset());
        }
        samples.push(p);
        Ok(())
    }

    /// The output series of an element, created on first sight.
    fn lookup(&mut self, labels: Labels, drop_name: bool) -> usize {
        let key = (labels, drop_name);
        if let Some(&i) = self.by_source.get(&key) {
            return i;
        }
        let final_labels = if drop_name {
            drop_metadata(&key.0)
        } else {
            key.0.clone()
        };
        let i = match self.by_final.get(&final_labels) {
            Some(&i) => i,
            None => {
                self.by_final
                    .insert(final_labels.clone(), self.series.len());
                self.series.push(Series {
                    labels: final_labels,
                    samples: Vec::new(),
                });
                self.series.len() - 1
            }
        };
        self.by_source.insert(key, i);
        i
    }
}

/// The metadata labels Prometheus 3 removes when a value stops being the
/// metric it was selected as.
pub(crate) const METADATA_LABELS: [&str; 3] = ["__name__", "__type__", "__unit__"];

pub(crate) fn drop_metadata(l: &Labels) -> Labels {
    if METADATA_LABELS.iter().any(|n| l.get(n).is_some()) {
        l.without(&METADATA_LABELS)
    } else {
        l.clone()
    }
}

pub(crate) fn duplicate_labelset() -> PromqlError {
    PromqlError::exec("vector cannot contain metrics with the same labelset")
}

/// Applies the delayed name removal to a result vector and checks that
/// label sets are still unique.
pub(crate) fn finish_names(mut elems: Vec<Elem>) -> Result<Vec<Elem>, PromqlError> {
    let mut any = false;
    for e in &mut elems {
        if e.drop_name {
            e.labels = drop_metadata(&e.labels);
            e.drop_name = false;
            any = true;
        }
    }
    if any {
        check_unique(&elems)?;
    }
    Ok(elems)
}

/// Fails with Prometheus's error when two elements share a label set.
pub(crate) fn check_unique(elems: &[Elem]) -> Result<(), PromqlError> {
    if elems.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(elems.len());
    for e in elems {
        if !seen.insert(&e.labels) {
            return Err(duplicate_labelset());
        }
    }
    Ok(())
}
