//! Query results: the four PromQL value types.

use std::fmt;

use tidemark_model::Labels;

use crate::storage::Series;

/// The result of evaluating a PromQL expression.
///
/// Native histogram samples are not represented yet; when they land they
/// will be added as an extra field of [`VectorSample`] and of series points,
/// so existing matches over these variants stay valid.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number, evaluated at `t` ms.
    Scalar { t: i64, v: f64 },
    /// A string literal, evaluated at `t` ms.
    String { t: i64, s: String },
    /// An instant vector: one sample per series at one time.
    Vector(Vec<VectorSample>),
    /// A range vector or the result of a range query: series with samples.
    Matrix(Vec<Series>),
}

impl Value {
    /// The PromQL name of the value's type, as Prometheus prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    /// Evaluation timestamp in ms (or the sample's own timestamp for `timestamp()`).
    pub t: i64,
    pub v: f64,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar { t, v } => write!(f, "scalar: {v} @[{t}]"),
            Value::String { t, s } => write!(f, "string: {s:?} @[{t}]"),
            Value::Vector(v) => {
                for s in v {
                    writeln!(f, "{} => {} @[{}]", s.labels, s.v, s.t)?;
                }
                Ok(())
            }
            Value::Matrix(m) => {
                for s in m {
                    write!(f, "{} =>", s.labels)?;
                    for p in &s.samples {
                        write!(f, " {} @[{}]", p.v, p.t)?;
                    }
                    writeln!(f)?;
                }
                Ok(())
            }
        }
    }
}
