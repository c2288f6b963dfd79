//! The Prometheus API envelope: `{"status":"success","data":..}` or
//! `{"status":"error","errorType":..,"error":..}`, with optional
//! `warnings` and `infos`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tidemark_model::Labels;
use tidemark_promql::Value;
use tidemark_tsdb::SeriesExemplars;

use super::json::Json;
use crate::QuerierError;

/// The `data` of a successful answer.
#[derive(Debug)]
pub(crate) enum Data {
    /// A query result: `{"resultType":..,"result":..}`.
    Query(Value),
    /// A list of strings (label names, label values).
    Strings(Vec<String>),
    /// A list of label sets (`/api/v1/series`).
    Series(Vec<Labels>),
    /// Series with their exemplars (`/api/v1/query_exemplars`).
    Exemplars(Vec<SeriesExemplars>),
    /// Anything else, already as JSON.
    Json(serde_json::Value),
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Success {
    pub(crate) data: Data,
    pub(crate) warnings: Vec<String>,
    pub(crate) infos: Vec<String>,
}

impl Success {
    pub(crate) fn new(data: Data) -> Self {
        Success {
            data,
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }

    pub(crate) fn json(v: serde_json::Value) -> Self {
        Success::new(Data::Json(v))
    }

    /// The body Prometheus would send.
    pub(crate) fn to_json(&self) -> String {
        let mut j = Json::new();
        j.raw(r#"{"status":"success","data":"#);
        match &self.data {
            Data::Query(v) => write_query_data(&mut j, v),
            Data::Strings(s) => {
                j.strings(s.iter().map(String::as_str));
            }
            Data::Series(series) => {
                j.array(series, |j, l| {
                    j.labels(l);
                });
            }
            Data::Exemplars(series) => write_exemplars(&mut j, series),
            Data::Json(v) => {
                j.value(v);
            }
        }
        if !self.warnings.is_empty() {
            j.raw(r#","warnings":"#)
                .strings(self.warnings.iter().map(String::as_str));
        }
        if !self.infos.is_empty() {
            j.raw(r#","infos":"#)
                .strings(self.infos.iter().map(String::as_str));
        }
        j.raw("}");
        j.into_string()
    }
}

/// As Prometheus: `[{"seriesLabels":{..},"exemplars":[{"labels":{..},
/// "value":"..","timestamp":1.5}]}]`.
fn write_exemplars(j: &mut Json, series: &[SeriesExemplars]) {
    j.array(series, |j, s| {
        j.raw(r#"{"seriesLabels":"#)
            .labels(&s.labels)
            .raw(r#","exemplars":"#)
            .array(&s.exemplars, |j, e| {
                j.raw(r#"{"labels":"#)
                    .labels(&e.labels)
                    .raw(r#","value":"#)
                    .float(e.v)
                    .raw(r#","timestamp":"#)
                    .ts(e.t)
                    .raw("}");
            })
            .raw("}");
    });
}

fn write_query_data(j: &mut Json, v: &Value) {
    j.raw(r#"{"resultType":"#)
        .str(v.type_name())
        .raw(r#","result":"#);
    match v {
        Value::Scalar { t, v } => {
            j.point(*t, *v);
        }
        Value::String { t, s } => {
            j.raw("[").ts(*t).raw(",").str(s).raw("]");
        }
        Value::Vector(samples) => {
            j.array(samples, |j, s| {
                j.raw(r#"{"metric":"#)
                    .labels(&s.labels)
                    .raw(r#","value":"#)
                    .point(s.t, s.v)
                    .raw("}");
            });
        }
        Value::Matrix(series) => {
            j.array(series, |j, s| {
                j.raw(r#"{"metric":"#)
                    .labels(&s.labels)
                    .raw(r#","values":"#)
                    .array(&s.samples, |j, p| {
                        j.point(p.t, p.v);
                    })
                    .raw("}");
            });
        }
    }
    j.raw("}");
}

/// The body of an error answer.
pub(crate) fn error_json(e: &QuerierError) -> (StatusCode, String) {
    let (status, ty) = e.prometheus_error();
    let mut j = Json::new();
    j.raw(r#"{"status":"error","errorType":"#)
        .str(ty)
        .raw(r#","error":"#)
        .str(&e.to_string())
        .raw("}");
    (status, j.into_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl IntoResponse for Success {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, self.to_json())
    }
}

impl IntoResponse for QuerierError {
    fn into_response(self) -> Response {
        let (status, body) = error_json(&self);
        json_response(status, body)
    }
}
