//! `histogram_quantile`, `histogram_quantiles` and `histogram_fraction`
//! over classic histograms (one series per `le` bucket).

use std::collections::HashMap;

use promql_parser::parser::Expr;
use tidemark_model::Labels;

use super::call::{arg, go_float};
use super::{Elem, Evaluator, Val};
use crate::error::PromqlError;
use crate::functions::histogram;

impl<'a> Evaluator<'a> {
    /// Groups classic-histogram bucket series (by all labels but `le`) into
    /// `(upper bound, cumulative count)` lists, warning about bad `le` labels.
    fn classic_buckets(&mut self, v: Vec<Elem>, at: &Expr) -> Vec<(Labels, Vec<(f64, f64)>)> {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
        for el in v {
            let Some(upper) = el.labels.get("le").and_then(histogram::parse_le) else {
                let msg = format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?} {}",
                    el.labels.get("le").unwrap_or(""),
                    el.labels.metric_name().unwrap_or(""),
                    self.position_of_expr(at)
                );
                self.warn(msg);
                continue;
            };
            let key = el.labels.without(&["le"]);
            match index.get(&key) {
                Some(&i) => groups[i].1.push((upper, el.v)),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![(upper, el.v)]));
                }
            }
        }
        groups
    }

    pub(super) fn histogram_fraction(
        &mut self,
        args: &[&'a Expr],
        ts: i64,
    ) -> Result<Vec<Elem>, PromqlError> {
        let lower = self.eval_scalar(arg(args, 0)?, ts)?;
        let upper = self.eval_scalar(arg(args, 1)?, ts)?;
        let v = self.eval_vector(arg(args, 2)?, ts)?;
        let groups = self.classic_buckets(v, args[2]);
        Ok(groups
            .into_iter()
            .map(|(labels, mut buckets)| Elem {
                labels,
                v: histogram::bucket_fraction(lower, upper, &mut buckets),
                drop_name: true,
            })
            .collect())
    }

    /// `histogram_quantiles(v, "label", q1, q2, ...)`: one output series
    /// per group and quantile, the quantile in `label`.
    pub(super) fn histogram_quantiles(
        &mut self,
        args: &[&'a Expr],
        ts: i64,
    ) -> Result<Vec<Elem>, PromqlError> {
        let v = self.eval_vector(arg(args, 0)?, ts)?;
        let label = match self.eval(arg(args, 1)?, ts)? {
            Val::Str(s) => s,
            other => {
                return Err(PromqlError::exec(format!(
                    "expected string, got {}",
                    other.type_name()
                )));
            }
        };
        let mut qs = Vec::new();
        for a in args.iter().skip(2) {
            let q = self.eval_scalar(a, ts)?;
            self.quantile_warning(q, a);
            qs.push(q);
        }
        let groups = self.classic_buckets(v, args[0]);
        let mut out = Vec::with_capacity(groups.len() * qs.len());
        for (labels, buckets) in groups {
            if labels.get(&label).is_some() {
                return Err(PromqlError::exec(format!(
                    "label {label:?} given to histogram_quantiles() already exists on the input series {labels}"
                )));
            }
            for &q in &qs {
                let mut b = buckets.clone();
                let r = histogram::bucket_quantile(q, &mut b);
                if r.forced_monotonic {
                    let msg = format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?} {}",
                        labels.metric_name().unwrap_or(""),
                        self.position_of_expr(args[0])
                    );
                    self.info(msg);
                }
                let mut q_text = go_float(q);
                if q.is_finite() && !q_text.contains('.') {
                    q_text.push_str(".0");
                }
                let mut lb = labels.builder();
                lb.set(&label, &q_text);
                out.push(Elem {
                    labels: lb.build(),
                    v: r.value,
                    drop_name: true,
                });
            }
        }
        Ok(out)
    }

    pub(super) fn histogram_quantile(
        &mut self,
        args: &[&'a Expr],
        ts: i64,
    ) -> Result<Vec<Elem>, PromqlError> {
        let q = self.eval_scalar(arg(args, 0)?, ts)?;
        let v = self.eval_vector(arg(args, 1)?, ts)?;
        self.quantile_warning(q, args[0]);
        let groups = self.classic_buckets(v, args[1]);
        let mut out = Vec::with_capacity(groups.len());
        for (labels, mut buckets) in groups {
            let r = histogram::bucket_quantile(q, &mut buckets);
            if r.forced_monotonic {
                let msg = format!(
                    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?} {}",
                    labels.metric_name().unwrap_or(""),
                    self.position_of_expr(args[1])
                );
                self.info(msg);
            }
            out.push(Elem {
                labels,
                v: r.value,
                drop_name: true,
            });
        }
        Ok(out)
    }
}
