//! `info()`: enriching series with the data labels of info metrics.

use promql_parser::parser::{Call, Expr};
use tidemark_model::Labels;

use super::call::arg;
use super::{Elem, Evaluator};
use crate::error::PromqlError;

impl<'a> Evaluator<'a> {
    /// `info(v, {data matchers})`: adds the data labels of the info series
    /// (`target_info` by default) that share `instance` and `job` with each
    /// series of `v`.
    pub(super) fn eval_info(
        &mut self,
        c: &'a Call,
        args: &[&'a Expr],
        ts: i64,
    ) -> Result<Vec<Elem>, PromqlError> {
        const IDENTIFYING: [&str; 2] = ["instance", "job"];
        let base = self.eval_vector(arg(args, 0)?, ts)?;
        let sel = match args.get(1) {
            Some(Expr::VectorSelector(vs)) => Some(vs),
            _ => None,
        };
        let name_matchers = crate::prepare::info_name_matchers(sel)?;
        let data_matchers = match sel {
            Some(vs) => {
                let data: Vec<_> = vs
                    .matchers
                    .matchers
                    .iter()
                    .filter(|m| m.name != tidemark_model::METRIC_NAME)
                    .cloned()
                    .collect();
                crate::prepare::convert_matchers(&data)?
            }
            None => Vec::new(),
        };
        // Info series current at the base expression's reference time
        // (its `@` and `offset`) that pass the data matchers.
        let (rt, _) = crate::prepare::reference_range(arg(args, 0)?, ts, ts, self.ctx);
        let current: Vec<(&Labels, i64)> = self
            .data
            .info_series(c)
            .iter()
            .filter_map(|s| {
                super::selector::latest(&s.samples, rt, self.ctx.lookback).map(|p| (&s.labels, p.t))
            })
            .filter(|(l, _)| {
                data_matchers
                    .iter()
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            })
            .collect();
        // Of several series of one info metric for the same identifying
        // labels (a churned info series), only the most recent one counts.
        let infos: Vec<&Labels> = current
            .iter()
            .filter(|(l, t)| {
                !current.iter().any(|(o, ot)| {
                    ot > t
                        && o.metric_name() == l.metric_name()
                        && IDENTIFYING.iter().all(|n| o.get(n) == l.get(n))
                })
            })
            .map(|(l, _)| *l)
            .collect();
        let mut out = Vec::with_capacity(base.len());
        for el in base {
            let name = el.labels.metric_name().unwrap_or("");
            if name_matchers.iter().all(|m| m.matches(name)) {
                out.push(el);
                continue;
            }
            let ids: Vec<&str> = IDENTIFYING
                .iter()
                .map(|n| el.labels.get(n).unwrap_or(""))
                .collect();
            let mut b = el.labels.builder();
            let mut matched = false;
            for info in &infos {
                if IDENTIFYING
                    .iter()
                    .zip(&ids)
                    .any(|(n, v)| info.get(n).unwrap_or("") != *v)
                {
                    continue;
                }
                matched = true;
                for (n, v) in info.iter() {
                    if n == tidemark_model::METRIC_NAME || IDENTIFYING.contains(&n) {
                        continue;
                    }
                    if !data_matchers.is_empty() && !data_matchers.iter().any(|m| m.name == n) {
                        continue;
                    }
                    if el.labels.get(n).is_some() {
                        continue;
                    }
                    if let Some(prev) = b.get(n) {
                        if prev != v {
                            return Err(PromqlError::exec(format!(
                                "conflicting label: {n} has values {prev:?} and {v:?} in info series matching {}",
                                el.labels
                            )));
                        }
                        continue;
                    }
                    b.set(n, v);
                }
            }
            if !matched && data_matchers.iter().any(|m| !m.matches("")) {
                continue;
            }
            out.push(Elem {
                labels: b.build(),
                v: el.v,
                drop_name: el.drop_name,
            });
        }
        Ok(out)
    }
}
