//! From a scraped body to samples: parsing, the label merge,
//! `metric_relabel_configs`, limits, staleness markers, and the exemplars
//! that came with the samples.

use std::collections::{HashMap, HashSet};

use tidemark_model::{
    EXEMPLAR_MAX_LABEL_CHARS, Exemplar, Labels, STALE_NAN, Sample, is_valid_label_name,
    is_valid_metric_name,
};

use crate::ScrapeError;
use crate::config::{GlobalConfig, ScrapeConfig};
use crate::parse::{Entry, ExemplarText, Format, Parser, Series, accept_header};
use crate::relabel::{LabelSetBuilder, Relabeler, process};
use crate::target::merge_sample_labels;

use super::http::AuthConfig;

/// Everything a scrape of any target of one job needs, compiled once.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job_name: String,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_relabel: Vec<Relabeler>,
    /// 0 means no limit, for every limit below.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub body_size_limit: u64,
    /// Added to every sample that lacks the label name.
    pub external_labels: Vec<(String, String)>,
    pub accept: String,
    pub enable_compression: bool,
    pub auth: AuthConfig,
}

impl JobContext {
    /// Compiles a validated, resolved job.
    pub fn new(job: &ScrapeConfig, global: &GlobalConfig) -> Self {
        JobContext {
            job_name: job.job_name.clone(),
            honor_labels: job.honor_labels,
            honor_timestamps: job.honor_timestamps,
            track_timestamps_staleness: job.track_timestamps_staleness,
            metric_relabel: job
                .metric_relabel_configs
                .iter()
                .cloned()
                .map(Relabeler::new)
                .collect(),
            sample_limit: job.sample_limit.unwrap_or(0),
            label_limit: job.label_limit.unwrap_or(0),
            label_name_length_limit: job.label_name_length_limit.unwrap_or(0),
            label_value_length_limit: job.label_value_length_limit.unwrap_or(0),
            body_size_limit: job.body_size_limit_bytes(),
            external_labels: global
                .external_labels
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            accept: accept_header(&job.protocols()),
            enable_compression: job.enable_compression.unwrap_or(true),
            auth: AuthConfig::from_http_client(&job.http_client()),
        }
    }
}

/// The result of one scrape, ready for the sink.
#[derive(Debug)]
pub struct ScrapeOutcome {
    /// Scraped samples plus staleness markers (report series not included).
    pub samples: Vec<(Labels, Sample)>,
    /// Exemplars of the scraped samples, with their series.
    pub exemplars: Vec<(Labels, Exemplar)>,
    /// Samples in the exposition (`scrape_samples_scraped`).
    pub scraped: u64,
    /// Samples kept after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: u64,
    /// Series not exposed by the previous scrape (`scrape_series_added`).
    pub series_added: u64,
    /// Why the scrape failed (`up` is 0), if it did.
    pub error: Option<ScrapeError>,
}

struct CacheEntry {
    /// `None`: metric relabeling dropped the series.
    labels: Option<Labels>,
    seen: u64,
}

/// Per-target memory between scrapes: parsed-series cache (by the series
/// text as exposed, so an unchanged series costs a hash lookup) and the
/// series of the last scrape, for staleness markers.
#[derive(Default)]
pub struct ScrapeState {
    cache: HashMap<String, CacheEntry>,
    previous: HashSet<Labels>,
    iteration: u64,
}

impl ScrapeState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns a body into samples at scrape time `ts`. On any error (parse,
    /// invalid series, limit) no scraped sample is kept and every series of
    /// the previous scrape gets a staleness marker, as in Prometheus.
    pub fn append(
        &mut self,
        ctx: &JobContext,
        target: &Labels,
        body: &[u8],
        content_type: Option<&str>,
        ts: i64,
    ) -> ScrapeOutcome {
        self.iteration += 1;
        match self.collect(ctx, target, body, content_type, ts) {
            Ok(Collected {
                mut samples,
                exemplars,
                scraped,
                added,
                current,
            }) => {
                let post_relabel = samples.len() as u64;
                for gone in self.previous.difference(&current) {
                    samples.push((gone.clone(), Sample::new(ts, STALE_NAN)));
                }
                self.previous = current;
                let it = self.iteration;
                self.cache.retain(|_, e| e.seen == it);
                ScrapeOutcome {
                    samples,
                    exemplars,
                    scraped,
                    post_relabel,
                    series_added: added,
                    error: None,
                }
            }
            Err(e) => self.failed(ts, e),
        }
    }

    /// A scrape that failed before there was a body (HTTP error, timeout):
    /// staleness markers for every series of the previous scrape.
    pub fn failed(&mut self, ts: i64, error: ScrapeError) -> ScrapeOutcome {
        ScrapeOutcome {
            samples: self.stale_all(ts),
            exemplars: Vec::new(),
            scraped: 0,
            post_relabel: 0,
            series_added: 0,
            error: Some(error),
        }
    }

    /// Staleness markers for every series of the previous scrape (the
    /// target went away or its scrape failed); forgets them.
    pub fn stale_all(&mut self, ts: i64) -> Vec<(Labels, Sample)> {
        self.previous
            .drain()
            .map(|l| (l, Sample::new(ts, STALE_NAN)))
            .collect()
    }

    fn collect(
        &mut self,
        ctx: &JobContext,
        target: &Labels,
        body: &[u8],
        content_type: Option<&str>,
        ts: i64,
    ) -> Result<Collected, ScrapeError> {
        let mut parser = Parser::new(body, Format::from_content_type(content_type));
        let mut samples = Vec::new();
        let mut exemplars = Vec::new();
        let mut current = HashSet::new();
        let mut scraped = 0u64;
        // Series not in the cache, i.e. not exposed by the previous scrape
        // (Prometheus counts `scrape_series_added` the same way).
        let mut added = 0u64;
        while let Some(entry) = parser.next_entry()? {
            let Entry::Series(s) = entry else { continue };
            scraped += 1;
            let labels = match self.cache.get_mut(s.raw) {
                Some(e) => {
                    e.seen = self.iteration;
                    e.labels.clone()
                }
                None => {
                    let labels = build_sample_labels(ctx, target, &s)?;
                    added += u64::from(labels.is_some());
                    self.cache.insert(
                        s.raw.to_string(),
                        CacheEntry {
                            labels: labels.clone(),
                            seen: self.iteration,
                        },
                    );
                    labels
                }
            };
            let Some(labels) = labels else { continue };
            let exposed_ts = s.timestamp_ms.filter(|_| ctx.honor_timestamps);
            let t = exposed_ts.unwrap_or(ts);
            let tracked = exposed_ts.is_none() || ctx.track_timestamps_staleness;
            if tracked && !current.insert(labels.clone()) {
                // Same series twice in one exposition: keep the first.
                continue;
            }
            if let Some(ex) = &s.exemplar {
                match exemplar_of(ex, t) {
                    Ok(e) => exemplars.push((labels.clone(), e)),
                    Err(why) => {
                        tracing::debug!(job = %ctx.job_name, series = %labels, why, "exemplar dropped");
                    }
                }
            }
            samples.push((labels, Sample::new(t, s.value)));
            if ctx.sample_limit > 0 && samples.len() as u64 > ctx.sample_limit {
                return Err(ScrapeError::LimitExceeded {
                    what: "sample limit",
                    setting: "sample_limit",
                    limit: ctx.sample_limit,
                    actual: samples.len() as u64,
                });
            }
        }
        Ok(Collected {
            samples,
            exemplars,
            scraped,
            added,
            current,
        })
    }
}

/// What one exposition gave, before staleness.
struct Collected {
    samples: Vec<(Labels, Sample)>,
    exemplars: Vec<(Labels, Exemplar)>,
    /// Samples in the exposition.
    scraped: u64,
    /// Series not exposed by the previous scrape.
    added: u64,
    /// Series of this scrape whose staleness is tracked.
    current: HashSet<Labels>,
}

/// An exposed exemplar, stamped with its sample's time when it has no
/// timestamp of its own (as Prometheus does); an error when its labels
/// repeat a name or exceed OpenMetrics's 128 characters.
fn exemplar_of(ex: &ExemplarText<'_>, sample_t: i64) -> Result<Exemplar, &'static str> {
    let pairs: Vec<_> = ex
        .labels
        .iter()
        .map(|(n, v)| (n.unescape(), v.unescape()))
        .collect();
    let labels = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
        .map_err(|_| "an exemplar label name repeats")?;
    let e = Exemplar {
        labels,
        t: ex.timestamp_ms.unwrap_or(sample_t),
        v: ex.value,
    };
    if e.label_chars() > EXEMPLAR_MAX_LABEL_CHARS {
        return Err("exemplar labels exceed 128 characters");
    }
    Ok(e)
}

/// The stored labels of one scraped series: checked names, the merge with
/// the target's labels, metric relabeling, label limits, external labels.
/// `None` when metric relabeling drops it.
fn build_sample_labels(
    ctx: &JobContext,
    target: &Labels,
    s: &Series<'_>,
) -> Result<Option<Labels>, ScrapeError> {
    let invalid = |message: String| ScrapeError::InvalidSeries {
        series: s.raw.to_string(),
        message,
    };
    let name = s.name.unescape();
    if !is_valid_metric_name(&name) {
        return Err(invalid(format!("invalid metric name {name:?}")));
    }
    let mut lb = LabelSetBuilder::new();
    lb.set(tidemark_model::METRIC_NAME, &name);
    for (n, v) in s.labels {
        let n = n.unescape();
        if !is_valid_label_name(&n) || n == tidemark_model::METRIC_NAME {
            return Err(invalid(format!("invalid label name {n:?}")));
        }
        if !lb.get(&n).is_empty() {
            return Err(invalid(format!("label name {n:?} is not unique")));
        }
        lb.set(&n, &v.unescape());
    }
    merge_sample_labels(&mut lb, target, ctx.honor_labels);
    if !process(&mut lb, &ctx.metric_relabel) {
        return Ok(None);
    }
    let count = lb.iter().count() as u64;
    if ctx.label_limit > 0 && count > ctx.label_limit {
        return Err(ScrapeError::LimitExceeded {
            what: "label limit",
            setting: "label_limit",
            limit: ctx.label_limit,
            actual: count,
        });
    }
    for (n, v) in lb.iter() {
        if ctx.label_name_length_limit > 0 && n.len() as u64 > ctx.label_name_length_limit {
            return Err(ScrapeError::LimitExceeded {
                what: "label name length limit",
                setting: "label_name_length_limit",
                limit: ctx.label_name_length_limit,
                actual: n.len() as u64,
            });
        }
        if ctx.label_value_length_limit > 0 && v.len() as u64 > ctx.label_value_length_limit {
            return Err(ScrapeError::LimitExceeded {
                what: "label value length limit",
                setting: "label_value_length_limit",
                limit: ctx.label_value_length_limit,
                actual: v.len() as u64,
            });
        }
    }
    if lb.get(tidemark_model::METRIC_NAME).is_empty() {
        return Ok(None);
    }
    for (n, v) in &ctx.external_labels {
        if lb.get(n).is_empty() {
            lb.set(n, v);
        }
    }
    Ok(Some(lb.labels()))
}

/// The report series Prometheus writes for every scrape, with the target's
/// labels (and external labels): `up`, `scrape_duration_seconds`,
/// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`,
/// `scrape_series_added`. `value_override` (a staleness marker when the
/// target goes away) replaces every value.
pub fn report_samples(
    ctx: &JobContext,
    target: &Labels,
    ts: i64,
    outcome: Option<(&ScrapeOutcome, f64)>,
) -> Vec<(Labels, Sample)> {
    let values: [(&str, f64); 5] = match outcome {
        Some((o, duration_s)) => [
            ("up", if o.error.is_none() { 1.0 } else { 0.0 }),
            ("scrape_duration_seconds", duration_s),
            ("scrape_samples_scraped", o.scraped as f64),
            (
                "scrape_samples_post_metric_relabeling",
                o.post_relabel as f64,
            ),
            ("scrape_series_added", o.series_added as f64),
        ],
        None => [
            ("up", STALE_NAN),
            ("scrape_duration_seconds", STALE_NAN),
            ("scrape_samples_scraped", STALE_NAN),
            ("scrape_samples_post_metric_relabeling", STALE_NAN),
            ("scrape_series_added", STALE_NAN),
        ],
    };
    values
        .into_iter()
        .map(|(name, v)| {
            let mut lb = LabelSetBuilder::from_labels(target);
            lb.set(tidemark_model::METRIC_NAME, name);
            for (n, val) in &ctx.external_labels {
                if lb.get(n).is_empty() {
                    lb.set(n, val);
                }
            }
            (lb.labels(), Sample::new(ts, v))
        })
        .collect()
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
