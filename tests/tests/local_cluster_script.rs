//! `deploy/local/cluster.sh`, the way docs/cluster.md tells a user to run
//! it: `start` brings up the eight processes, remote write load goes to both
//! distributors while `kill ingester-2` (SIGKILL) and `restart ingester-2`
//! run, every acknowledged sample is read back through the querier, and
//! `stop` leaves nothing running. The script's own readiness waits are the
//! ones under test; the test stops the cluster also when it fails.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tidemark_tests::prom::{missing, read_back};
use tidemark_tests::remote_write::{Load, LoadSpec};
use tidemark_tests::{free_port, tidemark_bin, wait_until};

/// Port offsets the script gives its processes: HTTP at base + k, gRPC at
/// base + 100 + k.
const OFFSETS: [u16; 8] = [1, 2, 3, 11, 12, 21, 31, 41];
const NAMES: [&str; 8] = [
    "ingester-1",
    "ingester-2",
    "ingester-3",
    "distributor-1",
    "distributor-2",
    "querier",
    "compactor",
    "scraper",
];

/// The script run against one work directory and port base; stops the
/// whole cluster when dropped.
struct Script {
    path: PathBuf,
    work: tempfile::TempDir,
    base: u16,
}

impl Script {
    fn new() -> Script {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Script {
            path: repo.join("deploy/local/cluster.sh"),
            work: tempfile::tempdir().unwrap(),
            base: free_base(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(&self.path)
            .args(args)
            .env("TIDEMARK_BIN", tidemark_bin())
            .env("TIDEMARK_CLUSTER_DIR", self.work.path())
            .env("TIDEMARK_CLUSTER_PORT", self.base.to_string())
            // The harness's membership timings, so a kill shows in seconds.
            .env(
                "TIDEMARK_CLUSTER_ARGS",
                "--membership.heartbeat-interval=200ms --membership.heartbeat-timeout=2s \
                 --membership.ring-refresh-interval=200ms --membership.election-timeout=300ms \
                 --distributor.limits.ingestion-rate=0 --server.graceful-shutdown-timeout=5s",
            )
            .output()
            .unwrap()
    }

    /// Runs the script and fails the test with its output and the
    /// processes' logs when it exits non-zero.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "cluster.sh {args:?} failed ({}):\n{stdout}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        stdout
    }

    /// `status` as (name, state) pairs.
    fn states(&self) -> Vec<(String, String)> {
        let out = self.ok(&["status"]);
        out.lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols.len() >= 4 && NAMES.contains(&cols[0]))
                    .then(|| (cols[0].to_string(), cols[3].to_string()))
            })
            .collect()
    }

    fn state_of(&self, name: &str) -> String {
        self.states()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    fn http(&self, name: &str) -> String {
        let i = NAMES.iter().position(|n| *n == name).unwrap();
        format!("http://127.0.0.1:{}", self.base + OFFSETS[i])
    }

    fn logs(&self) -> String {
        NAMES
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(self.work.path().join(n).join("log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {n}\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.run(&["stop"]);
    }
}

/// A base port whose sixteen ports the script will use are free now.
fn free_base() -> u16 {
    loop {
        let base = free_port().saturating_sub(1);
        if !(1024..=65_000).contains(&base) {
            continue;
        }
        let free = OFFSETS
            .iter()
            .flat_map(|k| [base + k, base + 100 + k])
            .all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
}

#[test]
fn cluster_script_starts_survives_a_killed_ingester_and_stops() {
    let s = Script::new();
    let started = s.ok(&["start"]);
    for name in NAMES {
        assert!(
            started
                .lines()
                .any(|l| l.starts_with(name) && l.contains(" ready ")),
            "{name} not ready after start:\n{started}"
        );
    }
    assert!(started.contains("/api/v1/push"), "{started}");

    let mut spec = LoadSpec::new(
        vec![s.http("distributor-1"), s.http("distributor-2")],
        Some("team-a"),
        "script_load",
    );
    spec.interval = Duration::from_millis(20);
    let load = Load::start(spec);
    assert!(
        load.wait_for_acks(20, Duration::from_secs(30)),
        "no writes acknowledged: {:?}\n{}",
        load.failures(),
        s.logs()
    );

    let killed = s.ok(&["kill", "ingester-2"]);
    assert!(killed.contains("SIGKILL"), "{killed}");
    assert_eq!(s.state_of("ingester-2"), "down");
    let before = load.acked_requests();
    assert!(
        load.wait_for_acks(before + 20, Duration::from_secs(30)),
        "writes stopped with one ingester of three down: {:?}",
        load.failures()
    );

    s.ok(&["restart", "ingester-2"]);
    assert_eq!(s.state_of("ingester-2"), "ready");
    let before = load.acked_requests();
    assert!(load.wait_for_acks(before + 20, Duration::from_secs(30)));
    let report = load.finish();
    assert!(
        report.unretried().is_empty(),
        "writes failed without a retry: {:?}",
        report.unretried()
    );

    let querier = format!("{}/prometheus", s.http("querier"));
    let mut lost = Vec::new();
    let all_there = wait_until(Duration::from_secs(30), || {
        match read_back(&querier, &report) {
            Ok(got) => {
                lost = missing(&report, &got);
                lost.is_empty()
            }
            Err(e) => {
                lost = vec![e];
                false
            }
        }
    });
    assert!(
        all_there,
        "{} of {} acknowledged samples not read back, e.g. {:?}",
        lost.len(),
        report.acked_samples(),
        lost.first()
    );

    s.ok(&["stop"]);
    let states = s.states();
    assert_eq!(states.len(), NAMES.len(), "{states:?}");
    assert!(states.iter().all(|(_, st)| st == "down"), "{states:?}");
}
