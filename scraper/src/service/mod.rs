//! The scraper service: a [`ScrapeManager`] driven by config reloads,
//! discovery and ring changes, and the handle the HTTP API talks to.
//!
//! One task owns the manager; everything else sends it commands through a
//! [`ScraperHandle`], so there is no lock around the scrape loops. The task
//! re-applies the running config when a file_sd file changes (checked every
//! second), when an `http_sd_configs` endpoint returns new groups (fetched
//! every `refresh_interval`), when a `kubernetes_sd_configs` watch reports
//! a changed set of groups, at the shortest file_sd `refresh_interval`,
//! and when [`TargetOwnership::epoch`] changes.

pub mod api;
mod config;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tidemark_model::TenantId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::ScraperConfig;

use crate::ScrapeError;
use crate::config::PrometheusConfig;
use crate::discovery::file_sd_fingerprint;
use crate::discovery::http::fetch_http_sd;
use crate::discovery::kubernetes::{KubernetesDiscovery, sd_fingerprint};
use crate::scrape::{
    ActiveTarget, ApplyReport, DroppedTarget, Fetcher, SampleSink, ScrapeManager, TargetOwnership,
};
use crate::target::TargetGroup;

/// How often file_sd files and ring ownership are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Every target of the running config, for `/api/v1/targets`.
#[derive(Debug, Clone, Default)]
pub struct TargetsView {
    pub active: Vec<ActiveTarget>,
    pub dropped: Vec<DroppedTarget>,
}

enum Command {
    Reload(oneshot::Sender<Result<String, ScrapeError>>),
    Targets(oneshot::Sender<TargetsView>),
}

/// Talks to a running [`Scraper`]; cheap to clone.
#[derive(Clone)]
pub struct ScraperHandle {
    cmds: mpsc::Sender<Command>,
}

impl ScraperHandle {
    /// Re-reads the config file and applies it. A bad file is refused with
    /// the path of the bad field and the running config stays. On success,
    /// a one-line summary of what changed.
    pub async fn reload(&self) -> Result<String, ScrapeError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || {
            ScrapeError::Config(tidemark_config::ConfigError::invalid(
                "scraper",
                "the scraper is shutting down",
            ))
        };
        self.cmds
            .send(Command::Reload(tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// The current targets; empty once the scraper has stopped.
    pub async fn targets(&self) -> TargetsView {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Targets(tx)).await.is_err() {
            return TargetsView::default();
        }
        rx.await.unwrap_or_default()
    }
}

/// The running scraper service. Stop it with [`Scraper::stop`]: every
/// target then gets its staleness markers, pushed into the sink.
pub struct Scraper {
    handle: ScraperHandle,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Scraper {
    /// Reads and applies `config_file` (if any) and starts the loops. A bad
    /// file fails the start with the path of the bad field.
    pub async fn start<S: SampleSink, O: TargetOwnership>(
        config_file: Option<PathBuf>,
        sink: Arc<S>,
        ownership: Arc<O>,
        default_tenant: TenantId,
        seed: u64,
    ) -> Result<Scraper, ScrapeError> {
        let mut manager = ScrapeManager::new(sink, Arc::clone(&ownership), default_tenant, seed)?;
        let fetcher = Fetcher::new()?;
        let cancel = CancellationToken::new();
        let (sd_tx, sd_rx) = mpsc::channel(64);
        let mut state = State {
            config_file,
            fetcher,
            sd_tx,
            sd_cancel: cancel.child_token(),
            sd_tasks: TaskTracker::new(),
            file_fp: 0,
            epoch: ownership.epoch(),
        };
        if let Some(cfg) = state.read()? {
            let report = manager.apply(cfg);
            log_report("config applied", &report);
            state.after_apply(&manager, &cancel);
        }
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run(manager, ownership, state, rx, sd_rx, cancel.clone()));
        Ok(Scraper {
            handle: ScraperHandle { cmds: tx },
            cancel,
            task,
        })
    }

    pub fn handle(&self) -> ScraperHandle {
        self.handle.clone()
    }

    /// Stops discovery and every scrape loop, and waits until their
    /// staleness markers are in the sink.
    pub async fn stop(self) {
        self.cancel.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "scraper task ended abnormally");
        }
    }
}

/// Which discovery entry a result is from.
enum SdSource {
    Http { url: String },
    Kubernetes { index: usize, fingerprint: u64 },
}

struct SdResult {
    job: String,
    source: SdSource,
    groups: Result<Vec<TargetGroup>, ScrapeError>,
}

struct State {
    config_file: Option<PathBuf>,
    fetcher: Fetcher,
    sd_tx: mpsc::Sender<SdResult>,
    sd_cancel: CancellationToken,
    sd_tasks: TaskTracker,
    file_fp: u64,
    epoch: u64,
}

impl State {
    fn read(&self) -> Result<Option<PrometheusConfig>, ScrapeError> {
        let Some(path) = &self.config_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            ScrapeError::Config(tidemark_config::ConfigError::Read {
                file: path.display().to_string(),
                message: e.to_string(),
            })
        })?;
        let cfg = PrometheusConfig::from_yaml(&text)?;
        cfg.log_ignored();
        Ok(Some(cfg))
    }

    /// Restarts the http_sd fetchers for the applied config and notes the
    /// file_sd fingerprint.
    fn after_apply<S: SampleSink, O: TargetOwnership>(
        &mut self,
        manager: &ScrapeManager<S, O>,
        cancel: &CancellationToken,
    ) {
        self.sd_cancel.cancel();
        self.sd_cancel = cancel.child_token();
        let Some(cfg) = manager.config() else { return };
        self.file_fp = file_sd_fingerprint(cfg);
        for job in &cfg.scrape_configs {
            for sd in &job.http_sd_configs {
                let (job, sd) = (job.job_name.clone(), sd.clone());
                let (fetcher, tx, stop) = (
                    self.fetcher.clone(),
                    self.sd_tx.clone(),
                    self.sd_cancel.clone(),
                );
                self.sd_tasks.spawn(async move {
                    loop {
                        let groups = fetch_http_sd(&fetcher, &job, &sd).await;
                        let r = SdResult {
                            job: job.clone(),
                            source: SdSource::Http {
                                url: sd.url.clone(),
                            },
                            groups,
                        };
                        if tx.send(r).await.is_err() {
                            return;
                        }
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(sd.refresh_interval.as_std()) => {}
                        }
                    }
                });
            }
            for (index, sd) in job.kubernetes_sd_configs.iter().enumerate() {
                let fingerprint = sd_fingerprint(sd);
                let name = job.job_name.clone();
                let discovery = KubernetesDiscovery::new(name.clone(), sd.clone());
                let wrap = move |groups| SdResult {
                    job: name.clone(),
                    source: SdSource::Kubernetes { index, fingerprint },
                    groups,
                };
                self.sd_tasks.spawn(discovery.run(
                    self.sd_tx.clone(),
                    wrap,
                    self.sd_cancel.clone(),
                ));
            }
        }
    }
}

/// The shortest file_sd `refresh_interval` of the config, if it has any.
fn file_refresh(cfg: Option<&PrometheusConfig>) -> Option<Duration> {
    cfg?.scrape_configs
        .iter()
        .flat_map(|j| &j.file_sd_configs)
        .map(|f| f.refresh_interval.as_std())
        .min()
}

fn log_report(what: &str, r: &ApplyReport) {
    tracing::info!(
        started = r.started,
        stopped = r.stopped,
        kept = r.kept,
        dropped = r.dropped,
        not_owned = r.not_owned,
        errors = r.errors.len(),
        "{what}"
    );
    for e in &r.errors {
        tracing::warn!(error = %e, "target not scraped");
    }
}

async fn run<S: SampleSink, O: TargetOwnership>(
    mut manager: ScrapeManager<S, O>,
    ownership: Arc<O>,
    mut state: State,
    mut cmds: mpsc::Receiver<Command>,
    mut sd_rx: mpsc::Receiver<SdResult>,
    cancel: CancellationToken,
) {
    let mut watch = tokio::time::interval(WATCH_INTERVAL);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_refresh = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(cmd) = cmds.recv() => match cmd {
                Command::Targets(reply) => {
                    let _ = reply.send(TargetsView {
                        active: manager.active_targets(),
                        dropped: manager.dropped_targets().to_vec(),
                    });
                }
                Command::Reload(reply) => {
                    let result = state.read().and_then(|cfg| {
                        cfg.ok_or_else(|| ScrapeError::Config(tidemark_config::ConfigError::invalid(
                            "scraper.config_file",
                            "no scrape config file is set",
                        )))
                    });
                    let result = result.map(|cfg| {
                        let r = manager.apply(cfg);
                        log_report("config reloaded", &r);
                        state.after_apply(&manager, &cancel);
                        last_refresh = tokio::time::Instant::now();
                        format!(
                            "{} targets started, {} stopped, {} kept, {} dropped by relabeling, {} owned by other scrapers, {} errors",
                            r.started, r.stopped, r.kept, r.dropped, r.not_owned, r.errors.len()
                        )
                    });
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "config reload refused; the running config stays");
                    }
                    let _ = reply.send(result);
                }
            },
            Some(sd) = sd_rx.recv() => match (sd.groups, sd.source) {
                (Ok(groups), SdSource::Http { url }) => {
                    if manager.set_http_sd_groups(&sd.job, &url, groups)
                        && let Some(r) = manager.refresh_discovery()
                    {
                        log_report("http discovery changed", &r);
                    }
                }
                (Ok(groups), SdSource::Kubernetes { index, fingerprint }) => {
                    if manager.set_kubernetes_sd_groups(&sd.job, index, fingerprint, groups)
                        && let Some(r) = manager.refresh_discovery()
                    {
                        log_report("kubernetes discovery changed", &r);
                    }
                }
                (Err(e), _) => tracing::warn!(error = %e, "discovery failed; keeping the previous targets"),
            },
            _ = watch.tick() => {
                let fp = manager.config().map_or(0, file_sd_fingerprint);
                let epoch = ownership.epoch();
                let due = file_refresh(manager.config())
                    .is_some_and(|every| last_refresh.elapsed() >= every);
                if fp != state.file_fp || epoch != state.epoch || due {
                    state.file_fp = fp;
                    state.epoch = epoch;
                    last_refresh = tokio::time::Instant::now();
                    if let Some(r) = manager.refresh_discovery()
                        && (r.started > 0 || r.stopped > 0 || !r.errors.is_empty())
                    {
                        log_report("targets changed", &r);
                    }
                }
            }
        }
    }
    state.sd_cancel.cancel();
    state.sd_tasks.close();
    state.sd_tasks.wait().await;
    manager.shutdown().await;
}
