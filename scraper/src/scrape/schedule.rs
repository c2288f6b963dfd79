//! When each target is scraped.
//!
//! Like Prometheus, every target scrapes at a fixed phase of its interval,
//! taken from a hash of the target (and a per-scraper seed): scrapes of many
//! targets spread evenly over the interval instead of bursting together,
//! and a target keeps its phase across restarts and config reloads.

/// The target's phase within the interval, in milliseconds.
pub fn offset_ms(target_hash: u64, seed: u64, interval_ms: i64) -> i64 {
    if interval_ms <= 0 {
        return 0;
    }
    ((target_hash ^ seed) % interval_ms as u64) as i64
}

/// The first scrape time at or after `now_ms` that falls on the target's
/// phase (`t mod interval == offset`).
pub fn first_scrape_at(now_ms: i64, interval_ms: i64, offset: i64) -> i64 {
    if interval_ms <= 0 {
        return now_ms;
    }
    let base = now_ms - now_ms.rem_euclid(interval_ms);
    let t = base + offset;
    if t < now_ms { t + interval_ms } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_scrape_lands_on_the_phase() {
        assert_eq!(first_scrape_at(1_000, 15_000, 2_000), 2_000);
        assert_eq!(first_scrape_at(3_000, 15_000, 2_000), 17_000);
        assert_eq!(first_scrape_at(17_000, 15_000, 2_000), 17_000);
        for now in [0i64, 1, 14_999, 1_700_000_000_123] {
            let t = first_scrape_at(now, 15_000, 7_777);
            assert!(t >= now && t - now < 15_000);
            assert_eq!(t.rem_euclid(15_000), 7_777);
        }
    }

    #[test]
    fn targets_spread_evenly_over_the_interval() {
        let interval = 60_000;
        let mut buckets = [0usize; 10];
        for i in 0..1000u64 {
            let h = xxhash_rust::xxh3::xxh3_64(format!("http://host-{i}:9100/metrics").as_bytes());
            let off = offset_ms(h, 42, interval);
            assert!((0..interval).contains(&off));
            buckets[(off * 10 / interval) as usize] += 1;
        }
        for b in buckets {
            assert!((60..=140).contains(&b), "uneven spread: {buckets:?}");
        }
    }
}
