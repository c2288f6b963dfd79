//! The inverted index of a head: label name and value -> sorted series refs,
//! and matcher evaluation over it with Prometheus's semantics and fast paths.
//!
//! Semantics (as Prometheus's `PostingsForMatchers`): an absent label
//! matches as the empty string, so a matcher that matches `""` also selects
//! series without the label (`{a=""}` means "no label `a`", `{a!="x"}`
//! includes series without `a`). Such matchers are evaluated by subtracting
//! the series whose value does *not* match; the others by intersecting the
//! series whose value matches. When every matcher matches `""`, evaluation
//! starts from all series.
//!
//! Fast paths: `=` and regex alternations of literals (`a|b|c`, from
//! [`Matcher::set_matches`]) look the values up directly; `=~"foo.*"`
//! compares prefixes instead of running the regex; `=~".*"` is skipped (it
//! selects everything) and `=~".+"` takes every value of the label.

use std::collections::HashMap;

use tidemark_model::{Labels, MatchOp, Matcher};

pub(crate) use crate::sorted::{intersect, subtract, union};

use super::SeriesRef;
use super::symbols::{Sym, Symbols};

/// Estimated bytes per posting entry (8 bytes plus average `Vec` slack).
const ENTRY_BYTES: usize = 10;
/// Estimated bytes per distinct (name, value) key.
const VALUE_BYTES: usize = 56;
/// Estimated bytes per distinct label name.
const NAME_BYTES: usize = 80;

/// Symbols and postings, guarded together by the head's index lock.
#[derive(Default)]
pub(crate) struct Index {
    pub(crate) symbols: Symbols,
    postings: HashMap<Sym, HashMap<Sym, Vec<SeriesRef>>>,
    all: Vec<SeriesRef>,
    bytes: usize,
}

fn insert_sorted(list: &mut Vec<SeriesRef>, r: SeriesRef) {
    match list.last() {
        Some(last) if *last >= r => {
            if let Err(pos) = list.binary_search(&r) {
                list.insert(pos, r);
            }
        }
        _ => list.push(r),
    }
}

impl Index {
    /// Adds series `r` with labels `labels`, interning their strings (one
    /// symbol reference per name and per value).
    pub(crate) fn add(&mut self, r: SeriesRef, labels: &Labels) {
        for (n, v) in labels.iter() {
            let name = self.symbols.intern(n);
            let value = self.symbols.intern(v);
            if !self.postings.contains_key(&name) {
                self.bytes += NAME_BYTES;
            }
            let values = self.postings.entry(name).or_default();
            let mut new_value = false;
            let list = values.entry(value).or_insert_with(|| {
                new_value = true;
                // Most values (pod, instance) belong to one or a few series.
                Vec::with_capacity(1)
            });
            insert_sorted(list, r);
            self.bytes += ENTRY_BYTES + if new_value { VALUE_BYTES } else { 0 };
        }
        insert_sorted(&mut self.all, r);
        self.bytes += ENTRY_BYTES;
    }

    /// Removes many series at once; `removed` pairs each ref with its
    /// labels (added with [`Index::add`], so every string is interned).
    /// Lists are filtered once each, so truncating many series of one big
    /// list stays linear.
    pub(crate) fn remove_many(&mut self, removed: &[(SeriesRef, Labels)]) {
        if removed.is_empty() {
            return;
        }
        let mut by_key: HashMap<(Sym, Sym), Vec<SeriesRef>> = HashMap::new();
        let mut syms: Vec<Sym> = Vec::new();
        for (r, labels) in removed {
            for (n, v) in labels.iter() {
                let (Some(name), Some(value)) = (self.symbols.lookup(n), self.symbols.lookup(v))
                else {
                    continue;
                };
                by_key.entry((name, value)).or_default().push(*r);
                syms.push(name);
                syms.push(value);
            }
        }
        for ((name, value), mut refs) in by_key {
            refs.sort_unstable();
            let Some(values) = self.postings.get_mut(&name) else {
                continue;
            };
            if let Some(list) = values.get_mut(&value) {
                let before = list.len();
                list.retain(|r| refs.binary_search(r).is_err());
                self.bytes -= (before - list.len()) * ENTRY_BYTES;
                if list.is_empty() {
                    values.remove(&value);
                    self.bytes -= VALUE_BYTES;
                }
            }
            if values.is_empty() {
                self.postings.remove(&name);
                self.bytes -= NAME_BYTES;
            }
        }
        let mut refs: Vec<SeriesRef> = removed.iter().map(|(r, _)| *r).collect();
        refs.sort_unstable();
        let before = self.all.len();
        self.all.retain(|r| refs.binary_search(r).is_err());
        self.bytes -= (before - self.all.len()) * ENTRY_BYTES;
        for s in syms {
            self.symbols.release(s);
        }
    }

    /// Estimated heap bytes of postings and symbols.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.bytes + self.symbols.memory_bytes()
    }

    /// Every series ref, sorted.
    pub(crate) fn all(&self) -> &[SeriesRef] {
        &self.all
    }

    /// All label names, unsorted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.postings.keys().map(|n| self.symbols.get(*n))
    }

    /// All values of `name`, unsorted.
    pub(crate) fn values(&self, name: &str) -> Vec<&str> {
        let Some(values) = self
            .symbols
            .lookup(name)
            .and_then(|n| self.postings.get(&n))
        else {
            return Vec::new();
        };
        values.keys().map(|v| self.symbols.get(*v)).collect()
    }

    /// The refs of the series selected by all `matchers`, sorted. No
    /// matchers select every series.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        let mut positive: Vec<Vec<SeriesRef>> = Vec::new();
        let mut negative: Vec<Vec<SeriesRef>> = Vec::new();
        for m in matchers {
            if m.is_match_all_regex() {
                match m.op {
                    // `=~".*"` selects everything, absent label included.
                    MatchOp::Regex => continue,
                    // `!~".*"` selects nothing.
                    _ => return Vec::new(),
                }
            }
            if m.matches_empty() {
                // Series lacking the label match; exclude those whose value
                // does not.
                let excluded = self.matching(&m.name, |v| !m.matches(v), inverse_set(m));
                if !excluded.is_empty() {
                    negative.push(excluded);
                }
            } else {
                let p = self.positive(m);
                if p.is_empty() {
                    return Vec::new();
                }
                positive.push(p);
            }
        }
        let mut result = if positive.is_empty() {
            self.all.clone()
        } else {
            intersect(positive)
        };
        for n in &negative {
            result = subtract(&result, n);
            if result.is_empty() {
                break;
            }
        }
        result
    }

    /// Series whose value of `m.name` matches a matcher that does not match
    /// the empty string.
    fn positive(&self, m: &Matcher) -> Vec<SeriesRef> {
        if let Some(set) = m.set_matches() {
            return self.matching(&m.name, |v| m.matches(v), Some(set));
        }
        if let Some(prefix) = m.prefix() {
            return self.matching(&m.name, |v| v.starts_with(prefix), None);
        }
        if m.op == MatchOp::Regex && m.value == ".+" {
            return self.matching(&m.name, |_| true, None);
        }
        self.matching(&m.name, |v| m.matches(v), None)
    }

    /// The union of the lists of `name`'s values accepted by `accept`; when
    /// `exact` lists the accepted values, they are looked up directly.
    fn matching(
        &self,
        name: &str,
        accept: impl Fn(&str) -> bool,
        exact: Option<Vec<&str>>,
    ) -> Vec<SeriesRef> {
        let Some(values) = self
            .symbols
            .lookup(name)
            .and_then(|n| self.postings.get(&n))
        else {
            return Vec::new();
        };
        let lists: Vec<&[SeriesRef]> = match exact {
            Some(set) => set
                .iter()
                .filter_map(|v| self.symbols.lookup(v))
                .filter_map(|v| values.get(&v))
                .map(Vec::as_slice)
                .collect(),
            None => values
                .iter()
                .filter(|(v, _)| accept(self.symbols.get(**v)))
                .map(|(_, l)| l.as_slice())
                .collect(),
        };
        union(lists)
    }
}

/// For `!=` the one value whose series are excluded.
fn inverse_set(m: &Matcher) -> Option<Vec<&str>> {
    match m.op {
        MatchOp::NotEqual => Some(vec![m.value.as_str()]),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refs(v: &[u64]) -> Vec<SeriesRef> {
        v.iter().map(|x| SeriesRef(*x)).collect()
    }

    #[test]
    fn list_operations() {
        assert_eq!(
            union(vec![&refs(&[1, 3, 5]), &refs(&[2, 3]), &refs(&[9])]),
            refs(&[1, 2, 3, 5, 9])
        );
        assert_eq!(
            intersect(vec![
                refs(&[1, 2, 3, 4, 8]),
                refs(&[2, 4, 6, 8]),
                refs(&[4, 8])
            ]),
            refs(&[4, 8])
        );
        assert_eq!(
            subtract(&refs(&[1, 2, 3, 4]), &refs(&[2, 4, 5])),
            refs(&[1, 3])
        );
    }

    proptest! {
        #[test]
        fn list_ops_agree_with_sets(
            a in proptest::collection::btree_set(0u64..200, 0..50),
            b in proptest::collection::btree_set(0u64..200, 0..50),
        ) {
            let va: Vec<u64> = a.iter().copied().collect();
            let vb: Vec<u64> = b.iter().copied().collect();
            let u: Vec<u64> = a.union(&b).copied().collect();
            let i: Vec<u64> = a.intersection(&b).copied().collect();
            let d: Vec<u64> = a.difference(&b).copied().collect();
            prop_assert_eq!(union(vec![&refs(&va), &refs(&vb)]), refs(&u));
            prop_assert_eq!(intersect(vec![refs(&va), refs(&vb)]), refs(&i));
            prop_assert_eq!(subtract(&refs(&va), &refs(&vb)), refs(&d));
        }
    }
}
