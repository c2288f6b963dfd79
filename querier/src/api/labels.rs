//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values`.

use std::collections::BTreeSet;

use http::HeaderMap;
use tidemark_model::{Labels, is_valid_label_name};
use tidemark_promql::SelectHints;

use super::ApiState;
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params};
use super::response::{Data, Success};
use crate::QuerierError;
use crate::fanout::LabelsRequest;

/// The warning Prometheus adds when `limit` cut the answer.
const TRUNCATED: &str = "results truncated due to limit";

/// `start` and `end`, with Prometheus's defaults (the whole time range) or,
/// when `querier.default_metadata_range` is set, that much before `end`.
fn range(st: &ApiState, p: &Params) -> Result<(i64, i64), QuerierError> {
    let range_ms = st.cfg.default_metadata_range.as_millis_i64();
    let end = if p.get("end").is_empty() && range_ms > 0 {
        st.now_ms()
    } else {
        p.time_or("end", MAX_TIME_MS)?
    };
    let start = if range_ms > 0 {
        p.time_or("start", end.saturating_sub(range_ms))?
    } else {
        p.time_or("start", MIN_TIME_MS)?
    };
    Ok((start, end))
}

fn truncate<T>(items: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        warnings.push(TRUNCATED.to_string());
    }
}

pub(crate) async fn series(
    st: &ApiState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    let reader = st.reader(headers)?;
    let limit = p.limit()?;
    let (start, end) = range(st, p)?;
    let sets = p.matcher_sets()?;
    if sets.is_empty() {
        return Err(QuerierError::BadData(
            "no match[] parameter provided".into(),
        ));
    }
    let hints = SelectHints {
        start,
        end,
        func: Some("series".into()),
        ..SelectHints::default()
    };
    let mut all: BTreeSet<Labels> = BTreeSet::new();
    for set in &sets {
        for s in reader.select(&hints, set).await? {
            all.insert(s.labels);
        }
    }
    let mut series: Vec<Labels> = all.into_iter().collect();
    let mut ok = Success::new(Data::Series(Vec::new()));
    truncate(&mut series, limit, &mut ok.warnings);
    ok.data = Data::Series(series);
    Ok(ok)
}

pub(crate) async fn label_names(
    st: &ApiState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Success, QuerierError> {
    let reader = st.reader(headers)?;
    let limit = p.limit()?;
    let (start, end) = range(st, p)?;
    let mut sets = p.matcher_sets()?;
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let mut names = BTreeSet::new();
    for matchers in sets {
        let req = LabelsRequest {
            start,
            end,
            matchers,
            limit,
        };
        names.extend(reader.label_names(&req).await?);
    }
    let mut names: Vec<String> = names.into_iter().collect();
    let mut ok = Success::new(Data::Strings(Vec::new()));
    truncate(&mut names, limit, &mut ok.warnings);
    ok.data = Data::Strings(names);
    Ok(ok)
}

pub(crate) async fn label_values(
    st: &ApiState,
    headers: &HeaderMap,
    p: &Params,
    name: &str,
) -> Result<Success, QuerierError> {
    let reader = st.reader(headers)?;
    if !is_valid_label_name(name) {
        return Err(QuerierError::BadData(format!(
            "invalid label name: {name:?}"
        )));
    }
    let limit = p.limit()?;
    let (start, end) = range(st, p)?;
    let mut sets = p.matcher_sets()?;
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let mut values = BTreeSet::new();
    for matchers in sets {
        let req = LabelsRequest {
            start,
            end,
            matchers,
            limit,
        };
        values.extend(reader.label_values(name, &req).await?);
    }
    let mut values: Vec<String> = values.into_iter().collect();
    let mut ok = Success::new(Data::Strings(Vec::new()));
    truncate(&mut values, limit, &mut ok.warnings);
    ok.data = Data::Strings(values);
    Ok(ok)
}
