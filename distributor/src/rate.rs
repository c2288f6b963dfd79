//! The per-tenant ingestion rate limit: one token bucket per tenant.
//!
//! Buckets live in lock shards chosen by a hash of the tenant, so pushes
//! of different tenants rarely meet on a lock and a push takes one short
//! lock. A bucket holds at most `burst` tokens and refills at `rate`
//! tokens (samples) per second.
//!
//! A request larger than the burst could never fit; rather than refusing
//! it forever (Prometheus would retry it forever), it is let through when
//! the bucket is full, leaving the bucket in debt that the refill pays back.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;
use tidemark_model::TenantId;
use xxhash_rust::xxh3::xxh3_64;

const SHARDS: usize = 16;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct RateLimiter {
    shards: Box<[Mutex<HashMap<TenantId, Bucket>>]>,
}

impl RateLimiter {
    pub(crate) fn new() -> Self {
        RateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes `n` tokens from the tenant's bucket; `false` (and nothing
    /// taken) when there are not enough. `rate <= 0` means unlimited.
    pub(crate) fn allow(
        &self,
        tenant: &TenantId,
        n: u64,
        rate: f64,
        burst: u64,
        now: Instant,
    ) -> bool {
        if rate <= 0.0 || n == 0 {
            return true;
        }
        let burst = burst.max(1) as f64;
        let shard = (xxh3_64(tenant.as_str().as_bytes()) as usize) % SHARDS;
        let mut buckets = self.shards[shard].lock();
        let b = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        let n = n as f64;
        if b.tokens >= n.min(burst) {
            b.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_at_rate_per_tenant() {
        let l = RateLimiter::new();
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let t0 = Instant::now();
        assert!(l.allow(&a, 100, 10.0, 100, t0));
        assert!(!l.allow(&a, 1, 10.0, 100, t0), "burst used up");
        assert!(l.allow(&b, 100, 10.0, 100, t0), "other tenants unaffected");
        let t1 = t0 + Duration::from_secs(1);
        assert!(!l.allow(&a, 11, 10.0, 100, t1));
        assert!(l.allow(&a, 10, 10.0, 100, t1), "refilled 10 tokens in 1s");
    }

    #[test]
    fn a_request_larger_than_the_burst_passes_on_a_full_bucket_only() {
        let l = RateLimiter::new();
        let a = TenantId::new("a").unwrap();
        let t0 = Instant::now();
        assert!(l.allow(&a, 500, 10.0, 100, t0));
        // 400 tokens of debt: 40 s of refill before the next sample.
        assert!(!l.allow(&a, 1, 10.0, 100, t0 + Duration::from_secs(30)));
        assert!(l.allow(&a, 1, 10.0, 100, t0 + Duration::from_secs(41)));
        assert!(l.allow(&a, 1, 0.0, 0, t0), "rate 0 is unlimited");
    }
}
