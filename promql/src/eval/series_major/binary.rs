//! Binary operations over series-by-series matrices: vector-literal
//! operations point by point, vector-vector arithmetic and comparisons by
//! pairing series once and merging their points.

use std::collections::HashMap;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{BinaryExpr, Expr};
use tidemark_model::Sample;

use super::{Grid, StepMatrix, StepSeries, literal};
use crate::error::PromqlError;
use crate::eval::Evaluator;
use crate::eval::binary::{Matching, Op, cardinality, pair_value, result_metric, scalar_elem};

impl<'a> Evaluator<'a> {
    /// A binary operation with at least one vector operand whose other
    /// operand is a vector or a number literal; `None` (with the operands
    /// prepared for the step-by-step operation) otherwise.
    pub(crate) fn binary_series_major(
        &mut self,
        e: &'a Expr,
        b: &'a BinaryExpr,
        grid: Grid,
    ) -> Result<Option<StepMatrix>, PromqlError> {
        let Some(op) = Op::parse(&b.op.to_string()) else {
            return Ok(None);
        };
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let (lt, rt) = (b.lhs.value_type(), b.rhs.value_type());
        if lt == ValueType::Vector && rt == ValueType::Vector {
            return self.vector_vector(b, op, return_bool, grid);
        }
        let (vec_side, scalar, swap) = match (lt, rt) {
            (ValueType::Vector, _) => (&b.lhs, literal(&b.rhs), false),
            (_, ValueType::Vector) => (&b.rhs, literal(&b.lhs), true),
            _ => {
                self.prepare_children(e, grid)?;
                return Ok(None);
            }
        };
        let Some(m) = self.prepare(vec_side, grid)? else {
            return Ok(None);
        };
        let Some(s) = scalar.filter(|_| !m.ranked) else {
            self.keep(vec_side, m)?;
            return Ok(None);
        };
        let mut m = m;
        let drop = op.changes_schema() || return_bool;
        for series in &mut m.series {
            series
                .points
                .retain_mut(|p| match scalar_elem(op, p.v, s, swap, return_bool) {
                    Some(v) => {
                        p.v = v;
                        true
                    }
                    None => false,
                });
            series.drop_name |= drop;
        }
        m.series.retain(|s| !s.points.is_empty());
        Ok(Some(m))
    }

    /// Vector-vector arithmetic and comparisons, one-to-one or grouped,
    /// without fill values: each "many" series is paired with its "one"
    /// partner once. Only when neither side can have two series with one
    /// join key (or, grouped, one result) at a step: otherwise the step
    /// decides whether the query fails, and the step-by-step operation
    /// with its errors runs.
    fn vector_vector(
        &mut self,
        b: &'a BinaryExpr,
        op: Op,
        return_bool: bool,
        grid: Grid,
    ) -> Result<Option<StepMatrix>, PromqlError> {
        let lhs = self.prepare(&b.lhs, grid)?;
        let rhs = self.prepare(&b.rhs, grid)?;
        let m = b.modifier.as_ref();
        let fill = m.is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some());
        let set_op = matches!(op, Op::And | Op::Or | Op::Unless);
        let (lhs, rhs) = match (lhs, rhs) {
            (Some(l), Some(r)) if !l.ranked && !r.ranked && !fill && !set_op => (l, r),
            (l, r) => {
                if let Some(l) = l {
                    self.keep(&b.lhs, l)?;
                }
                if let Some(r) = r {
                    self.keep(&b.rhs, r)?;
                }
                return Ok(None);
            }
        };
        let matching = Matching::new(m.and_then(|m| m.matching.as_ref()));
        let (one_to_many, include, grouped) = cardinality(m.map(|m| &m.card));
        let (many, one) = if one_to_many {
            (&rhs, &lhs)
        } else {
            (&lhs, &rhs)
        };
        let Some(pairs) = pair_up(many, one, &matching, grouped, op, &include) else {
            self.keep(&b.lhs, lhs)?;
            self.keep(&b.rhs, rhs)?;
            return Ok(None);
        };
        self.check_matrix(&lhs)?;
        self.check_matrix(&rhs)?;
        let mut out = Vec::new();
        for (i, j, metric) in pairs {
            self.check_limits()?;
            let (ms, os) = (&many.series[i], &one.series[j]);
            let points = merge_join(&ms.points, &os.points, |mv, ov| {
                let (l, r) = if one_to_many { (ov, mv) } else { (mv, ov) };
                pair_value(op, l, r, return_bool)
            });
            if points.is_empty() {
                continue;
            }
            // The value side is the query's left operand.
            let value_side_drop = if one_to_many {
                os.drop_name
            } else {
                ms.drop_name
            };
            out.push(StepSeries {
                labels: metric,
                drop_name: return_bool || (op.is_comparison() && value_side_drop),
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

/// The "many" series with their "one" partner and result labels, in
/// "many" order; `None` if some step could see a duplicate: two "one"
/// series with one join key, or two "many" series with one join key
/// (one-to-one) or one key and one result (grouped).
fn pair_up(
    many: &StepMatrix,
    one: &StepMatrix,
    m: &Matching<'_>,
    grouped: bool,
    op: Op,
    include: &[&str],
) -> Option<Vec<(usize, usize, tidemark_model::Labels)>> {
    let mut by_sig: HashMap<Vec<u8>, usize> = HashMap::with_capacity(one.series.len());
    for (j, s) in one.series.iter().enumerate() {
        if by_sig.insert(m.signature(&s.labels), j).is_some() {
            return None;
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut pairs = Vec::new();
    for (i, s) in many.series.iter().enumerate() {
        let sig = m.signature(&s.labels);
        let Some(&j) = by_sig.get(&sig) else {
            continue;
        };
        let metric = result_metric(&s.labels, &one.series[j].labels, op, m, grouped, include);
        let fresh = if grouped {
            seen.insert((sig, metric.clone()))
        } else {
            seen.insert((sig, tidemark_model::Labels::empty()))
        };
        if !fresh {
            return None;
        }
        pairs.push((i, j, metric));
    }
    Some(pairs)
}

/// The points at the times both series have, combined by `f` (which may
/// drop a point).
fn merge_join(a: &[Sample], b: &[Sample], f: impl Fn(f64, f64) -> Option<f64>) -> Vec<Sample> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x.t < y.t {
            i += 1;
        } else if y.t < x.t {
            j += 1;
        } else {
            if let Some(v) = f(x.v, y.v) {
                out.push(Sample::new(x.t, v));
            }
            i += 1;
            j += 1;
        }
    }
    out
}
