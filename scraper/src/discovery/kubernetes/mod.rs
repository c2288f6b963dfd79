//! `kubernetes_sd_configs`: targets from the Kubernetes API, with the
//! target groups and `__meta_kubernetes_*` labels Prometheus produces for
//! the roles `node`, `pod`, `service`, `endpoints`, `endpointslice` and
//! `ingress` (see docs/scraper.md for the labels and what is left out).
//!
//! Each entry lists and then watches (kube's watcher, re-listing with
//! backoff after errors) the kinds its role needs: endpoints and endpoint
//! slices also watch services and pods so their targets carry the service
//! and pod labels; `attach_metadata` adds nodes and namespaces. Every
//! change rebuilds the role's groups from the cached objects and, once
//! every watch has completed its first list, hands the whole set on, so a
//! deleted object simply no longer has a group.

mod client;
mod endpoints;
mod groups;
mod ingress;
mod meta;
mod node;
mod pod;
mod service;
mod store;

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ScrapeError;
use crate::config::sd::{KubernetesSdConfig, KubernetesSelector};
use crate::target::TargetGroup;

use groups::Ctx;
pub use groups::Role;
use store::{Cached, Store};

/// How long changes are gathered before the groups are rebuilt, so a
/// burst of events (a rollout, the first list) costs one rebuild.
const BATCH: Duration = Duration::from_millis(100);

type Update = Box<dyn FnOnce(&mut Store) + Send>;
type UpdateStream = BoxStream<'static, Result<Update, watcher::Error>>;

/// A fingerprint of one `kubernetes_sd_configs` entry: groups cached under
/// an older fingerprint belong to a config that was replaced.
pub fn sd_fingerprint(cfg: &KubernetesSdConfig) -> u64 {
    xxhash_rust::xxh3::xxh3_64(format!("{cfg:?}").as_bytes())
}

/// One running `kubernetes_sd_configs` entry of a job.
pub struct KubernetesDiscovery {
    job: String,
    cfg: KubernetesSdConfig,
}

impl KubernetesDiscovery {
    pub fn new(job: impl Into<String>, cfg: KubernetesSdConfig) -> Self {
        KubernetesDiscovery {
            job: job.into(),
            cfg,
        }
    }

    /// Watches until `cancel`, sending the role's complete set of groups
    /// (wrapped by `wrap`) whenever it changes. A config that cannot be
    /// used (unreadable kubeconfig, unsupported auth) is sent once as an
    /// error and ends the run; API errors are logged and retried.
    pub async fn run<T: Send>(
        self,
        tx: mpsc::Sender<T>,
        wrap: impl Fn(Result<Vec<TargetGroup>, ScrapeError>) -> T + Send,
        cancel: CancellationToken,
    ) {
        let (mut store, streams, role) = match self.connect().await {
            Ok(v) => v,
            Err(message) => {
                let e = ScrapeError::Discovery {
                    job: self.job.clone(),
                    origin: format!("kubernetes_sd_configs (role {})", self.cfg.role),
                    message,
                };
                let _ = tx.send(wrap(Err(e))).await;
                return;
            }
        };
        let ctx_flags = (
            self.cfg.attach_metadata.node,
            self.cfg.attach_metadata.namespace,
        );
        let mut events = futures::stream::select_all(streams);
        let mut flush_at: Option<Instant> = None;
        let mut last: Option<Vec<TargetGroup>> = None;
        loop {
            let deadline = flush_at;
            let flush = async move {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                item = events.next() => match item {
                    Some(Ok(update)) => {
                        update(&mut store);
                        flush_at.get_or_insert_with(|| Instant::now() + BATCH);
                    }
                    Some(Err(e)) => tracing::warn!(
                        job = %self.job, role = %self.cfg.role, error = %e,
                        "kubernetes watch failed; retrying with backoff"
                    ),
                    None => return,
                },
                _ = flush => {
                    flush_at = None;
                    if !store.synced() {
                        continue;
                    }
                    let ctx = Ctx { store: &store, attach_node: ctx_flags.0, attach_namespace: ctx_flags.1 };
                    let groups = ctx.groups(role);
                    if last.as_ref() == Some(&groups) {
                        continue;
                    }
                    tracing::debug!(job = %self.job, role = %self.cfg.role, groups = groups.len(), "kubernetes targets changed");
                    if tx.send(wrap(Ok(groups.clone()))).await.is_err() {
                        return;
                    }
                    last = Some(groups);
                }
            }
        }
    }

    /// The client and the watch streams of every kind the role needs.
    async fn connect(&self) -> Result<(Store, Vec<UpdateStream>, Role), String> {
        let role: Role = self.cfg.role.parse()?;
        let config = client::client_config(&self.cfg).await?;
        let client = Client::try_from(config).map_err(|e| format!("kubernetes client: {e}"))?;
        let mut w = Watches {
            client,
            namespaces: client::namespaces(&self.cfg)?,
            selectors: &self.cfg.selectors,
            store: Store::default(),
            streams: Vec::new(),
        };
        let attach = &self.cfg.attach_metadata;
        match role {
            Role::Node => w.cluster::<Node>("node"),
            Role::Pod => w.namespaced::<Pod>("pod"),
            Role::Service => w.namespaced::<Service>("service"),
            Role::Endpoints => w.namespaced::<Endpoints>("endpoints"),
            Role::EndpointSlice => w.namespaced::<EndpointSlice>("endpointslice"),
            Role::Ingress => w.namespaced::<Ingress>("ingress"),
        }
        if matches!(role, Role::Endpoints | Role::EndpointSlice) {
            w.namespaced::<Service>("service");
            w.namespaced::<Pod>("pod");
        }
        if attach.node && matches!(role, Role::Pod | Role::Endpoints | Role::EndpointSlice) {
            w.cluster::<Node>("node");
        }
        if attach.namespace && role != Role::Node {
            w.cluster::<Namespace>("namespace");
        }
        Ok((w.store, w.streams, role))
    }
}

struct Watches<'a> {
    client: Client,
    /// `None`: every namespace.
    namespaces: Option<Vec<String>>,
    selectors: &'a [KubernetesSelector],
    store: Store,
    streams: Vec<UpdateStream>,
}

impl Watches<'_> {
    fn config(&self, role: &str) -> watcher::Config {
        let mut wc = watcher::Config::default();
        if let Some(s) = self.selectors.iter().find(|s| s.role == role) {
            if let Some(l) = &s.label {
                wc = wc.labels(l);
            }
            if let Some(f) = &s.field {
                wc = wc.fields(f);
            }
        }
        wc
    }

    fn add<K: Cached>(&mut self, api: Api<K>, wc: watcher::Config) {
        let stream = self.store.add_stream();
        let s = watcher(api, wc)
            .default_backoff()
            .map_ok(move |ev| Box::new(move |st: &mut Store| st.apply(stream, ev)) as Update)
            .boxed();
        self.streams.push(s);
    }

    /// A cluster-scoped kind (nodes, namespaces): one watch.
    fn cluster<K: Cached>(&mut self, role: &str) {
        let wc = self.config(role);
        self.add(Api::<K>::all(self.client.clone()), wc);
    }

    /// A namespaced kind: one watch per configured namespace, or one over
    /// all namespaces.
    fn namespaced<K: Cached + Resource<Scope = NamespaceResourceScope>>(&mut self, role: &str) {
        let wc = self.config(role);
        match self.namespaces.clone() {
            None => self.add(Api::<K>::all(self.client.clone()), wc),
            Some(names) => {
                for ns in names {
                    self.add(Api::<K>::namespaced(self.client.clone(), &ns), wc.clone());
                }
            }
        }
    }
}
