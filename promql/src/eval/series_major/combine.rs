//! Aggregations over a series-by-series matrix: each input series' group
//! is found once, then every step folds the present series in the order
//! the step-by-step evaluation would, with the same accumulator (or, for
//! `topk`/`bottomk`, the same ordering).

use std::cmp::Ordering;
use std::collections::HashMap;

use promql_parser::parser::AggregateExpr;
use tidemark_model::{Labels, Sample};

use super::{Grid, StepMatrix, StepSeries, literal};
use crate::error::PromqlError;
use crate::eval::Evaluator;
use crate::eval::aggregate::{Acc, AggOp, Grouping, cmp_asc_nan_last, cmp_desc_nan_last};

/// The points of one output group, split by the name-drop flag the
/// group's members had at each step (two output series if it varies).
#[derive(Default)]
struct GroupOut {
    points: [Vec<Sample>; 2],
    ranks: [Vec<u32>; 2],
}

impl<'a> Evaluator<'a> {
    /// `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev` and `stdvar`
    /// over a matrix in step order; `None` for the other operators or
    /// inputs (prepared for the step-by-step aggregation instead).
    pub(crate) fn aggregate_series_major(
        &mut self,
        a: &'a AggregateExpr,
        grid: Grid,
    ) -> Result<Option<StepMatrix>, PromqlError> {
        let Some(input) = self.prepare(&a.expr, grid)? else {
            return Ok(None);
        };
        let name = a.op.to_string().to_lowercase();
        if (name == "topk" || name == "bottomk") && !input.ranked {
            // The parameter checks of `aggregate_k` cannot fail for these.
            let k = a.param.as_deref().and_then(literal);
            if let Some(k) = k.filter(|k| (1.0..9.223372036854776e18).contains(k)) {
                let bottom = name == "bottomk";
                return self
                    .select_k(a, input, bottom, k as i64 as usize, grid)
                    .map(Some);
            }
        }
        let op = AggOp::by_name(&name).filter(|op| *op != AggOp::Quantile && a.param.is_none());
        let Some(op) = op.filter(|_| !input.ranked) else {
            self.keep(&a.expr, input)?;
            return Ok(None);
        };
        self.check_matrix(&input)?;
        let grouping = Grouping::new(a.modifier.as_ref());
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut labels: Vec<Labels> = Vec::new();
        let group_of: Vec<usize> = input
            .series
            .iter()
            .map(|s| {
                *index.entry(grouping.key(&s.labels)).or_insert_with(|| {
                    labels.push(grouping.labels(&s.labels));
                    labels.len() - 1
                })
            })
            .collect();
        let n = labels.len();
        let mut accs = vec![Acc::default(); n];
        let mut drop = vec![false; n];
        // The step a group last got its first member at, so states need no
        // clearing between steps.
        let mut stamp = vec![usize::MAX; n];
        let mut outs: Vec<GroupOut> = (0..n).map(|_| GroupOut::default()).collect();
        let mut cursors = vec![0usize; input.series.len()];
        let mut order: Vec<usize> = Vec::new();
        let mut ranked = false;
        for (k, ts) in grid.times().enumerate() {
            if k % 64 == 0 {
                self.check_limits()?;
            }
            order.clear();
            for ((s, c), &g) in input.series.iter().zip(&mut cursors).zip(&group_of) {
                let Some(p) = s.points.get(*c).filter(|p| p.t == ts) else {
                    continue;
                };
                *c += 1;
                if stamp[g] != k {
                    stamp[g] = k;
                    accs[g].start(op, p.v);
                    drop[g] = s.drop_name;
                    order.push(g);
                } else {
                    accs[g].add(op, p.v);
                    drop[g] |= s.drop_name;
                }
            }
            // Groups come out in the order of their first member at this
            // step, which is the series order unless membership varies.
            ranked |= order.windows(2).any(|w| w[0] > w[1]);
            for (rank, &g) in order.iter().enumerate() {
                let v = accs[g].finish(op, f64::NAN);
                let d = usize::from(drop[g]);
                outs[g].points[d].push(Sample::new(ts, v));
                outs[g].ranks[d].push(rank as u32);
            }
        }
        let mut series = Vec::new();
        for (labels, out) in labels.into_iter().zip(outs) {
            let GroupOut { points, ranks } = out;
            for (d, (points, ranks)) in points.into_iter().zip(ranks).enumerate() {
                if points.is_empty() {
                    continue;
                }
                series.push(StepSeries {
                    labels: labels.clone(),
                    drop_name: d == 1,
                    points,
                    ranks: if ranked { ranks } else { Vec::new() },
                });
            }
        }
        Ok(Some(StepMatrix { series, ranked }))
    }

    /// `topk`/`bottomk` with a constant `k`: per step and group, the `k`
    /// best present series, ties in input order (the stable sort of the
    /// step-by-step evaluation), kept in a sorted buffer of `k` instead of
    /// sorting the whole group.
    fn select_k(
        &mut self,
        a: &'a AggregateExpr,
        input: StepMatrix,
        bottom: bool,
        k: usize,
        grid: Grid,
    ) -> Result<StepMatrix, PromqlError> {
        self.check_matrix(&input)?;
        let grouping = Grouping::new(a.modifier.as_ref());
        let mut index: HashMap<u64, usize> = HashMap::new();
        let group_of: Vec<usize> = input
            .series
            .iter()
            .map(|s| {
                let n = index.len();
                *index.entry(grouping.key(&s.labels)).or_insert(n)
            })
            .collect();
        let n = index.len();
        let cmp = |x: f64, y: f64| {
            if bottom {
                cmp_asc_nan_last(x, y)
            } else {
                cmp_desc_nan_last(x, y)
            }
        };
        let mut best: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut stamp = vec![usize::MAX; n];
        let mut vals = vec![0.0; input.series.len()];
        let mut cursors = vec![0usize; input.series.len()];
        let mut points: Vec<Vec<Sample>> = vec![Vec::new(); input.series.len()];
        let mut ranks: Vec<Vec<u32>> = vec![Vec::new(); input.series.len()];
        let mut order = Vec::new();
        for (step, ts) in grid.times().enumerate() {
            if step % 64 == 0 {
                self.check_limits()?;
            }
            order.clear();
            for (i, (s, c)) in input.series.iter().zip(&mut cursors).enumerate() {
                let Some(p) = s.points.get(*c).filter(|p| p.t == ts) else {
                    continue;
                };
                *c += 1;
                vals[i] = p.v;
                let g = group_of[i];
                if stamp[g] != step {
                    stamp[g] = step;
                    best[g].clear();
                    order.push(g);
                }
                let b = &mut best[g];
                // After every selected series not worse than this one.
                let pos = b.partition_point(|&j| cmp(vals[j], p.v) != Ordering::Greater);
                if pos < k {
                    b.insert(pos, i);
                    b.truncate(k);
                }
            }
            let mut rank = 0u32;
            for &g in &order {
                for &i in &best[g] {
                    points[i].push(Sample::new(ts, vals[i]));
                    ranks[i].push(rank);
                    rank += 1;
                }
            }
        }
        let series = input
            .series
            .into_iter()
            .zip(points.into_iter().zip(ranks))
            .filter(|(_, (p, _))| !p.is_empty())
            .map(|(s, (points, ranks))| StepSeries {
                labels: s.labels,
                drop_name: s.drop_name,
                points,
                ranks,
            })
            .collect();
        Ok(StepMatrix {
            series,
            ranked: true,
        })
    }
}
