//! Binary operators: arithmetic, comparison (filter or `bool`), set
//! operators, with one-to-one and many-to-one/one-to-many vector matching
//! and fill modifiers, following Prometheus's rules for labels and names.

use std::collections::HashMap;

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use tidemark_model::Labels;

use super::{Elem, Evaluator, Val};
use crate::error::PromqlError;

/// The binary operators, resolved once from the parser's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    pub(crate) fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Arithmetic changes what the value means, so the metric name and the
    /// other metadata labels go.
    pub(crate) fn changes_schema(self) -> bool {
        !self.is_comparison() && !matches!(self, Op::And | Op::Or | Op::Unless)
    }
}

/// Applies `op` to two floats: the value and whether a comparison holds
/// (always true for arithmetic).
pub(crate) fn elem_binop(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (go_mod(l, r), true),
        Op::Pow => (go_pow(l, r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (l, true),
    }
}

/// Go's `math.Mod`: the result has the sign of `x`; NaN for `y == 0` or an
/// infinite `x`; `x` for an infinite `y`.
fn go_mod(x: f64, y: f64) -> f64 {
    if y == 0.0 || x.is_infinite() || x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if y.is_infinite() {
        return x;
    }
    x % y
}

/// Go's `math.Pow`, which differs from IEEE `pow` in a few special cases.
fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 1.0;
    }
    x.powf(y)
}

fn bool_f(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// How series are matched: `on(...)` or `ignoring(...)` (the default is
/// `ignoring()`, which still ignores the metric name).
pub(crate) struct Matching<'e> {
    pub(crate) on: bool,
    pub(crate) names: Vec<&'e str>,
}

impl<'e> Matching<'e> {
    pub(crate) fn new(m: Option<&'e LabelModifier>) -> Self {
        match m {
            Some(LabelModifier::Include(l)) => Matching {
                on: true,
                names: l.labels.iter().map(String::as_str).collect(),
            },
            Some(LabelModifier::Exclude(l)) => Matching {
                on: false,
                names: l.labels.iter().map(String::as_str).collect(),
            },
            None => Matching {
                on: false,
                names: Vec::new(),
            },
        }
    }

    /// The join key of a series.
    pub(crate) fn signature(&self, l: &Labels) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in l.iter() {
            let keep = if self.on {
                self.names.contains(&n)
            } else {
                n != "__name__" && !self.names.contains(&n)
            };
            if keep {
                out.extend_from_slice(n.as_bytes());
                out.push(0xff);
                out.extend_from_slice(v.as_bytes());
                out.push(0xff);
            }
        }
        out
    }

    /// The labels the join key is made of (Prometheus's `MatchLabels`).
    fn match_labels(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep(&self.names)
        } else {
            let mut names = self.names.clone();
            names.push("__name__");
            l.without(&names)
        }
    }
}

/// Go's `labels.Labels.String()`: `{a="b", c="d"}`, name included.
pub(crate) fn go_labels_string(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n);
        s.push('=');
        s.push_str(&format!("{v:?}"));
    }
    s.push('}');
    s
}

impl<'a> Evaluator<'a> {
    pub(crate) fn eval_binary(
        &mut self,
        b: &'a BinaryExpr,
        ts: i64,
    ) -> Result<Val<'a>, PromqlError> {
        let op_str = b.op.to_string();
        let op = Op::parse(&op_str)
            .ok_or_else(|| PromqlError::exec(format!("unknown binary operator {op_str}")))?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, ts)?;
        let rhs = self.eval(&b.rhs, ts)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let (v, keep) = elem_binop(op, l, r);
                Ok(Val::Scalar(if op.is_comparison() {
                    bool_f(keep)
                } else {
                    v
                }))
            }
            (Val::Vector(l), Val::Scalar(r)) => {
                Ok(Val::Vector(vector_scalar(op, l, r, false, return_bool)))
            }
            (Val::Scalar(l), Val::Vector(r)) => {
                Ok(Val::Vector(vector_scalar(op, r, l, true, return_bool)))
            }
            (Val::Vector(l), Val::Vector(r)) => {
                let m = b.modifier.as_ref();
                let matching = Matching::new(m.and_then(|m| m.matching.as_ref()));
                match op {
                    Op::And | Op::Or | Op::Unless => Ok(Val::Vector(set_op(op, l, r, &matching))),
                    _ => {
                        let card = m.map(|m| &m.card);
                        let fill = m
                            .map(|m| (m.fill_values.lhs, m.fill_values.rhs))
                            .unwrap_or((None, None));
                        let node = b as *const BinaryExpr as usize;
                        let mut cache = self.binary_caches.remove(&node).unwrap_or_default();
                        let res =
                            vector_binop(op, l, r, &matching, &mut cache, card, fill, return_bool);
                        self.binary_caches.insert(node, cache);
                        Ok(Val::Vector(res?))
                    }
                }
            }
            (l, r) => Err(PromqlError::exec(format!(
                "binary expression must contain only scalar and instant vector types, got {} {op_str} {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }
}

fn vector_scalar(op: Op, vec: Vec<Elem>, s: f64, swap: bool, return_bool: bool) -> Vec<Elem> {
    let mut out = Vec::with_capacity(vec.len());
    for mut el in vec {
        if let Some(v) = scalar_elem(op, el.v, s, swap, return_bool) {
            el.v = v;
            if op.changes_schema() || return_bool {
                el.drop_name = true;
            }
            out.push(el);
        }
    }
    out
}

/// One element of a vector-scalar operation: its value, or `None` when a
/// comparison filters it out. `swap` when the scalar is the left operand.
pub(crate) fn scalar_elem(op: Op, x: f64, s: f64, swap: bool, return_bool: bool) -> Option<f64> {
    let (l, r) = if swap { (s, x) } else { (x, s) };
    let (mut v, keep) = elem_binop(op, l, r);
    if op.is_comparison() && swap {
        v = r;
    }
    if return_bool {
        return Some(bool_f(keep));
    }
    keep.then_some(v)
}

/// How a vector-vector operation matches: whether the right side is the
/// "many" one (`group_right`), the `group_x` labels to copy, and whether
/// it is grouped at all.
pub(crate) fn cardinality(card: Option<&VectorMatchCardinality>) -> (bool, Vec<&str>, bool) {
    match card {
        Some(VectorMatchCardinality::OneToMany(l)) => {
            (true, l.labels.iter().map(String::as_str).collect(), true)
        }
        Some(VectorMatchCardinality::ManyToOne(l)) => {
            (false, l.labels.iter().map(String::as_str).collect(), true)
        }
        _ => (false, Vec::new(), false),
    }
}

/// The value of one matched pair (`l` and `r` in the query's order), or
/// `None` when a comparison filters it out.
pub(crate) fn pair_value(op: Op, l: f64, r: f64, return_bool: bool) -> Option<f64> {
    let (v, keep) = elem_binop(op, l, r);
    if return_bool {
        Some(bool_f(keep))
    } else {
        keep.then_some(v)
    }
}

fn set_op(op: Op, lhs: Vec<Elem>, rhs: Vec<Elem>, m: &Matching<'_>) -> Vec<Elem> {
    match op {
        Op::And => {
            if lhs.is_empty() || rhs.is_empty() {
                return Vec::new();
            }
            let right: std::collections::HashSet<Vec<u8>> =
                rhs.iter().map(|e| m.signature(&e.labels)).collect();
            lhs.into_iter()
                .filter(|e| right.contains(&m.signature(&e.labels)))
                .collect()
        }
        Op::Unless => {
            if lhs.is_empty() || rhs.is_empty() {
                return lhs;
            }
            let right: std::collections::HashSet<Vec<u8>> =
                rhs.iter().map(|e| m.signature(&e.labels)).collect();
            lhs.into_iter()
                .filter(|e| !right.contains(&m.signature(&e.labels)))
                .collect()
        }
        _ => {
            if lhs.is_empty() {
                return rhs;
            }
            if rhs.is_empty() {
                return lhs;
            }
            let left: std::collections::HashSet<Vec<u8>> =
                lhs.iter().map(|e| m.signature(&e.labels)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|e| !left.contains(&m.signature(&e.labels))),
            );
            out
        }
    }
}

/// Join keys and result labels of the previous step, by position: a
/// step's operands usually list the same series in the same order, so
/// signatures and result label sets are built once per series, not per
/// step.
#[derive(Default)]
pub(crate) struct BinaryCache {
    lhs: Vec<(Labels, Vec<u8>)>,
    rhs: Vec<(Labels, Vec<u8>)>,
    /// Per position of the "many" side: its labels, its partner's labels
    /// and the result's labels.
    metrics: Vec<Option<(Labels, Labels, Labels)>>,
}

/// Each position's labels and join signature.
type Signatures = [(Labels, Vec<u8>)];

/// Brings `side` up to date with the signatures of `elems`.
fn fill_signatures(side: &mut Vec<(Labels, Vec<u8>)>, m: &Matching<'_>, elems: &[Elem]) {
    side.truncate(elems.len());
    for (pos, e) in elems.iter().enumerate() {
        match side.get_mut(pos) {
            Some((l, _)) if *l == e.labels => {}
            Some(slot) => *slot = (e.labels.clone(), m.signature(&e.labels)),
            None => side.push((e.labels.clone(), m.signature(&e.labels))),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn vector_binop<'c>(
    op: Op,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    m: &Matching<'_>,
    cache: &'c mut BinaryCache,
    card: Option<&VectorMatchCardinality>,
    (fill_lhs, fill_rhs): (Option<f64>, Option<f64>),
    return_bool: bool,
) -> Result<Vec<Elem>, PromqlError> {
    if (lhs.is_empty() && rhs.is_empty())
        || ((lhs.is_empty() || rhs.is_empty()) && fill_lhs.is_none() && fill_rhs.is_none())
    {
        return Ok(Vec::new());
    }
    let (one_to_many, include, grouped) = cardinality(card);
    // The "many" side is processed as the left one.
    let (lhs, rhs) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    // As in Prometheus, fill values are not swapped with the sides: the
    // right fill completes partners of the processed (left) side, the left
    // fill the unmatched entries of the processed right side.
    let (fill_many, fill_one) = (fill_lhs, fill_rhs);

    let BinaryCache {
        lhs: lsigs,
        rhs: rsigs,
        metrics,
    } = cache;
    fill_signatures(lsigs, m, &lhs);
    fill_signatures(rsigs, m, &rhs);
    let (lsigs, rsigs): (&'c Signatures, &'c Signatures) = (lsigs, rsigs);
    metrics.resize(lhs.len(), None);
    let mut right: HashMap<&[u8], &Elem> = HashMap::with_capacity(rhs.len());
    let mut right_order: Vec<&[u8]> = Vec::new();
    for (rs, (_, sig)) in rhs.iter().zip(rsigs) {
        let sig = sig.as_slice();
        if let Some(dup) = right.get(sig) {
            let side = if one_to_many { "left" } else { "right" };
            let (a, b) = if dup.labels <= rs.labels {
                (&dup.labels, &rs.labels)
            } else {
                (&rs.labels, &dup.labels)
            };
            return Err(PromqlError::exec(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                go_labels_string(&m.match_labels(&rs.labels)),
                go_labels_string(a),
                go_labels_string(b),
            )));
        }
        right_order.push(sig);
        right.insert(sig, rs);
    }

    let mut matched = HashMap::new();
    let mut out = Vec::with_capacity(lhs.len());
    type Matched<'s> = HashMap<&'s [u8], Option<std::collections::HashSet<Labels>>>;
    let do_op = |ls: &Elem,
                 rs: &Elem,
                 sig: &'c [u8],
                 metric: Labels,
                 out: &mut Vec<Elem>,
                 matched: &mut Matched<'c>|
     -> Result<(), PromqlError> {
        let (fl, fr) = if one_to_many {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut v, keep) = elem_binop(op, fl, fr);
        if return_bool {
            v = bool_f(keep);
        }
        if !grouped {
            if matched.contains_key(sig) {
                return Err(PromqlError::exec(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
            matched.insert(sig, None);
        } else {
            let set = matched
                .entry(sig)
                .or_insert_with(|| Some(Default::default()));
            if let Some(set) = set
                && !set.insert(metric.clone())
            {
                return Err(PromqlError::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
        }
        if !keep && !return_bool {
            return Ok(());
        }
        let value_side_drop = if one_to_many {
            rs.drop_name
        } else {
            ls.drop_name
        };
        out.push(Elem {
            labels: metric,
            v,
            drop_name: return_bool || (op.is_comparison() && value_side_drop),
        });
        Ok(())
    };

    let metric_of =
        |ls: &Elem, rs: &Elem| result_metric(&ls.labels, &rs.labels, op, m, grouped, &include);
    for ((ls, (_, sig)), slot) in lhs.iter().zip(lsigs).zip(metrics.iter_mut()) {
        let sig = sig.as_slice();
        match right.get(sig) {
            Some(rs) => {
                let metric = match slot {
                    Some((l, r, res)) if *l == ls.labels && *r == rs.labels => res.clone(),
                    _ => {
                        let res = metric_of(ls, rs);
                        *slot = Some((ls.labels.clone(), rs.labels.clone(), res.clone()));
                        res
                    }
                };
                do_op(ls, rs, sig, metric, &mut out, &mut matched)?;
            }
            None => {
                if let Some(f) = fill_one {
                    let rs = Elem {
                        labels: m.match_labels(&ls.labels),
                        v: f,
                        drop_name: false,
                    };
                    do_op(ls, &rs, sig, metric_of(ls, &rs), &mut out, &mut matched)?;
                }
            }
        }
    }
    if let Some(f) = fill_many {
        for sig in right_order {
            if matched.contains_key(sig) {
                continue;
            }
            let Some(rs) = right.get(sig) else { continue };
            let ls = Elem {
                labels: m.match_labels(&rs.labels),
                v: f,
                drop_name: false,
            };
            do_op(&ls, rs, sig, metric_of(&ls, rs), &mut out, &mut matched)?;
        }
    }
    Ok(out)
}

/// The labels of a vector-vector result: the "many" side's labels, reduced
/// to the matching labels for one-to-one, plus `group_x` labels from the
/// "one" side; metadata labels go for arithmetic.
pub(crate) fn result_metric(
    lhs: &Labels,
    rhs: &Labels,
    op: Op,
    m: &Matching<'_>,
    grouped: bool,
    include: &[&str],
) -> Labels {
    let mut b = lhs.builder();
    if op.changes_schema() {
        for n in super::METADATA_LABELS {
            b.del(n);
        }
    }
    if !grouped {
        if m.on {
            let names: Vec<String> = lhs.iter().map(|(n, _)| n.to_string()).collect();
            for n in names {
                if !m.names.contains(&n.as_str()) {
                    b.del(&n);
                }
            }
        } else {
            for n in &m.names {
                b.del(n);
            }
        }
    }
    for n in include {
        match rhs.get(n) {
            Some(v) => {
                b.set(n, v);
            }
            None => {
                b.del(n);
            }
        }
    }
    b.build()
}
