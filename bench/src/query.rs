//! The read workload: the range queries a node and service dashboard runs
//! (rate, sum by, histogram_quantile, topk) over the last hour and the last
//! day, one at a time through `/api/v1/query_range`, timed per kind.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where and how often to query.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct QueryArgs {
    /// Base URL of the Prometheus HTTP API (…/api/v1/query_range is appended).
    #[arg(long)]
    pub(crate) query_url: String,
    /// Timed runs of each query (after one untimed warm-up run).
    #[arg(long, default_value_t = 10)]
    pub(crate) reps: usize,
}

/// Latency of one query kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueryStat {
    pub(crate) kind: String,
    pub(crate) query: String,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Series in the last answer (a cross-check that every target has the data).
    pub(crate) series: usize,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
}

/// The dashboard queries for a scrape interval (the rate window is
/// at least four scrapes and at least the usual 5m).
pub(crate) fn queries(interval_s: u64) -> Vec<(&'static str, String)> {
    let w = format!("{}s", (4 * interval_s).max(300));
    vec![
        (
            "rate",
            format!("rate(node_network_receive_bytes_total[{w}])"),
        ),
        (
            "sum_by",
            format!("sum by (instance) (rate(node_cpu_seconds_total{{mode!=\"idle\"}}[{w}]))"),
        ),
        (
            "histogram_quantile",
            format!(
                "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[{w}])))"
            ),
        ),
        (
            "topk",
            format!("topk(5, sum by (instance) (rate(node_disk_written_bytes_total[{w}])))"),
        ),
    ]
}

/// Ranges as (name, seconds, step seconds): about 240 and 720 points.
const RANGES: &[(&str, i64, i64)] = &[("1h", 3600, 15), ("24h", 86_400, 120)];

/// Runs every query kind over every range ending at `end_ms`.
pub(crate) async fn run(
    args: &QueryArgs,
    tenant: Option<&str>,
    interval_s: u64,
    end_ms: i64,
) -> anyhow::Result<Vec<QueryStat>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let url = format!(
        "{}/api/v1/query_range",
        args.query_url.trim_end_matches('/')
    );
    let end = end_ms as f64 / 1000.0;
    let mut stats = Vec::new();
    for (range, secs, step) in RANGES {
        let step = (*step).max(interval_s as i64);
        for (kind, q) in queries(interval_s) {
            let form = [
                ("query", q.clone()),
                ("start", format!("{:.3}", end - *secs as f64)),
                ("end", format!("{end:.3}")),
                ("step", step.to_string()),
            ];
            let mut times = Vec::new();
            let mut series = 0;
            let mut errors = 0;
            let mut first_error = None;
            for rep in 0..=args.reps {
                let t = Instant::now();
                match post(&client, &url, tenant, &form).await {
                    Ok(n) => {
                        series = n;
                        if rep > 0 {
                            times.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(format!("{e:#}"));
                    }
                }
            }
            stats.push(QueryStat {
                kind: format!("{kind} {range}"),
                query: q,
                p50_ms: percentile(&mut times, 0.50),
                p99_ms: percentile(&mut times, 0.99),
                series,
                errors,
                first_error,
            });
        }
    }
    Ok(stats)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    tenant: Option<&str>,
    form: &[(&str, String)],
) -> anyhow::Result<usize> {
    let res = crate::with_tenant(client.post(url).form(form), tenant)
        .send()
        .await?;
    let status = res.status();
    let body = res.bytes().await?;
    if !status.is_success() {
        anyhow::bail!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("answer is not JSON")?;
    Ok(v["data"]["result"].as_array().map(Vec::len).unwrap_or(0))
}

/// Nearest-rank percentile (NaN when there are no values).
pub(crate) fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut [7.0], 0.99), 7.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }
}
