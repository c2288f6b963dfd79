//! The query engine: parse, fetch, evaluate, with limits.

use std::time::{Duration, Instant};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};
use tokio_util::sync::CancellationToken;

use crate::durexpr;
use crate::error::PromqlError;
use crate::eval::{Evaluator, QueryCtx};
use crate::prepare;
use crate::storage::Queryable;
use crate::value::Value;

/// Engine settings. The defaults are Prometheus's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOpts {
    /// How far back an instant selector looks for the latest sample, ms
    /// (Prometheus `--query.lookback-delta`, 5m). The window is left-open:
    /// `(t - lookback, t]`.
    pub lookback_delta_ms: i64,
    /// Maximum number of samples a single query may hold in memory at once
    /// (Prometheus `--query.max-samples`, 50,000,000). Counts the samples
    /// fetched from storage plus those produced by evaluation.
    pub max_samples: usize,
    /// Maximum wall-clock time of one query (Prometheus `--query.timeout`, 2m).
    pub timeout: Duration,
    /// Resolution of subqueries written without one (`x[1h:]`), ms: the
    /// global evaluation interval in Prometheus, 1m by default.
    pub default_subquery_step_ms: i64,
}

impl Default for EngineOpts {
    fn default() -> Self {
        EngineOpts {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
        }
    }
}

/// Evaluates PromQL queries. Cheap to share: it holds only its settings.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOpts,
}

/// What a query returns: its value plus Prometheus-style annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    /// Warnings (Prometheus `warnings`): the result may be wrong or partial.
    pub warnings: Vec<String>,
    /// Infos (Prometheus `infos`): hints that the query may not mean what it says.
    pub infos: Vec<String>,
}

impl Engine {
    pub fn new(opts: EngineOpts) -> Engine {
        Engine { opts }
    }

    pub fn opts(&self) -> &EngineOpts {
        &self.opts
    }

    /// Instant query at `t` ms.
    pub async fn instant_query(
        &self,
        q: &dyn Queryable,
        expr: &str,
        t: i64,
    ) -> Result<QueryResult, PromqlError> {
        self.instant_query_with_cancel(q, expr, t, &CancellationToken::new())
            .await
    }

    /// Instant query that stops with [`PromqlError::Canceled`] as soon as
    /// `cancel` fires (e.g. when the HTTP client goes away).
    pub async fn instant_query_with_cancel(
        &self,
        q: &dyn Queryable,
        expr: &str,
        t: i64,
        cancel: &CancellationToken,
    ) -> Result<QueryResult, PromqlError> {
        self.run(q, expr, t, t, 0, cancel).await
    }

    /// Range query; the result value is always a Matrix (or an error).
    pub async fn range_query(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, PromqlError> {
        self.range_query_with_cancel(q, expr, start, end, step, &CancellationToken::new())
            .await
    }

    /// Range query that stops with [`PromqlError::Canceled`] as soon as
    /// `cancel` fires.
    pub async fn range_query_with_cancel(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancellationToken,
    ) -> Result<QueryResult, PromqlError> {
        if step <= 0 {
            return Err(PromqlError::exec(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end < start {
            return Err(PromqlError::exec(
                "end timestamp must not be before start time",
            ));
        }
        self.run(q, expr, start, end, step, cancel).await
    }

    /// Parses a query the way the engine will, for callers that validate
    /// before running (the HTTP API's `parse_query`, rule loading).
    pub fn parse(expr: &str) -> Result<Expr, PromqlError> {
        parser::parse(expr).map_err(|msg| PromqlError::Parse {
            msg: crate::parse_error::describe(expr, &msg),
        })
    }

    /// Replaces Prometheus 3 duration expressions (`x[5m+1m]`,
    /// `offset (2 * step())`, `step()`, `range()`, `min_of`, `max_of`) by plain
    /// durations for a query over `[start, end]` with `step` (0 for an
    /// instant query), since the parser does not know them. The engine does
    /// this itself; tools that parse query text separately (e.g. to add an
    /// `@` modifier) call it first.
    pub fn resolve_duration_expressions(
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> std::borrow::Cow<'_, str> {
        let rw = durexpr::rewrite(
            expr,
            durexpr::DurationCtx {
                step_ms: step,
                range_ms: end - start,
            },
        );
        match rw.text {
            // Range modifiers cannot be carried through the parser's AST, so
            // text with them is returned unchanged.
            Some(s) if rw.modes.is_empty() => std::borrow::Cow::Owned(s),
            _ => std::borrow::Cow::Borrowed(expr),
        }
    }

    async fn run(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancellationToken,
    ) -> Result<QueryResult, PromqlError> {
        let rw = durexpr::rewrite(
            expr,
            durexpr::DurationCtx {
                step_ms: step,
                range_ms: end - start,
            },
        );
        let text = rw.text.unwrap_or_else(|| expr.to_string());
        let ast = Self::parse(&text)?;
        let range_modes = prepare::assign_range_modes(&ast, &rw.modes);
        let is_range = step > 0;
        if is_range {
            let vt = ast.value_type();
            if matches!(vt, ValueType::Matrix | ValueType::String) {
                let name = if vt == ValueType::Matrix {
                    "range vector"
                } else {
                    "string"
                };
                return Err(PromqlError::exec(format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                )));
            }
        }
        let ctx = QueryCtx {
            start,
            end,
            interval: if is_range { step } else { 1 },
            is_range,
            lookback: self.opts.lookback_delta_ms,
            subquery_step: self.opts.default_subquery_step_ms.max(1),
            max_samples: self.opts.max_samples,
            deadline: Instant::now() + self.opts.timeout,
            timeout: self.opts.timeout,
            cancel: cancel.clone(),
            query: text,
            range_modes,
        };
        let plan = prepare::plan(&ast, &ctx)?;
        let fetched = prepare::fetch(q, plan, &ctx).await?;
        let mut ev = Evaluator::new(&ctx, &fetched);
        let value = ev.run(&ast)?;
        let (warnings, infos) = ev.into_annotations();
        Ok(QueryResult {
            value,
            warnings,
            infos,
        })
    }
}
