//! The head without a WAL: appends, refusals, matchers, label queries,
//! chunk cutting, truncation, block-range export and concurrency.

#![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

use std::sync::Arc;

use tidemark_model::{Labels, MatchOp, Matcher, STALE_NAN, Sample, TenantId, is_stale_nan};
use tidemark_tsdb::{Head, HeadOptions, TenantHeads, TsdbError};

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn s(t: i64, v: f64) -> Sample {
    Sample::new(t, v)
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

fn head() -> Head {
    Head::new(HeadOptions::default()).unwrap()
}

fn names(h: &Head, matchers: &[Matcher]) -> Vec<String> {
    h.select(matchers, i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| s.labels.to_string())
        .collect()
}

#[test]
fn append_then_select_returns_samples_in_order_bit_exact() {
    let h = head();
    let a = l(&[("__name__", "up"), ("job", "node")]);
    let r = h
        .append(&[(
            a.clone(),
            vec![s(1000, 1.0), s(2000, STALE_NAN), s(3000, 3.5)],
        )])
        .unwrap();
    assert_eq!(r.samples_written, 3);
    assert_eq!(r.series_created, 1);
    assert!(r.refused.is_empty());
    let got = h.select(&[Matcher::equal("__name__", "up")], 0, 10_000);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, a);
    let ts: Vec<i64> = got[0].samples.iter().map(|s| s.t).collect();
    assert_eq!(ts, [1000, 2000, 3000]);
    assert!(is_stale_nan(got[0].samples[1].v));
    assert_eq!(h.num_series(), 1);
    assert_eq!((h.min_time(), h.max_time()), (Some(1000), Some(3000)));
    // The range is inclusive at both ends.
    let got = h.select(&[Matcher::equal("job", "node")], 2000, 3000);
    assert_eq!(got[0].samples.len(), 2);
    assert!(
        h.select(&[Matcher::equal("job", "node")], 3001, 4000)
            .is_empty()
    );
}

#[test]
fn out_of_order_and_conflicting_duplicates_are_refused_naming_the_series() {
    let h = head();
    let a = l(&[("__name__", "up"), ("job", "node")]);
    let b = l(&[("__name__", "up"), ("job", "other")]);
    h.append(&[(a.clone(), vec![s(1000, 1.0), s(2000, 2.0)])])
        .unwrap();
    let r = h
        .append(&[
            (
                a.clone(),
                vec![s(1500, 9.0), s(2000, 2.0), s(2000, 7.0), s(3000, 3.0)],
            ),
            (b.clone(), vec![s(500, 1.0)]),
        ])
        .unwrap();
    // 1500 out of order, 2000/2.0 an exact duplicate (no-op), 2000/7.0 a
    // conflicting duplicate, 3000 fine; the other series is unaffected.
    assert_eq!(r.samples_written, 2);
    assert_eq!(r.samples_duplicate, 1);
    assert_eq!(r.samples_refused, 2);
    assert_eq!(r.refused.len(), 1);
    assert_eq!(r.refused[0].index, 0);
    assert_eq!(r.refused[0].samples, 2);
    match &r.refused[0].error {
        TsdbError::HeadOutOfOrder { series, t, last } => {
            assert_eq!(series, &a);
            assert_eq!((*t, *last), (1500, 2000));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(r.refused[0].error.to_string().contains("job=\"node\""));
    let got = h.select(&[Matcher::equal("job", "node")], 0, 10_000);
    let vals: Vec<f64> = got[0].samples.iter().map(|s| s.v).collect();
    assert_eq!(vals, [1.0, 2.0, 3.0]);

    let r = h.append(&[(a.clone(), vec![s(3000, 4.0)])]).unwrap();
    assert!(matches!(
        r.refused[0].error,
        TsdbError::HeadDuplicateTimestamp { t: 3000, .. }
    ));
}

#[test]
fn empty_label_set_is_refused_and_rest_of_batch_written() {
    let h = head();
    let r = h
        .append(&[
            (Labels::empty(), vec![s(1, 1.0)]),
            (l(&[("a", "1")]), vec![s(1, 1.0)]),
        ])
        .unwrap();
    assert_eq!(r.samples_written, 1);
    assert!(matches!(r.refused[0].error, TsdbError::EmptyLabels));
}

fn matcher_fixture() -> Head {
    let h = head();
    let batch: Vec<(Labels, Vec<Sample>)> = [
        l(&[("__name__", "http"), ("code", "200"), ("path", "/api")]),
        l(&[("__name__", "http"), ("code", "500"), ("path", "/api")]),
        l(&[("__name__", "http"), ("code", "404")]),
        l(&[("__name__", "rpc"), ("code", "200"), ("service", "foo-bar")]),
        l(&[("__name__", "rpc"), ("service", "foo")]),
    ]
    .into_iter()
    .map(|x| (x, vec![s(10, 1.0)]))
    .collect();
    h.append(&batch).unwrap();
    h
}

#[test]
fn matchers_follow_prometheus_semantics() {
    let h = matcher_fixture();
    let all = 5;
    assert_eq!(names(&h, &[Matcher::equal("__name__", "http")]).len(), 3);
    // Set fast path.
    assert_eq!(
        names(&h, &[m(MatchOp::Regex, "code", "200|404")]),
        [
            "http{code=\"200\", path=\"/api\"}",
            "http{code=\"404\"}",
            "rpc{code=\"200\", service=\"foo-bar\"}"
        ]
    );
    // Prefix fast path: anchored, so "foo.*" matches "foo" and "foo-bar".
    assert_eq!(names(&h, &[m(MatchOp::Regex, "service", "foo.*")]).len(), 2);
    assert_eq!(
        names(&h, &[m(MatchOp::Regex, "service", "foo-.*")]).len(),
        1
    );
    // General regex.
    assert_eq!(names(&h, &[m(MatchOp::Regex, "code", "[45]0.")]).len(), 2);
    // `=~".*"` matches everything, series without the label included.
    assert_eq!(names(&h, &[m(MatchOp::Regex, "path", ".*")]).len(), all);
    // `=~".+"` requires the label.
    assert_eq!(names(&h, &[m(MatchOp::Regex, "path", ".+")]).len(), 2);
    // `{x=""}`: label absent.
    assert_eq!(names(&h, &[Matcher::equal("path", "")]).len(), 3);
    // `{x!=""}`: label present.
    assert_eq!(names(&h, &[m(MatchOp::NotEqual, "path", "")]).len(), 2);
    // `!=` includes series without the label.
    assert_eq!(names(&h, &[m(MatchOp::NotEqual, "code", "200")]).len(), 3);
    // `!~` likewise.
    assert_eq!(
        names(&h, &[m(MatchOp::NotRegex, "code", "2..|5..")]).len(),
        2
    );
    // A regex that matches "" selects series lacking the label too.
    assert_eq!(names(&h, &[m(MatchOp::Regex, "code", "200|")]).len(), 3);
    // `!~".*"` selects nothing.
    assert!(names(&h, &[m(MatchOp::NotRegex, "code", ".*")]).is_empty());
    // Intersections and subtractions combine.
    assert_eq!(
        names(
            &h,
            &[
                Matcher::equal("__name__", "http"),
                m(MatchOp::NotEqual, "code", "500"),
                m(MatchOp::Regex, "path", ".*"),
            ]
        ),
        ["http{code=\"200\", path=\"/api\"}", "http{code=\"404\"}"]
    );
    // Unknown label or value.
    assert!(names(&h, &[Matcher::equal("nope", "x")]).is_empty());
    assert!(names(&h, &[Matcher::equal("code", "999")]).is_empty());
    assert_eq!(names(&h, &[Matcher::equal("nope", "")]).len(), all);
}

#[test]
fn label_names_and_values() {
    let h = matcher_fixture();
    assert_eq!(
        h.label_names(&[], i64::MIN, i64::MAX),
        ["__name__", "code", "path", "service"]
    );
    assert_eq!(
        h.label_names(&[Matcher::equal("__name__", "rpc")], i64::MIN, i64::MAX),
        ["__name__", "code", "service"]
    );
    assert_eq!(
        h.label_values("code", &[], i64::MIN, i64::MAX),
        ["200", "404", "500"]
    );
    assert_eq!(
        h.label_values("code", &[Matcher::equal("__name__", "rpc")], 0, 100),
        ["200"]
    );
    // Outside the data's time range nothing matches.
    assert!(h.label_values("code", &[], 100, 200).is_empty());
    assert!(h.label_names(&[], 100, 200).is_empty());
}

#[test]
fn chunks_are_cut_and_every_sample_reads_back() {
    let h = head();
    let a = l(&[("__name__", "x")]);
    let samples: Vec<Sample> = (0..1000).map(|i| s(i * 15_000, i as f64 * 0.5)).collect();
    for part in samples.chunks(7) {
        h.append(&[(a.clone(), part.to_vec())]).unwrap();
    }
    let got = h.select(&[Matcher::equal("__name__", "x")], i64::MIN, i64::MAX);
    assert_eq!(got[0].samples, samples);
    let mid = h.select(
        &[Matcher::equal("__name__", "x")],
        15_000 * 100,
        15_000 * 399,
    );
    assert_eq!(mid[0].samples, samples[100..400]);
}

#[test]
fn series_in_range_gives_exact_half_open_ranges() {
    let h = head();
    let a = l(&[("__name__", "a")]);
    let b = l(&[("__name__", "b")]);
    let sa: Vec<Sample> = (0..500).map(|i| s(i * 10_000, i as f64)).collect();
    h.append(&[(b.clone(), vec![s(5_000, 1.0)]), (a.clone(), sa.clone())])
        .unwrap();
    let got: Vec<_> = h.series_in_range(1_000_000, 3_000_000).collect();
    assert_eq!(got.len(), 1, "b has no sample in the range");
    assert_eq!(got[0].labels, a);
    let decoded: Vec<Sample> = got[0]
        .chunks
        .iter()
        .flat_map(|c| c.samples().unwrap())
        .collect();
    let want: Vec<Sample> = sa
        .iter()
        .copied()
        .filter(|s| (1_000_000..3_000_000).contains(&s.t))
        .collect();
    assert_eq!(decoded, want);
    let all: Vec<_> = h.series_in_range(i64::MIN, i64::MAX).collect();
    assert_eq!(all.len(), 2);
    assert!(all[0].labels < all[1].labels);
}

#[test]
fn truncate_drops_old_data_and_empty_series_and_refuses_older_samples() {
    let h = head();
    let old = l(&[("__name__", "old")]);
    let live = l(&[("__name__", "live")]);
    h.append(&[
        (old.clone(), (0..200).map(|i| s(i * 1000, 1.0)).collect()),
        (live.clone(), (0..400).map(|i| s(i * 1000, 2.0)).collect()),
    ])
    .unwrap();
    let before = h.memory_bytes();
    let stats = h.truncate(300_000).unwrap();
    assert_eq!(stats.series_removed, 1);
    assert_eq!(h.num_series(), 1);
    assert!(h.memory_bytes() < before);
    assert!(names(&h, &[Matcher::equal("__name__", "old")]).is_empty());
    assert_eq!(
        h.label_values("__name__", &[], i64::MIN, i64::MAX),
        ["live"]
    );
    // Whole chunks before the cut are gone; the rest is intact.
    let got = h.select(&[Matcher::equal("__name__", "live")], i64::MIN, i64::MAX);
    assert!(got[0].samples.iter().all(|s| s.t >= 240_000));
    assert!(got[0].samples.iter().any(|s| s.t == 399_000));
    assert!(h.min_time().unwrap() <= 300_000);

    let r = h.append(&[(old.clone(), vec![s(299_999, 1.0)])]).unwrap();
    assert_eq!(
        h.num_series(),
        1,
        "no series is created for refused samples"
    );
    assert!(matches!(
        r.refused[0].error,
        TsdbError::HeadOutOfBounds {
            t: 299_999,
            min_valid: 300_000,
            ..
        }
    ));
    // A removed series can come back with new samples.
    let r = h.append(&[(old.clone(), vec![s(500_000, 1.0)])]).unwrap();
    assert_eq!(r.series_created, 1);
    let st = h.stats();
    assert_eq!(
        (
            st.series,
            st.samples_appended,
            st.samples_refused,
            st.series_created,
            st.series_removed
        ),
        (2, 601, 1, 3, 1)
    );
    assert_eq!(names(&h, &[Matcher::equal("__name__", "old")]), ["old"]);
}

#[test]
fn memory_accounting_tracks_series_and_samples() {
    let h = head();
    assert!(h.memory_bytes() < 1024);
    let batch: Vec<(Labels, Vec<Sample>)> = (0..1000)
        .map(|i| {
            (
                l(&[("__name__", "m"), ("instance", &format!("host-{i}"))]),
                (0..120).map(|j| s(j * 15_000, j as f64)).collect(),
            )
        })
        .collect();
    h.append(&batch).unwrap();
    let per_series = h.memory_bytes() / 1000;
    // Samples are compressed and labels interned: far below 16 B/sample raw.
    assert!(
        (150..1536).contains(&per_series),
        "{per_series} bytes per series"
    );
}

#[test]
fn concurrent_appends_and_reads_lose_nothing() {
    let h = Arc::new(head());
    let threads = 4;
    let per_thread_series = 50;
    let rounds = 200;
    std::thread::scope(|sc| {
        for t in 0..threads {
            let h = Arc::clone(&h);
            sc.spawn(move || {
                for round in 0..rounds {
                    // Each thread owns its series, plus one series shared by all
                    // threads (appends to it may be refused as out of order).
                    let mut batch: Vec<(Labels, Vec<Sample>)> = (0..per_thread_series)
                        .map(|i| {
                            (
                                l(&[
                                    ("__name__", "c"),
                                    ("t", &t.to_string()),
                                    ("i", &i.to_string()),
                                ]),
                                vec![s(round, round as f64)],
                            )
                        })
                        .collect();
                    batch.push((l(&[("__name__", "shared")]), vec![s(round * 10 + t, 1.0)]));
                    h.append(&batch).unwrap();
                }
            });
        }
        let h = Arc::clone(&h);
        sc.spawn(move || {
            for _ in 0..50 {
                let got = h.select(&[Matcher::equal("__name__", "c")], 0, i64::MAX);
                for series in got {
                    assert!(series.samples.windows(2).all(|w| w[0].t < w[1].t));
                }
            }
        });
    });
    let got = h.select(&[Matcher::equal("__name__", "c")], 0, i64::MAX);
    assert_eq!(got.len(), (threads * per_thread_series) as usize);
    for series in &got {
        assert_eq!(series.samples.len(), rounds as usize);
    }
    assert_eq!(h.num_series(), (threads * per_thread_series) as usize + 1);
}

#[test]
fn tenants_are_isolated() {
    let heads = TenantHeads::in_memory(HeadOptions::default());
    let a = TenantId::new("a").unwrap();
    let b = TenantId::new("b").unwrap();
    heads
        .get_or_create(&a)
        .unwrap()
        .append(&[(l(&[("__name__", "x")]), vec![s(1, 1.0)])])
        .unwrap();
    let hb = heads.get_or_create(&b).unwrap();
    assert!(names(&hb, &[Matcher::equal("__name__", "x")]).is_empty());
    assert_eq!(heads.tenants(), [a.clone(), b]);
    assert!(Arc::ptr_eq(
        &heads.get(&a).unwrap(),
        &heads.get_or_create(&a).unwrap()
    ));
}

mod matcher_model {
    //! Matcher evaluation over postings agrees with checking every series
    //! one by one with `Matcher::matches` (absent label = "").
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 3] = ["a", "b", "c"];
    const VALUES: [&str; 4] = ["x", "y", "xy", "z"];
    const PATTERNS: [&str; 9] = ["", "x", "x|y", "x.*", ".*", ".+", "y|", "[xz]", "xy|z|"];

    fn op(i: u8) -> MatchOp {
        [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ][i as usize % 4]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn postings_agree_with_brute_force(
            series in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(0usize..4), 3), 1..30),
            matchers in proptest::collection::vec((0usize..3, any::<u8>(), 0usize..9), 1..4),
        ) {
            let h = head();
            let mut all = Vec::new();
            for (i, vals) in series.iter().enumerate() {
                let mut pairs = vec![("id".to_string(), i.to_string())];
                for (n, v) in NAMES.iter().zip(vals) {
                    if let Some(v) = v {
                        pairs.push((n.to_string(), VALUES[*v].to_string()));
                    }
                }
                let labels = Labels::from_pairs(pairs).unwrap();
                h.append(&[(labels.clone(), vec![s(1, 1.0)])]).unwrap();
                all.push(labels);
            }
            let ms: Vec<Matcher> = matchers
                .iter()
                .map(|(n, o, p)| {
                    let o = op(*o);
                    let v = match o {
                        MatchOp::Equal | MatchOp::NotEqual => PATTERNS[*p].replace(['|', '.', '*', '+', '[', ']'], ""),
                        _ => PATTERNS[*p].to_string(),
                    };
                    Matcher::new(o, NAMES[*n], v).unwrap()
                })
                .collect();
            let mut want: Vec<Labels> = all
                .iter()
                .filter(|l| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
                .cloned()
                .collect();
            want.sort();
            let got: Vec<Labels> = h
                .select(&ms, i64::MIN, i64::MAX)
                .into_iter()
                .map(|s| s.labels)
                .collect();
            prop_assert_eq!(got, want, "matchers {:?}", ms);
        }
    }
}
