//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query`,
//! `/api/v1/parse_query`.

use std::time::Duration;

use http::HeaderMap;
use promql_parser::parser::value::ValueType;
use tidemark_model::Matcher;
use tidemark_promql::{Engine, QueryResult, Queryable, SelectHints, Series, StorageError};

use super::ApiState;
use super::params::Params;
use super::response::{Data, Success};
use crate::QuerierError;
use crate::fanout::TenantReader;

/// Prometheus's cap on points per series of a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Lets the engine read through a [`TenantReader`].
struct AsQueryable<'a>(&'a dyn TenantReader);

#[async_trait::async_trait]
impl Queryable for AsQueryable<'_> {
    async fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        self.0.select(hints, matchers).await
    }
}

pub(crate) async fn instant(
    st: &ApiState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    let reader = st.reader(headers)?;
    let t = p.time_or("time", st.now_ms())?;
    let (engine, timeout) = st.engine(p)?;
    let query = p.get("query");
    let storage = AsQueryable(reader.as_ref());
    let run = engine.instant_query(&storage, query, t);
    let res = with_timeout(timeout, run).await?;
    Ok(query_success(res))
}

pub(crate) async fn range(
    st: &ApiState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    let reader = st.reader(headers)?;
    let start = p.time("start")?;
    let end = p.time("end")?;
    if end < start {
        return Err(QuerierError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    let step = parse_step(p)?;
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(QuerierError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let (engine, timeout) = st.engine(p)?;
    let query = p.get("query");
    check_range_expr(query, start, end, step)?;
    let storage = AsQueryable(reader.as_ref());
    let run = engine.range_query(&storage, query, start, end, step);
    let res = with_timeout(timeout, run).await?;
    Ok(query_success(res))
}

fn parse_step(p: &Params) -> Result<i64, QuerierError> {
    let step = p
        .duration_opt("step")?
        .ok_or_else(|| QuerierError::param("step", "cannot parse \"\" to a valid duration"))?;
    if step <= 0 {
        return Err(QuerierError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    Ok(step)
}

/// Prometheus refuses, as bad data, range queries whose expression cannot
/// give a matrix of instant values.
fn check_range_expr(query: &str, start: i64, end: i64, step: i64) -> Result<(), QuerierError> {
    let text = Engine::resolve_duration_expressions(query, start, end, step);
    // Text the parser cannot read as is (range modifiers) is left to the engine.
    let Ok(ast) = Engine::parse(&text) else {
        if text == query {
            Engine::parse(query)?;
        }
        return Ok(());
    };
    let name = match ast.value_type() {
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
        _ => return Ok(()),
    };
    Err(QuerierError::param(
        "query",
        format!(
            "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
        ),
    ))
}

/// Runs a query under the request's timeout; the engine checks the same
/// deadline itself, this only guards against a storage that never answers.
async fn with_timeout(
    timeout: Duration,
    run: impl Future<Output = Result<QueryResult, tidemark_promql::PromqlError>>,
) -> Result<QueryResult, QuerierError> {
    match tokio::time::timeout(timeout + Duration::from_millis(50), run).await {
        Ok(r) => r.map_err(QuerierError::from),
        Err(_) => Err(QuerierError::Timeout {
            phase: "query execution",
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

fn query_success(res: QueryResult) -> Success {
    Success {
        data: Data::Query(res.value),
        warnings: res.warnings,
        infos: res.infos,
    }
}

/// `/api/v1/format_query`: the query pretty-printed as Prometheus prints it.
pub(crate) async fn format(
    _st: &ApiState,
    _headers: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    let expr = Engine::parse(p.get("query"))?;
    Ok(Success::json(serde_json::Value::String(expr.prettify())))
}

/// `/api/v1/parse_query`: the syntax tree as JSON, in the shape of
/// Prometheus's `translateAST` (promql-parser's serialization).
pub(crate) async fn parse(
    _st: &ApiState,
    _headers: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    let expr = Engine::parse(p.get("query"))?;
    let v = serde_json::to_value(&expr)
        .map_err(|e| QuerierError::Internal(format!("cannot serialize the syntax tree: {e}")))?;
    Ok(Success::json(v))
}
