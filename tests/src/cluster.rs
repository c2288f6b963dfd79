//! A multi-process cluster on loopback: ingesters (the Raft voters),
//! distributors and a querier, each a real `tidemark` process, with short
//! heartbeat timeouts so that failures show within seconds.

use std::time::Duration;

use serde_json::Value;

use crate::{Process, free_port, wait_until};

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub ingesters: usize,
    pub distributors: usize,
    /// Ingesters each series is written to.
    pub replication_factor: usize,
    /// Flags given to every process.
    pub extra_args: Vec<String>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            ingesters: 3,
            distributors: 2,
            replication_factor: 3,
            extra_args: Vec::new(),
        }
    }
}

/// The tenant tests write as (multi-tenancy is on in a cluster).
pub const TENANT: &str = "faults";

/// The running processes; all are killed when it is dropped.
pub struct Cluster {
    pub ingesters: Vec<Process>,
    pub distributors: Vec<Process>,
    pub querier: Process,
}

/// Flags every process of the cluster gets: who the voters are, and
/// membership timings short enough for tests.
fn common_args(spec: &ClusterSpec, voters: &str, role: &str, id: &str) -> Vec<String> {
    let mut args = vec![
        format!("-target={role}"),
        format!("--membership.voters={voters}"),
        format!("--membership.instance-id={id}"),
        format!(
            "--membership.replication-factor={}",
            spec.replication_factor
        ),
        "--membership.heartbeat-interval=200ms".into(),
        "--membership.heartbeat-timeout=2s".into(),
        "--membership.ring-refresh-interval=200ms".into(),
        "--membership.election-timeout=300ms".into(),
        "--distributor.limits.ingestion-rate=0".into(),
        "--server.graceful-shutdown-timeout=5s".into(),
    ];
    args.extend(spec.extra_args.iter().cloned());
    args
}

impl Cluster {
    /// Starts every process and waits until each is ready and the ring
    /// shows every ingester active and healthy.
    pub fn start(spec: ClusterSpec) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..spec.ingesters)
            .map(|_| (free_port(), free_port()))
            .collect();
        let voters = ports
            .iter()
            .map(|(_, g)| format!("127.0.0.1:{g}"))
            .collect::<Vec<_>>()
            .join(",");
        let start = |role: &str, id: String, ports: Option<(u16, u16)>| {
            let mut b = Process::builder();
            if let Some((h, g)) = ports {
                b = b.ports(h, g);
            }
            for a in common_args(&spec, &voters, role, &id) {
                b = b.arg(a);
            }
            b.start()
        };
        let ingesters: Vec<Process> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| start("ingester", format!("ingester-{i}"), Some(*p)))
            .collect();
        let distributors = (0..spec.distributors)
            .map(|i| start("distributor", format!("distributor-{i}"), None))
            .collect();
        let querier = start("querier", "querier-0".into(), None);
        let mut c = Cluster {
            ingesters,
            distributors,
            querier,
        };
        c.wait_ready();
        c
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.ingesters
            .iter_mut()
            .chain(self.distributors.iter_mut())
            .chain(std::iter::once(&mut self.querier))
    }

    /// Waits for `/ready` on every process and for the ring to show every
    /// ingester active and healthy; panics with every log otherwise.
    pub fn wait_ready(&mut self) {
        for p in self.all_mut() {
            p.wait_ready(Duration::from_secs(60));
        }
        let n = self.ingesters.len();
        if !self.wait_healthy_ingesters(n, Duration::from_secs(30)) {
            panic!(
                "the ring never showed {n} healthy active ingesters: {}\n{}",
                self.ring(),
                self.logs()
            );
        }
    }

    /// Base URLs of the distributors.
    pub fn distributor_urls(&self) -> Vec<String> {
        self.distributors.iter().map(|d| d.url("")).collect()
    }

    pub fn querier_url(&self) -> String {
        self.querier.url("")
    }

    /// The ring as the querier sees it (`/ring` JSON).
    pub fn ring(&self) -> Value {
        reqwest::blocking::Client::new()
            .get(self.querier.url("/ring?format=json"))
            .header("Accept", "application/json")
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null)
    }

    /// Ingesters the querier's ring shows as `ACTIVE` and healthy.
    pub fn healthy_ingesters(&self) -> usize {
        let ring = self.ring();
        ring["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter(|m| {
                        let roles = m["roles"].to_string().to_ascii_lowercase();
                        let state = m["state"].as_str().unwrap_or_default();
                        roles.contains("ingester")
                            && state.eq_ignore_ascii_case("active")
                            && m["healthy"].as_bool().unwrap_or(false)
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until exactly `n` ingesters are active and healthy.
    pub fn wait_healthy_ingesters(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.healthy_ingesters() == n)
    }

    /// SIGKILL ingester `i`, as a crashed machine.
    pub fn kill_ingester(&mut self, i: usize) {
        self.ingesters[i].kill();
    }

    /// Starts ingester `i` again on its ports and data, and waits until it
    /// is ready (WAL replayed) and the ring shows it active and healthy.
    pub fn restart_ingester(&mut self, i: usize) {
        self.ingesters[i].restart();
        self.ingesters[i].wait_ready(Duration::from_secs(60));
        let n = self.ingesters.len();
        if !self.wait_healthy_ingesters(n, Duration::from_secs(30)) {
            panic!(
                "ingester-{i} did not rejoin the ring: {}\n{}",
                self.ring(),
                self.logs()
            );
        }
    }

    /// Every process's log, labelled, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let named = self
            .ingesters
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("ingester-{i}"), p))
            .chain(
                self.distributors
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("distributor-{i}"), p)),
            )
            .chain(std::iter::once(("querier-0".to_string(), &self.querier)));
        for (name, p) in named {
            let log = p.log();
            // The tail is what explains a failure; whole logs drown it.
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            out.push_str(&format!("----- {name} (last {} lines)\n", tail.len()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}
