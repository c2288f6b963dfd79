//! Merging exemplars from several sources: the replicas of a series send
//! the same exemplars, which must appear once.

use std::collections::BTreeMap;

use tidemark_model::{Exemplar, Labels};
use tidemark_tsdb::SeriesExemplars;

/// The union of several answers, sorted by series labels; each series'
/// exemplars in time order, exact repeats (same time, value bits and
/// labels) once.
pub(crate) fn merge(answers: Vec<Vec<SeriesExemplars>>) -> Vec<SeriesExemplars> {
    if answers.len() == 1 {
        return answers.into_iter().flatten().collect();
    }
    let mut by_series: BTreeMap<Labels, Vec<Exemplar>> = BTreeMap::new();
    for s in answers.into_iter().flatten() {
        by_series.entry(s.labels).or_default().extend(s.exemplars);
    }
    by_series
        .into_iter()
        .map(|(labels, mut exemplars)| {
            exemplars.sort_by_key(|e| e.t);
            dedup(&mut exemplars);
            SeriesExemplars { labels, exemplars }
        })
        .collect()
}

/// Drops repeats among exemplars sorted by time (repeats share a time, but
/// exemplars of one time need not be adjacent repeats).
fn dedup(sorted: &mut Vec<Exemplar>) {
    let mut out: Vec<Exemplar> = Vec::with_capacity(sorted.len());
    let mut same_time_from = 0;
    for e in sorted.drain(..) {
        if out.last().is_some_and(|l| l.t != e.t) {
            same_time_from = out.len();
        }
        if !out[same_time_from..].iter().any(|x| x.same_as(&e)) {
            out.push(e);
        }
    }
    *sorted = out;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ex(trace: &str, t: i64, v: f64) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", trace)]).unwrap(),
            t,
            v,
        }
    }

    fn series(name: &str, exemplars: Vec<Exemplar>) -> SeriesExemplars {
        SeriesExemplars {
            labels: Labels::from_pairs([("__name__", name)]).unwrap(),
            exemplars,
        }
    }

    #[test]
    fn replicas_merge_into_one_answer_without_repeats() {
        let a = vec![
            series("b", vec![ex("x", 1, 1.0), ex("y", 3, 1.0)]),
            series("a", vec![ex("p", 2, 1.0)]),
        ];
        // Another replica missed t=1, has t=3 twice over (same and other
        // trace), and one more series.
        let b = vec![
            series("b", vec![ex("y", 3, 1.0), ex("z", 3, 1.0), ex("w", 4, 2.0)]),
            series("c", vec![ex("q", 5, 1.0)]),
        ];
        let got = merge(vec![a, b]);
        let names: Vec<&str> = got
            .iter()
            .map(|s| s.labels.get("__name__").unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let b: Vec<(&str, i64)> = got[1]
            .exemplars
            .iter()
            .map(|e| (e.labels.get("trace_id").unwrap(), e.t))
            .collect();
        assert_eq!(b, [("x", 1), ("y", 3), ("z", 3), ("w", 4)]);
    }
}
