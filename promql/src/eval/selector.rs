//! Selectors and subqueries: reading the fetched series at one timestamp.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::{MatrixSelector, SubqueryExpr, VectorSelector};
use tidemark_model::{Labels, Sample, is_stale_nan};

use super::{Elem, Evaluator, RangeSeries, Val};
use crate::error::PromqlError;
use crate::prepare::{at_ms, offset_ms};
use crate::storage::Series;

/// The latest sample in the left-open lookback window `(rt - lookback, rt]`,
/// or `None` when there is none or it is a staleness marker.
pub(crate) fn latest(samples: &[Sample], rt: i64, lookback: i64) -> Option<Sample> {
    let idx = samples.partition_point(|s| s.t <= rt);
    let s = *samples.get(idx.checked_sub(1)?)?;
    if s.t <= rt - lookback || is_stale_nan(s.v) {
        return None;
    }
    Some(s)
}

/// The value of a `smoothed` instant selector at `rt`: the sample at `rt`,
/// else the linear interpolation between its neighbours within the
/// lookback delta on either side, else the previous sample's value.
pub(crate) fn smoothed_value(samples: &[Sample], rt: i64, lookback: i64) -> Option<f64> {
    let w = window(samples, rt + lookback, 2 * lookback);
    let i = w.partition_point(|s| s.t < rt);
    match (i.checked_sub(1).map(|p| w[p]), w.get(i)) {
        (_, Some(next)) if next.t == rt => Some(next.v),
        (Some(prev), Some(next)) => {
            Some(prev.v + (next.v - prev.v) * (rt - prev.t) as f64 / (next.t - prev.t) as f64)
        }
        (Some(prev), None) => Some(prev.v),
        (None, _) => None,
    }
}

/// The samples in the left-open window `(rt - range, rt]` without
/// staleness markers, borrowed when there are none to remove.
pub(crate) fn window(samples: &[Sample], rt: i64, range: i64) -> Cow<'_, [Sample]> {
    let lo = samples.partition_point(|s| s.t <= rt - range);
    let hi = samples.partition_point(|s| s.t <= rt);
    without_stale(&samples[lo..hi.max(lo)], true)
}

/// The samples of `w` without staleness markers, borrowed when there are
/// none to remove (always when `may_have_stale` is false).
pub(crate) fn without_stale(w: &[Sample], may_have_stale: bool) -> Cow<'_, [Sample]> {
    if may_have_stale && w.iter().any(|s| is_stale_nan(s.v)) {
        Cow::Owned(w.iter().copied().filter(|s| !is_stale_nan(s.v)).collect())
    } else {
        Cow::Borrowed(w)
    }
}

/// Where a selector's window over one series ended at the previous
/// evaluation, so the next step slides it forward instead of searching the
/// whole series again (evaluation times mostly only grow).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    /// Reference time of the previous evaluation (`i64::MIN`: none yet).
    rt: i64,
    /// First sample after the window's start.
    lo: usize,
    /// First sample after the window's end.
    hi: usize,
    /// Whether the series has staleness markers at all; without, windows
    /// are borrowed without scanning them.
    has_stale: bool,
}

impl Cursor {
    pub(crate) fn new(samples: &[Sample]) -> Self {
        Cursor {
            rt: i64::MIN,
            lo: 0,
            hi: 0,
            has_stale: samples.iter().any(|s| is_stale_nan(s.v)),
        }
    }

    /// Whether the series has staleness markers at all.
    pub(crate) fn has_stale(&self) -> bool {
        self.has_stale
    }

    /// The index range of the samples in `(rt - range, rt]`.
    pub(crate) fn range(&mut self, samples: &[Sample], rt: i64, range: i64) -> (usize, usize) {
        if rt < self.rt {
            self.lo = 0;
            self.hi = 0;
        }
        self.rt = rt;
        self.lo = advance(samples, self.lo, rt - range);
        self.hi = advance(samples, self.hi.max(self.lo), rt);
        (self.lo, self.hi)
    }

    /// [`window`] through the cursor.
    pub(crate) fn window<'s>(
        &mut self,
        samples: &'s [Sample],
        rt: i64,
        range: i64,
    ) -> Cow<'s, [Sample]> {
        let (lo, hi) = self.range(samples, rt, range);
        without_stale(&samples[lo..hi], self.has_stale)
    }

    /// [`latest`] through the cursor.
    pub(crate) fn latest(&mut self, samples: &[Sample], rt: i64, lookback: i64) -> Option<Sample> {
        let (lo, hi) = self.range(samples, rt, lookback);
        let s = *samples.get(hi.checked_sub(1)?)?;
        if hi == lo || is_stale_nan(s.v) {
            return None;
        }
        Some(s)
    }
}

/// The first index at or after `from` whose sample is after `t`: a few
/// linear steps (the usual slide of one step), then a binary search.
fn advance(samples: &[Sample], from: usize, t: i64) -> usize {
    let mut i = from.min(samples.len());
    for _ in 0..4 {
        match samples.get(i) {
            Some(s) if s.t <= t => i += 1,
            _ => return i,
        }
    }
    i + samples[i..].partition_point(|s| s.t <= t)
}

/// The cursors of one selector node, one per fetched series.
pub(crate) type Cursors = Vec<Cursor>;

impl<'a> Evaluator<'a> {
    /// The cursors of the selector `vs` (created on first use).
    fn cursors(&mut self, vs: &'a VectorSelector) -> (&'a [Series], &mut Cursors) {
        let data: &'a crate::prepare::Fetched = self.data;
        let series = data.series(vs);
        let c = self
            .cursors
            .entry(crate::prepare::key(vs))
            .or_insert_with(|| series.iter().map(|s| Cursor::new(&s.samples)).collect());
        (series, c)
    }

    /// The reference time of a selector evaluated at `ts`: `@` pins it,
    /// `offset` shifts it back.
    pub(crate) fn ref_time(
        &self,
        at: &Option<promql_parser::parser::AtModifier>,
        offset: &Option<promql_parser::parser::Offset>,
        ts: i64,
    ) -> i64 {
        let base = at.as_ref().map_or(ts, |a| at_ms(a, self.ctx));
        base - offset_ms(offset)
    }

    pub(crate) fn select_instant(&mut self, vs: &'a VectorSelector, ts: i64) -> Vec<Elem> {
        let rt = self.ref_time(&vs.at, &vs.offset, ts);
        if crate::prepare::is_smoothed(vs) {
            return self
                .data
                .series(vs)
                .iter()
                .filter_map(|s| {
                    smoothed_value(&s.samples, rt, self.ctx.lookback).map(|v| Elem {
                        labels: s.labels.clone(),
                        v,
                        drop_name: false,
                    })
                })
                .collect();
        }
        let lookback = self.ctx.lookback;
        let (series, cursors) = self.cursors(vs);
        series
            .iter()
            .zip(cursors.iter_mut())
            .filter_map(|(s, c)| {
                c.latest(&s.samples, rt, lookback).map(|p| Elem {
                    labels: s.labels.clone(),
                    v: p.v,
                    drop_name: false,
                })
            })
            .collect()
    }

    /// Like [`Evaluator::select_instant`] but returns each sample's own
    /// timestamp (for `timestamp()`), in seconds.
    pub(crate) fn select_instant_timestamps(&self, vs: &'a VectorSelector, ts: i64) -> Vec<Elem> {
        let rt = self.ref_time(&vs.at, &vs.offset, ts);
        self.data
            .series(vs)
            .iter()
            .filter_map(|s| {
                latest(&s.samples, rt, self.ctx.lookback).map(|p| Elem {
                    labels: s.labels.clone(),
                    v: p.t as f64 / 1000.0,
                    drop_name: true,
                })
            })
            .collect()
    }

    pub(crate) fn select_range(&mut self, ms: &'a MatrixSelector, ts: i64) -> Vec<RangeSeries<'a>> {
        let rt = self.ref_time(&ms.vs.at, &ms.vs.offset, ts);
        let range = ms.range.as_millis() as i64;
        let (series, cursors) = self.cursors(&ms.vs);
        series
            .iter()
            .zip(cursors.iter_mut())
            .filter_map(|(s, c)| {
                let w = c.window(&s.samples, rt, range);
                (!w.is_empty()).then(|| RangeSeries {
                    labels: s.labels.clone(),
                    samples: w,
                    drop_name: false,
                })
            })
            .collect()
    }

    /// The subquery's own resolution: its `[range:step]` step, else the
    /// engine's default subquery step.
    pub(crate) fn subquery_step(&self, sq: &SubqueryExpr) -> i64 {
        sq.step
            .map(|d| d.as_millis() as i64)
            .filter(|s| *s > 0)
            .unwrap_or(self.ctx.subquery_step)
    }

    /// Evaluates a subquery at `ts`: the inner expression at every multiple
    /// of the subquery step in `(rt - range, rt]`, as Prometheus aligns them.
    pub(crate) fn eval_subquery(
        &mut self,
        sq: &'a SubqueryExpr,
        ts: i64,
    ) -> Result<Vec<RangeSeries<'a>>, PromqlError> {
        let rt = self.ref_time(&sq.at, &sq.offset, ts);
        let range = sq.range.as_millis() as i64;
        let step = self.subquery_step(sq);
        let lower = rt - range;
        let mut t = first_step_after(lower, step);
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<(Labels, Vec<Sample>, bool)> = Vec::new();
        let mut held = 0usize;
        // In a range query consecutive steps overlap in their inner
        // timestamps (which are aligned to the step, not to the outer
        // evaluation time), so inner results are cached by timestamp.
        let cache_key = sq as *const SubqueryExpr as usize;
        let use_cache = self.ctx.is_range;
        while t <= rt {
            let cached = if use_cache {
                self.subquery_cache
                    .get(&cache_key)
                    .and_then(|m| m.get(&t))
                    .cloned()
            } else {
                None
            };
            let elems = match cached {
                Some(e) => e,
                None => {
                    self.check_limits()?;
                    let elems = match self.eval(&sq.expr, t)? {
                        Val::Scalar(v) => vec![Elem {
                            labels: Labels::empty(),
                            v,
                            drop_name: false,
                        }],
                        Val::Vector(elems) => elems,
                        other => {
                            return Err(PromqlError::exec(format!(
                                "subquery is only allowed on instant vector or scalar, got {}",
                                other.type_name()
                            )));
                        }
                    };
                    let elems = Arc::new(elems);
                    if use_cache {
                        self.cached_samples += elems.len();
                        self.subquery_cache
                            .entry(cache_key)
                            .or_default()
                            .insert(t, Arc::clone(&elems));
                    }
                    elems
                }
            };
            held += elems.len();
            for e in elems.iter() {
                push(
                    &mut index,
                    &mut out,
                    e.labels.clone(),
                    Sample::new(t, e.v),
                    e.drop_name,
                );
            }
            self.check_samples(held)?;
            t += step;
        }
        if use_cache && let Some(m) = self.subquery_cache.get_mut(&cache_key) {
            // Later steps start after `lower`: older results are not needed.
            let keep = m.split_off(&(lower + 1));
            let dropped: usize = m.values().map(|e| e.len()).sum();
            self.cached_samples -= dropped.min(self.cached_samples);
            *m = keep;
        }
        let mut res: Vec<RangeSeries<'a>> = out
            .into_iter()
            .map(|(labels, samples, drop_name)| RangeSeries {
                labels,
                samples: Cow::Owned(samples),
                drop_name,
            })
            .collect();
        res.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(res)
    }
}

fn push(
    index: &mut HashMap<Labels, usize>,
    out: &mut Vec<(Labels, Vec<Sample>, bool)>,
    labels: Labels,
    p: Sample,
    drop_name: bool,
) {
    match index.get(&labels) {
        Some(&i) => {
            out[i].1.push(p);
            out[i].2 |= drop_name;
        }
        None => {
            index.insert(labels.clone(), out.len());
            out.push((labels, vec![p], drop_name));
        }
    }
}

/// The first multiple of `step` strictly after `lower`, with Go's
/// truncating division, as Prometheus aligns a subquery's inner times.
pub(crate) fn first_step_after(lower: i64, step: i64) -> i64 {
    let t = step * (lower / step);
    if t <= lower { t + step } else { t }
}
