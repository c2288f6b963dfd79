//! Aggregation operators: sum, avg, count, min, max, group, stddev, stdvar,
//! quantile, count_values, topk, bottomk, limitk and limit_ratio, with
//! `by`/`without` grouping.

use std::collections::HashMap;
use std::hash::Hasher;

use promql_parser::parser::{AggregateExpr, LabelModifier};
use tidemark_model::Labels;

use super::{Elem, Evaluator, Val};
use crate::error::PromqlError;
use crate::functions::stats;

/// The grouping clause of an aggregation.
pub(crate) struct Grouping {
    without: bool,
    names: Vec<String>,
}

impl Grouping {
    pub(crate) fn new(m: Option<&LabelModifier>) -> Self {
        match m {
            Some(LabelModifier::Include(l)) => Grouping {
                without: false,
                names: l.labels.clone(),
            },
            Some(LabelModifier::Exclude(l)) => Grouping {
                without: true,
                names: l.labels.clone(),
            },
            None => Grouping {
                without: false,
                names: Vec::new(),
            },
        }
    }

    fn in_group(&self, name: &str) -> bool {
        if self.without {
            name != "__name__" && !self.names.iter().any(|n| n == name)
        } else {
            self.names.iter().any(|n| n == name)
        }
    }

    /// The key series are grouped by: a hash of the grouping labels, as
    /// Prometheus uses (no allocation per series and step).
    pub(crate) fn key(&self, l: &Labels) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        for (n, v) in l.iter() {
            if self.in_group(n) {
                h.write(n.as_bytes());
                h.write_u8(0xff);
                h.write(v.as_bytes());
                h.write_u8(0xff);
            }
        }
        h.finish()
    }

    /// The labels of a group's output series.
    pub(crate) fn labels(&self, l: &Labels) -> Labels {
        Labels::from_sorted_pairs(l.iter().filter(|(n, _)| self.in_group(n)))
    }
}

/// Grouping keys and output labels of the previous step's input, by
/// position: a step's input usually lists the same series in the same
/// order, so keys and labels are computed once per series, not per step.
#[derive(Default)]
pub(crate) struct GroupCache {
    by_pos: Vec<(Labels, u64, Option<Labels>)>,
}

impl GroupCache {
    /// The entry of position `pos` for labels `l`, recomputed when the
    /// position held other labels before.
    fn entry(
        &mut self,
        g: &Grouping,
        pos: usize,
        l: &Labels,
    ) -> &mut (Labels, u64, Option<Labels>) {
        let fresh = match self.by_pos.get(pos) {
            Some((cached, _, _)) => cached != l,
            None => true,
        };
        if fresh {
            let e = (l.clone(), g.key(l), None);
            if pos < self.by_pos.len() {
                self.by_pos[pos] = e;
            } else {
                self.by_pos.push(e);
            }
        }
        &mut self.by_pos[pos]
    }

    fn key(&mut self, g: &Grouping, pos: usize, l: &Labels) -> u64 {
        self.entry(g, pos, l).1
    }

    fn labels(&mut self, g: &Grouping, pos: usize, l: &Labels) -> Labels {
        let e = self.entry(g, pos, l);
        e.2.get_or_insert_with(|| g.labels(l)).clone()
    }
}

/// The aggregation operators that fold a group into one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Quantile,
}

impl AggOp {
    pub(crate) fn by_name(op: &str) -> Option<AggOp> {
        Some(match op {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "group" => AggOp::Group,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "quantile" => AggOp::Quantile,
            _ => return None,
        })
    }
}

/// Running state of one group's value, shared by the step-by-step and the
/// series-by-series evaluation so both fold in the same order with the same
/// arithmetic (Prometheus's, including Kahan summation and the switch to
/// an incremental mean on overflow).
#[derive(Debug, Clone, Default)]
pub(crate) struct Acc {
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

impl Acc {
    /// The state after the group's first element `f`.
    pub(crate) fn start(&mut self, op: AggOp, f: f64) {
        self.value = match op {
            AggOp::Stddev | AggOp::Stdvar => {
                if f.is_nan() || f.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                }
            }
            AggOp::Group => 1.0,
            _ => f,
        };
        self.mean = f;
        self.kahan_c = 0.0;
        self.count = 1.0;
        self.incremental_mean = false;
        self.values.clear();
        if op == AggOp::Quantile {
            self.values.push(f);
        }
    }

    /// Folds in one more element.
    pub(crate) fn add(&mut self, op: AggOp, f: f64) {
        let g = self;
        match op {
            AggOp::Sum => (g.value, g.kahan_c) = stats::kahan_inc(f, g.value, g.kahan_c),
            AggOp::Avg => {
                g.count += 1.0;
                if !g.incremental_mean {
                    let (nv, nc) = stats::kahan_inc(f, g.value, g.kahan_c);
                    if !nv.is_infinite() {
                        (g.value, g.kahan_c) = (nv, nc);
                        return;
                    }
                    g.incremental_mean = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.kahan_c /= g.count - 1.0;
                }
                let q = (g.count - 1.0) / g.count;
                (g.mean, g.kahan_c) = stats::kahan_inc(f / g.count, q * g.mean, q * g.kahan_c);
            }
            AggOp::Group => {}
            AggOp::Max => {
                if g.value < f || g.value.is_nan() {
                    g.value = f;
                }
            }
            AggOp::Min => {
                if g.value > f || g.value.is_nan() {
                    g.value = f;
                }
            }
            AggOp::Count => g.count += 1.0,
            AggOp::Stddev | AggOp::Stdvar => {
                g.count += 1.0;
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
            AggOp::Quantile => g.values.push(f),
        }
    }

    /// The group's value; `q` is the parameter of `quantile`.
    pub(crate) fn finish(&mut self, op: AggOp, q: f64) -> f64 {
        let g = self;
        match op {
            AggOp::Sum => g.value + g.kahan_c,
            AggOp::Avg => {
                if g.incremental_mean {
                    g.mean + g.kahan_c
                } else {
                    g.value / g.count + g.kahan_c / g.count
                }
            }
            AggOp::Count => g.count,
            AggOp::Stdvar => g.value / g.count,
            AggOp::Stddev => (g.value / g.count).sqrt(),
            AggOp::Quantile => stats::quantile(q, &mut g.values),
            _ => g.value,
        }
    }
}

/// One output group of a step: its labels, value and name-drop flag.
struct Group {
    labels: Labels,
    acc: Acc,
    drop_name: bool,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn eval_aggregate(
        &mut self,
        a: &'a AggregateExpr,
        ts: i64,
    ) -> Result<Val<'a>, PromqlError> {
        let op = a.op.to_string().to_lowercase();
        let grouping = Grouping::new(a.modifier.as_ref());
        if op == "count_values" {
            let label = match &a.param {
                Some(p) => match self.eval(p, ts)? {
                    Val::Str(s) => s,
                    other => {
                        return Err(PromqlError::exec(format!(
                            "expected string parameter for count_values, got {}",
                            other.type_name()
                        )));
                    }
                },
                None => {
                    return Err(PromqlError::exec(
                        "count_values needs a label name parameter",
                    ));
                }
            };
            if !tidemark_model::is_valid_label_name(&label) {
                return Err(PromqlError::exec(format!("invalid label name {label:?}")));
            }
            let input = self.eval_vector(&a.expr, ts)?;
            return Ok(Val::Vector(count_values(&grouping, &label, input)));
        }
        let param = match &a.param {
            Some(p) => Some(self.eval_scalar(p, ts)?),
            None => None,
        };
        let input = self.eval_vector(&a.expr, ts)?;
        let node = a as *const AggregateExpr as usize;
        let mut cache = self.group_caches.remove(&node).unwrap_or_default();
        let res = match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => {
                let p = param.unwrap_or(f64::NAN);
                self.aggregate_k(a, &op, p, &grouping, &mut cache, input)
                    .map(Val::Vector)
            }
            _ => {
                if op == "quantile"
                    && let Some(p) = &a.param
                {
                    self.quantile_warning(param.unwrap_or(f64::NAN), p);
                }
                aggregate(&op, param.unwrap_or(f64::NAN), &grouping, &mut cache, input)
                    .map(Val::Vector)
            }
        };
        self.group_caches.insert(node, cache);
        res
    }

    fn aggregate_k(
        &mut self,
        a: &'a AggregateExpr,
        op: &str,
        p: f64,
        grouping: &Grouping,
        cache: &mut GroupCache,
        input: Vec<Elem>,
    ) -> Result<Vec<Elem>, PromqlError> {
        if op == "limit_ratio" {
            if p.is_nan() {
                return Err(PromqlError::exec("Ratio value is NaN"));
            }
            if p == 0.0 {
                return Ok(Vec::new());
            }
            if !(-1.0..=1.0).contains(&p) {
                let bound = if p > 1.0 { 1.0 } else { -1.0 };
                let pos = match &a.param {
                    Some(e) => self.position_of_expr(e),
                    None => String::new(),
                };
                self.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {} {pos}",
                    super::call::go_float(p),
                    super::call::go_float(bound)
                ));
            }
        } else {
            if p.is_nan() {
                return Err(PromqlError::exec("Parameter value is NaN"));
            }
            if p <= -9.223372036854776e18 {
                return Err(PromqlError::exec(format!(
                    "Scalar value {} underflows int64",
                    super::call::go_float(p)
                )));
            }
            if p >= 9.223372036854776e18 {
                return Err(PromqlError::exec(format!(
                    "Scalar value {} overflows int64",
                    super::call::go_float(p)
                )));
            }
            if p < 1.0 {
                return Ok(Vec::new());
            }
        }
        let k = if op == "limit_ratio" {
            0
        } else {
            (p as i64).min(input.len() as i64) as usize
        };
        let ratio = p.clamp(-1.0, 1.0);
        // Groups in order of first appearance; members in input order.
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut groups: Vec<Vec<Elem>> = Vec::new();
        for (pos, el) in input.into_iter().enumerate() {
            let key = cache.key(grouping, pos, &el.labels);
            let gi = *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[gi].push(el);
        }
        let mut out = Vec::new();
        for mut g in groups {
            match op {
                "topk" => {
                    g.sort_by(|a, b| cmp_desc_nan_last(a.v, b.v));
                    g.truncate(k);
                }
                "bottomk" => {
                    g.sort_by(|a, b| cmp_asc_nan_last(a.v, b.v));
                    g.truncate(k);
                }
                "limitk" => g.truncate(k),
                _ => g.retain(|e| ratio_sample(ratio, &e.labels)),
            }
            out.extend(g);
        }
        Ok(out)
    }
}

pub(crate) fn cmp_desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

pub(crate) fn cmp_asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Whether `limit_ratio(r, ...)` keeps a series: a deterministic choice by
/// the label set's hash, so that `limit_ratio(r)` and `limit_ratio(r - 1)`
/// select complementary sets.
fn ratio_sample(ratio: f64, l: &Labels) -> bool {
    let offset = tidemark_model::labels_hash(l) as f64 / u64::MAX as f64;
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

fn aggregate(
    op: &str,
    q: f64,
    grouping: &Grouping,
    cache: &mut GroupCache,
    input: Vec<Elem>,
) -> Result<Vec<Elem>, PromqlError> {
    let Some(op) = AggOp::by_name(op) else {
        return Err(PromqlError::exec(format!("unknown aggregation {op}")));
    };
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (pos, el) in input.into_iter().enumerate() {
        let key = cache.key(grouping, pos, &el.labels);
        let Some(&gi) = index.get(&key) else {
            index.insert(key, groups.len());
            let mut acc = Acc::default();
            acc.start(op, el.v);
            groups.push(Group {
                labels: cache.labels(grouping, pos, &el.labels),
                acc,
                drop_name: el.drop_name,
            });
            continue;
        };
        let g = &mut groups[gi];
        g.drop_name |= el.drop_name;
        g.acc.add(op, el.v);
    }
    Ok(groups
        .into_iter()
        .map(|mut g| Elem {
            labels: g.labels,
            v: g.acc.finish(op, q),
            drop_name: g.drop_name,
        })
        .collect())
}

fn count_values(grouping: &Grouping, label: &str, input: Vec<Elem>) -> Vec<Elem> {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<Elem> = Vec::new();
    let g = Grouping {
        without: grouping.without,
        names: if grouping.without {
            grouping.names.clone()
        } else {
            let mut n = grouping.names.clone();
            n.push(label.to_string());
            n
        },
    };
    for el in input {
        let mut b = el.labels.builder();
        b.set(label, &super::call::go_float(el.v));
        let l = b.build();
        let key = g.key(&l);
        match index.get(&key) {
            Some(&i) => out[i].v += 1.0,
            None => {
                index.insert(key, out.len());
                out.push(Elem {
                    labels: g.labels(&l),
                    v: 1.0,
                    drop_name: false,
                });
            }
        }
    }
    out
}
