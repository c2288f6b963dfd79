//! Aggregations over a series-by-series matrix: each input series' group
//! is found once, then every step folds the present series in the order
//! the step-by-step evaluation would, with the same accumulator.

use std::collections::HashMap;

use promql_parser::parser::AggregateExpr;
use tidemark_model::{Labels, Sample};

use super::{Grid, StepMatrix, StepSeries};
use crate::error::PromqlError;
use crate::eval::Evaluator;
use crate::eval::aggregate::{Acc, AggOp, Grouping};

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
        let op = AggOp::by_name(&a.op.to_string().to_lowercase())
            .filter(|op| *op != AggOp::Quantile && a.param.is_none());
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
}
