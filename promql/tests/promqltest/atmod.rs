//! Upstream's `@` re-runs of instant evals (`atModifierTestCases` in
//! Prometheus's `promqltest/test.go`): every selector and subquery without
//! an `@` gets `@ <eval time>` (selectors inside a subquery are left alone),
//! and the query is evaluated again at other times, where it must give the
//! same result. Queries using functions whose value depends on the
//! evaluation time itself are not re-run.

use std::time::{Duration, UNIX_EPOCH};

use promql_parser::parser::{self, AtModifier, Expr};

/// Functions that make a query's result depend on the evaluation time even
/// when every selector is pinned with `@` (Prometheus's
/// `AtModifierUnsafeFunctions`), plus the query-context functions
/// `start()`, `end()`, `range()` and `step()`: the 3.14 corpus expects
/// `start()` at 100s to be 100, which no `@` re-run at another time could
/// give, so upstream cannot be re-running them.
const AT_UNSAFE_FUNCTIONS: [&str; 15] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    "start",
    "end",
    "range",
    "step",
];

/// A placeholder `@` time whose printed form is replaced by the real one:
/// promql-parser prints times before 1970 as 0.
const PLACEHOLDER_MS: u64 = 987_654_321_123;
const PLACEHOLDER_TEXT: &str = "@ 987654321.123";

/// The extra instant queries upstream runs for an instant eval at `ts`.
#[derive(Debug, PartialEq)]
pub(crate) enum AtCases {
    /// `(query, eval time ms)` pairs.
    Cases(Vec<(String, i64)>),
    /// The query uses an evaluation-time dependent function: no re-runs.
    Unsafe,
    /// The runner cannot build the pinned query (promql-parser does not
    /// know some of its syntax); the number of re-runs upstream would make
    /// is given. These checks are reported as not generated, not failed.
    NotGenerated { count: usize, reason: String },
}

/// The evaluation times of upstream's `@` re-runs for an eval at `ts`.
pub(crate) fn eval_times(ts: i64) -> Vec<i64> {
    if ts == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * ts, 0, ts / 5, ts, 10 * ts]
    }
}

/// Builds the `@` re-runs of `expr` evaluated at `ts` ms.
pub(crate) fn at_cases(expr: &str, ts: i64) -> AtCases {
    // Duration expressions (`x[5m+1m]`, `offset (1 + 2)`) are resolved the
    // way the engine resolves them for an instant query; promql-parser
    // cannot parse them otherwise.
    let resolved = tidemark_promql::Engine::resolve_duration_expressions(expr, ts, ts, 0);
    let mut ast = match parser::parse(&resolved) {
        Ok(a) => a,
        Err(e) => {
            // Textual fallback to know whether upstream would re-run at all.
            let unsafe_call = AT_UNSAFE_FUNCTIONS.iter().any(|f| {
                expr.match_indices(f).any(|(i, _)| {
                    let before_ok = i == 0 || !is_ident(expr.as_bytes()[i - 1]);
                    let after = expr[i + f.len()..].trim_start();
                    before_ok && after.starts_with('(')
                })
            });
            if unsafe_call {
                return AtCases::Unsafe;
            }
            return AtCases::NotGenerated {
                count: eval_times(ts).len(),
                reason: format!(
                    "query does not parse with promql-parser: {}",
                    first_line(&e)
                ),
            };
        }
    };
    let mut unsafe_fn = false;
    pin(&mut ast, &mut unsafe_fn, false);
    if unsafe_fn {
        return AtCases::Unsafe;
    }
    let printed = ast
        .to_string()
        .replace(PLACEHOLDER_TEXT, &format!("@ {}", fmt_secs(ts)));
    if let Err(e) = parser::parse(&printed) {
        return AtCases::NotGenerated {
            count: eval_times(ts).len(),
            reason: format!(
                "@-pinned query {printed:?} does not re-parse: {}",
                first_line(&e)
            ),
        };
    }
    AtCases::Cases(
        eval_times(ts)
            .into_iter()
            .map(|t| (printed.clone(), t))
            .collect(),
    )
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Seconds with millisecond precision, as Prometheus prints `@` times.
fn fmt_secs(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

fn placeholder() -> Option<AtModifier> {
    Some(AtModifier::At(
        UNIX_EPOCH + Duration::from_millis(PLACEHOLDER_MS),
    ))
}

/// Sets `@` on selectors and subqueries; `in_pinned_subquery` stops the
/// descent below a subquery that has (or just got) an `@`.
fn pin(e: &mut Expr, unsafe_fn: &mut bool, in_pinned_subquery: bool) {
    match e {
        Expr::VectorSelector(vs) => {
            if !in_pinned_subquery && vs.at.is_none() {
                vs.at = placeholder();
            }
        }
        Expr::MatrixSelector(ms) => {
            if !in_pinned_subquery && ms.vs.at.is_none() {
                ms.vs.at = placeholder();
            }
        }
        Expr::Subquery(sq) => {
            if !in_pinned_subquery && sq.at.is_none() {
                sq.at = placeholder();
            }
            pin(&mut sq.expr, unsafe_fn, true);
        }
        Expr::Call(c) => {
            if AT_UNSAFE_FUNCTIONS.contains(&c.func.name) {
                *unsafe_fn = true;
            }
            for a in &mut c.args.args {
                pin(a, unsafe_fn, in_pinned_subquery);
            }
        }
        Expr::Aggregate(a) => {
            pin(&mut a.expr, unsafe_fn, in_pinned_subquery);
            if let Some(p) = &mut a.param {
                pin(p, unsafe_fn, in_pinned_subquery);
            }
        }
        Expr::Binary(b) => {
            pin(&mut b.lhs, unsafe_fn, in_pinned_subquery);
            pin(&mut b.rhs, unsafe_fn, in_pinned_subquery);
        }
        Expr::Paren(p) => pin(&mut p.expr, unsafe_fn, in_pinned_subquery),
        Expr::Unary(u) => pin(&mut u.expr, unsafe_fn, in_pinned_subquery),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pins_selectors_but_not_inside_subqueries() {
        let AtCases::Cases(c) = at_cases("sum(rate(foo[5m])) + bar", 60_000) else {
            panic!()
        };
        assert_eq!(c.len(), 5);
        assert!(c[0].0.contains("foo[5m] @ 60.000"), "{}", c[0].0);
        assert!(c[0].0.contains("bar @ 60.000"), "{}", c[0].0);
        assert_eq!(
            c.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![-600_000, 0, 12_000, 60_000, 600_000]
        );
        let AtCases::Cases(s) = at_cases("max_over_time(foo[5m:1m])", 60_000) else {
            panic!()
        };
        assert!(s[0].0.contains("] @ 60.000"), "{}", s[0].0);
        assert!(!s[0].0.contains("foo @"), "{}", s[0].0);
    }

    #[test]
    fn existing_at_is_kept_and_zero_time_uses_other_offsets() {
        let AtCases::Cases(c) = at_cases("foo @ 100", 0) else {
            panic!()
        };
        assert!(c[0].0.contains("@ 100.000"), "{}", c[0].0);
        assert_eq!(
            c.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![-1000, 0, 1000]
        );
    }

    #[test]
    fn duration_expressions_are_resolved_first() {
        let AtCases::Cases(c) = at_cases("changes(foo[26m+4m])", 60_000) else {
            panic!()
        };
        assert!(c[0].0.contains("foo[30m] @ 60.000"), "{}", c[0].0);
    }

    #[test]
    fn time_dependent_functions_are_not_rerun() {
        assert_eq!(at_cases("time() - foo", 1000), AtCases::Unsafe);
        assert_eq!(at_cases("timestamp(foo)", 1000), AtCases::Unsafe);
    }

    #[test]
    fn negative_times_print_correctly() {
        assert_eq!(fmt_secs(-1500), "-1.500");
        assert_eq!(fmt_secs(60_000), "60.000");
    }
}
