//! What the benchmark measures: process CPU and memory from `/proc`, and a
//! sink that counts what the scrape loops pushed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tidemark_scraper::ScrapeError;
use tidemark_scraper::scrape::{SampleSink, ScrapeBatch};

use crate::BoxError;

/// Linux's USER_HZ on every architecture tidemark targets: `/proc/<pid>/stat`
/// counts CPU time in these ticks.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system, all threads) a process used so far.
pub(crate) fn cpu_seconds(pid: &str) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its
    // closing parenthesis start with field 3 (state).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc/<pid>/stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |field: usize| -> Result<f64, BoxError> {
        let v: f64 = fields.get(field - 3).ok_or("short stat line")?.parse()?;
        Ok(v)
    };
    Ok((tick(14)? + tick(15)?) / TICKS_PER_SECOND)
}

/// Resident memory now and its peak (`VmRSS`, `VmHWM`), in bytes.
pub(crate) fn memory(pid: &str) -> Result<(u64, u64), BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> Result<u64, BoxError> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .ok_or_else(|| format!("{key} missing from /proc/{pid}/status"))?;
        let v: u64 = line
            .trim_start_matches(key)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(v * 1024)
    };
    Ok((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// One scrape of one target as seen at the sink.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scrape {
    pub(crate) at_ms: i64,
    pub(crate) duration_s: f64,
    pub(crate) up: bool,
}

#[derive(Default)]
struct Counts {
    samples: u64,
    scrapes: HashMap<String, Vec<Scrape>>,
}

/// Counts samples and records each scrape's `up` and
/// `scrape_duration_seconds` per `instance`; keeps nothing else, so the
/// scraper's memory is its own.
#[derive(Default)]
pub(crate) struct CountingSink {
    counts: Mutex<Counts>,
}

impl CountingSink {
    /// Samples pushed so far (scraped series, staleness markers, report series).
    pub(crate) fn samples(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .samples
    }

    /// Every target's scrapes that started in `[from_ms, to_ms)`.
    pub(crate) fn scrapes_between(&self, from_ms: i64, to_ms: i64) -> HashMap<String, Vec<Scrape>> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .scrapes
            .iter()
            .map(|(instance, s)| {
                let kept = s
                    .iter()
                    .filter(|s| s.at_ms >= from_ms && s.at_ms < to_ms)
                    .copied()
                    .collect();
                (instance.clone(), kept)
            })
            .collect()
    }
}

impl SampleSink for CountingSink {
    fn push(&self, batch: ScrapeBatch) -> impl Future<Output = Result<(), ScrapeError>> + Send {
        // The report series come first in a batch; a staleness-only batch
        // (end of run) has NaN there and is not a scrape.
        let mut up = None;
        let mut duration = None;
        for (labels, sample) in batch.samples.iter().take(5) {
            match labels.metric_name() {
                Some("up") if !sample.v.is_nan() => {
                    up = Some((labels.get("instance").unwrap_or("").to_string(), sample));
                }
                Some("scrape_duration_seconds") => duration = Some(sample.v),
                _ => {}
            }
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.samples += batch.samples.len() as u64;
        if let Some((instance, sample)) = up {
            counts.scrapes.entry(instance).or_default().push(Scrape {
                at_ms: sample.t,
                duration_s: duration.unwrap_or(f64::NAN),
                up: sample.v == 1.0,
            });
        }
        std::future::ready(Ok(()))
    }
}

/// What a window of scrapes says about coverage and latency.
#[derive(Debug)]
pub(crate) struct ScrapeStats {
    pub(crate) targets_seen: usize,
    /// Targets scraped exactly once in every interval of the window.
    pub(crate) targets_every_interval: usize,
    pub(crate) scrapes: usize,
    pub(crate) failed: usize,
    pub(crate) duration_p50_s: f64,
    pub(crate) duration_p99_s: f64,
    pub(crate) duration_max_s: f64,
}

/// `intervals` is how many whole intervals the window spans: a target with a
/// fixed phase is then scraped exactly that many times in it.
pub(crate) fn scrape_stats(
    scrapes: &HashMap<String, Vec<Scrape>>,
    intervals: usize,
) -> ScrapeStats {
    let mut durations: Vec<f64> = scrapes
        .values()
        .flatten()
        .map(|s| s.duration_s)
        .filter(|d| d.is_finite())
        .collect();
    durations.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        if durations.is_empty() {
            return f64::NAN;
        }
        let i = ((durations.len() as f64 - 1.0) * p).round() as usize;
        durations[i.min(durations.len() - 1)]
    };
    ScrapeStats {
        targets_seen: scrapes.values().filter(|s| !s.is_empty()).count(),
        targets_every_interval: scrapes.values().filter(|s| s.len() == intervals).count(),
        scrapes: scrapes.values().map(Vec::len).sum(),
        failed: scrapes.values().flatten().filter(|s| !s.up).count(),
        duration_p50_s: q(0.5),
        duration_p99_s: q(0.99),
        duration_max_s: durations.last().copied().unwrap_or(f64::NAN),
    }
}
