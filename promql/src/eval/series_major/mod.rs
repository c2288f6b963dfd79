//! Range queries evaluated series by series instead of step by step.
//!
//! The step-by-step evaluator rebuilds every intermediate vector at every
//! step: a selector looks up each series' window again, a function call
//! allocates a vector of windows, each element clones its labels. Most of a
//! range query's cost is that bookkeeping, not arithmetic. Like Prometheus,
//! the subtrees that allow it are therefore evaluated over the whole grid
//! of steps at once into a [`StepMatrix`]: a selector or a function over a
//! range selector walks each series once with a moving window; aggregations
//! and vector-vector operations fold such matrices with their grouping keys
//! and join partners computed once per series instead of once per step.
//!
//! Results must stay identical to the step-by-step evaluation, which
//! remains the reference and the fallback: a matrix records the order its
//! elements have within each step (the order step-by-step evaluation would
//! produce them in, which matters for float sums and tie-breaking), and an
//! operation whose errors depend on which series are present at a step
//! (many-to-many matches, duplicate series) is evaluated series by series
//! only when its inputs show statically that no step can fail. Everything
//! else is evaluated step by step, reading the matrices of its
//! series-by-series children through [`Precomputed`].

mod binary;
mod combine;
mod histogram;
mod select;

use std::collections::HashMap;

use promql_parser::parser::Expr;
use promql_parser::parser::value::ValueType;
use tidemark_model::{Labels, Sample};

use super::call::strip_parens;
use super::{Elem, Evaluator, drop_metadata, duplicate_labelset};
use crate::error::PromqlError;
use crate::storage::Series;
use crate::value::Value;

/// The evaluation times of a range query (or of a subquery's inner
/// expression): `start`, `start + step`, ... up to `end` inclusive, ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
}

impl Grid {
    fn times(self) -> impl Iterator<Item = i64> {
        let Grid { start, end, step } = self;
        (0..)
            .map(move |k: i64| start + k * step)
            .take_while(move |t| *t <= end)
    }
}

/// One series of a subtree's result over a grid: its points are the steps
/// at which the series is part of the subtree's vector.
#[derive(Debug)]
pub(crate) struct StepSeries {
    pub(crate) labels: Labels,
    pub(crate) drop_name: bool,
    /// Sorted by time; every time is one of the grid's.
    pub(crate) points: Vec<Sample>,
    /// Per point, its position among its step's elements; empty when the
    /// matrix is in step order (see [`StepMatrix::ranked`]).
    pub(crate) ranks: Vec<u32>,
}

/// A vector-valued subtree evaluated at every time of a grid.
#[derive(Debug, Default)]
pub(crate) struct StepMatrix {
    pub(crate) series: Vec<StepSeries>,
    /// Whether the series order is not the order of each step's elements,
    /// so each point carries its rank within the step instead.
    pub(crate) ranked: bool,
}

impl StepMatrix {
    fn samples(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }
}

/// A subtree's matrix read back step by step by a step-by-step parent.
pub(crate) struct Precomputed {
    m: StepMatrix,
    /// Per series, the first point not yet read.
    cursors: Vec<usize>,
    /// The time read last (reads go forward; a read back in time restarts).
    last_ts: i64,
}

impl Precomputed {
    fn new(m: StepMatrix) -> Self {
        Precomputed {
            cursors: vec![0; m.series.len()],
            m,
            last_ts: i64::MIN,
        }
    }

    /// The subtree's vector at `ts`, in the order the step-by-step
    /// evaluation would list it.
    fn at(&mut self, ts: i64) -> Vec<Elem> {
        if ts < self.last_ts {
            self.cursors.iter_mut().for_each(|c| *c = 0);
        }
        self.last_ts = ts;
        let mut out = Vec::new();
        let mut ranks = Vec::new();
        for (s, c) in self.m.series.iter().zip(self.cursors.iter_mut()) {
            while s.points.get(*c).is_some_and(|p| p.t < ts) {
                *c += 1;
            }
            if let Some(p) = s.points.get(*c).filter(|p| p.t == ts) {
                out.push(Elem {
                    labels: s.labels.clone(),
                    v: p.v,
                    drop_name: s.drop_name,
                });
                if self.m.ranked {
                    ranks.push(s.ranks[*c]);
                }
            }
        }
        if self.m.ranked {
            let mut both: Vec<(u32, Elem)> = ranks.into_iter().zip(out).collect();
            both.sort_by_key(|(r, _)| *r);
            out = both.into_iter().map(|(_, e)| e).collect();
        }
        out
    }
}

/// The address of an expression node, the key of its precomputed matrix.
fn node(e: &Expr) -> usize {
    e as *const Expr as usize
}

impl<'a> Evaluator<'a> {
    /// Evaluates a range query's root series by series if it allows that,
    /// giving the query's result; otherwise prepares the matrices of its
    /// subtrees that allow it and returns `None` for the step-by-step run.
    pub(crate) fn run_series_major(
        &mut self,
        expr: &'a Expr,
    ) -> Result<Option<Value>, PromqlError> {
        let grid = Grid {
            start: self.ctx.start,
            end: self.ctx.end,
            step: self.ctx.interval,
        };
        match self.prepare(expr, grid)? {
            Some(m) => self.finish_matrix(m).map(Some),
            None => Ok(None),
        }
    }

    /// The vector of a subtree at `ts` if it was evaluated series by series.
    pub(crate) fn precomputed_at(&mut self, e: &Expr, ts: i64) -> Option<Vec<Elem>> {
        self.precomputed.get_mut(&node(e)).map(|p| p.at(ts))
    }

    /// Evaluates `e` over `grid` series by series if it allows that.
    /// Otherwise returns `None` after preparing the children that are
    /// evaluated at the same times as `e` (their matrices are then read by
    /// `e`'s step-by-step evaluation).
    pub(crate) fn prepare(
        &mut self,
        e: &'a Expr,
        grid: Grid,
    ) -> Result<Option<StepMatrix>, PromqlError> {
        self.check_limits()?;
        match e {
            Expr::Paren(p) => self.prepare(&p.expr, grid),
            Expr::VectorSelector(vs) if !crate::prepare::is_smoothed(vs) => {
                Ok(Some(self.select_series_major(vs, grid)?))
            }
            Expr::Call(c) if c.func.name == "histogram_quantile" => {
                self.histogram_quantile_series_major(c, grid)
            }
            Expr::Call(c) => match self.call_series_major(c, grid)? {
                Some(m) => Ok(Some(m)),
                None => {
                    self.prepare_children(e, grid)?;
                    Ok(None)
                }
            },
            Expr::Aggregate(a) => self.aggregate_series_major(a, grid),
            Expr::Binary(b) => self.binary_series_major(e, b, grid),
            _ => {
                self.prepare_children(e, grid)?;
                Ok(None)
            }
        }
    }

    /// Keeps a subtree's matrix for its step-by-step parent; the samples
    /// count against the query's limit while held.
    pub(crate) fn keep(&mut self, e: &'a Expr, m: StepMatrix) -> Result<(), PromqlError> {
        self.cached_samples += m.samples();
        self.check_samples(0)?;
        self.precomputed.insert(node(e), Precomputed::new(m));
        Ok(())
    }

    /// Fails if holding the matrix `m` (for a moment, as an operand)
    /// would exceed the sample limit.
    pub(crate) fn check_matrix(&self, m: &StepMatrix) -> Result<(), PromqlError> {
        self.check_samples(m.samples())
    }

    /// Prepares the instant-vector children of `e` that are evaluated at
    /// `e`'s own times (not those of subqueries, which run on their own
    /// grid, nor the special arguments of `timestamp` and `info`).
    pub(crate) fn prepare_children(&mut self, e: &'a Expr, grid: Grid) -> Result<(), PromqlError> {
        let kids: Vec<&'a Expr> = match e {
            Expr::Paren(p) => vec![&p.expr],
            Expr::Unary(u) => vec![&u.expr],
            Expr::Aggregate(a) => vec![&a.expr],
            Expr::Binary(b) => vec![&b.lhs, &b.rhs],
            Expr::Call(c) => match c.func.name {
                "info" => Vec::new(),
                "timestamp" => c
                    .args
                    .args
                    .iter()
                    .map(|a| a.as_ref())
                    .filter(|a| !matches!(a, Expr::VectorSelector(_)))
                    .collect(),
                _ => c.args.args.iter().map(|a| a.as_ref()).collect(),
            },
            _ => Vec::new(),
        };
        for k in kids {
            if k.value_type() != ValueType::Vector {
                continue;
            }
            if let Some(m) = self.prepare(k, grid)? {
                self.keep(k, m)?;
            }
        }
        Ok(())
    }

    /// A range query's result from its root's matrix: the delayed name
    /// removal applied, series whose labels then coincide merged (an error
    /// if they have a point at the same step), sorted by labels.
    fn finish_matrix(&mut self, m: StepMatrix) -> Result<Value, PromqlError> {
        self.check_samples(m.samples())?;
        let mut by_labels: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::with_capacity(m.series.len());
        for s in m.series {
            if s.points.is_empty() {
                continue;
            }
            let labels = if s.drop_name {
                drop_metadata(&s.labels)
            } else {
                s.labels
            };
            match by_labels.get(&labels) {
                Some(&i) => merge_points(&mut out[i].samples, s.points)?,
                None => {
                    by_labels.insert(labels.clone(), out.len());
                    out.push(Series {
                        labels,
                        samples: s.points,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Value::Matrix(out))
    }
}

/// Merges the points of two series that ended up with the same labels;
/// two points at one step mean the step's vector had duplicate series.
fn merge_points(into: &mut Vec<Sample>, more: Vec<Sample>) -> Result<(), PromqlError> {
    let mut merged = Vec::with_capacity(into.len() + more.len());
    let (mut a, mut b) = (into.iter().peekable(), more.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.t == y.t => return Err(duplicate_labelset()),
            (Some(x), Some(y)) if x.t < y.t => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        merged.extend(next.copied());
    }
    *into = merged;
    Ok(())
}

/// The value of a number literal, possibly parenthesised.
fn literal(e: &Expr) -> Option<f64> {
    match strip_parens(e) {
        Expr::NumberLiteral(n) => Some(n.val),
        _ => None,
    }
}
