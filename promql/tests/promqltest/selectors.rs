//! Which series a query can read: used to skip only the evals that touch
//! native histogram series, instead of every eval of a segment that loads
//! some histograms next to float series.

use promql_parser::label::Matcher;
use promql_parser::parser::{self, Expr, VectorSelector};
use tidemark_model::Labels;

/// Whether any selector of `expr` matches any of `series`; `None` if the
/// query does not parse (the caller then has to assume it might).
pub(crate) fn selects_any(expr: &str, series: &[Labels]) -> Option<bool> {
    if series.is_empty() {
        return Some(false);
    }
    let resolved = tidemark_promql::Engine::resolve_duration_expressions(expr, 0, 0, 0);
    let ast = parser::parse(&resolved).ok()?;
    let mut sels = Vec::new();
    collect(&ast, &mut sels);
    // `info()` reads `target_info` (or the given selector) implicitly.
    let uses_info = expr.contains("info(");
    Some(
        uses_info
            || sels
                .iter()
                .any(|vs| series.iter().any(|l| selector_matches(vs, l))),
    )
}

fn collect<'a>(e: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
    match e {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Subquery(sq) => collect(&sq.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect(a, out)),
        Expr::Aggregate(a) => {
            collect(&a.expr, out);
            if let Some(p) = &a.param {
                collect(p, out);
            }
        }
        Expr::Binary(b) => {
            collect(&b.lhs, out);
            collect(&b.rhs, out);
        }
        Expr::Paren(p) => collect(&p.expr, out),
        Expr::Unary(u) => collect(&u.expr, out),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector_matches(vs: &VectorSelector, l: &Labels) -> bool {
    let value = |name: &str| l.get(name).unwrap_or("");
    if let Some(n) = &vs.name
        && value("__name__") != n
    {
        return false;
    }
    let all = |ms: &[Matcher]| ms.iter().all(|m| m.is_match(value(&m.name)));
    if vs.matchers.or_matchers.is_empty() {
        all(&vs.matchers.matchers)
    } else {
        vs.matchers.or_matchers.iter().any(|ms| all(ms))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_selected_histogram_series() {
        let h = vec![Labels::from_pairs([("__name__", "hist"), ("job", "a")]).unwrap()];
        assert_eq!(selects_any("rate(hist[5m])", &h), Some(true));
        assert_eq!(selects_any("sum(floats) + 1", &h), Some(false));
        assert_eq!(selects_any(r#"{__name__=~"h.*"}"#, &h), Some(true));
        assert_eq!(selects_any(r#"hist{job="b"}"#, &h), Some(false));
        assert_eq!(selects_any("max_over_time(hist[5m:1m])", &h), Some(true));
        assert_eq!(selects_any("foo(", &h), None);
    }
}
