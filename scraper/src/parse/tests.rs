#![allow(clippy::unwrap_used)]
//! Behaviour of both parsers on the cases Prometheus's own tests cover.

use proptest::prelude::*;

use super::*;

fn text(body: &str) -> Result<Vec<OwnedEntry>, ParseError> {
    parse_all(body.as_bytes(), Some("text/plain; version=0.0.4"))
}

fn om(body: &str) -> Result<Vec<OwnedEntry>, ParseError> {
    parse_all(
        body.as_bytes(),
        Some("application/openmetrics-text; version=1.0.0"),
    )
}

fn series(name: &str, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> OwnedEntry {
    OwnedEntry::Series {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        value,
        timestamp_ms: ts,
    }
}

#[test]
fn text_format_full_example() {
    let body = "# HELP http_requests_total The total number of HTTP requests.\n\
                # TYPE http_requests_total counter\n\
                http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                \n\
                # A normal comment.\n\
                msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                metric_without_timestamp_and_labels 12.47\n\
                something_weird{problem=\"division by zero\"} +Inf -3982045\n";
    let err = text(body).unwrap_err();
    // A negative timestamp is not a timestamp for Prometheus's lexer either.
    assert_eq!(err.line, 9);

    let body = body.replace(" -3982045", " 3982045");
    let got = text(&body).unwrap();
    assert_eq!(
        got[0],
        OwnedEntry::Help {
            metric: "http_requests_total".into(),
            text: "The total number of HTTP requests.".into()
        }
    );
    assert_eq!(
        got[1],
        OwnedEntry::Type {
            metric: "http_requests_total".into(),
            kind: MetricType::Counter
        }
    );
    assert_eq!(
        got[2],
        series(
            "http_requests_total",
            &[("method", "post"), ("code", "200")],
            1027.0,
            Some(1395066363000)
        )
    );
    assert_eq!(
        got[3],
        series(
            "http_requests_total",
            &[("method", "post"), ("code", "400")],
            3.0,
            Some(1395066363000)
        )
    );
    assert_eq!(got[4], OwnedEntry::Comment("A normal comment.".into()));
    assert_eq!(
        got[5],
        series(
            "msdos_file_access_time_seconds",
            &[
                ("path", "C:\\DIR\\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\"")
            ],
            1.458255915e9,
            None
        )
    );
    assert_eq!(
        got[6],
        series("metric_without_timestamp_and_labels", &[], 12.47, None)
    );
    assert_eq!(
        got[7],
        series(
            "something_weird",
            &[("problem", "division by zero")],
            f64::INFINITY,
            Some(3982045)
        )
    );
    assert_eq!(got.len(), 8);
}

#[test]
fn text_format_leniency_matches_prometheus() {
    // Blanks between tokens, trailing comma, empty label block, tabs.
    let got = text("  foo { a = \"1\" , } 2\t\nbar{} 3\n").unwrap();
    assert_eq!(
        got,
        vec![
            series("foo", &[("a", "1")], 2.0, None),
            series("bar", &[], 3.0, None)
        ]
    );
    // HELP escaping: only \\ and \n; \" stays as written.
    let got = text("# HELP m a\\\\b\\nc \\\"q\\\"\n").unwrap();
    assert_eq!(
        got[0],
        OwnedEntry::Help {
            metric: "m".into(),
            text: "a\\b\nc \\\"q\\\"".into()
        }
    );
    // `#` without a blank, or a keyword without a blank after it, is a comment.
    assert_eq!(text("#TYPE m counter\n# HELPER x\n").unwrap().len(), 2);
    // Comments are not inspected: invalid UTF-8 there does not fail the body.
    assert_eq!(parse_all(b"# caf\xe9\nm 1\n", None).unwrap().len(), 2);
    assert!(matches!(
        text("# TYPE m untyped\n").unwrap()[0],
        OwnedEntry::Type {
            kind: MetricType::Unknown,
            ..
        }
    ));
}

#[test]
fn text_format_edges_like_prometheus() {
    // The last line may lack its line feed (Prometheus appends one).
    assert_eq!(
        text("a 1\nb 2").unwrap(),
        vec![series("a", &[], 1.0, None), series("b", &[], 2.0, None)]
    );
    assert_eq!(
        text("a 1 1000").unwrap(),
        vec![series("a", &[], 1.0, Some(1000))]
    );
    assert_eq!(text("# HELP a x").unwrap().len(), 1);
    // NUL is fine inside label values and HELP text, and ends the body at
    // the start of a line; elsewhere it is an error.
    let got = text("# HELP m with\0nul\nm{v=\"a\0b\"} 1\n\0junk").unwrap();
    assert_eq!(got[1], series("m", &[("v", "a\0b")], 1.0, None));
    assert_eq!(got.len(), 2);
    assert!(text("m\0 1\n").is_err());
    assert!(text("m 0 1\0\n").is_err());
    // A tab may separate `#` and the keyword; a bare `#` is a comment.
    assert!(matches!(
        text("#\tTYPE m gauge\n#\n").unwrap()[..],
        [OwnedEntry::Type { .. }, OwnedEntry::Comment(_)]
    ));
    // Timestamps are digits only; underscores and hex floats are refused.
    assert!(text("m 0 1_2\n").is_err());
    assert!(text("m 1_2\n").is_err());
    assert!(text("m 0x1p-3\n").is_err());
    assert!(text("m{a='b'} 1\n").is_err());
    assert!(text("m{=\"b\"} 1\n").is_err());
}

#[test]
fn text_format_errors_name_line_and_expectation() {
    let err = text("ok 1\nfoo{a=\"b\" 1\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(
        err.to_string(),
        "line 2: expected `,` or `}` after label value, found \"1\""
    );

    let err = text("ok 1\n# TYPE foo countr\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(
        err.to_string().contains("invalid metric type \"countr\""),
        "{err}"
    );

    let err = text("foo\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1: expected sample value, found line break"
    );

    let err = text("foo").unwrap_err();
    assert!(
        err.to_string()
            .contains("expected sample value, found end of input"),
        "{err}"
    );

    let err = text("foo abc\n").unwrap_err();
    assert!(matches!(err.kind, ParseErrorKind::InvalidValue { .. }));

    let err = text("foo 1 2 3\n").unwrap_err();
    assert!(
        err.to_string().contains("line break after timestamp"),
        "{err}"
    );

    let err = text("foo{a=\"unterminated} 1\n").unwrap_err();
    assert!(matches!(
        err.kind,
        ParseErrorKind::UnterminatedString { .. }
    ));

    let err = text("{a=\"b\"} 1\n").unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::MissingMetricName);

    let err = parse_all(b"foo{a=\"\xff\"} 1\n", None).unwrap_err();
    assert!(matches!(
        err.kind,
        ParseErrorKind::InvalidUtf8 {
            what: "label value"
        }
    ));
}

#[test]
fn special_values_and_nan_normalisation() {
    let got = text("a NaN\nb +Inf\nc -Inf\nd -0.5e-3\n").unwrap();
    let vals: Vec<f64> = got
        .iter()
        .map(|e| match e {
            OwnedEntry::Series { value, .. } => *value,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(vals[0].to_bits(), NORMAL_NAN.to_bits());
    assert_eq!(vals[1], f64::INFINITY);
    assert_eq!(vals[2], f64::NEG_INFINITY);
    assert_eq!(vals[3], -0.0005);
    // A body cannot smuggle in the staleness marker's bit pattern.
    assert!(!tidemark_model::is_stale_nan(vals[0]));
}

#[test]
fn quoted_utf8_names() {
    let got = text("{\"my.metric\", \"my.label\"=\"v\", b=\"c\"} 1\n").unwrap();
    assert_eq!(
        got,
        vec![series(
            "my.metric",
            &[("my.label", "v"), ("b", "c")],
            1.0,
            None
        )]
    );
    let got = om("{\"my.metric\",a=\"b\"} 1\n# EOF\n").unwrap();
    assert_eq!(got, vec![series("my.metric", &[("a", "b")], 1.0, None)]);
    let err = text("{\"a\", \"b\"} 1\n").unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::DuplicateMetricName);
    let err = text("foo{\"a\"} 1\n").unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::DuplicateMetricName);
}

#[test]
fn openmetrics_full_example() {
    let body = "# HELP foo_seconds Some \\\"help\\\".\n\
                # TYPE foo_seconds counter\n\
                # UNIT foo_seconds seconds\n\
                foo_seconds_total{a=\"b\"} 1.5 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
                foo_seconds_created{a=\"b\"} 1520430000.123\n\
                foo_seconds_total{a=\"c\",} 2 # {id=\"x\"} 1 1520879607.7\n\
                # EOF";
    let got = om(body).unwrap();
    assert_eq!(
        got[0],
        OwnedEntry::Help {
            metric: "foo_seconds".into(),
            text: "Some \"help\".".into()
        }
    );
    assert_eq!(
        got[2],
        OwnedEntry::Unit {
            metric: "foo_seconds".into(),
            unit: "seconds".into()
        }
    );
    assert_eq!(
        got[3],
        series("foo_seconds_total", &[("a", "b")], 1.5, Some(1520879607789))
    );
    assert_eq!(
        got[4],
        series("foo_seconds_created", &[("a", "b")], 1520430000.123, None)
    );
    assert_eq!(
        got[5],
        series("foo_seconds_total", &[("a", "c")], 2.0, None)
    );
    assert_eq!(got.len(), 6);

    let mut p = OpenMetricsParser::new(body.as_bytes()).skip_created_series(true);
    let mut exemplars = Vec::new();
    while let Some(e) = p.next_entry().unwrap() {
        if let Entry::Series(s) = e {
            assert!(!s.name.raw().ends_with("_created"));
            let ex = s.exemplar.expect("each sample has an exemplar");
            let labels: Vec<(String, String)> = ex
                .labels
                .iter()
                .map(|(n, v)| (n.unescape().into_owned(), v.unescape().into_owned()))
                .collect();
            exemplars.push((labels, ex.value, ex.timestamp_ms));
        }
    }
    assert_eq!(
        exemplars,
        vec![
            (
                vec![("trace_id".to_string(), "KOO5S4vxi0o".to_string())],
                0.67,
                None
            ),
            (
                vec![("id".to_string(), "x".to_string())],
                1.0,
                Some(1520879607700)
            ),
        ]
    );
}

#[test]
fn openmetrics_is_strict() {
    let cases: &[(&str, usize, &str)] = &[
        ("foo 1\n", 2, "does not end with `# EOF`"),
        ("foo 1\n# EOF\nbar 1\n", 3, "data after `# EOF`"),
        ("foo 1\n\n# EOF\n", 2, "expected metric name"),
        ("# a comment\n# EOF\n", 1, "HELP, TYPE, UNIT or EOF"),
        ("foo  1\n# EOF\n", 1, "expected sample value"),
        ("foo{a=\"b\", c=\"d\"} 1\n# EOF\n", 1, "expected label name"),
        (
            "# TYPE foo untyped\n# EOF\n",
            1,
            "invalid metric type \"untyped\"",
        ),
        ("# UNIT foo_bytes seconds\n# EOF\n", 1, "not a suffix"),
        ("foo 1 NaN\n# EOF\n", 1, "invalid timestamp"),
        ("foo 1 # {a=\"b\"}\n# EOF\n", 1, "a space before the value"),
        ("# HELP foo\n# EOF\n", 1, "a space and text"),
    ];
    for (body, line, msg) in cases {
        let err = om(body).unwrap_err();
        assert_eq!(err.line, *line, "{body:?}: {err}");
        assert!(err.to_string().contains(msg), "{body:?}: {err}");
    }
    // `# EOF` may or may not end with a line feed.
    assert_eq!(om("foo 1\n# EOF").unwrap().len(), 1);
}

#[test]
fn parsers_borrow_instead_of_allocating() {
    let body = b"foo{a=\"plain\",b=\"esc\\\"aped\"} 1\n";
    let mut p = TextParser::new(body);
    let Some(Entry::Series(s)) = p.next_entry().unwrap() else {
        panic!("expected a series")
    };
    assert_eq!(s.raw, "foo{a=\"plain\",b=\"esc\\\"aped\"}");
    assert!(matches!(
        s.labels[0].1.unescape(),
        std::borrow::Cow::Borrowed("plain")
    ));
    assert_eq!(s.labels[1].1.unescape(), "esc\"aped");
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z\\\\\"\n ]{0,12}"]
}

proptest! {
    #[test]
    fn exposed_label_values_round_trip(values in proptest::collection::vec(label_value(), 1..4), v in any::<f64>()) {
        let mut line = String::from("m{");
        for (i, val) in values.iter().enumerate() {
            line.push_str(&format!("l{i}=\"{}\",", escape_label_value(val)));
        }
        line.push_str(&format!("}} {v:?}\n"));
        for ct in ["text/plain", "application/openmetrics-text"] {
            let body = if ct == "text/plain" { line.clone() } else { format!("{line}# EOF\n") };
            let got = parse_all(body.as_bytes(), Some(ct)).unwrap();
            let OwnedEntry::Series { labels, value, .. } = &got[0] else { panic!("not a series") };
            let want: Vec<String> = values.clone();
            let got_vals: Vec<String> = labels.iter().map(|(_, v)| v.clone()).collect();
            prop_assert_eq!(got_vals, want);
            if v.is_nan() { prop_assert!(value.is_nan()) } else { prop_assert_eq!(*value, v) }
        }
    }

    #[test]
    fn never_panics_on_garbage(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_all(&body, Some("text/plain"));
        let _ = parse_all(&body, Some("application/openmetrics-text"));
    }
}
