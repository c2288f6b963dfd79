//! Selectors and subqueries: reading the fetched series at one timestamp.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::{MatrixSelector, SubqueryExpr, VectorSelector};
use tidemark_model::{Labels, Sample, is_stale_nan};

use super::{Elem, Evaluator, RangeSeries, Val};
use crate::error::PromqlError;
use crate::prepare::{at_ms, offset_ms};

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
    let w = &samples[lo..hi.max(lo)];
    if w.iter().any(|s| is_stale_nan(s.v)) {
        Cow::Owned(w.iter().copied().filter(|s| !is_stale_nan(s.v)).collect())
    } else {
        Cow::Borrowed(w)
    }
}

impl<'a> Evaluator<'a> {
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

    pub(crate) fn select_instant(&self, vs: &'a VectorSelector, ts: i64) -> Vec<Elem> {
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
        self.data
            .series(vs)
            .iter()
            .filter_map(|s| {
                latest(&s.samples, rt, self.ctx.lookback).map(|p| Elem {
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

    pub(crate) fn select_range(&self, ms: &'a MatrixSelector, ts: i64) -> Vec<RangeSeries<'a>> {
        let rt = self.ref_time(&ms.vs.at, &ms.vs.offset, ts);
        let range = ms.range.as_millis() as i64;
        self.data
            .series(&ms.vs)
            .iter()
            .filter_map(|s| {
                let w = window(&s.samples, rt, range);
                (!w.is_empty()).then(|| RangeSeries {
                    labels: s.labels.clone(),
                    samples: w,
                    drop_name: false,
                })
            })
            .collect()
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
        let step = sq
            .step
            .map(|d| d.as_millis() as i64)
            .filter(|s| *s > 0)
            .unwrap_or(self.ctx.subquery_step);
        let lower = rt - range;
        // Go's truncating division, then the first aligned time after `lower`.
        let mut t = step * (lower / step);
        if t <= lower {
            t += step;
        }
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
