//! The scraper role as a user runs it: `tidemark -target=all` with a
//! prometheus.yml scraping Debian's node exporter and pushgateway; the
//! series arrive with the right labels and tenants, `up` and staleness
//! follow a killed target, and reloads refuse a bad config.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tidemark_tests::{Process, free_port, wait_until};

/// A Debian exporter binary, killed on drop.
struct Exporter {
    child: Option<Child>,
    port: u16,
}

impl Exporter {
    fn start(bin: &str, extra: &[&str]) -> Option<Exporter> {
        if Command::new("which")
            .arg(bin)
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            eprintln!("SKIPPED: Debian's `{bin}` is not installed (apt-get install {bin})");
            return None;
        }
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let url = format!("http://127.0.0.1:{port}/metrics");
        let up = wait_until(Duration::from_secs(15), || {
            reqwest::blocking::get(&url).is_ok_and(|r| r.status().is_success())
        });
        assert!(up, "{bin} did not start serving on port {port}");
        Some(Exporter {
            child: Some(child),
            port,
        })
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.kill();
    }
}

fn query(tm: &Process, tenant: &str, q: &str) -> Vec<Value> {
    let r = reqwest::blocking::Client::new()
        .post(tm.url("/api/v1/query"))
        .header("X-Scope-OrgID", tenant)
        .form(&[("query", q)])
        .send()
        .expect("query");
    let v: Value = r.json().expect("JSON body");
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn value(series: &Value) -> f64 {
    series["value"][1].as_str().unwrap().parse().unwrap()
}

fn targets(tm: &Process) -> Value {
    reqwest::blocking::get(tm.url("/api/v1/targets"))
        .unwrap()
        .json()
        .unwrap()
}

fn active_health(tm: &Process, pool: &str) -> Option<String> {
    targets(tm)["data"]["activeTargets"]
        .as_array()?
        .iter()
        .find(|t| t["scrapePool"] == pool)
        .map(|t| t["health"].as_str().unwrap_or("").to_string())
}

/// Finds the pid of the tidemark process that uses `data_dir`, to signal it.
fn pid_of(data_dir: &std::path::Path) -> Option<i32> {
    let needle = format!("--storage.data-dir={}", data_dir.display());
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        cmd.contains(&needle).then_some(pid)
    })
}

fn config(node: u16, push: u16, with_push_job: bool) -> String {
    let mut s = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
         scrape_configs:\n\
         \x20 - job_name: node\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{node}'], labels: {{env: e2e}}}}]\n"
    );
    if with_push_job {
        s.push_str(&format!(
            "  - job_name: pushgateway\n\
             \x20   tenant: team-batch\n\
             \x20   honor_labels: true\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{push}']}}]\n"
        ));
    }
    s
}

#[test]
fn node_exporter_and_pushgateway_scraped_by_all() {
    let Some(mut node) = Exporter::start("prometheus-node-exporter", &[]) else {
        return;
    };
    let Some(push) = Exporter::start("prometheus-pushgateway", &[]) else {
        return;
    };
    // A batch job pushes its result; scraped with honor_labels, it keeps
    // its own job and instance labels.
    let r = reqwest::blocking::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/metrics/job/backup/instance/db1",
            push.port
        ))
        .body("# TYPE backup_last_success_timestamp_seconds gauge\nbackup_last_success_timestamp_seconds 1700000000\n")
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());

    let dir = tempfile::tempdir().unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(&prom_yml, config(node.port, push.port, true)).unwrap();
    let mut tm = Process::builder()
        .arg("-target=all")
        .arg("--tenancy.multitenancy-enabled=true")
        .arg(format!("--scraper.config-file={}", prom_yml.display()))
        .start();
    tm.wait_ready(Duration::from_secs(60));

    // Node exporter series in the default tenant with target labels.
    let ok = wait_until(Duration::from_secs(20), || {
        !query(&tm, "anonymous", "up{job=\"node\"} == 1").is_empty()
            && !query(&tm, "anonymous", "node_cpu_seconds_total").is_empty()
    });
    assert!(ok, "node exporter series never arrived; log:\n{}", tm.log());
    let cpu = query(&tm, "anonymous", "node_cpu_seconds_total");
    let m = &cpu[0]["metric"];
    assert_eq!(m["job"], "node");
    assert_eq!(m["env"], "e2e");
    assert_eq!(m["instance"], format!("127.0.0.1:{}", node.port));
    assert!(m["mode"].is_string() && m["cpu"].is_string(), "{m}");
    let scraped = query(&tm, "anonymous", "scrape_samples_scraped{job=\"node\"}");
    assert!(value(&scraped[0]) > 100.0, "{scraped:?}");

    // The pushgateway job goes to its own tenant, with the pushed labels.
    let ok = wait_until(Duration::from_secs(20), || {
        !query(&tm, "team-batch", "backup_last_success_timestamp_seconds").is_empty()
    });
    assert!(ok, "pushed metric never arrived; log:\n{}", tm.log());
    let b = query(&tm, "team-batch", "backup_last_success_timestamp_seconds");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0]["metric"]["job"], "backup");
    assert_eq!(b[0]["metric"]["instance"], "db1");
    assert_eq!(value(&b[0]), 1.7e9);
    assert_eq!(
        value(&query(&tm, "team-batch", "up{job=\"pushgateway\"}")[0]),
        1.0
    );
    assert!(query(&tm, "anonymous", "backup_last_success_timestamp_seconds").is_empty());

    // The targets API, Prometheus's shape.
    let t = targets(&tm);
    let active = t["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 2, "{t}");
    let n = active.iter().find(|a| a["scrapePool"] == "node").unwrap();
    assert_eq!(n["health"], "up");
    assert_eq!(
        n["scrapeUrl"],
        format!("http://127.0.0.1:{}/metrics", node.port)
    );
    assert_eq!(n["labels"]["env"], "e2e");
    assert_eq!(
        n["discoveredLabels"]["__address__"],
        format!("127.0.0.1:{}", node.port)
    );
    assert_eq!(n["scrapeInterval"], "1s");
    assert_eq!(n["scrapeTimeout"], "900ms");
    assert_eq!(n["lastError"], "");
    assert!(n["lastScrape"].as_str().unwrap().ends_with('Z'), "{n}");
    let page = reqwest::blocking::get(tm.url("/targets"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("pushgateway") && page.contains("(1/1 up)"),
        "{page}"
    );

    // A killed target: up 0, its series stale (gone from instant queries).
    node.kill();
    let ok = wait_until(Duration::from_secs(10), || {
        query(&tm, "anonymous", "up{job=\"node\"}")
            .first()
            .is_some_and(|s| value(s) == 0.0)
    });
    assert!(ok, "up never went to 0");
    assert!(query(&tm, "anonymous", "node_cpu_seconds_total").is_empty());
    assert_eq!(active_health(&tm, "node").as_deref(), Some("down"));

    // A bad config is refused naming the field; the running one stays.
    std::fs::write(
        &prom_yml,
        "scrape_configs:\n  - job_name: x\n    relabel_configs: [{source_labels: [a], regex: '(unclosed'}]\n    static_configs: [{targets: ['h:1']}]\n",
    )
    .unwrap();
    let r = reqwest::blocking::Client::new()
        .post(tm.url("/-/reload"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = r.text().unwrap();
    assert!(
        body.contains("scrape_configs[0].relabel_configs[0].regex"),
        "{body}"
    );
    assert_eq!(
        targets(&tm)["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // SIGHUP applies a good one: the pushgateway job goes away.
    std::fs::write(&prom_yml, config(node.port, push.port, false)).unwrap();
    let pid = pid_of(&tm.data_dir).expect("tidemark pid");
    #[allow(unsafe_code)]
    // SAFETY: sending a signal to a process this test started.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
    let ok = wait_until(Duration::from_secs(10), || {
        targets(&tm)["data"]["activeTargets"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    assert!(ok, "SIGHUP reload did not apply; log:\n{}", tm.log());
    // The removed target's report series are marked stale.
    let ok = wait_until(Duration::from_secs(5), || {
        query(&tm, "team-batch", "up{job=\"pushgateway\"}").is_empty()
    });
    assert!(ok, "removed target's up was not marked stale");
}
