//! The background work on blocks: cut them from the heads when ready, hand
//! them to the compactor with retries and backoff, delete them once
//! confirmed and out of the recent-query window.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_model::TenantId;
use tidemark_tsdb::{BlockId, BlockMeta, TenantHeads};
use tracing::{info, warn};

use crate::blocks::{CutMode, LocalBlocks, cut_tenant};
use crate::handoff::{CompactorLocator, Handoff, HandoffClient};
use crate::{BlocksConfig, IngesterError};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A block cut by [`cut_all`], as `POST /ingester/flush` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CutBlock {
    pub(crate) tenant: String,
    pub(crate) block: String,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) series: u64,
    pub(crate) samples: u64,
}

/// Cuts the blocks `mode` allows from every tenant's head (on a blocking
/// thread: block writes fsync).
pub(crate) async fn cut_all(
    heads: Arc<TenantHeads>,
    blocks: Arc<LocalBlocks>,
    range_ms: i64,
    mode: CutMode,
) -> Result<Vec<CutBlock>, IngesterError> {
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for tenant in heads.tenants() {
            let Some(head) = heads.get(&tenant) else {
                continue;
            };
            let storage = |source| IngesterError::Storage {
                tenant: tenant.as_str().to_string(),
                source,
            };
            let tb = blocks.get_or_open(&tenant).map_err(storage)?;
            let metas = cut_tenant(&head, &tb, range_ms, mode).map_err(storage)?;
            out.extend(metas.iter().map(|m| describe(&tenant, m)));
        }
        Ok(out)
    })
    .await
    .map_err(|e| IngesterError::Internal(format!("block cut task failed: {e}")))?
}

fn describe(tenant: &TenantId, m: &BlockMeta) -> CutBlock {
    CutBlock {
        tenant: tenant.as_str().to_string(),
        block: m.ulid.to_string(),
        min_time: m.min_time,
        max_time: m.max_time,
        series: m.stats.num_series,
        samples: m.stats.num_samples,
    }
}

/// When a block that failed to ship may be tried again.
struct Retry {
    failures: u32,
    next: Instant,
}

/// Ships pending blocks and deletes expired ones; owned by one task.
pub(crate) struct Shipper {
    client: HandoffClient,
    locator: Arc<dyn CompactorLocator>,
    min_backoff: Duration,
    max_backoff: Duration,
    window_ms: i64,
    retries: HashMap<BlockId, Retry>,
    /// Tenants already warned about having no compactor.
    warned: std::collections::HashSet<TenantId>,
}

impl Shipper {
    pub(crate) fn new(cfg: &BlocksConfig, locator: Arc<dyn CompactorLocator>) -> Self {
        Shipper {
            client: HandoffClient::new(cfg.handoff_message_bytes),
            locator,
            min_backoff: cfg.handoff_min_backoff.as_std(),
            max_backoff: cfg.handoff_max_backoff.as_std(),
            window_ms: cfg.recent_query_window.as_millis_i64(),
            retries: HashMap::new(),
            warned: Default::default(),
        }
    }

    /// The earliest time a block waiting on backoff may be retried.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.retries.values().map(|r| r.next).min()
    }

    /// One pass: offers every pending block whose backoff has passed, then
    /// deletes blocks confirmed longer than the recent-query window ago.
    pub(crate) async fn run_once(&mut self, blocks: &LocalBlocks) {
        for tb in blocks.all() {
            let tenant = tb.tenant().clone();
            let pending = tb.pending();
            if pending.is_empty() {
                continue;
            }
            let Some(address) = self.locator.address_for(&tenant) else {
                if self.warned.insert(tenant.clone()) {
                    warn!(tenant = %tenant, blocks = pending.len(), "no compactor known for tenant; blocks stay local");
                }
                continue;
            };
            for b in pending {
                if self
                    .retries
                    .get(&b.id)
                    .is_some_and(|r| r.next > Instant::now())
                {
                    continue;
                }
                match self.client.ship(&address, &tenant, b.id, &b.dir).await {
                    Ok(Handoff::Uploaded) => {
                        self.retries.remove(&b.id);
                        if let Err(e) = tb.confirm(b.id, now_ms()) {
                            warn!(tenant = %tenant, block = %b.id, error = %e, "recording the hand-off failed");
                            continue;
                        }
                        info!(tenant = %tenant, block = %b.id, compactor = %address, "block handed off");
                    }
                    Ok(Handoff::Received) => {
                        // Not an error: ask again after the shortest wait.
                        self.retries.insert(
                            b.id,
                            Retry {
                                failures: 0,
                                next: Instant::now() + self.min_backoff,
                            },
                        );
                    }
                    Err(e) => {
                        let failures = self.retries.get(&b.id).map_or(0, |r| r.failures) + 1;
                        let wait = backoff(self.min_backoff, self.max_backoff, failures);
                        warn!(tenant = %tenant, block = %b.id, compactor = %address, error = %e, failures, retry_in = ?wait, "block hand-off failed");
                        self.retries.insert(
                            b.id,
                            Retry {
                                failures,
                                next: Instant::now() + wait,
                            },
                        );
                    }
                }
            }
        }
        for tb in blocks.all() {
            match tb.delete_expired(now_ms(), self.window_ms) {
                Ok(ids) => {
                    for id in ids {
                        info!(tenant = %tb.tenant(), block = %id, "deleted local block: handed off and out of the recent-query window");
                    }
                }
                Err(e) => {
                    warn!(tenant = %tb.tenant(), error = %e, "deleting expired local blocks failed")
                }
            }
        }
    }
}

/// `min * 2^(failures-1)`, at most `max`.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    min.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (1..=6).map(|f| backoff(min, max, f).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
    }
}
