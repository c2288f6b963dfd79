#![allow(clippy::unwrap_used)]

use tidemark_model::is_stale_nan;

use super::*;
use crate::config::PrometheusConfig;

fn ctx(extra: &str) -> JobContext {
    let yaml = format!(
        "global:\n  external_labels:\n    cluster: c1\nscrape_configs:\n  - job_name: node\n{extra}"
    );
    let cfg = PrometheusConfig::from_yaml(&yaml).unwrap();
    JobContext::new(&cfg.scrape_configs[0], &cfg.global)
}

fn target() -> Labels {
    Labels::from_pairs([("job", "node"), ("instance", "h:9100")]).unwrap()
}

fn find<'a>(samples: &'a [(Labels, Sample)], name: &str) -> Vec<&'a (Labels, Sample)> {
    samples
        .iter()
        .filter(|(l, _)| l.metric_name() == Some(name))
        .collect()
}

const BODY: &str = "# TYPE a counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2\nb 3 1000\n";

#[test]
fn samples_get_target_and_external_labels() {
    let c = ctx("");
    let mut st = ScrapeState::new();
    let o = st.append(&c, &target(), BODY.as_bytes(), Some("text/plain"), 5000);
    assert!(o.error.is_none());
    assert_eq!((o.scraped, o.post_relabel, o.series_added), (3, 3, 3));
    let a = find(&o.samples, "a_total");
    assert_eq!(
        a[0].0.to_string(),
        r#"a_total{cluster="c1", instance="h:9100", job="node", x="1"}"#
    );
    assert_eq!(a[0].1, Sample::new(5000, 1.0));
    // honor_timestamps defaults to true: the exposed timestamp is kept.
    assert_eq!(find(&o.samples, "b")[0].1, Sample::new(1000, 3.0));
}

#[test]
fn disappearing_series_get_staleness_markers() {
    let c = ctx("");
    let mut st = ScrapeState::new();
    st.append(&c, &target(), BODY.as_bytes(), None, 1000);
    let o = st.append(
        &c,
        &target(),
        b"a_total{x=\"1\"} 5\na_total{x=\"3\"} 1\n",
        None,
        2000,
    );
    assert_eq!(o.series_added, 1);
    let stale: Vec<_> = o
        .samples
        .iter()
        .filter(|(_, s)| is_stale_nan(s.v))
        .collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].0.get("x"), Some("2"));
    assert_eq!(stale[0].1.t, 2000);
    // `b` carried its own timestamp, so it is not tracked for staleness.
    assert!(stale.iter().all(|(l, _)| l.metric_name() != Some("b")));
}

#[test]
fn a_bad_body_fails_the_scrape_and_stales_everything() {
    let c = ctx("");
    let mut st = ScrapeState::new();
    st.append(&c, &target(), BODY.as_bytes(), None, 1000);
    let o = st.append(&c, &target(), b"a_total{x=\"1\" 5\n", None, 2000);
    let err = o.error.as_ref().unwrap().to_string();
    assert!(err.contains("line 1"), "{err}");
    assert_eq!((o.scraped, o.post_relabel), (0, 0));
    assert_eq!(o.samples.len(), 2);
    assert!(o.samples.iter().all(|(_, s)| is_stale_nan(s.v)));
    let report = report_samples(&c, &target(), 2000, Some((&o, 0.01)));
    assert_eq!(find(&report, "up")[0].1.v, 0.0);
}

#[test]
fn metric_relabeling_and_limits() {
    let c = ctx(
        "    metric_relabel_configs:\n      - source_labels: [x]\n        regex: '2'\n        action: drop\n",
    );
    let mut st = ScrapeState::new();
    let o = st.append(&c, &target(), BODY.as_bytes(), None, 1000);
    assert_eq!((o.scraped, o.post_relabel), (3, 2));

    let c = ctx("    sample_limit: 2\n");
    let o = ScrapeState::new().append(&c, &target(), BODY.as_bytes(), None, 1000);
    assert!(matches!(
        o.error,
        Some(ScrapeError::LimitExceeded {
            setting: "sample_limit",
            limit: 2,
            ..
        })
    ));
    assert!(o.samples.is_empty());

    // job, instance, __name__, x (+ external labels, which do not count).
    let c = ctx("    label_limit: 3\n");
    let o = ScrapeState::new().append(&c, &target(), BODY.as_bytes(), None, 1000);
    assert!(matches!(
        o.error,
        Some(ScrapeError::LimitExceeded {
            setting: "label_limit",
            actual: 4,
            ..
        })
    ));

    let c = ctx("    label_value_length_limit: 4\n");
    let o = ScrapeState::new().append(&c, &target(), BODY.as_bytes(), None, 1000);
    assert!(matches!(
        o.error,
        Some(ScrapeError::LimitExceeded {
            setting: "label_value_length_limit",
            ..
        })
    ));
}

#[test]
fn honor_timestamps_false_uses_scrape_time() {
    let c = ctx("    honor_timestamps: false\n");
    let o = ScrapeState::new().append(&c, &target(), BODY.as_bytes(), None, 7000);
    assert_eq!(find(&o.samples, "b")[0].1, Sample::new(7000, 3.0));
}

#[test]
fn invalid_series_fail_the_scrape() {
    let c = ctx("");
    let o = ScrapeState::new().append(&c, &target(), b"m{a=\"1\",a=\"2\"} 1\n", None, 1);
    assert!(o.error.unwrap().to_string().contains("not unique"));
    let o = ScrapeState::new().append(&c, &target(), b"{\"my.metric\"} 1\n", None, 1);
    assert!(o.error.unwrap().to_string().contains("invalid metric name"));
}

#[test]
fn report_series_and_end_of_run() {
    let c = ctx("");
    let mut st = ScrapeState::new();
    let o = st.append(&c, &target(), BODY.as_bytes(), None, 1000);
    let r = report_samples(&c, &target(), 1000, Some((&o, 0.25)));
    let names: Vec<_> = r
        .iter()
        .map(|(l, s)| (l.metric_name().unwrap().to_string(), s.v))
        .collect();
    assert_eq!(
        names,
        vec![
            ("up".to_string(), 1.0),
            ("scrape_duration_seconds".to_string(), 0.25),
            ("scrape_samples_scraped".to_string(), 3.0),
            ("scrape_samples_post_metric_relabeling".to_string(), 3.0),
            ("scrape_series_added".to_string(), 3.0),
        ]
    );
    assert_eq!(
        r[0].0.to_string(),
        r#"up{cluster="c1", instance="h:9100", job="node"}"#
    );
    let stale = st.stale_all(2000);
    assert_eq!(stale.len(), 2);
    assert!(
        report_samples(&c, &target(), 2000, None)
            .iter()
            .all(|(_, s)| is_stale_nan(s.v))
    );
}

#[test]
fn exemplars_come_with_their_samples_stamped_like_prometheus() {
    let c = ctx(
        "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: dropped_total\n        action: drop\n",
    );
    let long = "x".repeat(121);
    let body = format!(
        "# TYPE req counter\n\
         req_total{{code=\"200\"}} 7 # {{trace_id=\"abc\",span_id=\"s1\"}} 1 4.5\n\
         req_total{{code=\"500\"}} 1 # {{trace_id=\"def\"}} 2\n\
         req_total{{code=\"404\"}} 1 # {{trace_id=\"{long}\"}} 3\n\
         # TYPE dropped counter\n\
         dropped_total 1 # {{trace_id=\"gone\"}} 1\n\
         # EOF\n"
    );
    let mut st = ScrapeState::new();
    let o = st.append(
        &c,
        &target(),
        body.as_bytes(),
        Some("application/openmetrics-text; version=1.0.0"),
        9000,
    );
    assert!(o.error.is_none(), "{:?}", o.error);
    let got: Vec<(String, String, i64, f64)> = o
        .exemplars
        .iter()
        .map(|(s, e)| (s.to_string(), e.labels.to_string(), e.t, e.v))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                r#"req_total{cluster="c1", code="200", instance="h:9100", job="node"}"#.to_string(),
                r#"{span_id="s1", trace_id="abc"}"#.to_string(),
                4500,
                1.0
            ),
            // No timestamp of its own: the scrape's.
            (
                r#"req_total{cluster="c1", code="500", instance="h:9100", job="node"}"#.to_string(),
                r#"{trace_id="def"}"#.to_string(),
                9000,
                2.0
            ),
        ],
        "the over-long exemplar and the relabel-dropped series' are not kept"
    );
    assert_eq!(o.samples.len(), 3, "the samples themselves are all kept");
}
