#![allow(clippy::unwrap_used)]
use super::*;
use crate::relabel::Action;

const FULL: &str = r#"
global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels:
    cluster: eu-1
rule_files: ["rules/*.yml"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["am:9093"]
remote_write:
  - url: http://remote/api/v1/push
storage:
  tsdb:
    out_of_order_time_window: 10m
scrape_configs:
  - job_name: node
    tenant: team-a
    static_configs:
      - targets: ["localhost:9100", "db:9100"]
        labels:
          env: prod
    relabel_configs:
      - source_labels: [__address__]
        regex: "([^:]+):.*"
        target_label: host
    metric_relabel_configs:
      - action: labeldrop
        regex: "tmp_.*"
  - job_name: api
    scheme: https
    metrics_path: /internal/metrics
    params:
      module: [http_2xx]
    scrape_interval: 5s
    honor_labels: true
    honor_timestamps: false
    sample_limit: 1000
    basic_auth:
      username: u
      password_file: /etc/pw
    tls_config:
      ca_file: /etc/ca.pem
      insecure_skip_verify: true
    file_sd_configs:
      - files: ["targets/*.json"]
    http_sd_configs:
      - url: http://sd/targets
        refresh_interval: 30s
    kubernetes_sd_configs:
      - role: pod
        namespaces:
          names: [default]
        selectors:
          - role: pod
            label: app=web
    consul_sd_configs:
      - server: consul:8500
"#;

#[test]
fn reads_an_unchanged_prometheus_yml() {
    let cfg = PrometheusConfig::from_yaml(FULL).unwrap();
    assert_eq!(cfg.global.scrape_interval, Duration::from_secs(15));
    assert_eq!(cfg.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(cfg.global.external_labels["cluster"], "eu-1");
    assert_eq!(
        cfg.ignored_sections(),
        vec!["rule_files", "alerting", "remote_write", "storage"]
    );

    let node = cfg.job("node").unwrap();
    assert_eq!(node.tenant.as_deref(), Some("team-a"));
    assert_eq!(node.interval(), Duration::from_secs(15));
    assert_eq!(node.timeout(), Duration::from_secs(10));
    assert_eq!(node.metrics_path, "/metrics");
    assert_eq!(node.scheme, "http");
    assert!(node.honor_timestamps);
    assert!(!node.honor_labels);
    assert_eq!(node.static_configs[0].targets.len(), 2);
    assert_eq!(node.metric_relabel_configs[0].action, Action::LabelDrop);

    let api = cfg.job("api").unwrap();
    assert_eq!(api.interval(), Duration::from_secs(5));
    // Unset timeout: the global 10s would exceed the 5s interval, so 5s.
    assert_eq!(api.timeout(), Duration::from_secs(5));
    assert_eq!(api.params["module"], vec!["http_2xx"]);
    assert_eq!(api.sample_limit, Some(1000));
    assert!(api.tls_config.insecure_skip_verify);
    assert_eq!(api.kubernetes_sd_configs[0].role, "pod");
    assert_eq!(
        api.http_sd_configs[0].refresh_interval,
        Duration::from_secs(30)
    );
    assert_eq!(api.unsupported_discovery(), vec!["consul_sd_configs"]);
}

#[test]
fn defaults_when_global_is_missing() {
    let cfg = PrometheusConfig::from_yaml("scrape_configs:\n  - job_name: x\n").unwrap();
    let j = cfg.job("x").unwrap();
    assert_eq!(j.interval(), Duration::from_secs(60));
    assert_eq!(j.timeout(), Duration::from_secs(10));
    assert!(j.follow_redirects && j.enable_http2);
    assert_eq!(
        j.protocols(),
        crate::parse::ScrapeProtocol::DEFAULT.to_vec()
    );
    // Global limits flow into jobs that do not set their own.
    let cfg = PrometheusConfig::from_yaml(
        "global:\n  sample_limit: 10\n  body_size_limit: 1MB\nscrape_configs:\n  - job_name: x\n  - job_name: y\n    sample_limit: 5\n",
    )
    .unwrap();
    assert_eq!(cfg.job("x").unwrap().sample_limit, Some(10));
    assert_eq!(cfg.job("x").unwrap().body_size_limit_bytes(), 1 << 20);
    assert_eq!(cfg.job("y").unwrap().sample_limit, Some(5));
    assert_eq!(
        PrometheusConfig::from_yaml("")
            .unwrap()
            .scrape_configs
            .len(),
        0
    );
}

fn invalid(yaml: &str) -> (String, String) {
    match PrometheusConfig::from_yaml(yaml) {
        Err(ConfigError::Invalid { path, message }) => (path, message),
        other => panic!("expected an invalid-field error for {yaml}, got {other:?}"),
    }
}

#[test]
fn errors_name_the_field_path() {
    let (p, m) = invalid(
        "scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: c\n    relabel_configs:\n      - regex: '(unclosed'\n",
    );
    assert_eq!(p, "scrape_configs[2].relabel_configs[0].regex");
    assert!(m.contains("invalid regex"), "{m}");

    let (p, m) = invalid(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
    );
    assert_eq!(p, "scrape_configs[0].scrape_timeout");
    assert!(m.contains("greater than scrape interval"), "{m}");

    let (p, m) = invalid("scrape_configs:\n  - job_name: a\n  - job_name: a\n");
    assert_eq!(p, "scrape_configs[1].job_name");
    assert!(m.contains("multiple scrape configs"), "{m}");

    // A typo is refused, not ignored.
    let (p, m) = invalid("scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n");
    assert_eq!(p, "scrape_configs[0].scrape_intervall");
    assert!(m.contains("unknown field"), "{m}");

    let (p, _) = invalid("scrape_configs:\n  - job_name: a\n    tenant: 'a/b'\n");
    assert_eq!(p, "scrape_configs[0].tenant");

    let (p, m) = invalid(
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['host/path']\n",
    );
    assert_eq!(p, "scrape_configs[0].static_configs[0].targets[0]");
    assert!(m.contains("not a valid hostname"));

    let (p, _) = invalid(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n",
    );
    assert_eq!(p, "scrape_configs[0].relabel_configs[0].modulus");

    let (p, _) = invalid(
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: t}\n",
    );
    assert_eq!(p, "scrape_configs[0]");

    let (p, _) = invalid(
        "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pods\n",
    );
    assert_eq!(p, "scrape_configs[0].kubernetes_sd_configs[0].role");

    let (p, _) = invalid(
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['targets.txt']\n",
    );
    assert_eq!(p, "scrape_configs[0].file_sd_configs[0].files[0]");

    let (p, _) = invalid("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n");
    assert_eq!(p, "global.scrape_timeout");

    let (p, _) = invalid("global:\n  scrape_interval: soon\n");
    assert_eq!(p, "global.scrape_interval");

    let (p, _) = invalid("scrape_configs:\n  - job_name: a\n    scheme: ftp\n");
    assert_eq!(p, "scrape_configs[0].scheme");

    let (p, _) = invalid(
        "scrape_configs:\n  - job_name: a\n    scrape_protocols: [PrometheusText0.0.4, Carrier-Pigeon]\n",
    );
    assert_eq!(p, "scrape_configs[0].scrape_protocols[1]");

    assert!(matches!(
        PrometheusConfig::from_yaml("unknown_top: 1\n"),
        Err(ConfigError::Parse { .. }) | Err(ConfigError::Invalid { .. })
    ));
}

#[test]
fn sizes_parse_like_prometheus() {
    assert_eq!(parse_size("0"), Ok(0));
    assert_eq!(parse_size("512"), Ok(512));
    assert_eq!(parse_size("10KB"), Ok(10 * 1024));
    assert_eq!(parse_size("5MiB"), Ok(5 << 20));
    assert!(parse_size("5 parsecs").is_err());
}
