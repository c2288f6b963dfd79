//! Conversions between the wire messages and the data model.

use tidemark_model::{Labels, MatchOp, Matcher};
use tidemark_proto::prometheus::{self as pb, label_matcher::Type};

use crate::IngesterError;

/// Labels of a pushed series. The distributor validated them already; this
/// only guards the head's invariants (unique names), so a message that did
/// not come through a distributor cannot corrupt the index.
pub(crate) fn labels_from_proto(labels: &[pb::Label]) -> Result<Labels, String> {
    Labels::from_pairs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
        .map_err(|e| e.to_string())
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
