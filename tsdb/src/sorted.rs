//! Set operations on sorted, duplicate-free lists of series ids.
//!
//! The head's postings (`SeriesRef`) and a block's postings (`u64` series
//! offsets) are both such lists; matcher evaluation on either combines them
//! with these.

/// The sorted union of two sorted lists.
pub(crate) fn union2<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The sorted union of any number of sorted lists.
pub(crate) fn union<T: Ord + Copy>(lists: Vec<&[T]>) -> Vec<T> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].to_vec(),
        2 => union2(lists[0], lists[1]),
        _ => {
            let mut out: Vec<T> = lists.concat();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// The sorted intersection of sorted lists, shortest first.
pub(crate) fn intersect<T: Ord + Copy>(mut lists: Vec<Vec<T>>) -> Vec<T> {
    lists.sort_by_key(Vec::len);
    let mut iter = lists.into_iter();
    let Some(mut acc) = iter.next() else {
        return Vec::new();
    };
    for other in iter {
        let mut j = 0;
        acc.retain(|r| {
            // Gallop through the longer list.
            j += other[j..].partition_point(|x| x < r);
            j < other.len() && other[j] == *r
        });
        if acc.is_empty() {
            break;
        }
    }
    acc
}

/// `a` without the ids in `b`; both sorted.
pub(crate) fn subtract<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for r in a {
        while j < b.len() && b[j] < *r {
            j += 1;
        }
        if j < b.len() && b[j] == *r {
            continue;
        }
        out.push(*r);
    }
    out
}
