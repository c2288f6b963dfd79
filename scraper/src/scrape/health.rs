//! The last scrape of a target as the targets page shows it.

use std::sync::Mutex;

/// `health` on `/api/v1/targets`: `unknown` until the first scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the last scrape of one target did.
#[derive(Debug, Clone, PartialEq)]
pub struct LastScrape {
    pub health: Health,
    /// Start of the last scrape, ms since the epoch (0: never scraped).
    pub at_ms: i64,
    pub duration_s: f64,
    /// Empty after a successful scrape.
    pub error: String,
}

impl Default for LastScrape {
    fn default() -> Self {
        LastScrape {
            health: Health::Unknown,
            at_ms: 0,
            duration_s: 0.0,
            error: String::new(),
        }
    }
}

/// Shared between a scrape loop (the only writer, once per scrape) and the
/// targets API (readers). The lock is held for a copy, never across I/O.
#[derive(Debug, Default)]
pub struct TargetHealth {
    last: Mutex<LastScrape>,
}

impl TargetHealth {
    pub fn record(&self, last: LastScrape) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = last;
    }

    pub fn last(&self) -> LastScrape {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
