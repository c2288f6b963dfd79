//! An in-memory [`Queryable`]: series kept sorted by labels, samples sorted
//! by time.
//!
//! Used by the conformance runner, the benchmarks and other crates' tests
//! (the querier) wherever a real head or block would only add noise. It
//! implements the storage contract fully — matcher semantics including
//! "an absent label matches as the empty string", inclusive time ranges,
//! staleness markers kept bit-exact — so code tested against it behaves the
//! same against real storage.

use std::collections::BTreeMap;

use tidemark_model::{Labels, Matcher, Sample};

use crate::storage::{Queryable, SelectHints, Series, StorageError};

/// An in-memory series store.
///
/// ```
/// # use tidemark_model::{Labels, Sample};
/// # use tidemark_promql::memstore::MemStore;
/// let mut store = MemStore::new();
/// let labels = Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap();
/// store.add(labels, &[Sample::new(0, 1.0), Sample::new(15_000, 1.0)]);
/// assert_eq!(store.series_count(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    series: BTreeMap<Labels, Vec<Sample>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        MemStore::default()
    }

    /// Adds samples to the series with these labels, creating it if needed.
    ///
    /// Samples may come in any order and may interleave with samples added
    /// before; the series stays sorted by time. A sample at a timestamp the
    /// series already has replaces the old one (last write wins), so
    /// re-loading the same data is idempotent.
    pub fn add(&mut self, labels: Labels, samples: &[Sample]) {
        let series = self.series.entry(labels).or_default();
        let appends_in_order = series.last().is_none_or(|last| {
            samples.first().is_some_and(|f| f.t > last.t)
                && samples.windows(2).all(|w| w[0].t < w[1].t)
        });
        if appends_in_order {
            series.extend_from_slice(samples);
            return;
        }
        for s in samples {
            match series.binary_search_by_key(&s.t, |x| x.t) {
                Ok(i) => series[i] = *s,
                Err(i) => series.insert(i, *s),
            }
        }
    }

    /// Drops every series.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Number of series held.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Number of samples held over all series.
    pub fn sample_count(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    /// Whether the store holds no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// All series in label order, with all their samples.
    pub fn iter(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        self.series.iter().map(|(l, s)| (l, s.as_slice()))
    }

    /// The series matching every matcher, restricted to samples in
    /// `[start, end]` (ms, inclusive); series without such samples are left
    /// out. Results come in label order.
    pub fn select_sync(&self, start: i64, end: i64, matchers: &[Matcher]) -> Vec<Series> {
        let mut out = Vec::new();
        for (labels, samples) in &self.series {
            if !matchers
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
            {
                continue;
            }
            let lo = samples.partition_point(|s| s.t < start);
            let hi = samples.partition_point(|s| s.t <= end);
            if lo < hi {
                out.push(Series::new(labels.clone(), samples[lo..hi].to_vec()));
            }
        }
        out
    }
}

impl FromIterator<(Labels, Vec<Sample>)> for MemStore {
    fn from_iter<I: IntoIterator<Item = (Labels, Vec<Sample>)>>(iter: I) -> Self {
        let mut store = MemStore::new();
        for (labels, samples) in iter {
            store.add(labels, &samples);
        }
        store
    }
}

#[async_trait::async_trait]
impl Queryable for MemStore {
    async fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        Ok(self.select_sync(hints.start, hints.end, matchers))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tidemark_model::{MatchOp, STALE_NAN, is_stale_nan};

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn store() -> MemStore {
        let mut s = MemStore::new();
        s.add(
            labels(&[
                ("__name__", "http_requests"),
                ("job", "api"),
                ("env", "prod"),
            ]),
            &[
                Sample::new(0, 1.0),
                Sample::new(10, 2.0),
                Sample::new(20, 3.0),
            ],
        );
        s.add(
            labels(&[("__name__", "http_requests"), ("job", "web")]),
            &[Sample::new(5, 7.0), Sample::new(25, STALE_NAN)],
        );
        s
    }

    fn hints(start: i64, end: i64) -> SelectHints {
        SelectHints {
            start,
            end,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn selects_by_matchers_with_empty_label_semantics() {
        let s = store();
        let name = Matcher::equal("__name__", "http_requests");
        let all = s
            .select(&hints(0, 100), std::slice::from_ref(&name))
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        // env="" selects the series without env.
        let no_env = s
            .select(&hints(0, 100), &[name.clone(), Matcher::equal("env", "")])
            .await
            .unwrap();
        assert_eq!(no_env.len(), 1);
        assert_eq!(no_env[0].labels.get("job"), Some("web"));
        let re = Matcher::new(MatchOp::Regex, "job", "a.*").unwrap();
        let api = s.select(&hints(0, 100), &[re]).await.unwrap();
        assert_eq!(api.len(), 1);
        assert_eq!(api[0].labels.get("job"), Some("api"));
    }

    #[tokio::test]
    async fn time_range_is_inclusive_and_empty_series_are_dropped() {
        let s = store();
        let r = s.select(&hints(10, 20), &[]).await.unwrap();
        assert_eq!(r.len(), 1, "the web series has no sample in [10, 20]");
        assert_eq!(
            r[0].samples,
            vec![Sample::new(10, 2.0), Sample::new(20, 3.0)]
        );
        let stale = s.select(&hints(21, 30), &[]).await.unwrap();
        assert!(
            is_stale_nan(stale[0].samples[0].v),
            "stale markers are kept"
        );
    }

    #[test]
    fn out_of_order_adds_are_sorted_and_duplicates_replaced() {
        let mut s = MemStore::new();
        let l = labels(&[("__name__", "m")]);
        s.add(l.clone(), &[Sample::new(10, 1.0), Sample::new(30, 3.0)]);
        s.add(l.clone(), &[Sample::new(20, 2.0), Sample::new(10, 9.0)]);
        let got = s.select_sync(0, 100, &[]);
        assert_eq!(
            got[0].samples,
            vec![
                Sample::new(10, 9.0),
                Sample::new(20, 2.0),
                Sample::new(30, 3.0)
            ]
        );
        assert_eq!(s.sample_count(), 3);
        s.clear();
        assert!(s.is_empty());
    }
}
