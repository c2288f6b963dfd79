//! Merging the copies of series that several sources (replicas, and later
//! block storage) return, removing duplicate samples.

use std::collections::HashMap;

use tidemark_model::{Labels, Sample};
use tidemark_promql::Series;

/// Collects series from any number of sources and merges those with equal
/// labels into one.
///
/// Samples of a merged series are sorted by time and unique per timestamp:
/// when two copies have a sample at the same timestamp the one added first
/// is kept (replicas of an acknowledged write carry the same value; adding
/// sources in a fixed order keeps the choice deterministic otherwise).
/// Staleness markers are kept bit-exact.
///
/// Series are kept by hash and sorted once in [`SeriesMerger::finish`]: a
/// lookup hashes and compares bytes, where a sorted map compared label
/// sets pair by pair some log n times per series, which was a fifth of the
/// CPU of a small query.
#[derive(Debug, Default)]
pub struct SeriesMerger {
    series: HashMap<Labels, Vec<Sample>>,
}

impl SeriesMerger {
    pub fn new() -> Self {
        SeriesMerger::default()
    }

    /// Adds one copy of a series. Returns true when the labels were new.
    pub fn add(&mut self, labels: Labels, mut samples: Vec<Sample>) -> bool {
        sort_dedup(&mut samples);
        match self.series.get_mut(&labels) {
            Some(existing) => {
                if !samples.is_empty() {
                    let old = std::mem::take(existing);
                    *existing = merge_sorted(old, samples);
                }
                false
            }
            None => {
                self.series.insert(labels, samples);
                true
            }
        }
    }

    /// Number of distinct series so far.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The merged series, sorted by labels.
    pub fn finish(self) -> Vec<Series> {
        let mut out: Vec<Series> = self
            .series
            .into_iter()
            .map(|(labels, samples)| Series::new(labels, samples))
            .collect();
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// Sorts by timestamp (stable, so the first of equal timestamps stays
/// first) and keeps one sample per timestamp. Already-sorted input, the
/// normal case, costs one pass.
fn sort_dedup(samples: &mut Vec<Sample>) {
    if !samples.windows(2).all(|w| w[0].t < w[1].t) {
        samples.sort_by_key(|s| s.t);
        samples.dedup_by_key(|s| s.t);
    }
}

/// Merges two sorted, per-timestamp-unique lists; on equal timestamps the
/// sample of `first` wins.
fn merge_sorted(first: Vec<Sample>, second: Vec<Sample>) -> Vec<Sample> {
    if second.is_empty() {
        return first;
    }
    if first.is_empty() {
        return second;
    }
    let mut out = Vec::with_capacity(first.len().max(second.len()));
    let (mut a, mut b) = (first.into_iter().peekable(), second.into_iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                if x.t < y.t {
                    out.extend(a.next());
                } else if y.t < x.t {
                    out.extend(b.next());
                } else {
                    out.extend(a.next());
                    b.next();
                }
            }
            (Some(_), None) => {
                out.extend(a);
                break;
            }
            (None, Some(_)) => {
                out.extend(b);
                break;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_model::{STALE_NAN, is_stale_nan};

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", v)]).unwrap()
    }

    fn s(pairs: &[(i64, f64)]) -> Vec<Sample> {
        pairs.iter().map(|&(t, v)| Sample::new(t, v)).collect()
    }

    #[test]
    fn replicas_merge_into_one_series_with_unique_timestamps() {
        let mut m = SeriesMerger::new();
        assert!(m.add(l("a"), s(&[(1, 1.0), (2, 2.0), (4, 4.0)])));
        assert!(!m.add(l("a"), s(&[(2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0)])));
        assert!(m.add(l("b"), s(&[(1, 9.0)])));
        let out = m.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, l("a"));
        let ts: Vec<i64> = out[0].samples.iter().map(|x| x.t).collect();
        assert_eq!(ts, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn first_copy_wins_and_stale_markers_survive() {
        let mut m = SeriesMerger::new();
        m.add(l("a"), vec![Sample::new(1, STALE_NAN), Sample::new(2, 1.0)]);
        m.add(l("a"), s(&[(1, 7.0), (2, 8.0)]));
        let out = m.finish();
        assert!(is_stale_nan(out[0].samples[0].v));
        assert_eq!(out[0].samples[1].v, 1.0);
    }

    #[test]
    fn unsorted_copies_are_sorted() {
        let mut m = SeriesMerger::new();
        m.add(l("a"), s(&[(3, 3.0), (1, 1.0), (1, 1.5)]));
        let out = m.finish();
        assert_eq!(out[0].samples, s(&[(1, 1.0), (3, 3.0)]));
    }
}
