//! `/api/v1/query_exemplars`: the exemplars of every series a query's
//! selectors match, over `[start, end]` (the selectors' offsets and `@`
//! are not applied, as in Prometheus).

use http::HeaderMap;
use promql_parser::parser::Expr;
use tidemark_model::Matcher;
use tidemark_promql::Engine;

use super::ApiState;
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params, selector_matcher_sets};
use super::response::{Data, Success};
use crate::QuerierError;
use crate::fanout::ExemplarsRequest;

pub(crate) async fn exemplars(
    st: &ApiState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    let reader = st.reader(headers)?;
    let start = p.time_or("start", MIN_TIME_MS)?;
    let end = p.time_or("end", MAX_TIME_MS)?;
    if end < start {
        return Err(QuerierError::BadData(
            "end timestamp must not be before start timestamp".into(),
        ));
    }
    let expr = Engine::parse(p.get("query"))?;
    let mut matcher_sets = Vec::new();
    selectors(&expr, &mut matcher_sets).map_err(QuerierError::BadData)?;
    let req = ExemplarsRequest {
        start,
        end,
        matcher_sets,
    };
    let found = reader.exemplars(&req).await?;
    Ok(Success::new(Data::Exemplars(found)))
}

/// The matcher sets of every vector selector in `e`, in query order.
fn selectors(e: &Expr, out: &mut Vec<Vec<Matcher>>) -> Result<(), String> {
    match e {
        Expr::VectorSelector(vs) => out.extend(selector_matcher_sets(vs)?),
        Expr::MatrixSelector(ms) => out.extend(selector_matcher_sets(&ms.vs)?),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                selectors(p, out)?;
            }
            selectors(&a.expr, out)?;
        }
        Expr::Unary(u) => selectors(&u.expr, out)?,
        Expr::Binary(b) => {
            selectors(&b.lhs, out)?;
            selectors(&b.rhs, out)?;
        }
        Expr::Paren(p) => selectors(&p.expr, out)?,
        Expr::Subquery(sq) => selectors(&sq.expr, out)?,
        Expr::Call(c) => {
            for a in &c.args.args {
                selectors(a, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sets(q: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        selectors(&Engine::parse(q).unwrap(), &mut out).unwrap();
        out.iter()
            .map(|ms| ms.iter().map(|m| m.to_string()).collect())
            .collect()
    }

    #[test]
    fn every_selector_of_a_query_is_asked_for() {
        assert_eq!(
            sets(
                r#"sum by (le) (rate(req_bucket{job="api"}[5m])) / on() group_left count(up offset 1h) + 1"#
            ),
            vec![
                vec![
                    r#"__name__="req_bucket""#.to_string(),
                    r#"job="api""#.to_string()
                ],
                vec![r#"__name__="up""#.to_string()],
            ]
        );
        assert_eq!(
            sets(r#"max_over_time((-{__name__=~"a|b"})[10m:1m])"#),
            vec![vec![r#"__name__=~"a|b""#.to_string()]]
        );
        assert!(sets("1 + 2").is_empty());
    }
}
