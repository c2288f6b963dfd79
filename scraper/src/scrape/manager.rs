//! The scraper service: turns a prometheus.yml into running scrape loops
//! and keeps them in step with config reloads.

use std::collections::HashMap;
use std::sync::Arc;

use tidemark_model::TenantId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::append::JobContext;
use super::health::TargetHealth;
use super::http::Fetcher;
use super::run::ScrapeLoop;
use super::{SampleSink, TargetOwnership};
use crate::ScrapeError;
use crate::config::PrometheusConfig;
use crate::discovery::job_target_groups;
use crate::discovery::kubernetes::sd_fingerprint;
use crate::relabel::Relabeler;
use crate::target::{Built, Target, TargetGroup, build_target};
use tidemark_model::Labels;

struct Running {
    job: String,
    url: String,
    target: Target,
    health: Arc<TargetHealth>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// A target this scraper scrapes, for `/api/v1/targets`.
#[derive(Debug, Clone)]
pub struct ActiveTarget {
    /// The job name (`scrapePool`).
    pub pool: String,
    pub target: Target,
    pub health: Arc<TargetHealth>,
}

/// A discovered target that relabeling dropped, for `/api/v1/targets`.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    pub pool: String,
    pub discovered: Labels,
}

/// What a config apply changed, and the targets that could not be used.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub started: usize,
    pub stopped: usize,
    pub kept: usize,
    /// Targets dropped by `relabel_configs`.
    pub dropped: usize,
    /// Targets owned by another scraper.
    pub not_owned: usize,
    /// Invalid targets and jobs over their `target_limit`.
    pub errors: Vec<ScrapeError>,
}

/// Owns one scrape loop per (job, target) this scraper is responsible for.
///
/// [`ScrapeManager::apply_yaml`] validates first: a bad config is refused
/// with the path of the bad field and the running loops stay as they are.
/// Loops whose target (or job config) disappeared are stopped, which makes
/// them write staleness markers; unchanged ones keep running undisturbed.
pub struct ScrapeManager<S: SampleSink, O: TargetOwnership> {
    sink: Arc<S>,
    ownership: Arc<O>,
    fetcher: Fetcher,
    default_tenant: TenantId,
    seed: u64,
    config: Option<PrometheusConfig>,
    /// Latest groups of each `http_sd_configs` entry, by (job, URL).
    http_sd: HashMap<(String, String), Vec<TargetGroup>>,
    /// Latest groups of each `kubernetes_sd_configs` entry, by (job,
    /// index), with the fingerprint of the entry that produced them.
    kubernetes_sd: HashMap<(String, usize), (u64, Vec<TargetGroup>)>,
    dropped: Vec<DroppedTarget>,
    loops: HashMap<u64, Running>,
    /// Cancelled loops still writing their staleness markers.
    stopping: Vec<Running>,
}

impl<S: SampleSink, O: TargetOwnership> ScrapeManager<S, O> {
    /// `seed` spreads this scraper's schedule (e.g. a hash of its instance id).
    pub fn new(
        sink: Arc<S>,
        ownership: Arc<O>,
        default_tenant: TenantId,
        seed: u64,
    ) -> Result<Self, ScrapeError> {
        Ok(ScrapeManager {
            sink,
            ownership,
            fetcher: Fetcher::new()?,
            default_tenant,
            seed,
            config: None,
            http_sd: HashMap::new(),
            kubernetes_sd: HashMap::new(),
            dropped: Vec::new(),
            loops: HashMap::new(),
            stopping: Vec::new(),
        })
    }

    /// The config currently applied.
    pub fn config(&self) -> Option<&PrometheusConfig> {
        self.config.as_ref()
    }

    /// Number of running scrape loops.
    pub fn running(&self) -> usize {
        self.loops.len()
    }

    /// (job, URL) of every running loop, sorted.
    pub fn targets(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .loops
            .values()
            .map(|r| (r.job.clone(), r.url.clone()))
            .collect();
        v.sort();
        v
    }

    /// Every running target with its last scrape, sorted by job and URL.
    pub fn active_targets(&self) -> Vec<ActiveTarget> {
        let mut v: Vec<ActiveTarget> = self
            .loops
            .values()
            .map(|r| ActiveTarget {
                pool: r.job.clone(),
                target: r.target.clone(),
                health: Arc::clone(&r.health),
            })
            .collect();
        v.sort_by(|a, b| (&a.pool, &a.target.url).cmp(&(&b.pool, &b.target.url)));
        v
    }

    /// Targets dropped by `relabel_configs` at the last apply.
    pub fn dropped_targets(&self) -> &[DroppedTarget] {
        &self.dropped
    }

    /// Records the latest target groups of the `http_sd_configs` entry with
    /// `url` in `job`; they are used from the next apply or refresh on.
    /// Returns whether they differ from the previous ones.
    pub fn set_http_sd_groups(&mut self, job: &str, url: &str, groups: Vec<TargetGroup>) -> bool {
        let key = (job.to_string(), url.to_string());
        if self.http_sd.get(&key) == Some(&groups) {
            return false;
        }
        self.http_sd.insert(key, groups);
        true
    }

    /// Records the latest target groups of `kubernetes_sd_configs[index]`
    /// of `job`, produced by the entry with [`sd_fingerprint`]
    /// `fingerprint`; used from the next apply or refresh on while the
    /// config still has that entry. Returns whether they changed.
    pub fn set_kubernetes_sd_groups(
        &mut self,
        job: &str,
        index: usize,
        fingerprint: u64,
        groups: Vec<TargetGroup>,
    ) -> bool {
        let key = (job.to_string(), index);
        if self
            .kubernetes_sd
            .get(&key)
            .is_some_and(|(fp, g)| *fp == fingerprint && g == &groups)
        {
            return false;
        }
        self.kubernetes_sd.insert(key, (fingerprint, groups));
        true
    }

    /// Parses, validates and applies a prometheus.yml. Must run inside a
    /// Tokio runtime (it spawns the loops).
    pub fn apply_yaml(&mut self, yaml: &str) -> Result<ApplyReport, ScrapeError> {
        let cfg = PrometheusConfig::from_yaml(yaml)?;
        cfg.log_ignored();
        Ok(self.apply(cfg))
    }

    /// Applies an already validated config.
    pub fn apply(&mut self, cfg: PrometheusConfig) -> ApplyReport {
        self.apply_inner(cfg)
    }

    fn apply_inner(&mut self, cfg: PrometheusConfig) -> ApplyReport {
        let mut report = ApplyReport::default();
        let mut desired: HashMap<u64, (Target, Arc<JobContext>)> = HashMap::new();
        let mut dropped = Vec::new();
        for job in &cfg.scrape_configs {
            let ctx = Arc::new(JobContext::new(job, &cfg.global));
            let relabel: Vec<Relabeler> = job
                .relabel_configs
                .iter()
                .cloned()
                .map(Relabeler::new)
                .collect();
            // The job's whole config is part of each loop's identity, so any
            // change to the job restarts its loops with the new settings.
            let job_fingerprint = {
                // Discovery sections only change the target set, not how a
                // target is scraped.
                let mut settings = job.clone();
                settings.static_configs.clear();
                settings.file_sd_configs.clear();
                settings.http_sd_configs.clear();
                settings.kubernetes_sd_configs.clear();
                xxhash_rust::xxh3::xxh3_64(
                    format!("{settings:?}{:?}", cfg.global.external_labels).as_bytes(),
                )
            };
            let (mut groups, discovery_errors) = job_target_groups(job);
            report.errors.extend(discovery_errors);
            for sd in &job.http_sd_configs {
                if let Some(g) = self.http_sd.get(&(job.job_name.clone(), sd.url.clone())) {
                    groups.extend(g.iter().cloned());
                }
            }
            for (i, sd) in job.kubernetes_sd_configs.iter().enumerate() {
                if let Some((fp, g)) = self.kubernetes_sd.get(&(job.job_name.clone(), i))
                    && *fp == sd_fingerprint(sd)
                {
                    groups.extend(g.iter().cloned());
                }
            }
            let mut job_targets = Vec::new();
            for group in &groups {
                for t in &group.targets {
                    match build_target(job, &relabel, t, &group.labels) {
                        Ok(Built::Target(target)) => job_targets.push(target),
                        Ok(Built::Dropped(discovered)) => {
                            report.dropped += 1;
                            dropped.push(DroppedTarget {
                                pool: job.job_name.clone(),
                                discovered,
                            });
                        }
                        Err(e) => report.errors.push(e),
                    }
                }
            }
            if let Some(limit) = job.target_limit.filter(|&l| l > 0)
                && job_targets.len() as u64 > limit
            {
                report.errors.push(ScrapeError::LimitExceeded {
                    what: "target limit",
                    setting: "target_limit",
                    limit,
                    actual: job_targets.len() as u64,
                });
                continue;
            }
            for target in job_targets {
                if !self.ownership.owns(&target) {
                    report.not_owned += 1;
                    continue;
                }
                let key = target.hash() ^ job_fingerprint.rotate_left(17);
                desired.insert(key, (target, Arc::clone(&ctx)));
            }
        }
        let stale: Vec<u64> = self
            .loops
            .keys()
            .filter(|k| !desired.contains_key(k))
            .copied()
            .collect();
        for k in stale {
            if let Some(r) = self.loops.remove(&k) {
                r.cancel.cancel();
                self.stopping.push(r);
                report.stopped += 1;
            }
        }
        self.stopping.retain(|r| !r.handle.is_finished());
        for (key, (target, ctx)) in desired {
            if self.loops.contains_key(&key) {
                report.kept += 1;
                continue;
            }
            let job = ctx.job_name.clone();
            let url = target.url.clone();
            let cancel = CancellationToken::new();
            let l = ScrapeLoop::new(
                target.clone(),
                ctx,
                self.default_tenant.clone(),
                self.fetcher.clone(),
                self.seed,
            );
            let health = l.health();
            let handle = tokio::spawn(l.run(Arc::clone(&self.sink), cancel.clone()));
            tracing::info!(job = %job, target = %url, "scrape loop started");
            self.loops.insert(
                key,
                Running {
                    job,
                    url,
                    target,
                    health,
                    cancel,
                    handle,
                },
            );
            report.started += 1;
        }
        // Forget groups of http_sd entries the config no longer has.
        self.http_sd.retain(|(job, url), _| {
            cfg.scrape_configs
                .iter()
                .any(|j| &j.job_name == job && j.http_sd_configs.iter().any(|sd| &sd.url == url))
        });
        self.kubernetes_sd.retain(|(job, i), (fp, _)| {
            cfg.scrape_configs.iter().any(|j| {
                &j.job_name == job
                    && j.kubernetes_sd_configs
                        .get(*i)
                        .is_some_and(|sd| sd_fingerprint(sd) == *fp)
            })
        });
        self.dropped = dropped;
        self.config = Some(cfg);
        report
    }

    /// Re-reads discovery sources (file_sd files, cached http_sd groups) and
    /// re-checks ownership under the current config
    /// and starts/stops loops for targets that appeared or went away. Call it
    /// every `refresh_interval`; unchanged targets keep running.
    pub fn refresh_discovery(&mut self) -> Option<ApplyReport> {
        let cfg = self.config.clone()?;
        Some(self.apply_inner(cfg))
    }

    /// Stops every loop (each writes its staleness markers) and waits.
    pub async fn shutdown(mut self) {
        let mut loops: Vec<Running> = self.loops.drain().map(|(_, r)| r).collect();
        loops.append(&mut self.stopping);
        for r in &loops {
            r.cancel.cancel();
        }
        for r in loops {
            if let Err(e) = r.handle.await {
                tracing::warn!(job = %r.job, target = %r.url, error = %e, "scrape loop ended abnormally");
            }
        }
    }
}
