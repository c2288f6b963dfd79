//! Label sets, stored compactly.
//!
//! A [`Labels`] keeps all names and values in one shared byte buffer
//! (length-prefixed pairs, sorted by name), so a series costs one allocation
//! and cloning it is a reference-count increment.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::ModelError;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One name/value pair, borrowed from a [`Labels`] or owned by a builder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A sorted set of labels with unique names and non-empty values.
///
/// The invariants (sorted, unique, no empty values) are established by the
/// constructors, so readers never re-check them.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Option<Arc<str>>);

/// Whether `name` is a legal label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a legal metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Appends a length in 6-bit groups, low group first, every byte below
/// 0x80 (0x40 marks that more groups follow): the buffer stays ASCII
/// outside the names and values, so the whole of it is a `str` and reading
/// a pair back needs no UTF-8 check.
fn put_len(buf: &mut String, mut x: usize) {
    while x >= 0x40 {
        buf.push(char::from(0x40 | (x & 0x3f) as u8));
        x >>= 6;
    }
    buf.push(char::from(x as u8));
}

fn get_len(buf: &[u8], pos: &mut usize) -> usize {
    let mut x = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        x |= ((b & 0x3f) as usize) << shift;
        if b < 0x40 {
            return x;
        }
        shift += 6;
    }
}

/// One length-prefixed string of a packed label set from another process,
/// every step checked.
fn packed_field<'a>(s: &'a str, pos: &mut usize) -> Result<&'a str, ModelError> {
    let bad = |offset, reason| ModelError::MalformedPacked { offset, reason };
    let bytes = s.as_bytes();
    let start = *pos;
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let &b = bytes
            .get(*pos)
            .ok_or(bad(start, "length runs past the end"))?;
        *pos += 1;
        if b >= 0x80 || shift > 48 {
            return Err(bad(start, "bad length prefix"));
        }
        len |= usize::from(b & 0x3f) << shift;
        if b < 0x40 {
            break;
        }
        shift += 6;
    }
    let end = pos.checked_add(len).ok_or(bad(start, "length overflows"))?;
    let out = s
        .get(*pos..end)
        .ok_or(bad(start, "string runs past the end"))?;
    *pos = end;
    Ok(out)
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(None)
    }

    /// Builds a label set from pairs in any order.
    ///
    /// Pairs with an empty value are dropped (Prometheus treats an empty
    /// value as an absent label); a name given twice is an error. Names are
    /// not syntax-checked here: call [`Labels::validate`] at ingestion.
    pub fn from_pairs<N, V, I>(pairs: I) -> Result<Self, ModelError>
    where
        N: AsRef<str>,
        V: AsRef<str>,
        I: IntoIterator<Item = (N, V)>,
    {
        let mut v: Vec<(N, V)> = pairs
            .into_iter()
            .filter(|(_, v)| !v.as_ref().is_empty())
            .collect();
        v.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        for w in v.windows(2) {
            if w[0].0.as_ref() == w[1].0.as_ref() {
                return Err(ModelError::DuplicateLabelName {
                    name: w[0].0.as_ref().to_string(),
                });
            }
        }
        Ok(Self::encode_sorted(
            v.iter().map(|(n, v)| (n.as_ref(), v.as_ref())),
        ))
    }

    /// Builds from pairs the caller guarantees sorted by name, unique and
    /// non-empty (e.g. read back from storage that wrote a `Labels`).
    /// Debug builds check the guarantee.
    pub fn from_sorted_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let l = Self::encode_sorted(pairs);
        debug_assert!(l.is_sorted_unique(), "labels not sorted and unique: {l}");
        l
    }

    fn encode_sorted<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut buf = String::new();
        for (n, v) in pairs {
            if v.is_empty() {
                continue;
            }
            put_len(&mut buf, n.len());
            buf.push_str(n);
            put_len(&mut buf, v.len());
            buf.push_str(v);
        }
        if buf.is_empty() {
            Labels(None)
        } else {
            Labels(Some(Arc::from(buf)))
        }
    }

    /// The label set's encoding: what [`Labels::from_packed`] reads back.
    /// tidemark processes send series in this form to each other, so the
    /// receiver builds a label set with one copy instead of sorting and
    /// encoding pairs of strings.
    pub fn packed(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], str::as_bytes)
    }

    /// Reads a [`Labels::packed`] encoding that came from another process,
    /// checking everything the constructors guarantee: UTF-8, lengths
    /// inside the buffer, names sorted and unique, values non-empty.
    pub fn from_packed(bytes: &[u8]) -> Result<Self, ModelError> {
        let s = std::str::from_utf8(bytes).map_err(|e| ModelError::MalformedPacked {
            offset: e.valid_up_to(),
            reason: "not UTF-8",
        })?;
        let mut pos = 0;
        let mut prev: Option<&str> = None;
        while pos < bytes.len() {
            let at = pos;
            let name = packed_field(s, &mut pos)?;
            let value = packed_field(s, &mut pos)?;
            if value.is_empty() {
                return Err(ModelError::EmptyLabelValue {
                    name: name.to_string(),
                });
            }
            match prev {
                Some(p) if p == name => {
                    return Err(ModelError::DuplicateLabelName {
                        name: name.to_string(),
                    });
                }
                Some(p) if p > name => {
                    return Err(ModelError::MalformedPacked {
                        offset: at,
                        reason: "names not sorted",
                    });
                }
                _ => {}
            }
            prev = Some(name);
        }
        Ok(if s.is_empty() {
            Labels(None)
        } else {
            Labels(Some(Arc::from(s)))
        })
    }

    fn is_sorted_unique(&self) -> bool {
        let names: Vec<&str> = self.iter().map(|(n, _)| n).collect();
        names.windows(2).all(|w| w[0] < w[1])
    }

    /// Checks every name against the label name syntax and the metric name
    /// against the metric name syntax.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (n, v) in self.iter() {
            if n == METRIC_NAME {
                if !is_valid_metric_name(v) {
                    return Err(ModelError::InvalidMetricName {
                        name: v.to_string(),
                    });
                }
            } else if !is_valid_label_name(n) {
                return Err(ModelError::InvalidLabelName {
                    name: n.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter {
            buf: self.0.as_deref().unwrap_or(""),
            pos: 0,
        }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for (n, v) in self.iter() {
            match n.cmp(name) {
                Ordering::Equal => return Some(v),
                Ordering::Greater => return None,
                Ordering::Less => {}
            }
        }
        None
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Bytes held by the shared buffer, for memory accounting.
    pub fn byte_size(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.len())
    }

    /// A copy without the named labels.
    pub fn without(&self, names: &[&str]) -> Labels {
        Self::encode_sorted(self.iter().filter(|(n, _)| !names.contains(n)))
    }

    /// A copy with only the named labels.
    pub fn keep(&self, names: &[&str]) -> Labels {
        Self::encode_sorted(self.iter().filter(|(n, _)| names.contains(n)))
    }

    /// A copy without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        self.without(&[METRIC_NAME])
    }

    /// A builder seeded with these labels, for changing a few of them.
    pub fn builder(&self) -> LabelsBuilder {
        let mut b = LabelsBuilder::new();
        for (n, v) in self.iter() {
            b.set(n, v);
        }
        b
    }

    /// Owned pairs, for code that needs to mutate freely.
    pub fn to_vec(&self) -> Vec<Label> {
        self.iter().map(|(n, v)| Label::new(n, v)).collect()
    }
}

/// Iterator over the pairs of a [`Labels`].
pub struct LabelsIter<'a> {
    buf: &'a str,
    pos: usize,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let bytes = self.buf.as_bytes();
        let n_len = get_len(bytes, &mut self.pos);
        let n = &self.buf[self.pos..self.pos + n_len];
        self.pos += n_len;
        let v_len = get_len(bytes, &mut self.pos);
        let v = &self.buf[self.pos..self.pos + v_len];
        self.pos += v_len;
        Some((n, v))
    }
}

/// The packed encoding ([`Labels::packed`]), so a buffer type such as
/// `bytes::Bytes::from_owner` can share it without a copy.
impl AsRef<[u8]> for Labels {
    fn as_ref(&self) -> &[u8] {
        self.packed()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Ord for Labels {
    /// Prometheus order: pair by pair, name then value; a prefix sorts first.
    ///
    /// Walks the two encodings byte-wise (UTF-8 byte order is code point
    /// order, so comparing the bytes of two strings is comparing the
    /// strings): sorting and merging series compare labels more than
    /// anything else.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.packed(), other.packed());
        if a == b {
            return Ordering::Equal;
        }
        let (mut i, mut j) = (0, 0);
        loop {
            match (i < a.len(), j < b.len()) {
                (false, false) => return Ordering::Equal,
                (false, true) => return Ordering::Less,
                (true, false) => return Ordering::Greater,
                (true, true) => {}
            }
            // The name, then the value.
            for _ in 0..2 {
                let la = get_len(a, &mut i);
                let lb = get_len(b, &mut j);
                match a[i..i + la].cmp(&b[j..j + lb]) {
                    Ordering::Equal => {}
                    o => return o,
                }
                i += la;
                j += lb;
            }
        }
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Labels {
    /// Prometheus notation: `name{a="b", c="d"}`, values escaped like Go's %q.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let rest: Vec<_> = self.iter().filter(|(n, _)| *n != METRIC_NAME).collect();
        if rest.is_empty() && name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (n, v)) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Changes a label set: set and delete names, then [`LabelsBuilder::build`].
#[derive(Debug, Default, Clone)]
pub struct LabelsBuilder {
    pairs: Vec<(String, String)>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.pairs.iter_mut().find(|(n, _)| n == name) {
            Some(p) => p.1 = value.to_string(),
            None => self.pairs.push((name.to_string(), value.to_string())),
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.pairs.retain(|(n, _)| n != name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn build(&self) -> Labels {
        let mut v: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        Labels::encode_sorted(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorted_and_lookup() {
        let l = Labels::from_pairs([("job", "node"), ("__name__", "up"), ("a", "1")]).unwrap();
        let names: Vec<_> = l.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["__name__", "a", "job"]);
        assert_eq!(l.get("job"), Some("node"));
        assert_eq!(l.get("zzz"), None);
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.to_string(), r#"up{a="1", job="node"}"#);
    }

    #[test]
    fn duplicates_refused_and_empty_values_dropped() {
        assert_eq!(
            Labels::from_pairs([("a", "1"), ("a", "2")]),
            Err(ModelError::DuplicateLabelName { name: "a".into() })
        );
        let l = Labels::from_pairs([("a", ""), ("b", "x")]).unwrap();
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn validate_names() {
        assert!(
            Labels::from_pairs([("__name__", "a:b_c"), ("ok_1", "v")])
                .unwrap()
                .validate()
                .is_ok()
        );
        assert!(
            Labels::from_pairs([("1bad", "v")])
                .unwrap()
                .validate()
                .is_err()
        );
        assert!(
            Labels::from_pairs([("__name__", "bad-name")])
                .unwrap()
                .validate()
                .is_err()
        );
        assert!(
            Labels::from_pairs([("a:b", "v")])
                .unwrap()
                .validate()
                .is_err()
        );
    }

    #[test]
    fn builder_sets_and_deletes() {
        let l = Labels::from_pairs([("a", "1"), ("b", "2")]).unwrap();
        let mut b = l.builder();
        b.set("c", "3").del("a").set("b", "");
        assert_eq!(b.build(), Labels::from_pairs([("c", "3")]).unwrap());
    }

    #[test]
    fn ordering_is_pairwise() {
        let a = Labels::from_pairs([("a", "1")]).unwrap();
        let b = Labels::from_pairs([("a", "1"), ("b", "1")]).unwrap();
        let c = Labels::from_pairs([("a", "2")]).unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn packed_form_reads_back_and_bad_bytes_are_refused() {
        let l = Labels::from_pairs([
            ("job", "node"),
            ("__name__", "up"),
            ("v", &"x".repeat(5000)),
        ])
        .unwrap();
        assert_eq!(Labels::from_packed(l.packed()).unwrap(), l);
        assert_eq!(Labels::from_packed(&[]).unwrap(), Labels::empty());
        let bad = |b: &[u8]| Labels::from_packed(b).unwrap_err().to_string();
        // Cut short, in a length and in a string.
        let p = l.packed();
        assert!(bad(&p[..p.len() - 1]).contains("runs past the end"));
        assert!(bad(&[0x41]).contains("runs past the end"));
        // Unsorted, duplicate, empty value, not UTF-8.
        assert!(bad(b"\x01b\x01x\x01a\x01y").contains("not sorted"));
        assert!(bad(b"\x01a\x01x\x01a\x01y").contains("duplicate label name"));
        assert!(bad(b"\x01a\x00").contains("empty value"));
        assert!(bad(b"\x01a\x01\xff").contains("not UTF-8"));
    }

    proptest! {
        #[test]
        fn order_is_pair_by_pair_name_then_value(
            a in proptest::collection::btree_map("[a-c_]{1,3}", "\\PC{1,70}", 0..5),
            b in proptest::collection::btree_map("[a-c_]{1,3}", "\\PC{1,70}", 0..5),
        ) {
            let la = Labels::from_pairs(a.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            let lb = Labels::from_pairs(b.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            let pa: Vec<(&String, &String)> = a.iter().collect();
            let pb: Vec<(&String, &String)> = b.iter().collect();
            prop_assert_eq!(la.cmp(&lb), pa.cmp(&pb));
            prop_assert_eq!(la.cmp(&la.clone()), std::cmp::Ordering::Equal);
        }

        #[test]
        fn packed_roundtrip(pairs in proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,300}", 0..12)) {
            let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            prop_assert_eq!(Labels::from_packed(l.packed()).unwrap(), l);
        }

        #[test]
        fn roundtrip(pairs in proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,300}", 0..12)) {
            let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            let back: Vec<(String, String)> = l.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            let want: Vec<(String, String)> = pairs.into_iter().collect();
            prop_assert_eq!(back, want);
        }
    }
}
