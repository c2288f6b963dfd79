//! Functions that rewrite or order by labels: `label_replace`, `label_join`,
//! `sort_by_label`, `sort_by_label_desc`.

use std::cmp::Ordering;

use promql_parser::parser::Expr;
use regex::Regex;

use super::call::arg;
use super::{Elem, Evaluator, Val};
use crate::error::PromqlError;

/// Prometheus 3 accepts any non-empty UTF-8 label name.
fn valid_label_name(n: &str) -> bool {
    !n.is_empty()
}

impl<'a> Evaluator<'a> {
    fn str_arg(&mut self, e: &'a Expr, ts: i64) -> Result<String, PromqlError> {
        match self.eval(e, ts)? {
            Val::Str(s) => Ok(s),
            other => Err(PromqlError::exec(format!(
                "expected string, got {}",
                other.type_name()
            ))),
        }
    }

    pub(crate) fn label_replace(
        &mut self,
        args: &[&'a Expr],
        ts: i64,
    ) -> Result<Vec<Elem>, PromqlError> {
        let dst = self.str_arg(arg(args, 1)?, ts)?;
        let repl = self.str_arg(arg(args, 2)?, ts)?;
        let src = self.str_arg(arg(args, 3)?, ts)?;
        let re_s = self.str_arg(arg(args, 4)?, ts)?;
        let re = Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
            PromqlError::exec(format!(
                "invalid regular expression in label_replace(): {re_s} ({e})"
            ))
        })?;
        if !valid_label_name(&dst) {
            return Err(PromqlError::exec(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut v = self.eval_vector(arg(args, 0)?, ts)?;
        for el in &mut v {
            let src_val = el.labels.get(&src).unwrap_or("");
            if let Some(caps) = re.captures(src_val) {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                let mut b = el.labels.builder();
                b.set(&dst, &res);
                el.labels = b.build();
                if dst == "__name__" {
                    el.drop_name = false;
                }
            }
        }
        super::check_unique(&v)?;
        Ok(v)
    }

    pub(crate) fn label_join(
        &mut self,
        args: &[&'a Expr],
        ts: i64,
    ) -> Result<Vec<Elem>, PromqlError> {
        let dst = self.str_arg(arg(args, 1)?, ts)?;
        let sep = self.str_arg(arg(args, 2)?, ts)?;
        let mut srcs = Vec::new();
        for a in args.iter().skip(3) {
            let s = self.str_arg(a, ts)?;
            if !valid_label_name(&s) {
                return Err(PromqlError::exec(format!(
                    "invalid source label name in label_join(): {s}"
                )));
            }
            srcs.push(s);
        }
        if !valid_label_name(&dst) {
            return Err(PromqlError::exec(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut v = self.eval_vector(arg(args, 0)?, ts)?;
        for el in &mut v {
            let joined = srcs
                .iter()
                .map(|s| el.labels.get(s).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            let mut b = el.labels.builder();
            b.set(&dst, &joined);
            el.labels = b.build();
            if dst == "__name__" {
                el.drop_name = false;
            }
        }
        super::check_unique(&v)?;
        Ok(v)
    }

    pub(crate) fn sort_by_label(
        &mut self,
        args: &[&'a Expr],
        ts: i64,
        desc: bool,
    ) -> Result<Vec<Elem>, PromqlError> {
        let mut names = Vec::new();
        for a in args.iter().skip(1) {
            names.push(self.str_arg(a, ts)?);
        }
        let mut v = self.eval_vector(arg(args, 0)?, ts)?;
        v.sort_by(|a, b| {
            for n in &names {
                let x = a.labels.get(n).unwrap_or("");
                let y = b.labels.get(n).unwrap_or("");
                if x == y {
                    continue;
                }
                let o = natural_cmp(x, y);
                return if desc { o.reverse() } else { o };
            }
            let o = a.labels.cmp(&b.labels);
            if desc { o.reverse() } else { o }
        });
        Ok(v)
    }
}

/// Natural order: runs of digits compare by numeric value, the rest
/// byte-wise (`a2` < `a10`).
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let x = a[si..i].trim_start_matches('0');
            let y = b[sj..j].trim_start_matches('0');
            let o = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}
