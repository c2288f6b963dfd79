#![allow(clippy::unwrap_used)]
use super::*;
use crate::config::PrometheusConfig;
use crate::relabel::Relabeler;

fn job(yaml: &str) -> (ScrapeConfig, Vec<Relabeler>) {
    let cfg = PrometheusConfig::from_yaml(yaml).unwrap();
    let job = cfg.scrape_configs[0].clone();
    let rl = job
        .relabel_configs
        .iter()
        .cloned()
        .map(Relabeler::new)
        .collect();
    (job, rl)
}

fn map(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn target(b: Built) -> Target {
    match b {
        Built::Target(t) => t,
        Built::Dropped(l) => panic!("dropped: {l}"),
    }
}

#[test]
fn defaults_and_instance() {
    let (j, rl) = job("scrape_configs:\n  - job_name: node\n    scrape_interval: 30s\n");
    let t = target(
        build_target(
            &j,
            &rl,
            &map(&[("__address__", "h:9100")]),
            &map(&[("env", "prod")]),
        )
        .unwrap(),
    );
    assert_eq!(
        t.labels().to_string(),
        r#"{env="prod", instance="h:9100", job="node"}"#
    );
    assert_eq!(t.url, "http://h:9100/metrics");
    assert_eq!(t.interval, Duration::from_secs(30));
    assert_eq!(t.timeout, Duration::from_secs(10));
    assert_eq!(t.get("__scrape_interval__"), Some("30s"));
    assert_eq!(t.get("__scheme__"), Some("http"));
}

#[test]
fn precedence_target_over_group_over_job() {
    let (j, rl) = job("scrape_configs:\n  - job_name: node\n");
    let t = target(
        build_target(
            &j,
            &rl,
            &map(&[
                ("__address__", "h:1"),
                ("env", "from-target"),
                ("job", "custom"),
            ]),
            &map(&[("env", "from-group"), ("zone", "a")]),
        )
        .unwrap(),
    );
    assert_eq!(t.labels().get("env"), Some("from-target"));
    assert_eq!(t.labels().get("zone"), Some("a"));
    // A job label given by discovery is not overwritten by the job name.
    assert_eq!(t.labels().get("job"), Some("custom"));
}

#[test]
fn relabeling_shapes_url_and_drops_meta() {
    let (j, rl) = job(r#"
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: exporter:9115
      - source_labels: [__meta_role]
        regex: skip
        action: drop
"#);
    let t = target(
        build_target(
            &j,
            &rl,
            &map(&[("__address__", "example.com"), ("__meta_role", "web")]),
            &BTreeMap::new(),
        )
        .unwrap(),
    );
    assert_eq!(
        t.url,
        "http://exporter:9115/probe?module=http_2xx&target=example.com"
    );
    assert_eq!(
        t.labels().to_string(),
        r#"{instance="example.com", job="blackbox"}"#
    );
    assert_eq!(t.get("__meta_role"), None);

    let dropped = build_target(
        &j,
        &rl,
        &map(&[("__address__", "x"), ("__meta_role", "skip")]),
        &BTreeMap::new(),
    )
    .unwrap();
    assert!(matches!(dropped, Built::Dropped(l) if l.get("__meta_role") == Some("skip")));
}

#[test]
fn relabeled_interval_and_bad_targets() {
    let (j, rl) = job(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: __scrape_interval__\n        replacement: 1m30s\n      - target_label: __scrape_timeout__\n        replacement: 2m\n",
    );
    let err = build_target(&j, &rl, &map(&[("__address__", "h:1")]), &BTreeMap::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("scrape timeout cannot be greater than scrape interval"),
        "{err}"
    );

    let (j, rl) = job(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: __address__\n        replacement: h/x\n",
    );
    let err = build_target(&j, &rl, &map(&[("__address__", "h:1")]), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("not a valid hostname"), "{err}");

    let (j, rl) = job("scrape_configs:\n  - job_name: a\n");
    let err = build_target(&j, &rl, &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("no address"), "{err}");
}

#[test]
fn durations_spelled_like_prometheus() {
    assert_eq!(prometheus_duration(Duration::from_secs(60)), "1m");
    assert_eq!(prometheus_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(prometheus_duration(Duration::from_secs(7 * 86400)), "1w");
    assert_eq!(prometheus_duration(Duration::from_millis(1500)), "1s500ms");
    assert_eq!(
        parse_prometheus_duration("1m30s"),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        parse_prometheus_duration("1w"),
        Some(Duration::from_secs(7 * 86400))
    );
    assert_eq!(parse_prometheus_duration("1x"), None);
    assert_eq!(parse_prometheus_duration(""), None);
}

fn scraped(p: &[(&str, &str)]) -> LabelSetBuilder {
    let mut b = LabelSetBuilder::new();
    for (n, v) in p {
        b.set(n, v);
    }
    b
}

#[test]
fn honor_labels_false_renames_conflicts() {
    let target = Labels::from_pairs([("job", "node"), ("instance", "h:1")]).unwrap();
    let mut s = scraped(&[
        ("__name__", "up"),
        ("job", "pushed"),
        ("exported_job", "taken"),
        ("instance", "i"),
    ]);
    merge_sample_labels(&mut s, &target, false);
    assert_eq!(
        s.labels().to_string(),
        r#"up{exported_exported_job="pushed", exported_instance="i", exported_job="taken", instance="h:1", job="node"}"#
    );
}

#[test]
fn honor_labels_true_keeps_scraped() {
    let target = Labels::from_pairs([("job", "node"), ("instance", "h:1")]).unwrap();
    let mut s = scraped(&[("__name__", "up"), ("job", "pushed")]);
    merge_sample_labels(&mut s, &target, true);
    assert_eq!(
        s.labels().to_string(),
        r#"up{instance="h:1", job="pushed"}"#
    );
}
