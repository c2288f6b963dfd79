//! The per-target loop: schedule, fetch, append, push.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tidemark_model::TenantId;
use tokio_util::sync::CancellationToken;

use super::append::{JobContext, ScrapeState, report_samples};
use super::health::{Health, LastScrape, TargetHealth};
use super::http::Fetcher;
use super::schedule::{first_scrape_at, offset_ms};
use super::{SampleSink, ScrapeBatch};
use crate::target::Target;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Scrapes one target until cancelled, then marks all its series stale.
pub struct ScrapeLoop {
    target: Target,
    ctx: Arc<JobContext>,
    tenant: TenantId,
    fetcher: Fetcher,
    state: ScrapeState,
    seed: u64,
    health: Arc<TargetHealth>,
}

impl ScrapeLoop {
    /// `default_tenant` is used unless the job names a `tenant`; `seed`
    /// (per scraper) shifts every target's phase so that two scrapers with
    /// the same targets do not scrape in lock step.
    pub fn new(
        target: Target,
        ctx: Arc<JobContext>,
        default_tenant: TenantId,
        fetcher: Fetcher,
        seed: u64,
    ) -> Self {
        let tenant = target.tenant.clone().unwrap_or(default_tenant);
        ScrapeLoop {
            target,
            ctx,
            tenant,
            fetcher,
            state: ScrapeState::new(),
            seed,
            health: Arc::new(TargetHealth::default()),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The last scrape's health, error and timing, shared with the targets
    /// page.
    pub fn health(&self) -> Arc<TargetHealth> {
        Arc::clone(&self.health)
    }

    /// One scrape stamped `ts`: the scraped samples, staleness markers and
    /// report series. A failed scrape yields `up` 0 and the error is logged.
    pub async fn scrape_once(&mut self, ts: i64) -> ScrapeBatch {
        let started = Instant::now();
        let fetched = self
            .fetcher
            .fetch(
                &self.target.url,
                &self.ctx.accept,
                self.target.timeout.as_std(),
                self.ctx.enable_compression,
                self.ctx.body_size_limit,
                &self.ctx.auth,
            )
            .await;
        let outcome = match fetched {
            Ok(f) => self.state.append(
                &self.ctx,
                self.target.labels(),
                &f.body,
                f.content_type.as_deref(),
                ts,
            ),
            Err(e) => self.state.failed(ts, e),
        };
        let duration = started.elapsed().as_secs_f64();
        self.health.record(LastScrape {
            health: if outcome.error.is_none() {
                Health::Up
            } else {
                Health::Down
            },
            at_ms: ts,
            duration_s: duration,
            error: outcome
                .error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        });
        if let Some(e) = &outcome.error {
            tracing::debug!(job = %self.ctx.job_name, target = %self.target.url, tenant = %self.tenant, error = %e, "scrape failed");
        }
        let mut samples = report_samples(
            &self.ctx,
            self.target.labels(),
            ts,
            Some((&outcome, duration)),
        );
        samples.extend(outcome.samples);
        ScrapeBatch {
            tenant: self.tenant.clone(),
            samples,
            exemplars: outcome.exemplars,
        }
    }

    /// The staleness batch for a target that went away: every series of
    /// the last scrape and the report series get a staleness marker.
    pub fn end_of_run(&mut self, ts: i64) -> ScrapeBatch {
        let mut samples = self.state.stale_all(ts);
        samples.extend(report_samples(&self.ctx, self.target.labels(), ts, None));
        ScrapeBatch {
            tenant: self.tenant.clone(),
            samples,
            exemplars: Vec::new(),
        }
    }

    /// Scrapes on the target's phase of its interval until `cancel` fires,
    /// then pushes the end-of-run staleness markers.
    pub async fn run<S: SampleSink>(mut self, sink: Arc<S>, cancel: CancellationToken) {
        let interval_ms = self.target.interval.as_millis_i64().max(1);
        let offset = offset_ms(self.target.hash(), self.seed, interval_ms);
        let now = now_ms();
        let first = first_scrape_at(now, interval_ms, offset);
        let start = tokio::time::Instant::now()
            + std::time::Duration::from_millis((first - now).max(0) as u64);
        let mut ticker = tokio::time::interval_at(start, self.target.interval.as_std());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {
                    let batch = self.scrape_once(now_ms()).await;
                    push(&*sink, batch, &self.target).await;
                }
            }
        }
        let batch = self.end_of_run(now_ms());
        push(&*sink, batch, &self.target).await;
    }
}

async fn push<S: SampleSink>(sink: &S, batch: ScrapeBatch, target: &Target) {
    let tenant = batch.tenant.clone();
    let n = batch.samples.len();
    if let Err(e) = sink.push(batch).await {
        tracing::warn!(target = %target.url, tenant = %tenant, samples = n, error = %e, "pushing scraped samples failed");
    }
}
