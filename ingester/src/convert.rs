//! Conversions between the wire messages and the data model.

use tidemark_model::{Labels, MatchOp, Matcher, Sample};
use tidemark_proto::ingester as ing;
use tidemark_proto::prometheus::{self as pb, label_matcher::Type};

use crate::IngesterError;

/// Labels of a pushed series. The distributor validated them already; this
/// only guards the head's invariants (unique names), so a message that did
/// not come through a distributor cannot corrupt the index.
pub(crate) fn labels_from_proto(labels: &[pb::Label]) -> Result<Labels, String> {
    Labels::from_pairs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
        .map_err(|e| e.to_string())
}

/// A pushed series in the distributors' packed form, checked: the labels
/// decode (see [`Labels::from_packed`]) and there is one value per
/// timestamp.
pub(crate) fn packed_series(s: &ing::PackedSeries) -> Result<(Labels, Vec<Sample>), String> {
    if s.timestamps.len() != s.values.len() {
        return Err(format!(
            "{} timestamps but {} values",
            s.timestamps.len(),
            s.values.len()
        ));
    }
    let labels = Labels::from_packed(&s.labels).map_err(|e| e.to_string())?;
    let samples = s
        .timestamps
        .iter()
        .zip(&s.values)
        .map(|(&t, &v)| Sample::new(t, v))
        .collect();
    Ok((labels, samples))
}

/// Names a packed series whose labels may not decode: its position in the
/// request and its labels as far as they are readable.
pub(crate) fn describe_packed(index: usize, labels: &[u8]) -> String {
    match Labels::from_packed(labels) {
        Ok(l) => l.to_string(),
        Err(_) => {
            let shown: String = String::from_utf8_lossy(labels).chars().take(120).collect();
            format!("series {index} of the request (packed labels {shown:?})")
        }
    }
}

pub(crate) fn labels_to_proto(labels: &Labels) -> Vec<pb::Label> {
    labels
        .iter()
        .map(|(name, value)| pb::Label {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

/// Prometheus notation of a series as it was sent, for error messages
/// about series that could not even be turned into [`Labels`].
pub(crate) fn describe_proto_labels(labels: &[pb::Label]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

pub(crate) fn matchers_from_proto(ms: &[pb::LabelMatcher]) -> Result<Vec<Matcher>, IngesterError> {
    ms.iter()
        .map(|m| {
            let describe = || format!("{}{}{:?}", m.name, op_str(m.r#type), m.value);
            let op = match Type::try_from(m.r#type) {
                Ok(Type::Eq) => MatchOp::Equal,
                Ok(Type::Neq) => MatchOp::NotEqual,
                Ok(Type::Re) => MatchOp::Regex,
                Ok(Type::Nre) => MatchOp::NotRegex,
                Err(_) => {
                    return Err(IngesterError::InvalidMatcher {
                        matcher: describe(),
                        reason: format!("unknown matcher type {}", m.r#type),
                    });
                }
            };
            Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| {
                IngesterError::InvalidMatcher {
                    matcher: describe(),
                    reason: e.to_string(),
                }
            })
        })
        .collect()
}

fn op_str(t: i32) -> &'static str {
    match Type::try_from(t) {
        Ok(Type::Eq) => "=",
        Ok(Type::Neq) => "!=",
        Ok(Type::Re) => "=~",
        Ok(Type::Nre) => "!~",
        Err(_) => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_convert_with_prometheus_semantics_and_bad_regex_is_named() {
        let ms = matchers_from_proto(&[pb::LabelMatcher {
            r#type: Type::Re as i32,
            name: "job".into(),
            value: "a|b".into(),
        }])
        .unwrap();
        assert!(ms[0].matches("a") && !ms[0].matches("ab"));
        let e = matchers_from_proto(&[pb::LabelMatcher {
            r#type: Type::Re as i32,
            name: "job".into(),
            value: "(".into(),
        }])
        .unwrap_err()
        .to_string();
        assert!(e.contains("job=~\"(\""), "{e}");
    }
}
