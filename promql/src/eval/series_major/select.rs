//! Selectors, functions over range selectors and functions over
//! subqueries, evaluated series by series: each series is walked once with
//! a window cursor that slides along the grid.

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Call, Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use tidemark_model::{Sample, is_stale_nan};

use super::{Grid, StepMatrix, StepSeries, literal};
use crate::error::PromqlError;
use crate::eval::Evaluator;
use crate::eval::call::strip_parens;
use crate::eval::range_fn::{KernelArgs, RangeFn};
use crate::eval::selector::{Cursor, first_step_after, without_stale};
use crate::functions::range;
use crate::prepare::offset_ms;

/// A range function's kernel with its constant scalar arguments.
struct Bound {
    f: RangeFn,
    p0: f64,
    p1: f64,
}

/// Per sample, how many samples up to it were below their predecessor:
/// a window `[lo, hi)` has a counter reset iff `p[hi - 1] != p[lo]`.
fn reset_prefix(samples: &[Sample], out: &mut Vec<u32>) {
    out.clear();
    let mut n = 0u32;
    out.push(0);
    for w in samples.windows(2) {
        if w[1].v < w[0].v {
            n += 1;
        }
        out.push(n);
    }
}

impl<'a> Evaluator<'a> {
    /// An instant selector at every step: the latest sample within the
    /// lookback delta of each step's reference time. Reference times only
    /// grow along the grid (`offset` is constant, `@` pins them), so one
    /// index walks each series once.
    pub(crate) fn select_series_major(
        &mut self,
        vs: &'a VectorSelector,
        grid: Grid,
    ) -> Result<StepMatrix, PromqlError> {
        let lookback = self.ctx.lookback;
        let data: &'a crate::prepare::Fetched = self.data;
        let times: Vec<(i64, i64)> = grid
            .times()
            .map(|ts| (ts, self.ref_time(&vs.at, &vs.offset, ts)))
            .collect();
        let mut out = Vec::new();
        for s in data.series(vs) {
            self.check_limits()?;
            let samples = s.samples.as_slice();
            let mut points = Vec::with_capacity(times.len().min(samples.len()));
            let mut hi = 0;
            for &(ts, rt) in &times {
                while samples.get(hi).is_some_and(|p| p.t <= rt) {
                    hi += 1;
                }
                if let Some(p) = hi.checked_sub(1).map(|i| samples[i])
                    && p.t > rt - lookback
                    && !is_stale_nan(p.v)
                {
                    points.push(Sample::new(ts, p.v));
                }
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: s.labels.clone(),
                    drop_name: false,
                    points,
                    ranks: Vec::new(),
                });
            }
        }
        Ok(StepMatrix {
            series: out,
            ranked: false,
        })
    }

    /// A range function over a range selector or a subquery, series by
    /// series, when its other arguments are number literals; `None` for
    /// every other call.
    pub(crate) fn call_series_major(
        &mut self,
        c: &'a Call,
        grid: Grid,
    ) -> Result<Option<StepMatrix>, PromqlError> {
        let Some(f) = RangeFn::by_name(c.func.name) else {
            return Ok(None);
        };
        let args: Vec<&'a Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
        let Some(idx) = args
            .iter()
            .position(|a| matches!(strip_parens(a), Expr::MatrixSelector(_) | Expr::Subquery(_)))
        else {
            return Ok(None);
        };
        let mut scalars = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != idx {
                match literal(a) {
                    Some(v) => scalars.push(v),
                    None => return Ok(None),
                }
            }
        }
        let p0 = scalars.first().copied().unwrap_or(f64::NAN);
        let p1 = scalars.get(1).copied().unwrap_or(f64::NAN);
        let bound = Bound { f, p0, p1 };
        match strip_parens(args[idx]) {
            Expr::MatrixSelector(ms) => {
                if self
                    .ctx
                    .range_modes
                    .contains_key(&crate::prepare::key(&ms.vs))
                {
                    return Ok(None);
                }
                self.range_fn_checks(f, p0, p1, &args)?;
                Ok(Some(
                    self.range_fn_series_major(&bound, ms, args[idx], grid)?,
                ))
            }
            Expr::Subquery(sq) => self.subquery_fn_series_major(&bound, sq, &args, idx, grid),
            _ => Ok(None),
        }
    }

    /// The parameter checks the step-by-step evaluation makes before
    /// applying the kernel.
    fn range_fn_checks(
        &mut self,
        f: RangeFn,
        p0: f64,
        p1: f64,
        args: &[&'a Expr],
    ) -> Result<(), PromqlError> {
        match f {
            RangeFn::QuantileOverTime => self.quantile_warning(p0, args[0]),
            RangeFn::DoubleExponentialSmoothing => {
                if let Some(e) = range::smoothing_factor_error(p0, p1) {
                    return Err(PromqlError::Execution(e));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn range_fn_series_major(
        &mut self,
        b: &Bound,
        ms: &'a MatrixSelector,
        arg: &'a Expr,
        grid: Grid,
    ) -> Result<StepMatrix, PromqlError> {
        let range = ms.range.as_millis() as i64;
        let data: &'a crate::prepare::Fetched = self.data;
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        for s in data.series(&ms.vs) {
            self.check_limits()?;
            let samples = s.samples.as_slice();
            let mut c = Cursor::new(samples);
            // Reset-free windows skip rate's scan for resets (see
            // `RangeFn::apply`); with staleness markers the window is a
            // filtered copy, so the prefix would not apply.
            let prefix = (b.f.wants_counter() && !c.has_stale()).then(|| {
                reset_prefix(samples, &mut prefix);
                &prefix
            });
            let mut points = Vec::new();
            for ts in grid.times() {
                let rt = self.ref_time(&ms.vs.at, &ms.vs.offset, ts);
                let (lo, hi) = c.range(samples, rt, range);
                let w = without_stale(&samples[lo..hi], c.has_stale());
                if w.is_empty() {
                    continue;
                }
                let may_reset = prefix.is_none_or(|p| p[hi - 1] != p[lo]);
                let kargs = KernelArgs {
                    start: rt - range,
                    end: rt,
                    ts,
                    p0: b.p0,
                    p1: b.p1,
                };
                if let Some(v) = b.f.apply(&w, &kargs, may_reset) {
                    points.push(Sample::new(ts, v));
                }
            }
            if points.is_empty() {
                continue;
            }
            if b.f.wants_counter() {
                self.counter_info(&s.labels, arg);
            }
            out.push(StepSeries {
                labels: s.labels.clone(),
                drop_name: !b.f.keeps_name(),
                points,
                ranks: Vec::new(),
            });
        }
        Ok(StepMatrix {
            series: out,
            ranked: false,
        })
    }

    /// A range function over a subquery: the inner expression evaluated
    /// once over the subquery's own grid, then each of its series walked
    /// with a moving window. `None` (with the inner expression prepared for
    /// the step-by-step subquery) when the inner result cannot be read as
    /// the step-by-step subquery reads it.
    fn subquery_fn_series_major(
        &mut self,
        b: &Bound,
        sq: &'a SubqueryExpr,
        args: &[&'a Expr],
        idx: usize,
        grid: Grid,
    ) -> Result<Option<StepMatrix>, PromqlError> {
        if sq.at.is_some() || sq.expr.value_type() != ValueType::Vector {
            return Ok(None);
        }
        let range = sq.range.as_millis() as i64;
        let step = self.subquery_step(sq);
        let offset = offset_ms(&sq.offset);
        // The inner times of all steps: the multiples of the subquery step
        // after the first window's start, up to the last window's end (Go's
        // truncating division, as the step-by-step subquery aligns them).
        let first = first_step_after(grid.start - offset - range, step);
        let upper = grid.end - offset;
        let mut last = step * (upper / step);
        if last > upper {
            last -= step;
        }
        let inner_grid = Grid {
            start: first,
            end: last,
            step,
        };
        let inner = if first <= last {
            match self.prepare(&sq.expr, inner_grid)? {
                Some(m) => m,
                None => return Ok(None),
            }
        } else {
            StepMatrix::default()
        };
        // The step-by-step subquery merges series by labels and lists them
        // sorted; read that way only when the labels are unique.
        let mut inner = inner;
        inner.series.sort_by(|x, y| x.labels.cmp(&y.labels));
        let unique = inner.series.windows(2).all(|w| w[0].labels != w[1].labels);
        if inner.ranked || !unique {
            self.keep(&sq.expr, inner)?;
            return Ok(None);
        }
        self.check_matrix(&inner)?;
        self.range_fn_checks(b.f, b.p0, b.p1, args)?;
        let mut out = Vec::new();
        for s in inner.series {
            self.check_limits()?;
            let mut c = Cursor::new(&s.points);
            let mut points = Vec::new();
            for ts in grid.times() {
                let rt = ts - offset;
                let (lo, hi) = c.range(&s.points, rt, range);
                if lo == hi {
                    continue;
                }
                let kargs = KernelArgs {
                    start: rt - range,
                    end: rt,
                    ts,
                    p0: b.p0,
                    p1: b.p1,
                };
                if let Some(v) = b.f.apply(&s.points[lo..hi], &kargs, true) {
                    points.push(Sample::new(ts, v));
                }
            }
            if points.is_empty() {
                continue;
            }
            if b.f.wants_counter() {
                self.counter_info(&s.labels, args[idx]);
            }
            out.push(StepSeries {
                labels: s.labels,
                drop_name: s.drop_name || !b.f.keeps_name(),
                points,
                ranks: Vec::new(),
            });
        }
        Ok(Some(StepMatrix {
            series: out,
            ranked: false,
        }))
    }
}
