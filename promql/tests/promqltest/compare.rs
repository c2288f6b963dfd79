//! Comparison of a query result with an eval's expectations, following
//! `compareResult`, `checkAnnotations` and `checkExpectedFailure` of
//! Prometheus's `promqltest/test.go`.

use tidemark_model::Labels;
use tidemark_promql::{QueryResult, Value, VectorSample};

use super::script::{Eval, ExpectedSeries};
use super::series::SeqValue;

/// Relative tolerance for float comparison (upstream's `defaultEpsilon`).
pub(crate) const EPSILON: f64 = 1e-6;

/// Prometheus's `almost.Equal`: relative comparison, NaN equal to NaN.
pub(crate) fn almost_equal(a: f64, b: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

fn find<'a>(ev: &'a Eval, labels: &Labels) -> Option<&'a ExpectedSeries> {
    ev.expected.iter().find(|e| &e.labels == labels)
}

/// Checks warnings and infos against `eval_warn`/`eval_info`, `expect
/// warn|info [msg|regex]`, `expect no_warn|no_info`.
pub(crate) fn check_annotations(ev: &Eval, res: &QueryResult) -> Result<(), String> {
    if ev.warn && res.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if ev.info && res.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    check_kind("warn", &ev.expect_warn, &res.warnings)?;
    check_kind("info", &ev.expect_info, &res.infos)?;
    if ev.no_warn && !res.warnings.is_empty() {
        return Err(format!(
            "unexpected warning annotations: {:?}",
            res.warnings
        ));
    }
    if ev.no_info && !res.infos.is_empty() {
        return Err(format!("unexpected info annotations: {:?}", res.infos));
    }
    Ok(())
}

fn check_kind(
    kind: &str,
    expected: &[super::script::MessageMatch],
    actual: &[String],
) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!("expected {kind} annotations but none were found"));
    }
    for e in expected {
        if !actual.iter().any(|a| e.matches(a)) {
            return Err(format!(
                "expected {kind} annotation matching {e}, found: {actual:?}"
            ));
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.matches(a)) {
            return Err(format!("unexpected {kind} annotation {a:?}"));
        }
    }
    Ok(())
}

/// Checks an error against the expected failure message, if any.
pub(crate) fn check_failure(ev: &Eval, err: &str) -> Result<(), String> {
    match &ev.fail_match {
        Some(m) if !m.matches(err) => Err(format!("expected error matching {m}, got: {err}")),
        _ => Ok(()),
    }
}

/// Compares a query value with the expected result.
pub(crate) fn compare_value(ev: &Eval, value: &Value) -> Result<(), String> {
    match value {
        Value::Matrix(m) => {
            if ev.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if ev.expect_scalar.is_some() {
                return Err("expected scalar result, but got a matrix".into());
            }
            for w in m.windows(2) {
                if w[0].labels > w[1].labels {
                    return Err(format!(
                        "matrix not sorted by labels: {} before {}",
                        w[0].labels, w[1].labels
                    ));
                }
            }
            let (start, end, step) = ev.matrix_frame();
            for s in m {
                let exp = find(ev, &s.labels).ok_or_else(|| {
                    format!(
                        "unexpected metric {} in result, has {}",
                        s.labels,
                        fmt_points(&s.samples)
                    )
                })?;
                let mut want = Vec::new();
                for (i, v) in exp.values.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end {
                        return Err(format!(
                            "expected {} points for {}, but the query range cannot return this many",
                            exp.values.len(),
                            exp.labels
                        ));
                    }
                    if let SeqValue::Value(f) = v {
                        want.push((t, *f));
                    }
                }
                if want.len() != s.samples.len() {
                    return Err(format!(
                        "expected {} float points for {}, got {}",
                        want.len(),
                        exp.labels,
                        fmt_points(&s.samples)
                    ));
                }
                for (i, ((t, f), got)) in want.iter().zip(&s.samples).enumerate() {
                    if *t != got.t {
                        return Err(format!(
                            "point {i} of {} has timestamp {}, expected {t} (result has {})",
                            exp.labels,
                            got.t,
                            fmt_points(&s.samples)
                        ));
                    }
                    if !almost_equal(got.v, *f) {
                        return Err(format!(
                            "point {i} (t={t}) of {}: expected {}, got {} (result has {})",
                            exp.labels,
                            f,
                            got.v,
                            fmt_points(&s.samples)
                        ));
                    }
                }
            }
            for e in &ev.expected {
                if !m.iter().any(|s| s.labels == e.labels) {
                    return Err(format!("expected metric {} not found", e.labels));
                }
            }
            Ok(())
        }
        Value::Vector(v) => compare_vector(ev, v),
        Value::Scalar { v, .. } => {
            let Some(want) = ev.expect_scalar else {
                return Err(format!(
                    "expected vector or matrix result, but got scalar {v}"
                ));
            };
            if almost_equal(want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want} but got {v}"))
            }
        }
        Value::String { s, .. } => {
            let want = ev.expected_string.as_deref().unwrap_or("");
            if want == s {
                Ok(())
            } else {
                Err(format!("expected string {want:?} but got {s:?}"))
            }
        }
    }
}

/// Compares an instant vector (also used for the range re-check's middle step).
pub(crate) fn compare_vector(ev: &Eval, v: &[VectorSample]) -> Result<(), String> {
    if ev.expect_scalar.is_some() {
        return Err(format!(
            "expected scalar result, but got vector {}",
            fmt_vector(v)
        ));
    }
    for (pos, s) in v.iter().enumerate() {
        let exp = find(ev, &s.labels).ok_or_else(|| {
            format!(
                "unexpected metric {} in result, has value {}",
                s.labels, s.v
            )
        })?;
        if ev.ordered && exp.pos != pos + 1 {
            return Err(format!(
                "expected metric {} at position {} but was at {}",
                s.labels,
                exp.pos,
                pos + 1
            ));
        }
        let want = match exp.values.first() {
            Some(SeqValue::Value(f)) => *f,
            _ => {
                return Err(format!(
                    "expected no value for {} but got {}",
                    s.labels, s.v
                ));
            }
        };
        if !almost_equal(want, s.v) {
            return Err(format!("expected {want} for {} but got {}", s.labels, s.v));
        }
    }
    for e in &ev.expected {
        if !v.iter().any(|s| s.labels == e.labels) {
            return Err(format!(
                "expected metric {} not found (result: {})",
                e.labels,
                fmt_vector(v)
            ));
        }
    }
    Ok(())
}

fn fmt_points(p: &[tidemark_model::Sample]) -> String {
    let pts: Vec<String> = p
        .iter()
        .take(12)
        .map(|s| format!("{}@{}", s.v, s.t))
        .collect();
    let more = if p.len() > 12 { " ..." } else { "" };
    format!("[{}{more}]", pts.join(" "))
}

/// A short rendering of a vector for failure messages.
pub(crate) fn fmt_vector(v: &[VectorSample]) -> String {
    let items: Vec<String> = v
        .iter()
        .take(8)
        .map(|s| format!("{} {}", s.labels, s.v))
        .collect();
    let more = if v.len() > 8 { ", ..." } else { "" };
    format!("[{}{more}]", items.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn almost_equal_is_relative_and_nan_aware() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(0.0, 1e-300));
        assert!(almost_equal(f64::INFINITY, f64::INFINITY));
        assert!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY));
    }
}
