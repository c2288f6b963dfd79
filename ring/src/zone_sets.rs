//! Zone-aware replication sets computed once per snapshot instead of per
//! lookup.
//!
//! With zones, the set for a key is: for each zone, the first eligible owner
//! at or after the key's token, zones taken in ring order of those owners.
//! A walk finds that by skipping same-zone owners, which made a zone-aware
//! lookup about twice as slow as a plain one. Here one backward sweep over
//! the token table keeps, per zone, the nearest eligible position ahead, so
//! every token's sets (for writes and for reads) cost O(zones) to build and
//! a lookup copies at most `rf` owners from one row.

use crate::snapshot::{MAX_REPLICATION_FACTOR, Operation};

/// Zones beyond this are looked up by the walk: the rows would grow with
/// the zone count while real deployments have a handful of zones.
pub(crate) const MAX_PRECOMPUTED_ZONES: usize = 16;

/// Row padding where fewer zones than the row width have an eligible owner.
const NONE: u32 = u32::MAX;

/// Per token, the zone-greedy owners in ring order, one row per token.
#[derive(Debug, Clone, Default)]
pub(crate) struct ZoneSets {
    width: usize,
    write: Vec<u32>,
    read: Vec<u32>,
}

impl ZoneSets {
    /// Builds the rows for a token table whose `owners` are in token order.
    /// `zone_of(owner)` is the owner's dense zone index (< `zones`) and
    /// `eligible(owner, op)` says whether it may take part in `op`.
    pub(crate) fn build(
        owners: &[u32],
        zones: usize,
        zone_of: impl Fn(u32) -> usize,
        eligible: impl Fn(u32, Operation) -> bool,
    ) -> Option<ZoneSets> {
        if zones == 0 || zones > MAX_PRECOMPUTED_ZONES || owners.is_empty() {
            return None;
        }
        let width = zones.min(MAX_REPLICATION_FACTOR);
        let rows = |op| sweep(owners, zones, width, &zone_of, |o| eligible(o, op));
        Some(ZoneSets {
            width,
            write: rows(Operation::Write),
            read: rows(Operation::Read),
        })
    }

    /// The owners for a key whose first token is at `index`, at most `rf`
    /// (which must not exceed the zone count the sets were built for).
    pub(crate) fn row(&self, index: usize, op: Operation, rf: usize) -> impl Iterator<Item = u32> {
        let rows = match op {
            Operation::Write => &self.write,
            Operation::Read => &self.read,
        };
        let start = index * self.width;
        rows[start..start + rf.min(self.width)]
            .iter()
            .copied()
            .take_while(|o| *o != NONE)
    }
}

/// One backward pass over the ring twice around: at position `p`, `next[z]`
/// is the nearest position at or after `p` whose owner is eligible and in
/// zone `z`. Going twice around makes "after" wrap; a zone's nearest owner
/// is always less than one turn ahead.
fn sweep(
    owners: &[u32],
    zones: usize,
    width: usize,
    zone_of: &impl Fn(u32) -> usize,
    eligible: impl Fn(u32) -> bool,
) -> Vec<u32> {
    let n = owners.len();
    let mut next = [usize::MAX; MAX_PRECOMPUTED_ZONES];
    let mut rows = vec![NONE; n * width];
    for p in (0..2 * n).rev() {
        let owner = owners[p % n];
        if eligible(owner) {
            next[zone_of(owner)] = p;
        }
        if p >= n {
            continue;
        }
        let mut ahead = [usize::MAX; MAX_PRECOMPUTED_ZONES];
        ahead[..zones].copy_from_slice(&next[..zones]);
        let ahead = &mut ahead[..zones];
        ahead.sort_unstable();
        for (slot, pos) in rows[p * width..(p + 1) * width].iter_mut().zip(ahead) {
            if *pos == usize::MAX {
                break;
            }
            *slot = owners[*pos % n];
        }
    }
    rows
}
