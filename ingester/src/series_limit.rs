//! The per-tenant series limit.
//!
//! The head has no "does this series exist" lookup (see the report to the
//! TSDB owners), so the check is done only when it can matter: while the
//! head plus the whole batch stays under the limit nothing is looked up.
//! Near the limit, each series of the batch is looked up through the
//! postings (`label_names` with one equality matcher per label, which
//! decodes no samples); only when a superset series makes that answer
//! ambiguous is the series selected and compared exactly.
//!
//! Concurrent pushes of the same tenant may each see the same free budget,
//! so the limit can be exceeded by at most the new series of the pushes in
//! flight at once; it is never exceeded by a single push.

use tidemark_model::{Labels, Matcher, Sample};
use tidemark_tsdb::Head;

/// Removes from `batch` the series that would be new beyond `limit`
/// series and returns them with their sample counts. `limit == 0` means
/// no limit.
pub(crate) fn enforce(
    head: &Head,
    batch: &mut Vec<(Labels, Vec<Sample>)>,
    limit: u64,
) -> Vec<(Labels, usize)> {
    let current = head.num_series() as u64;
    if limit == 0 || current + batch.len() as u64 <= limit {
        return Vec::new();
    }
    let mut budget = limit.saturating_sub(current);
    let mut refused = Vec::new();
    batch.retain(|(labels, samples)| {
        if samples.is_empty() || exists(head, labels) {
            return true;
        }
        if budget > 0 {
            budget -= 1;
            return true;
        }
        refused.push((labels.clone(), samples.len()));
        false
    });
    refused
}

fn exists(head: &Head, labels: &Labels) -> bool {
    let matchers: Vec<Matcher> = labels.iter().map(|(n, v)| Matcher::equal(n, v)).collect();
    let names = head.label_names(&matchers, i64::MIN, i64::MAX);
    if names.is_empty() {
        return false;
    }
    // Every selected series has at least these labels; if the union of
    // their names is exactly these, the series itself is there.
    if names.len() == labels.len() {
        return true;
    }
    head.select(&matchers, i64::MIN, i64::MAX)
        .iter()
        .any(|s| &s.labels == labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_tsdb::HeadOptions;

    fn series(pairs: &[(&str, &str)]) -> (Labels, Vec<Sample>) {
        (
            Labels::from_pairs(pairs.iter().copied()).unwrap(),
            vec![Sample::new(1000, 1.0)],
        )
    }

    #[test]
    fn existing_series_pass_and_new_ones_stop_at_the_limit() {
        let head = Head::new(HeadOptions::default()).unwrap();
        head.append(&[
            series(&[("__name__", "up"), ("job", "a")]),
            series(&[("__name__", "up"), ("job", "a"), ("x", "1")]),
        ])
        .unwrap();
        let mut batch = vec![
            series(&[("__name__", "up"), ("job", "a")]),
            series(&[("__name__", "up"), ("job", "b")]),
            series(&[("__name__", "up"), ("job", "c")]),
        ];
        let refused = enforce(&head, &mut batch, 3);
        assert_eq!(batch.len(), 2, "the existing series and one new one fit");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0.get("job"), Some("c"));
        // The superset series alone does not make {job="z"} exist.
        let mut batch = vec![series(&[("__name__", "up"), ("job", "z")])];
        assert_eq!(enforce(&head, &mut batch, 2).len(), 1);
        assert_eq!(enforce(&head, &mut batch, 0).len(), 0);
    }
}
