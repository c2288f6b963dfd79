//! Function calls: dispatch to the numeric kernels in [`crate::functions`]
//! plus the functions that work on labels, series sets or time.

use promql_parser::parser::{Call, Expr};
use tidemark_model::Labels;

use super::range_fn::{KernelArgs, RangeFn, counter_like};
use super::{Elem, Evaluator, RangeSeries, Val};
use crate::durexpr::RangeMode;
use crate::error::PromqlError;
use crate::functions::{math, range, time};
use crate::prepare::convert_absent_labels;

/// Formats a float like Go's `strconv.FormatFloat(f, 'f', -1, 64)` for
/// finite values and Prometheus's `NaN`/`+Inf`/`-Inf` otherwise.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// `e` without the parentheses around it.
pub(crate) fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

impl<'a> Evaluator<'a> {
    /// The window `(start, end]` a range-vector argument covers at `ts`.
    fn window_bounds(&self, arg: &'a Expr, ts: i64) -> (i64, i64) {
        match strip_parens(arg) {
            Expr::MatrixSelector(ms) => {
                let rt = self.ref_time(&ms.vs.at, &ms.vs.offset, ts);
                (rt - ms.range.as_millis() as i64, rt)
            }
            Expr::Subquery(sq) => {
                let rt = self.ref_time(&sq.at, &sq.offset, ts);
                (rt - sq.range.as_millis() as i64, rt)
            }
            _ => (ts, ts),
        }
    }

    pub(crate) fn quantile_warning(&mut self, q: f64, at: &Expr) {
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            let pos = self.position_of_expr(at);
            self.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {} {pos}",
                go_float(q)
            ));
        }
    }

    fn sort_in_range_warning(&mut self, name: &str) {
        if self.ctx.is_range {
            let pos = self.position_of_call(name);
            self.warn(format!(
                "PromQL warning: sort is ineffective for range queries since results are always ordered by labels {pos}"
            ));
        }
    }

    /// Prometheus's info that `rate`/`increase` got a series whose name
    /// does not look like a counter's. Once per argument and metric name:
    /// the message is the same at every step and for every series of that
    /// name, so it is formatted only the first time.
    pub(crate) fn counter_info(&mut self, labels: &Labels, arg: &Expr) {
        let Some(n) = labels.metric_name() else {
            return;
        };
        let node = arg as *const Expr as usize;
        if counter_like(n)
            || self
                .noted_non_counters
                .iter()
                .any(|(a, m)| *a == node && m == n)
        {
            return;
        }
        self.noted_non_counters.push((node, n.to_string()));
        let msg = format!(
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?} {}",
            self.position_of_expr(arg)
        );
        self.info(msg);
    }

    pub(crate) fn eval_call(&mut self, c: &'a Call, ts: i64) -> Result<Val<'a>, PromqlError> {
        let name = c.func.name;
        let args: Vec<&'a Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
        let secs = ts as f64 / 1000.0;
        match name {
            "time" => return Ok(Val::Scalar(secs)),
            "pi" => return Ok(Val::Scalar(math::pi())),
            "start" => return Ok(Val::Scalar(self.ctx.start as f64 / 1000.0)),
            "end" => return Ok(Val::Scalar(self.ctx.end as f64 / 1000.0)),
            "range" => return Ok(Val::Scalar((self.ctx.end - self.ctx.start) as f64 / 1000.0)),
            "step" => {
                let step = if self.ctx.is_range {
                    self.ctx.interval
                } else {
                    0
                };
                return Ok(Val::Scalar(step as f64 / 1000.0));
            }
            "min_of" | "max_of" => {
                let mut acc: Option<f64> = None;
                for a in &args {
                    let v = self.eval_scalar(a, ts)?;
                    acc = Some(match acc {
                        None => v,
                        Some(m) if name == "min_of" => crate::functions::stats::go_min(m, v),
                        Some(m) => crate::functions::stats::go_max(m, v),
                    });
                }
                return Ok(Val::Scalar(acc.unwrap_or(f64::NAN)));
            }
            "vector" => {
                let v = self.eval_scalar(arg(&args, 0)?, ts)?;
                return Ok(Val::Vector(vec![Elem {
                    labels: Labels::empty(),
                    v,
                    drop_name: false,
                }]));
            }
            "scalar" => {
                let v = self.eval_vector(arg(&args, 0)?, ts)?;
                return Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
            }
            "absent" => {
                let a = arg(&args, 0)?;
                let v = self.eval_vector(a, ts)?;
                if !v.is_empty() {
                    return Ok(Val::Vector(Vec::new()));
                }
                let labels = match strip_parens(a) {
                    Expr::VectorSelector(vs) => convert_absent_labels(vs),
                    _ => Labels::empty(),
                };
                return Ok(Val::Vector(vec![Elem {
                    labels,
                    v: 1.0,
                    drop_name: false,
                }]));
            }
            "absent_over_time" => {
                let a = arg(&args, 0)?;
                let m = self.eval_matrix(a, ts)?;
                if !m.is_empty() {
                    return Ok(Val::Vector(Vec::new()));
                }
                let labels = match strip_parens(a) {
                    Expr::MatrixSelector(ms) => convert_absent_labels(&ms.vs),
                    _ => Labels::empty(),
                };
                return Ok(Val::Vector(vec![Elem {
                    labels,
                    v: 1.0,
                    drop_name: false,
                }]));
            }
            "timestamp" => {
                let a = arg(&args, 0)?;
                if let Expr::VectorSelector(vs) = a {
                    return Ok(Val::Vector(self.select_instant_timestamps(vs, ts)));
                }
                let mut v = self.eval_vector(a, ts)?;
                for el in &mut v {
                    el.v = secs;
                    el.drop_name = true;
                }
                return Ok(Val::Vector(v));
            }
            "label_replace" => return self.label_replace(&args, ts).map(Val::Vector),
            "label_join" => return self.label_join(&args, ts).map(Val::Vector),
            "sort" | "sort_desc" => {
                self.sort_in_range_warning(name);
                let mut v = self.eval_vector(arg(&args, 0)?, ts)?;
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    use std::cmp::Ordering;
                    match (a.v.is_nan(), b.v.is_nan()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        _ if desc => b.v.partial_cmp(&a.v).unwrap_or(Ordering::Equal),
                        _ => a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal),
                    }
                });
                return Ok(Val::Vector(v));
            }
            "sort_by_label" | "sort_by_label_desc" => {
                self.sort_in_range_warning(name);
                return self
                    .sort_by_label(&args, ts, name == "sort_by_label_desc")
                    .map(Val::Vector);
            }
            "histogram_quantile" => return self.histogram_quantile(&args, ts).map(Val::Vector),
            "histogram_fraction" => return self.histogram_fraction(&args, ts).map(Val::Vector),
            "histogram_quantiles" => return self.histogram_quantiles(&args, ts).map(Val::Vector),
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // These read native histograms only; float samples are ignored.
                for a in &args {
                    self.eval(a, ts)?;
                }
                return Ok(Val::Vector(Vec::new()));
            }
            "info" => return self.eval_info(c, &args, ts).map(Val::Vector),
            _ => {}
        }

        if let Some(f) = math::unary(name) {
            return self.map_vector(arg(&args, 0)?, ts, f);
        }
        if let Some(f) = time::by_name(name) {
            if args.is_empty() {
                return Ok(Val::Vector(vec![Elem {
                    labels: Labels::empty(),
                    v: f(secs),
                    drop_name: false,
                }]));
            }
            return self.map_vector(args[0], ts, f);
        }
        match name {
            "round" => {
                let to = match args.get(1) {
                    Some(a) => self.eval_scalar(a, ts)?,
                    None => 1.0,
                };
                return self.map_vector(arg(&args, 0)?, ts, |v| math::round(v, to));
            }
            "clamp" => {
                let min = self.eval_scalar(arg(&args, 1)?, ts)?;
                let max = self.eval_scalar(arg(&args, 2)?, ts)?;
                let v = self.eval_vector(arg(&args, 0)?, ts)?;
                if max < min {
                    return Ok(Val::Vector(Vec::new()));
                }
                return Ok(Val::Vector(map_elems(v, |x| {
                    math::clamp(x, min, max).unwrap_or(f64::NAN)
                })));
            }
            "clamp_min" => {
                let min = self.eval_scalar(arg(&args, 1)?, ts)?;
                return self.map_vector(arg(&args, 0)?, ts, |v| math::clamp_min(v, min));
            }
            "clamp_max" => {
                let max = self.eval_scalar(arg(&args, 1)?, ts)?;
                return self.map_vector(arg(&args, 0)?, ts, |v| math::clamp_max(v, max));
            }
            _ => {}
        }
        self.eval_range_function(name, &args, ts)
    }

    /// A function over an `anchored` or `smoothed` range selector.
    fn extended_range_function(
        &mut self,
        name: &str,
        ms: &'a promql_parser::parser::MatrixSelector,
        mode: RangeMode,
        start: i64,
        end: i64,
    ) -> Result<Val<'a>, PromqlError> {
        let allowed: &[&str] = match mode {
            RangeMode::Anchored => &["changes", "delta", "increase", "rate", "resets"],
            RangeMode::Smoothed => &["delta", "increase", "rate"],
        };
        let mode_name = match mode {
            RangeMode::Anchored => "anchored",
            RangeMode::Smoothed => "smoothed",
        };
        if !allowed.contains(&name) {
            return Err(PromqlError::exec(format!(
                "{mode_name} modifier can only be used with: {} - not with {name}",
                allowed.join(", ")
            )));
        }
        let lookback = self.ctx.lookback;
        let hi = if mode == RangeMode::Smoothed {
            end + lookback
        } else {
            end
        };
        let smoothed = mode == RangeMode::Smoothed;
        let mut out = Vec::new();
        for s in self.data.series(&ms.vs) {
            // Samples in (start - lookback, hi], staleness markers removed.
            let w = super::selector::window(&s.samples, hi, hi - (start - lookback));
            // Only the last sample at or before `start` serves as the anchor.
            let first = w.partition_point(|p| p.t <= start).saturating_sub(1);
            let w = &w[first..];
            // No sample up to the end of the range: nothing to say (a
            // smoothed window would only see data after the range).
            if w.is_empty() || w[0].t > end {
                continue;
            }
            let v = match name {
                "rate" | "increase" | "delta" => {
                    range::extended_rate(w, start, end, smoothed, name != "delta", name == "rate")
                }
                _ => {
                    let upto = w.partition_point(|p| p.t <= end);
                    let inner = &w[..upto];
                    if !inner.iter().any(|p| p.t > start) {
                        None
                    } else if name == "changes" {
                        range::changes(inner)
                    } else {
                        range::resets(inner)
                    }
                }
            };
            if let Some(v) = v {
                out.push(Elem {
                    labels: s.labels.clone(),
                    v,
                    drop_name: true,
                });
            }
        }
        Ok(Val::Vector(out))
    }

    fn map_vector(
        &mut self,
        a: &'a Expr,
        ts: i64,
        f: impl Fn(f64) -> f64,
    ) -> Result<Val<'a>, PromqlError> {
        let v = self.eval_vector(a, ts)?;
        Ok(Val::Vector(map_elems(v, f)))
    }

    /// Functions over a range vector: one output element per input series.
    fn eval_range_function(
        &mut self,
        name: &str,
        args: &[&'a Expr],
        ts: i64,
    ) -> Result<Val<'a>, PromqlError> {
        let idx = args
            .iter()
            .position(|a| matches!(strip_parens(a), Expr::MatrixSelector(_) | Expr::Subquery(_)))
            .ok_or_else(|| {
                PromqlError::exec(format!("unknown or unsupported function {name}()"))
            })?;
        let mut scalars = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != idx {
                scalars.push(self.eval_scalar(a, ts)?);
            }
        }
        let p0 = scalars.first().copied().unwrap_or(f64::NAN);
        let p1 = scalars.get(1).copied().unwrap_or(f64::NAN);
        let (start, end) = self.window_bounds(args[idx], ts);
        if let Expr::MatrixSelector(ms) = strip_parens(args[idx])
            && let Some(&mode) = self.ctx.range_modes.get(&crate::prepare::key(&ms.vs))
        {
            return self.extended_range_function(name, ms, mode, start, end);
        }
        let matrix: Vec<RangeSeries<'a>> = self.eval_matrix(args[idx], ts)?;
        match name {
            "quantile_over_time" => self.quantile_warning(p0, args[0]),
            "double_exponential_smoothing" => {
                if let Some(e) = range::smoothing_factor_error(p0, p1) {
                    return Err(PromqlError::Execution(e));
                }
            }
            _ => {}
        }
        let Some(f) = RangeFn::by_name(name) else {
            return Err(PromqlError::exec(format!(
                "function {name}() is not supported by tidemark yet"
            )));
        };
        let kargs = KernelArgs {
            start,
            end,
            ts,
            p0,
            p1,
        };
        let mut out = Vec::with_capacity(matrix.len());
        for s in matrix {
            if let Some(v) = f.apply(&s.samples, &kargs, true) {
                if f.wants_counter() {
                    self.counter_info(&s.labels, args[idx]);
                }
                out.push(Elem {
                    labels: s.labels,
                    v,
                    drop_name: s.drop_name || !f.keeps_name(),
                });
            }
        }
        Ok(Val::Vector(out))
    }
}

fn map_elems(mut v: Vec<Elem>, f: impl Fn(f64) -> f64) -> Vec<Elem> {
    for el in &mut v {
        el.v = f(el.v);
        el.drop_name = true;
    }
    v
}

pub(crate) fn arg<'e>(args: &[&'e Expr], i: usize) -> Result<&'e Expr, PromqlError> {
    args.get(i)
        .copied()
        .ok_or_else(|| PromqlError::exec(format!("missing argument {}", i + 1)))
}
