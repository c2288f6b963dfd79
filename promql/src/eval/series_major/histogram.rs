//! `histogram_quantile` over classic histograms, series by series: each
//! bucket series' histogram and upper bound are found once, then every
//! step collects the present buckets of each histogram in input order,
//! as the step-by-step evaluation does.

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};
use tidemark_model::{Labels, Sample};

use super::{Grid, StepMatrix, StepSeries, literal};
use crate::error::PromqlError;
use crate::eval::Evaluator;
use crate::functions::histogram;

impl<'a> Evaluator<'a> {
    /// `histogram_quantile(q, v)` with a literal `q` over a matrix in step
    /// order; `None` otherwise (with `v` prepared for the step-by-step
    /// function).
    pub(crate) fn histogram_quantile_series_major(
        &mut self,
        c: &'a Call,
        grid: Grid,
    ) -> Result<Option<StepMatrix>, PromqlError> {
        let [q_arg, v_arg] = c.args.args.as_slice() else {
            return Ok(None);
        };
        let (q_arg, v_arg): (&'a Expr, &'a Expr) = (q_arg, v_arg);
        let Some(input) = self.prepare(v_arg, grid)? else {
            return Ok(None);
        };
        let Some(q) = literal(q_arg).filter(|_| !input.ranked) else {
            self.keep(v_arg, input)?;
            return Ok(None);
        };
        self.check_matrix(&input)?;
        self.quantile_warning(q, q_arg);
        let arg_pos = self.position_of_expr(v_arg);
        // Per input series: its histogram and bucket bound (None: the
        // series has no valid `le` and is left out with a warning).
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut keys: Vec<Labels> = Vec::new();
        let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.series.len());
        for s in &input.series {
            let Some(upper) = s.labels.get("le").and_then(histogram::parse_le) else {
                let msg = format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?} {arg_pos}",
                    s.labels.get("le").unwrap_or(""),
                    s.labels.metric_name().unwrap_or("")
                );
                self.warn(msg);
                member.push(None);
                continue;
            };
            let key = s.labels.without(&["le"]);
            let g = *index.entry(key.clone()).or_insert_with(|| {
                keys.push(key);
                keys.len() - 1
            });
            member.push(Some((g, upper)));
        }
        let n = keys.len();
        let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n];
        let mut stamp = vec![usize::MAX; n];
        let mut points: Vec<Vec<Sample>> = vec![Vec::new(); n];
        let mut ranks: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut cursors = vec![0usize; input.series.len()];
        let mut order = Vec::new();
        let mut ranked = false;
        for (k, ts) in grid.times().enumerate() {
            if k % 64 == 0 {
                self.check_limits()?;
            }
            order.clear();
            for ((s, c), m) in input.series.iter().zip(&mut cursors).zip(&member) {
                let Some(p) = s.points.get(*c).filter(|p| p.t == ts) else {
                    continue;
                };
                *c += 1;
                let Some((g, upper)) = *m else { continue };
                if stamp[g] != k {
                    stamp[g] = k;
                    buckets[g].clear();
                    order.push(g);
                }
                buckets[g].push((upper, p.v));
            }
            ranked |= order.windows(2).any(|w| w[0] > w[1]);
            for (rank, &g) in order.iter().enumerate() {
                let r = histogram::bucket_quantile(q, &mut buckets[g]);
                if r.forced_monotonic {
                    let msg = format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?} {arg_pos}",
                        keys[g].metric_name().unwrap_or("")
                    );
                    self.info(msg);
                }
                points[g].push(Sample::new(ts, r.value));
                ranks[g].push(rank as u32);
            }
        }
        let series = keys
            .into_iter()
            .zip(points.into_iter().zip(ranks))
            .filter(|(_, (p, _))| !p.is_empty())
            .map(|(labels, (points, ranks))| StepSeries {
                labels,
                drop_name: true,
                points,
                ranks: if ranked { ranks } else { Vec::new() },
            })
            .collect();
        Ok(Some(StepMatrix { series, ranked }))
    }
}
