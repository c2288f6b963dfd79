//! Debian's Prometheus as a peer: started on a free loopback port with a
//! configuration and flags, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_until};

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus with the configuration `config(port)` (given its
    /// own port, e.g. to scrape itself) and extra `flags`, and waits until
    /// it is ready. `None`, saying so, when `prometheus` is not installed.
    pub fn start(config: impl FnOnce(u16) -> String, flags: &[&str]) -> Option<Prometheus> {
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "SKIPPED: Debian's `prometheus` is not installed (apt-get install prometheus)"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config(port)).expect("prometheus.yml written");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let prom = Prometheus {
            child,
            port,
            _dir: dir,
        };
        let ready = wait_until(Duration::from_secs(30), || {
            reqwest::blocking::get(prom.url("/-/ready"))
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        });
        assert!(ready, "prometheus did not become ready");
        Some(prom)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
