//! The scrape loop and its seams to the rest of tidemark.
//!
//! A [`ScrapeLoop`] scrapes one target on an evenly spread schedule
//! ([`schedule`]), turns the body into samples ([`ScrapeState::append`]:
//! parse, label merge, `metric_relabel_configs`, limits, staleness) and
//! pushes one [`ScrapeBatch`] per scrape into a [`SampleSink`]. The sink is
//! where the distributor client plugs in; [`TargetOwnership`] is where the
//! ring decides which scraper scrapes which target.

mod append;
mod health;
mod http;
mod manager;
mod run;
pub mod schedule;

use std::future::Future;
use std::sync::Mutex;

use tidemark_model::{Exemplar, Labels, Sample, TenantId};

pub use append::{JobContext, ScrapeOutcome, ScrapeState, report_samples};
pub use health::{Health, LastScrape, TargetHealth};
pub use http::{AuthConfig, FetchedBody, Fetcher};
pub use manager::{ActiveTarget, ApplyReport, DroppedTarget, ScrapeManager};
pub use run::ScrapeLoop;

use crate::ScrapeError;
use crate::target::Target;

/// The samples of one scrape of one target, for one tenant: the scraped
/// series, staleness markers for series that went away, and the report
/// series (`up`, `scrape_*`); and the exemplars the scraped samples carried.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeBatch {
    pub tenant: TenantId,
    pub samples: Vec<(Labels, Sample)>,
    pub exemplars: Vec<(Labels, Exemplar)>,
}

/// Where scraped samples go. Implemented by the distributor client (gRPC
/// push) in the scraper role and by in-memory sinks in tests.
pub trait SampleSink: Send + Sync + 'static {
    /// Accepts one batch; an error is logged by the loop and the batch is
    /// not retried (the next scrape brings fresh samples).
    fn push(&self, batch: ScrapeBatch) -> impl Future<Output = Result<(), ScrapeError>> + Send;
}

/// Decides whether this scraper scrapes a target. With several scrapers the
/// ring implements it (a target belongs to the scraper owning its hash), so
/// a scraper joining or leaving moves only its share of targets.
pub trait TargetOwnership: Send + Sync + 'static {
    fn owns(&self, target: &Target) -> bool;

    /// Changes whenever the answer of [`TargetOwnership::owns`] may have
    /// changed (a scraper joined, left or stopped heartbeating); the
    /// scraper service re-checks its targets when it does.
    fn epoch(&self) -> u64 {
        0
    }
}

/// The single-scraper ownership: every target is ours.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnAll;

impl TargetOwnership for OwnAll {
    fn owns(&self, _target: &Target) -> bool {
        true
    }
}

/// A sink that keeps every batch in memory (tests, debugging).
#[derive(Debug, Default)]
pub struct MemorySink {
    batches: Mutex<Vec<ScrapeBatch>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every batch pushed so far, oldest first.
    pub fn batches(&self) -> Vec<ScrapeBatch> {
        match self.batches.lock() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl SampleSink for MemorySink {
    fn push(&self, batch: ScrapeBatch) -> impl Future<Output = Result<(), ScrapeError>> + Send {
        match self.batches.lock() {
            Ok(mut b) => b.push(batch),
            Err(poisoned) => poisoned.into_inner().push(batch),
        }
        std::future::ready(Ok(()))
    }
}
