//! The scraper service end to end in one process: a prometheus.yml with
//! static, file and HTTP discovery; file changes picked up without a
//! reload; a bad reload refused with the field named while the running
//! config stays; the targets API in Prometheus's shape.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tidemark_model::TenantId;
use tidemark_scraper::scrape::{MemorySink, OwnAll};
use tidemark_scraper::service::api::targets_data;
use tidemark_scraper::service::{Scraper, ScraperHandle};

async fn serve() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let app = Router::new()
        .route("/metrics", get(|| async { "a 1\n" }))
        .route(
            "/sd",
            get(move || async move {
                (
                    [("content-type", "application/json")],
                    format!(
                        r#"[{{"targets": ["127.0.0.1:{port}"], "labels": {{"from": "http"}}}}]"#
                    ),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

async fn pools(h: &ScraperHandle) -> Vec<(String, String)> {
    let mut v: Vec<_> = h
        .targets()
        .await
        .active
        .iter()
        .map(|a| (a.pool.clone(), a.target.labels().to_string()))
        .collect();
    v.sort();
    v
}

async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..100 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn discovery_reload_and_targets_api() {
    let port = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sd_file = dir.path().join("targets.json");
    std::fs::write(&sd_file, "[]").unwrap();
    let cfg = dir.path().join("prometheus.yml");
    let yaml = format!(
        "global: {{scrape_interval: 200ms, scrape_timeout: 100ms}}\n\
         scrape_configs:\n\
         \x20 - job_name: static\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{port}', 'dropme:1']}}]\n\
         \x20   relabel_configs: [{{source_labels: [__address__], regex: 'dropme.*', action: drop}}]\n\
         \x20 - job_name: files\n\
         \x20   file_sd_configs: [{{files: ['{}']}}]\n\
         \x20 - job_name: http\n\
         \x20   http_sd_configs: [{{url: 'http://127.0.0.1:{port}/sd', refresh_interval: 1h}}]\n",
        sd_file.display()
    );
    std::fs::write(&cfg, &yaml).unwrap();
    let sink = Arc::new(MemorySink::new());
    let scraper = Scraper::start(
        Some(cfg.clone()),
        Arc::clone(&sink),
        Arc::new(OwnAll),
        TenantId::new("t").unwrap(),
        1,
    )
    .await
    .unwrap();
    let h = scraper.handle();
    let inst = format!("127.0.0.1:{port}");

    // Static at once; http_sd after its first fetch.
    assert!(
        eventually(|| async { pools(&h).await.len() == 2 }).await,
        "{:?}",
        pools(&h).await
    );
    let p = pools(&h).await;
    assert_eq!(p[0].0, "http");
    assert!(p[0].1.contains("from=\"http\""), "{p:?}");
    assert_eq!(p[1].0, "static");

    // A file_sd file written: its target starts without any reload.
    std::fs::write(
        &sd_file,
        format!(r#"[{{"targets": ["{inst}"], "labels": {{"team": "x"}}}}]"#),
    )
    .unwrap();
    assert!(
        eventually(|| async { pools(&h).await.len() == 3 }).await,
        "file_sd change not picked up: {:?}",
        pools(&h).await
    );

    // Scrapes happen and reach the sink with the tenant.
    assert!(
        eventually(|| async {
            let v = h.targets().await;
            v.active
                .iter()
                .all(|a| a.health.last().health.as_str() == "up")
        })
        .await
    );
    assert!(sink.batches().iter().all(|b| b.tenant.as_str() == "t"));

    // The targets API.
    let data = targets_data(&h.targets().await, "any", None);
    let active = data["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 3);
    let f = active.iter().find(|a| a["scrapePool"] == "files").unwrap();
    assert_eq!(f["labels"]["team"], "x");
    assert_eq!(f["health"], "up");
    assert_eq!(f["scrapeInterval"], "200ms");
    assert!(
        f["discoveredLabels"]["__meta_filepath"]
            .as_str()
            .unwrap()
            .ends_with("targets.json")
    );
    assert_eq!(
        data["droppedTargets"][0]["discoveredLabels"]["__address__"],
        "dropme:1"
    );
    assert_eq!(data["droppedTargetCounts"]["static"], 1);
    let only = targets_data(&h.targets().await, "active", Some("static"));
    assert_eq!(only["activeTargets"].as_array().unwrap().len(), 1);
    assert!(only["droppedTargets"].as_array().unwrap().is_empty());

    // A bad config is refused with the field named; nothing changes.
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 1s\n    scrape_timeout: 2s\n    static_configs: [{targets: ['h:1']}]\n",
    )
    .unwrap();
    let e = h.reload().await.unwrap_err().to_string();
    assert!(e.contains("scrape_configs[0].scrape_timeout"), "{e}");
    assert_eq!(pools(&h).await.len(), 3);

    // A good one applies: only the static job remains.
    std::fs::write(&cfg, yaml.split("  - job_name: files").next().unwrap()).unwrap();
    let summary = h.reload().await.unwrap();
    assert!(summary.contains("2 stopped"), "{summary}");
    assert_eq!(pools(&h).await.len(), 1);

    scraper.stop().await;
    // Stopped targets got staleness markers for their report series.
    let stale_up = sink.batches().iter().any(|b| {
        b.samples
            .iter()
            .any(|(l, s)| l.metric_name() == Some("up") && tidemark_model::is_stale_nan(s.v))
    });
    assert!(stale_up);
}
