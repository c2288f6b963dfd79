//! Reading the head: series by matchers, label names and values, and the
//! series of a time range for cutting a block.

use std::collections::HashSet;

use tidemark_model::{Labels, Matcher};

use super::series::stripe_of_ref;
use super::{Head, SeriesRef};
use crate::XorChunk;

/// One series and its samples in the queried range: the same type blocks
/// return, so a querier merges head and block results directly. Samples
/// are in timestamp order, bit-exact (staleness markers included).
pub use crate::block::SeriesSamples;

/// One series and the chunks holding exactly its samples of a block range.
#[derive(Debug, Clone)]
pub struct RangeSeries {
    pub labels: Labels,
    /// In time order, not overlapping.
    pub chunks: Vec<XorChunk>,
}

impl Head {
    /// The series selected by `matchers` (all of them; none selects every
    /// series) with their samples in `[mint, maxt]` (both inclusive, as a
    /// Prometheus querier), sorted by labels. Series without samples in the
    /// range are left out.
    ///
    /// Appends and series creation proceed meanwhile: the index lock is held
    /// only to evaluate the matchers, never while samples are decoded (the
    /// labels are the series' own, shared, not spelled from symbols).
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let refs = self.index.read().select(matchers);
        let mut out: Vec<SeriesSamples> = Vec::new();
        for r in refs {
            let stripe = self.stripes[stripe_of_ref(r)].read();
            let Some(s) = stripe.get(r) else {
                continue;
            };
            if !s.overlaps(mint, maxt) {
                continue;
            }
            let mut samples = Vec::new();
            s.samples_in(mint, maxt, &mut samples);
            if !samples.is_empty() {
                out.push(SeriesSamples {
                    labels: s.labels.clone(),
                    samples,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Sorted label names of the series selected by `matchers` that have
    /// samples in `[mint, maxt]`.
    pub fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        let index = self.index.read();
        let mut names: Vec<String> = if matchers.is_empty() && self.covered_by(mint, maxt) {
            index.names().map(str::to_string).collect()
        } else {
            let mut found: HashSet<String> = HashSet::new();
            for r in index.select(matchers) {
                self.with_series_in(r, mint, maxt, |labels| {
                    for (n, _) in labels {
                        if !found.contains(n) {
                            found.insert(n.to_string());
                        }
                    }
                });
            }
            found.into_iter().collect()
        };
        names.sort_unstable();
        names
    }

    /// Sorted values of label `name` among the series selected by
    /// `matchers` that have samples in `[mint, maxt]`.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        let index = self.index.read();
        let mut values: Vec<String> = if matchers.is_empty() && self.covered_by(mint, maxt) {
            index.values(name).into_iter().map(str::to_string).collect()
        } else {
            let mut found: HashSet<String> = HashSet::new();
            for r in index.select(matchers) {
                self.with_series_in(r, mint, maxt, |labels| {
                    if let Some(v) = labels.get(name)
                        && !found.contains(v)
                    {
                        found.insert(v.to_string());
                    }
                });
            }
            found.into_iter().collect()
        };
        values.sort_unstable();
        values
    }

    /// Every series with samples in `[mint, maxt)` (half-open, as a block's
    /// range), sorted by labels, with chunks holding exactly those samples:
    /// the input for writing a block. Chunks inside the range are shared
    /// as they are; chunks crossing a boundary are re-encoded. Labels are
    /// collected up front, chunks one series at a time as the iterator
    /// advances.
    pub fn series_in_range(&self, mint: i64, maxt: i64) -> impl Iterator<Item = RangeSeries> + '_ {
        let mut series: Vec<(Labels, SeriesRef)> = Vec::new();
        {
            let index = self.index.read();
            for &r in index.all() {
                let stripe = self.stripes[stripe_of_ref(r)].read();
                if let Some(s) = stripe.get(r)
                    && maxt > mint
                    && s.overlaps(mint, maxt - 1)
                {
                    series.push((s.labels.clone(), r));
                }
            }
        }
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series.into_iter().filter_map(move |(labels, r)| {
            let chunks = self.stripes[stripe_of_ref(r)]
                .read()
                .get(r)
                .map(|s| s.chunks_in(mint, maxt))?;
            (!chunks.is_empty()).then_some(RangeSeries { labels, chunks })
        })
    }

    /// Whether `[mint, maxt]` includes all of the head's samples.
    fn covered_by(&self, mint: i64, maxt: i64) -> bool {
        match (self.min_time(), self.max_time()) {
            (Some(a), Some(b)) => mint <= a && b <= maxt,
            _ => true,
        }
    }

    fn with_series_in(&self, r: SeriesRef, mint: i64, maxt: i64, f: impl FnOnce(&Labels)) {
        let stripe = self.stripes[stripe_of_ref(r)].read();
        if let Some(s) = stripe.get(r)
            && s.overlaps(mint, maxt)
        {
            f(&s.labels);
        }
    }
}
