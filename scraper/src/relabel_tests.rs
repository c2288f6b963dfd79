#![allow(clippy::unwrap_used)]
//! Cases from Prometheus's documented relabeling behaviour.

use super::*;

fn cfg(yaml: &str) -> RelabelConfig {
    let c: RelabelConfig = serde_yaml::from_str(yaml).unwrap();
    c.validate("r").unwrap();
    c
}

fn run(input: &[(&str, &str)], steps: &[&str]) -> Option<Vec<(String, String)>> {
    let mut lb = LabelSetBuilder::new();
    for (n, v) in input {
        lb.set(n, v);
    }
    let steps: Vec<Relabeler> = steps.iter().map(|s| Relabeler::new(cfg(s))).collect();
    if !process(&mut lb, &steps) {
        return None;
    }
    let mut out: Vec<(String, String)> = lb
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    out.sort();
    Some(out)
}

fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    let mut v: Vec<(String, String)> = p
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    v.sort();
    Some(v)
}

#[test]
fn defaults_are_prometheus_defaults() {
    let c: RelabelConfig = serde_yaml::from_str("target_label: x").unwrap();
    assert_eq!(c.separator, ";");
    assert_eq!(c.replacement, "$1");
    assert_eq!(c.action, Action::Replace);
    assert!(c.regex.is_none());
    // Action names are case-insensitive.
    let c: RelabelConfig = serde_yaml::from_str("action: LabelDrop\nregex: x").unwrap();
    assert_eq!(c.action, Action::LabelDrop);
}

#[test]
fn replace_copies_joined_sources() {
    let got = run(
        &[("a", "foo"), ("b", "bar")],
        &["source_labels: [a, b]\ntarget_label: c"],
    );
    assert_eq!(got, pairs(&[("a", "foo"), ("b", "bar"), ("c", "foo;bar")]));
}

#[test]
fn replace_with_groups_and_go_expansion() {
    let got = run(
        &[("a", "foo")],
        &["source_labels: [a]\nregex: f(.*)\ntarget_label: d\nreplacement: ch${1}-ch${1}"],
    );
    assert_eq!(got, pairs(&[("a", "foo"), ("d", "choo-choo")]));
    // `$1x` names group "1x", which does not exist: it expands to nothing.
    let got = run(
        &[("a", "foo")],
        &["source_labels: [a]\nregex: f(.*)\ntarget_label: d\nreplacement: $1x"],
    );
    assert_eq!(got, pairs(&[("a", "foo")]));
    // `$$` is a literal dollar.
    let got = run(
        &[("a", "foo")],
        &["source_labels: [a]\nregex: f(.*)\ntarget_label: d\nreplacement: $$$1"],
    );
    assert_eq!(got, pairs(&[("a", "foo"), ("d", "$oo")]));
    // Target label from a group.
    let got = run(
        &[("a", "some-name-value")],
        &["source_labels: [a]\nregex: some-([^-]+)-([^,]+)\ntarget_label: ${1}\nreplacement: ${2}"],
    );
    assert_eq!(got, pairs(&[("a", "some-name-value"), ("name", "value")]));
}

#[test]
fn replace_is_anchored_and_skips_non_matches() {
    // "o" would match inside "foo" unanchored; anchored it does not.
    let got = run(
        &[("a", "foo")],
        &["source_labels: [a]\nregex: o\ntarget_label: b\nreplacement: x"],
    );
    assert_eq!(got, pairs(&[("a", "foo")]));
    // An empty result deletes the target label.
    let got = run(
        &[("a", "foo"), ("b", "old")],
        &["source_labels: [c]\ntarget_label: b"],
    );
    assert_eq!(got, pairs(&[("a", "foo")]));
    // An invalid expanded target name leaves everything as is.
    let got = run(
        &[("a", "1x")],
        &["source_labels: [a]\nregex: (.*)\ntarget_label: $1\nreplacement: v"],
    );
    assert_eq!(got, pairs(&[("a", "1x")]));
}

#[test]
fn keep_drop_and_equality() {
    let input = [("a", "foo"), ("b", "foo")];
    assert!(run(&input, &["source_labels: [a]\nregex: f.*\naction: keep"]).is_some());
    assert!(run(&input, &["source_labels: [a]\nregex: g.*\naction: keep"]).is_none());
    assert!(run(&input, &["source_labels: [a]\nregex: f.*\naction: drop"]).is_none());
    assert!(run(&input, &["source_labels: [a]\nregex: fo\naction: drop"]).is_some());
    assert!(
        run(
            &input,
            &["source_labels: [a]\ntarget_label: b\naction: keepequal"]
        )
        .is_some()
    );
    assert!(
        run(
            &input,
            &["source_labels: [a]\ntarget_label: b\naction: dropequal"]
        )
        .is_none()
    );
    assert!(
        run(
            &[("a", "foo")],
            &["source_labels: [a]\ntarget_label: b\naction: keepequal"]
        )
        .is_none()
    );
    // Keep with no source labels matches against "".
    assert!(run(&input, &["regex: ''\naction: keep"]).is_some());
}

#[test]
fn hashmod_matches_prometheus() {
    // Prometheus's relabel_test: md5("baz") mod 1000 == 976.
    let got = run(
        &[("a", "foo"), ("c", "baz")],
        &["source_labels: [c]\ntarget_label: d\nmodulus: 1000\naction: hashmod"],
    );
    assert_eq!(got, pairs(&[("a", "foo"), ("c", "baz"), ("d", "976")]));
    let got = run(
        &[("a", "foo"), ("b", "bar")],
        &["source_labels: [a, b]\ntarget_label: shard\nmodulus: 1000\naction: hashmod"],
    );
    assert_eq!(
        got.unwrap().iter().find(|(n, _)| n == "shard").unwrap().1,
        "750"
    );
}

#[test]
fn label_map_drop_keep() {
    let input = [
        ("__meta_kubernetes_pod_label_app", "web"),
        ("__meta_kubernetes_pod_label_tier", "fe"),
        ("job", "x"),
    ];
    let got = run(
        &input,
        &["regex: __meta_kubernetes_pod_label_(.+)\naction: labelmap"],
    );
    assert_eq!(
        got,
        pairs(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_label_tier", "fe"),
            ("app", "web"),
            ("tier", "fe"),
            ("job", "x")
        ])
    );
    let got = run(&input, &["regex: __meta_.*\naction: labeldrop"]);
    assert_eq!(got, pairs(&[("job", "x")]));
    let got = run(&input, &["regex: job\naction: labelkeep"]);
    assert_eq!(got, pairs(&[("job", "x")]));
}

#[test]
fn case_actions() {
    let got = run(
        &[("a", "FoO"), ("b", "bAr")],
        &[
            "source_labels: [a]\ntarget_label: lower\naction: lowercase",
            "source_labels: [a, b]\ntarget_label: upper\naction: uppercase",
        ],
    );
    assert_eq!(
        got,
        pairs(&[
            ("a", "FoO"),
            ("b", "bAr"),
            ("lower", "foo"),
            ("upper", "FOO;BAR")
        ])
    );
}

#[test]
fn validation_refuses_what_prometheus_refuses() {
    let cases = [
        (
            "action: hashmod\ntarget_label: x",
            "r.modulus",
            "non-zero modulus",
        ),
        (
            "action: replace",
            "r.target_label",
            "requires 'target_label'",
        ),
        (
            "target_label: 1abc",
            "r.target_label",
            "invalid 'target_label'",
        ),
        (
            "target_label: ${1}-x",
            "r.target_label",
            "invalid 'target_label'",
        ),
        (
            "action: lowercase\ntarget_label: x\nreplacement: y",
            "r.replacement",
            "can not be set",
        ),
        (
            "action: keepequal\ntarget_label: x\nregex: a",
            "r.action",
            "only 'source_labels'",
        ),
        (
            "action: labeldrop\nregex: a\nsource_labels: [b]",
            "r.action",
            "only 'regex'",
        ),
        (
            "action: labelmap\nreplacement: 1-$1",
            "r.replacement",
            "invalid 'replacement'",
        ),
        (
            "source_labels: [a-b]\ntarget_label: x",
            "r.source_labels[0]",
            "not a valid label name",
        ),
    ];
    for (yaml, path, msg) in cases {
        let c: RelabelConfig = serde_yaml::from_str(yaml).unwrap();
        match c.validate("r") {
            Err(ConfigError::Invalid { path: p, message }) => {
                assert_eq!(p, path, "{yaml}");
                assert!(message.contains(msg), "{yaml}: {message}");
            }
            other => panic!("{yaml}: {other:?}"),
        }
    }
    assert!(serde_yaml::from_str::<RelabelConfig>("action: frobnicate").is_err());
    assert!(serde_yaml::from_str::<RelabelConfig>("regex: '('").is_err());
    assert!(serde_yaml::from_str::<RelabelConfig>("regexp: a").is_err());
}
