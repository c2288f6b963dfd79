//! Validation of pushed series, one series at a time.
//!
//! Rules, each with the reason label used in
//! `tidemark_discarded_samples_total{reason}` and in messages:
//!
//! - labels with an empty value are dropped (an empty value is an absent
//!   label, as in Prometheus's TSDB);
//! - labels are sorted by name when they are not (as Mimir does: remote
//!   write 1.0 says senders MUST sort, but some do not, and sorting costs
//!   nothing when they already are);
//! - `duplicate_label_names`: a name twice;
//! - `missing_metric_name`, `metric_name_invalid` (`[a-zA-Z_:][a-zA-Z0-9_:]*`);
//! - `label_name_invalid` (`[a-zA-Z_][a-zA-Z0-9_]*`);
//! - `max_label_names_per_series`, `label_name_too_long`,
//!   `label_value_too_long`: the tenant's limits;
//! - `too_far_in_future` (`creation_grace_period`) and `sample_too_old`
//!   (`reject_old_samples_max_age`): per sample; the series' other samples
//!   are kept;
//! - `native_histogram_unsupported`: histograms are refused until the
//!   TSDB stores them.
//!
//! Exemplars go to the ingesters with their series (a series may carry
//! exemplars only, as Prometheus sends them). An exemplar whose labels are
//! invalid or longer than 128 characters together is dropped and counted,
//! never failing the request, as Prometheus does.
//!
//! Sample values are never looked at: NaN and the StaleNaN bit pattern
//! pass through bit for bit.

use tidemark_model::{
    EXEMPLAR_MAX_LABEL_CHARS, Exemplar, Labels, METRIC_NAME, is_valid_label_name,
    is_valid_metric_name,
};
use tidemark_proto::ingester as ing;
use tidemark_proto::prometheus as pb;

use crate::limits::Limits;

/// One refused series (or refused samples of one series).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The series in Prometheus notation (long values shortened).
    pub series: String,
    /// The rule, as in `tidemark_discarded_samples_total{reason}`.
    pub reason: &'static str,
    /// What is wrong, naming the limit setting where one applies.
    pub message: String,
    /// Samples (and histograms) refused.
    pub samples: u64,
}

/// A series as a request carried it, its strings borrowed from the
/// request (see [`crate::decode`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSeries<'a> {
    /// As sent: maybe unsorted, maybe with empty values.
    pub labels: Vec<(&'a str, &'a str)>,
    pub samples: Vec<pb::Sample>,
    /// Native histogram samples, only counted: refused until stored.
    pub histograms: u64,
    pub exemplars: Vec<RawExemplar<'a>>,
}

/// An exemplar as a request carried it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawExemplar<'a> {
    pub labels: Vec<(&'a str, &'a str)>,
    pub value: f64,
    pub timestamp: i64,
}

impl<'a> RawSeries<'a> {
    /// Borrows a remote write 1.0 series (the scrapers' gRPC push).
    pub fn from_proto(ts: &'a pb::TimeSeries) -> Self {
        RawSeries {
            labels: ts
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect(),
            samples: ts.samples.clone(),
            histograms: ts.histograms.len() as u64,
            exemplars: ts
                .exemplars
                .iter()
                .map(|e| RawExemplar {
                    labels: e
                        .labels
                        .iter()
                        .map(|l| (l.name.as_str(), l.value.as_str()))
                        .collect(),
                    value: e.value,
                    timestamp: e.timestamp,
                })
                .collect(),
        }
    }

    /// Samples and histograms: what the request counts as received.
    pub fn received(&self) -> u64 {
        self.samples.len() as u64 + self.histograms
    }
}

/// A series that passed validation, ready to be sharded.
#[derive(Debug, Clone)]
pub struct ValidSeries {
    pub labels: Labels,
    /// What the ingesters receive: the labels packed, the accepted samples
    /// only.
    pub packed: ing::PackedSeries,
}

/// The outcome of validating one request.
#[derive(Debug, Default)]
pub struct Validated {
    pub series: Vec<ValidSeries>,
    pub refusals: Vec<Refusal>,
    /// Samples in `series`.
    pub samples: u64,
    /// Exemplars in `series`.
    pub exemplars: u64,
    /// Exemplars dropped for bad labels (not refusals: they fail nothing).
    pub exemplars_dropped: u64,
}

/// Shown value length in messages; longer values are cut with "...".
const SHOWN_VALUE: usize = 64;

/// The series in Prometheus notation, for messages.
pub fn describe(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let name = labels.iter().find(|l| l.0 == METRIC_NAME);
    if let Some(n) = name {
        out.push_str(&shorten(n.1));
        if labels.len() == 1 {
            // Like Prometheus: a bare metric name has no braces.
            return out;
        }
    }
    out.push('{');
    let mut first = true;
    for (n, v) in labels.iter().filter(|l| l.0 != METRIC_NAME) {
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&shorten(n));
        out.push('=');
        out.push_str(&format!("{:?}", shorten(v)));
    }
    out.push('}');
    out
}

fn shorten(s: &str) -> String {
    if s.len() <= SHOWN_VALUE {
        return s.to_string();
    }
    let mut end = SHOWN_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Checks the labels of one series; `Err((reason, message))` on the first
/// broken rule. Sorts and cleans `labels` in place.
fn check_labels(
    labels: &mut Vec<(&str, &str)>,
    limits: &Limits,
) -> Result<(), (&'static str, String)> {
    labels.retain(|l| !l.1.is_empty());
    if !labels.is_sorted_by(|a, b| a.0 <= b.0) {
        labels.sort_by(|a, b| a.0.cmp(b.0));
    }
    if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err((
            "duplicate_label_names",
            format!("label name {:?} appears more than once", shorten(w[0].0)),
        ));
    }
    match labels.iter().find(|l| l.0 == METRIC_NAME) {
        None => {
            return Err((
                "missing_metric_name",
                "the series has no metric name (__name__ label)".to_string(),
            ));
        }
        Some(n) if !is_valid_metric_name(n.1) => {
            return Err((
                "metric_name_invalid",
                format!(
                    "metric name {:?} is not valid: it must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                    shorten(n.1)
                ),
            ));
        }
        Some(_) => {}
    }
    if labels.len() > limits.max_labels_per_series as usize {
        return Err((
            "max_label_names_per_series",
            format!(
                "the series has {} labels, more than the limit of {} (limits.max_labels_per_series)",
                labels.len(),
                limits.max_labels_per_series
            ),
        ));
    }
    for &(name, value) in labels.iter() {
        if !is_valid_label_name(name) {
            return Err((
                "label_name_invalid",
                format!(
                    "label name {:?} is not valid: it must match [a-zA-Z_][a-zA-Z0-9_]*",
                    shorten(name)
                ),
            ));
        }
        if name.len() > limits.max_label_name_length as usize {
            return Err((
                "label_name_too_long",
                format!(
                    "label name {:?} is {} bytes long, more than the limit of {} (limits.max_label_name_length)",
                    shorten(name),
                    name.len(),
                    limits.max_label_name_length
                ),
            ));
        }
        if value.len() > limits.max_label_value_length as usize {
            return Err((
                "label_value_too_long",
                format!(
                    "the value of label {:?} is {} bytes long, more than the limit of {} (limits.max_label_value_length)",
                    shorten(name),
                    value.len(),
                    limits.max_label_value_length
                ),
            ));
        }
    }
    Ok(())
}

/// Validates every series of a request against the tenant's `limits` at
/// wall-clock time `now_ms`.
pub fn validate(timeseries: Vec<RawSeries<'_>>, limits: &Limits, now_ms: i64) -> Validated {
    let mut out = Validated {
        series: Vec::with_capacity(timeseries.len()),
        ..Validated::default()
    };
    let max_t = now_ms.saturating_add(limits.creation_grace_period.as_millis_i64());
    let min_t = if limits.reject_old_samples_max_age.is_zero() {
        i64::MIN
    } else {
        now_ms.saturating_sub(limits.reject_old_samples_max_age.as_millis_i64())
    };
    for mut ts in timeseries {
        if let Err((reason, message)) = check_labels(&mut ts.labels, limits) {
            out.refusals.push(Refusal {
                series: describe(&ts.labels),
                reason,
                message,
                samples: ts.received(),
            });
            continue;
        }
        if ts.histograms > 0 {
            out.refusals.push(Refusal {
                series: describe(&ts.labels),
                reason: "native_histogram_unsupported",
                message: format!(
                    "{} native histogram samples refused: native histograms are not stored yet",
                    ts.histograms
                ),
                samples: ts.histograms,
            });
        }
        if ts
            .samples
            .iter()
            .any(|s| s.timestamp > max_t || s.timestamp < min_t)
        {
            let (mut future, mut old) = (Vec::new(), Vec::new());
            ts.samples.retain(|s| {
                if s.timestamp > max_t {
                    future.push(s.timestamp);
                    false
                } else if s.timestamp < min_t {
                    old.push(s.timestamp);
                    false
                } else {
                    true
                }
            });
            if let Some(t) = future.first() {
                out.refusals.push(Refusal {
                    series: describe(&ts.labels),
                    reason: "too_far_in_future",
                    message: format!(
                        "{} samples refused, the first at timestamp {t} ms, more than {} ahead of the distributor's clock (limits.creation_grace_period)",
                        future.len(),
                        limits.creation_grace_period
                    ),
                    samples: future.len() as u64,
                });
            }
            if let Some(t) = old.first() {
                out.refusals.push(Refusal {
                    series: describe(&ts.labels),
                    reason: "sample_too_old",
                    message: format!(
                        "{} samples refused, the first at timestamp {t} ms, older than {} (limits.reject_old_samples_max_age)",
                        old.len(),
                        limits.reject_old_samples_max_age
                    ),
                    samples: old.len() as u64,
                });
            }
        }
        let exemplars = valid_exemplars(&ts.exemplars, &mut out.exemplars_dropped);
        if ts.samples.is_empty() && exemplars.is_empty() {
            // Nothing to write: refused above, or a series without samples.
            continue;
        }
        let labels = Labels::from_sorted_pairs(ts.labels.iter().copied());
        out.samples += ts.samples.len() as u64;
        out.exemplars += exemplars.len() as u64;
        let packed = ing::PackedSeries {
            // Shares the label set's buffer (a reference count, no copy).
            labels: bytes::Bytes::from_owner(labels.clone()),
            timestamps: ts.samples.iter().map(|s| s.timestamp).collect(),
            values: ts.samples.iter().map(|s| s.value).collect(),
            exemplars,
        };
        out.series.push(ValidSeries { labels, packed });
    }
    out
}

/// The exemplars with valid labels, packed; the others counted in `dropped`.
fn valid_exemplars(raw: &[RawExemplar<'_>], dropped: &mut u64) -> Vec<ing::PackedExemplar> {
    let mut out = Vec::with_capacity(raw.len());
    for e in raw {
        let names_ok = e.labels.iter().all(|(n, _)| is_valid_label_name(n));
        let exemplar = Labels::from_pairs(e.labels.iter().copied()).map(|labels| Exemplar {
            labels,
            t: e.timestamp,
            v: e.value,
        });
        match exemplar {
            Ok(x) if names_ok && x.label_chars() <= EXEMPLAR_MAX_LABEL_CHARS => {
                out.push(ing::PackedExemplar {
                    labels: bytes::Bytes::from_owner(x.labels),
                    timestamp_ms: x.t,
                    value: x.v,
                });
            }
            _ => *dropped += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_model::STALE_NAN_BITS;

    fn ts<'a>(pairs: &[(&'a str, &'a str)], samples: &[(i64, f64)]) -> RawSeries<'a> {
        RawSeries {
            labels: pairs.to_vec(),
            samples: samples
                .iter()
                .map(|&(t, v)| pb::Sample {
                    timestamp: t,
                    value: v,
                })
                .collect(),
            ..Default::default()
        }
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn each_rule_names_the_series_and_the_reason() {
        let limits = Limits {
            max_labels_per_series: 3,
            max_label_value_length: 10,
            ..Limits::default()
        };
        let cases: Vec<(RawSeries, &str, &str)> = vec![
            (
                ts(&[("job", "a")], &[(NOW, 1.0)]),
                "missing_metric_name",
                "{job=\"a\"}",
            ),
            (
                ts(&[("__name__", "1up")], &[(NOW, 1.0)]),
                "metric_name_invalid",
                "1up",
            ),
            (
                ts(&[("__name__", "up"), ("a-b", "x")], &[(NOW, 1.0)]),
                "label_name_invalid",
                "up{a-b=\"x\"}",
            ),
            (
                ts(&[("__name__", "up"), ("a", "1"), ("a", "2")], &[(NOW, 1.0)]),
                "duplicate_label_names",
                "up{a=\"1\", a=\"2\"}",
            ),
            (
                ts(
                    &[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3")],
                    &[(NOW, 1.0)],
                ),
                "max_label_names_per_series",
                "up{a=\"1\", b=\"2\", c=\"3\"}",
            ),
            (
                ts(&[("__name__", "up"), ("a", "01234567890")], &[(NOW, 1.0)]),
                "label_value_too_long",
                "up{a=\"01234567890\"}",
            ),
        ];
        for (series, reason, shown) in cases {
            let v = validate(vec![series], &limits, NOW);
            assert!(v.series.is_empty(), "{reason}");
            assert_eq!(v.refusals.len(), 1, "{reason}");
            assert_eq!(v.refusals[0].reason, reason);
            assert_eq!(v.refusals[0].series, shown);
            assert_eq!(v.refusals[0].samples, 1);
        }
        let v = validate(
            vec![ts(
                &[("__name__", "up"), ("a", "01234567890")],
                &[(NOW, 1.0)],
            )],
            &limits,
            NOW,
        );
        assert!(
            v.refusals[0]
                .message
                .contains("limits.max_label_value_length"),
            "{}",
            v.refusals[0].message
        );
    }

    #[test]
    fn unsorted_labels_are_sorted_and_empty_values_dropped() {
        let v = validate(
            vec![ts(
                &[("job", "a"), ("__name__", "up"), ("empty", "")],
                &[(NOW, 1.0)],
            )],
            &Limits::default(),
            NOW,
        );
        assert!(v.refusals.is_empty());
        let back = Labels::from_packed(&v.series[0].packed.labels).unwrap();
        let names: Vec<_> = back.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["__name__", "job"]);
        assert_eq!(v.series[0].labels.to_string(), "up{job=\"a\"}");
    }

    #[test]
    fn future_and_old_samples_are_refused_and_the_rest_kept_bit_exact() {
        let limits = Limits {
            reject_old_samples_max_age: tidemark_config::Duration::from_secs(3600),
            ..Limits::default()
        };
        let stale = f64::from_bits(STALE_NAN_BITS);
        let v = validate(
            vec![ts(
                &[("__name__", "up")],
                &[
                    (NOW - 2 * 3_600_000, 1.0),
                    (NOW, stale),
                    (NOW + 1, f64::NAN),
                    (NOW + 11 * 60_000, 2.0),
                ],
            )],
            &limits,
            NOW,
        );
        assert_eq!(v.samples, 2);
        let kept = &v.series[0].packed.values;
        assert_eq!(kept[0].to_bits(), STALE_NAN_BITS);
        assert!(kept[1].is_nan());
        assert_eq!(v.series[0].packed.timestamps, [NOW, NOW + 1]);
        let reasons: Vec<_> = v.refusals.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, ["too_far_in_future", "sample_too_old"]);
        assert!(
            v.refusals[0]
                .message
                .contains("limits.creation_grace_period")
        );
    }

    #[test]
    fn exemplars_travel_with_their_series_and_bad_ones_are_dropped_not_refused() {
        let ex = |labels: &[(&'static str, &'static str)], t: i64| RawExemplar {
            labels: labels.to_vec(),
            value: 0.5,
            timestamp: t,
        };
        let long = Box::leak("x".repeat(121).into_boxed_str());
        let mut with_samples = ts(&[("__name__", "req_total")], &[(NOW, 1.0)]);
        with_samples.exemplars = vec![
            ex(&[("trace_id", "ok")], NOW),
            ex(&[("trace id", "bad name")], NOW),
            ex(&[("trace_id", long)], NOW),
            ex(&[("a", "1"), ("a", "2")], NOW),
        ];
        // Prometheus sends exemplars in series entries of their own.
        let mut alone = ts(&[("__name__", "req_total")], &[]);
        alone.exemplars = vec![ex(&[("trace_id", "later"), ("span_id", "s")], NOW + 1)];
        let v = validate(vec![with_samples, alone], &Limits::default(), NOW);
        assert!(v.refusals.is_empty(), "{:?}", v.refusals);
        assert_eq!((v.samples, v.exemplars, v.exemplars_dropped), (1, 2, 3));
        assert_eq!(v.series.len(), 2);
        let kept: Vec<Labels> = v
            .series
            .iter()
            .flat_map(|s| &s.packed.exemplars)
            .map(|e| Labels::from_packed(&e.labels).unwrap())
            .collect();
        assert_eq!(
            kept,
            [
                Labels::from_pairs([("trace_id", "ok")]).unwrap(),
                Labels::from_pairs([("span_id", "s"), ("trace_id", "later")]).unwrap(),
            ]
        );
        assert!(v.series[1].packed.timestamps.is_empty());
    }
}
