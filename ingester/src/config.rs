//! The ingester's configuration section (`ingester:` in the YAML file).

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};
use tidemark_tsdb::{HeadOptions, SyncPolicy, WalOptions};

/// When the WAL is forced to stable storage before a push is acknowledged.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Fsync before answering every push (concurrent pushes share one
    /// fsync). An acknowledged sample survives a power loss.
    Batch,
    /// Fsync every `fsync_interval` from a background thread. A push is
    /// acknowledged once written to the file: a process crash loses
    /// nothing, a machine crash loses up to one interval.
    Interval,
}

/// The WAL of every tenant head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    pub fsync: FsyncPolicy,
    /// Used when `fsync` is `interval`.
    pub fsync_interval: Duration,
    /// A new segment file is started past this size (Mimir's
    /// `wal_segment_size_bytes`, Prometheus's 128 MiB).
    pub segment_size_bytes: u64,
    /// On corruption in the middle of a WAL, truncate it there (losing what
    /// follows) instead of refusing to start.
    pub repair: bool,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            fsync: FsyncPolicy::Batch,
            fsync_interval: Duration::from_secs(1),
            segment_size_bytes: 128 << 20,
            repair: false,
        }
    }
}

/// In-memory head tuning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeadConfig {
    /// Samples after which a head chunk is closed (Prometheus: 120).
    pub samples_per_chunk: usize,
    /// Chunks are also closed at multiples of this range, the block range.
    pub chunk_range: Duration,
    /// Exemplars one tenant's head keeps in memory, over all its series;
    /// the oldest is overwritten when full (Prometheus's
    /// `--storage.exemplars.exemplars-limit`). 0 turns exemplar storage off.
    pub max_exemplars: usize,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            samples_per_chunk: 120,
            chunk_range: Duration::from_secs(2 * 3600),
            max_exemplars: 100_000,
        }
    }
}

/// Cutting blocks from the head and handing them to a compactor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlocksConfig {
    /// How often each tenant's head is checked for a block to cut. A block
    /// of `head.chunk_range` (the block range, aligned) is cut once the
    /// head spans more than 1.5 block ranges, as Prometheus does.
    pub cut_check_interval: Duration,
    /// The compactor's gRPC address (`host:port`) blocks are handed to.
    /// Empty: the embedded `all` target uses its own address; other targets
    /// ask the ring, or keep blocks locally when no compactor is known.
    pub compactor_address: String,
    /// How often blocks not yet confirmed are offered again and expired
    /// blocks deleted; a cut or a flush starts a hand-off at once.
    pub ship_interval: Duration,
    /// First wait after a failed hand-off; doubles per failure.
    pub handoff_min_backoff: Duration,
    /// Longest wait between hand-off attempts of one block.
    pub handoff_max_backoff: Duration,
    /// Bytes of a block file per streamed message.
    pub handoff_message_bytes: usize,
    /// A block stays on local disk, served by this ingester's queries,
    /// until this long after the compactor confirmed it: queriers ask
    /// ingesters about this recent window, and the bucket index they read
    /// blocks from is refreshed meanwhile.
    pub recent_query_window: Duration,
}

impl Default for BlocksConfig {
    fn default() -> Self {
        BlocksConfig {
            cut_check_interval: Duration::from_secs(60),
            compactor_address: String::new(),
            ship_interval: Duration::from_secs(30),
            handoff_min_backoff: Duration::from_secs(1),
            handoff_max_backoff: Duration::from_secs(120),
            handoff_message_bytes: 1 << 20,
            recent_query_window: Duration::from_secs(13 * 3600),
        }
    }
}

/// Configuration of the ingester role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngesterConfig {
    pub wal: WalConfig,
    pub head: HeadConfig,
    /// Series one tenant may hold in this ingester's memory; 0 = no limit
    /// here. The distributor also passes the tenant's own limit
    /// (`limits.max_series` and its overrides) with each push; the smaller
    /// of the two applies.
    pub max_series_per_tenant: u64,
    /// Series per streamed `Select` response message: bounds the size of
    /// one gRPC message.
    pub select_batch_series: usize,
    /// Series one `Select` may return; 0 = no limit here. A request's own
    /// `max_series` also applies; the smaller one wins.
    pub max_series_per_query: u64,
    pub blocks: BlocksConfig,
}

impl Default for IngesterConfig {
    fn default() -> Self {
        IngesterConfig {
            wal: WalConfig::default(),
            head: HeadConfig::default(),
            max_series_per_tenant: 0,
            select_batch_series: 256,
            max_series_per_query: 0,
            blocks: BlocksConfig::default(),
        }
    }
}

impl IngesterConfig {
    pub(crate) fn head_options(&self) -> HeadOptions {
        HeadOptions {
            samples_per_chunk: self.head.samples_per_chunk,
            chunk_range_ms: self.head.chunk_range.as_millis_i64(),
            max_exemplars: self.head.max_exemplars,
            ..HeadOptions::default()
        }
    }

    pub(crate) fn wal_options(&self) -> WalOptions {
        WalOptions {
            segment_size: self.wal.segment_size_bytes,
            sync: match self.wal.fsync {
                FsyncPolicy::Batch => SyncPolicy::Batch,
                FsyncPolicy::Interval => SyncPolicy::Interval(self.wal.fsync_interval.as_std()),
            },
            repair: self.wal.repair,
        }
    }
}

impl IngesterConfig {
    fn validate_blocks(&self, path: &str) -> Result<(), ConfigError> {
        let b = &self.blocks;
        for (name, d) in [
            ("cut_check_interval", b.cut_check_interval),
            ("ship_interval", b.ship_interval),
            ("handoff_min_backoff", b.handoff_min_backoff),
        ] {
            if d.is_zero() {
                return Err(ConfigError::invalid(join(path, name), "must be positive"));
            }
        }
        if b.handoff_max_backoff < b.handoff_min_backoff {
            return Err(ConfigError::invalid(
                join(path, "handoff_max_backoff"),
                "must not be below handoff_min_backoff",
            ));
        }
        if !(1024..=(16 << 20)).contains(&b.handoff_message_bytes) {
            return Err(ConfigError::invalid(
                join(path, "handoff_message_bytes"),
                format!("{} is not in 1024..=16777216", b.handoff_message_bytes),
            ));
        }
        Ok(())
    }
}

impl Validate for IngesterConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let wal = join(path, "wal");
        if self.wal.segment_size_bytes < (64 << 10) {
            return Err(ConfigError::invalid(
                join(&wal, "segment_size_bytes"),
                format!(
                    "{} is below the minimum of 65536 (64 KiB)",
                    self.wal.segment_size_bytes
                ),
            ));
        }
        if self.wal.fsync == FsyncPolicy::Interval && self.wal.fsync_interval.is_zero() {
            return Err(ConfigError::invalid(
                join(&wal, "fsync_interval"),
                "must be positive when fsync is `interval`",
            ));
        }
        let head = join(path, "head");
        if !(1..=usize::from(u16::MAX)).contains(&self.head.samples_per_chunk) {
            return Err(ConfigError::invalid(
                join(&head, "samples_per_chunk"),
                format!("{} is not in 1..=65535", self.head.samples_per_chunk),
            ));
        }
        if self.head.chunk_range.as_millis_i64() <= 0 {
            return Err(ConfigError::invalid(
                join(&head, "chunk_range"),
                "must be positive",
            ));
        }
        self.validate_blocks(&join(path, "blocks"))?;
        if self.select_batch_series == 0 {
            return Err(ConfigError::invalid(
                join(path, "select_batch_series"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_the_field() {
        IngesterConfig::default().validate("ingester").unwrap();
        let mut c = IngesterConfig::default();
        c.wal.fsync = FsyncPolicy::Interval;
        c.wal.fsync_interval = Duration::default();
        let e = c.validate("ingester").unwrap_err().to_string();
        assert!(e.contains("ingester.wal.fsync_interval"), "{e}");
        let c: IngesterConfig =
            serde_yaml_like("{\"wal\": {\"fsync\": \"interval\", \"fsync_interval\": \"200ms\"}}");
        assert_eq!(
            c.wal_options().sync,
            SyncPolicy::Interval(std::time::Duration::from_millis(200))
        );
    }

    fn serde_yaml_like(json: &str) -> IngesterConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn block_settings_are_checked() {
        let mut c = IngesterConfig::default();
        c.blocks.handoff_max_backoff = Duration::from_millis(10);
        let e = c.validate("ingester").unwrap_err().to_string();
        assert!(e.contains("ingester.blocks.handoff_max_backoff"), "{e}");
        let c: IngesterConfig = serde_yaml_like("{\"blocks\": {\"recent_query_window\": \"1h\"}}");
        assert_eq!(c.blocks.recent_query_window, Duration::from_secs(3600));
        assert_eq!(c.blocks.ship_interval, Duration::from_secs(30));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<IngesterConfig>("{\"max_series\": 3}").is_err());
    }
}
