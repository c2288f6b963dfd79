//! The same targets scraped by Debian's `prometheus`, measured from `/proc`
//! and its own metrics and query API.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::measure::{Scrape, cpu_seconds, memory, scrape_stats};
use crate::{BoxError, Figures, Plan, now_ms};

pub(crate) const PROMETHEUS: &str = "/usr/bin/prometheus";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs prometheus (server mode, local TSDB, no remote write) on the
/// config for `plan.warmup` + `plan.duration`, and measures the window
/// after the warm-up.
pub(crate) async fn run(
    plan: &Plan,
    yaml: &str,
    dir: &Path,
    server_pid: &str,
) -> Result<Figures, BoxError> {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, yaml)?;
    let port = crate::targets::free_port()?;
    let log = std::fs::File::create(dir.join("prometheus.log"))?;
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let pid = child.id().to_string();
    let _running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(r) = http.get(format!("{base}/-/ready")).send().await
            && r.status().is_success()
        {
            ready = true;
            break;
        }
    }
    if !ready {
        return Err(format!(
            "prometheus not ready; see {}",
            dir.join("prometheus.log").display()
        )
        .into());
    }
    tokio::time::sleep(plan.warmup).await;
    let t0 = now_ms();
    let cpu0 = cpu_seconds(&pid)?;
    let server0 = cpu_seconds(server_pid)?;
    let samples0 = samples_appended(&http, &base).await?;
    tokio::time::sleep(plan.duration).await;
    let t1 = now_ms();
    let cpu1 = cpu_seconds(&pid)?;
    let server1 = cpu_seconds(server_pid)?;
    let samples1 = samples_appended(&http, &base).await?;
    let (rss, hwm) = memory(&pid)?;
    let scrapes = scrapes_between(&http, &base, t0, t1).await?;
    Ok(Figures {
        cpu_s: cpu1 - cpu0,
        samples: samples1 - samples0,
        rss,
        hwm,
        stats: scrape_stats(&scrapes, plan.intervals()),
        server_cpu_s: Some(server1 - server0),
    })
}

/// `prometheus_tsdb_head_samples_appended_total`, summed over its series.
async fn samples_appended(http: &reqwest::Client, base: &str) -> Result<u64, BoxError> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with("prometheus_tsdb_head_samples_appended_total") {
            let v = line.rsplit(' ').next().ok_or("bad metrics line")?;
            total += v.parse::<f64>()?;
        }
    }
    Ok(total as u64)
}

/// Every target's scrapes (`up` and `scrape_duration_seconds`) that started
/// in `[from_ms, to_ms)`, read back through the query API.
async fn scrapes_between(
    http: &reqwest::Client,
    base: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<HashMap<String, Vec<Scrape>>, BoxError> {
    let range_s = (to_ms - from_ms) / 1000 + 2;
    let at = format!("{:.3}", to_ms as f64 / 1000.0);
    let mut by_target: HashMap<String, Vec<Scrape>> = HashMap::new();
    let durations = series_points(
        http,
        base,
        &format!("scrape_duration_seconds[{range_s}s]"),
        &at,
    )
    .await?;
    let ups = series_points(http, base, &format!("up[{range_s}s]"), &at).await?;
    for (instance, points) in durations {
        let up: HashMap<i64, f64> = ups
            .get(&instance)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default();
        let kept = points
            .into_iter()
            .filter(|(t, _)| *t >= from_ms && *t < to_ms)
            .map(|(t, d)| Scrape {
                at_ms: t,
                duration_s: d,
                up: up.get(&t) == Some(&1.0),
            })
            .collect();
        by_target.insert(instance, kept);
    }
    Ok(by_target)
}

/// The (ms, value) points of each series of a range-vector query, by `instance`.
async fn series_points(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    at: &str,
) -> Result<HashMap<String, Vec<(i64, f64)>>, BoxError> {
    let body = http
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query), ("time", at)])
        .send()
        .await?
        .text()
        .await?;
    let json: serde_json::Value = serde_json::from_str(&body)?;
    let result = json["data"]["result"]
        .as_array()
        .ok_or_else(|| format!("unexpected answer to {query}: {body:.200}"))?;
    let mut out = HashMap::new();
    for series in result {
        let instance = series["metric"]["instance"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut points = Vec::new();
        for p in series["values"].as_array().into_iter().flatten() {
            let t = p[0].as_f64().ok_or("bad timestamp")?;
            let v: f64 = p[1].as_str().ok_or("bad value")?.parse()?;
            points.push(((t * 1000.0).round() as i64, v));
        }
        out.insert(instance, points);
    }
    Ok(out)
}
