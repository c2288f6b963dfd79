//! Choosing tokens so that ownership is even.
//!
//! Random tokens spread poorly: with 128 random tokens per member the largest
//! share of 10 members is typically 15-25% above the mean. tidemark instead
//! places each new token inside the largest range of the member that
//! currently owns the most, taking exactly the share the newcomer should own
//! (`ring / (members + 1) / tokens`). Every join therefore takes an equal
//! slice from the most loaded members first, and the ring stays within a few
//! percent of even. The choice is a pure function of the current ring, so
//! every voter's state machine computes the same tokens when applying a join.

use std::collections::BinaryHeap;

/// Size of the ring: tokens are `u32`, ranges are measured in `u64`.
pub const RING_SIZE: u64 = 1 << 32;

/// FNV-1a: a stable 64-bit hash for ids and addresses (stable across Rust
/// releases, unlike `DefaultHasher`).
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The position of a 64-bit series hash (e.g. `tidemark_model::series_hash`)
/// on the 32-bit ring: the xor of both halves, so every bit of the hash counts.
pub fn ring_position(hash: u64) -> u32 {
    ((hash >> 32) ^ hash) as u32
}

/// Length of the range that ends at `tokens[i]` (exclusive of the previous
/// token, wrapping around). `tokens` is sorted and non-empty.
pub(crate) fn range_len(tokens: &[u32], i: usize) -> u64 {
    let end = u64::from(tokens[i]);
    let prev = if i == 0 {
        u64::from(tokens[tokens.len() - 1])
    } else {
        u64::from(tokens[i - 1])
    };
    if tokens.len() == 1 {
        RING_SIZE
    } else if end > prev {
        end - prev
    } else {
        end + RING_SIZE - prev
    }
}

/// Picks `count` tokens for a new member.
///
/// `ring` is the current token table of the role as `(token, owner)` pairs,
/// sorted by token, owners numbered `0..owners`. `seed` only matters for an
/// empty ring, where tokens are evenly spaced from a member-specific offset.
pub fn choose_tokens(ring: &[(u32, usize)], owners: usize, count: u32, seed: u64) -> Vec<u32> {
    let count = count.max(1);
    if ring.is_empty() || owners == 0 {
        let step = RING_SIZE / u64::from(count);
        let offset = seed % step.max(1);
        let mut out: Vec<u32> = (0..u64::from(count))
            .map(|i| ((offset + i * step) % RING_SIZE) as u32)
            .collect();
        out.sort_unstable();
        out.dedup();
        return out;
    }
    let tokens: Vec<u32> = ring.iter().map(|(t, _)| *t).collect();
    // Per owner: its ranges as a max-heap of (length, start), and its total.
    let mut ranges: Vec<BinaryHeap<(u64, u64)>> = vec![BinaryHeap::new(); owners];
    let mut owned: Vec<u64> = vec![0; owners];
    for (i, &(token, owner)) in ring.iter().enumerate() {
        let len = range_len(&tokens, i);
        let start = (u64::from(token) + RING_SIZE - len) % RING_SIZE;
        ranges[owner].push((len, start));
        owned[owner] += len;
    }
    let per_token = RING_SIZE / ((owners as u64 + 1) * u64::from(count));
    let mut chosen = Vec::with_capacity(count as usize);
    for _ in 0..count {
        // The most loaded owner that still has a range we can split.
        let Some(owner) = (0..owners)
            .filter(|&o| ranges[o].peek().is_some_and(|(len, _)| *len >= 2))
            .max_by_key(|&o| (owned[o], std::cmp::Reverse(o)))
        else {
            break;
        };
        let Some((len, start)) = ranges[owner].pop() else {
            break;
        };
        let take = per_token.clamp(1, len - 1);
        let token = ((start + take) % RING_SIZE) as u32;
        chosen.push(token);
        owned[owner] -= take;
        ranges[owner].push((len - take, u64::from(token)));
    }
    chosen.sort_unstable();
    chosen.dedup();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the ring of `members` members, each joining in turn.
    fn grow(members: usize, count: u32) -> Vec<(u32, usize)> {
        let mut ring: Vec<(u32, usize)> = Vec::new();
        for m in 0..members {
            let new = choose_tokens(&ring, m, count, stable_hash(&format!("ingester-{m}")));
            assert_eq!(new.len(), count as usize, "member {m} got all its tokens");
            for t in new {
                assert!(
                    ring.binary_search_by_key(&t, |(t, _)| *t).is_err(),
                    "token collision"
                );
                ring.push((t, m));
            }
            ring.sort_unstable();
        }
        ring
    }

    fn shares(ring: &[(u32, usize)], members: usize) -> Vec<f64> {
        let tokens: Vec<u32> = ring.iter().map(|(t, _)| *t).collect();
        let mut owned = vec![0u64; members];
        for (i, (_, o)) in ring.iter().enumerate() {
            owned[*o] += range_len(&tokens, i);
        }
        owned
            .into_iter()
            .map(|o| o as f64 / RING_SIZE as f64)
            .collect()
    }

    #[test]
    fn largest_share_of_ten_ingesters_is_within_ten_percent_of_mean() {
        let ring = grow(10, 128);
        let s = shares(&ring, 10);
        let total: f64 = s.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "shares cover the ring: {total}");
        let max = s.iter().cloned().fold(0.0, f64::max);
        let mean = 1.0 / 10.0;
        assert!(
            max <= mean * 1.10,
            "largest share {max} vs mean {mean}: {s:?}"
        );
    }

    #[test]
    fn spread_stays_even_as_the_ring_grows() {
        for n in [2usize, 3, 5, 7, 16, 33] {
            let s = shares(&grow(n, 128), n);
            let max = s.iter().cloned().fold(0.0, f64::max);
            let min = s.iter().cloned().fold(1.0, f64::min);
            let mean = 1.0 / n as f64;
            assert!(max <= mean * 1.10, "n={n}: max {max} mean {mean}");
            assert!(min >= mean * 0.85, "n={n}: min {min} mean {mean}");
        }
    }

    #[test]
    fn first_member_tokens_are_evenly_spaced() {
        let t = choose_tokens(&[], 0, 4, 7);
        assert_eq!(t, vec![7, 7 + (1 << 30), 7 + (2 << 30), 7 + (3 << 30)]);
    }

    #[test]
    fn ring_position_uses_both_halves() {
        assert_eq!(ring_position(0x0000_0001_0000_0000), 1);
        assert_eq!(ring_position(0x0000_0000_0000_0002), 2);
        assert_eq!(ring_position(0xffff_ffff_ffff_ffff), 0);
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
