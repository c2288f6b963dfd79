//! Exemplars in the head: stored with their series, queried by matcher
//! sets, kept across a restart (WAL) and a truncation (checkpoint).

#![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

use std::path::Path;

use tidemark_model::{Exemplar, Labels, MatchOp, Matcher, Sample};
use tidemark_tsdb::{ExemplarRefusal, Head, HeadOptions, SeriesExemplars, WalOptions};

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn ex(trace: &str, t: i64, v: f64) -> Exemplar {
    Exemplar {
        labels: l(&[("trace_id", trace)]),
        t,
        v,
    }
}

fn open(dir: &Path, opts: HeadOptions) -> Head {
    Head::open(dir, opts, WalOptions::default()).unwrap().0
}

fn all(h: &Head) -> Vec<SeriesExemplars> {
    h.exemplars(
        &[vec![
            Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap(),
        ]],
        i64::MIN,
        i64::MAX,
    )
}

fn traces(s: &SeriesExemplars) -> Vec<String> {
    s.exemplars
        .iter()
        .map(|e| e.labels.get("trace_id").unwrap_or_default().to_string())
        .collect()
}

#[test]
fn exemplars_are_stored_per_series_and_selected_by_matcher_sets() {
    let h = Head::new(HeadOptions::default()).unwrap();
    let a = l(&[("__name__", "req_total"), ("job", "api")]);
    let b = l(&[("__name__", "req_total"), ("job", "web")]);
    let c = l(&[("__name__", "other"), ("job", "api")]);
    h.append(&[
        (a.clone(), vec![Sample::new(1000, 1.0)]),
        (b.clone(), vec![Sample::new(1000, 1.0)]),
        (c.clone(), vec![Sample::new(1000, 1.0)]),
    ])
    .unwrap();
    let never = l(&[("__name__", "never_sampled")]);
    let r = h
        .append_exemplars(&[
            (a.clone(), vec![ex("a1", 1000, 1.0), ex("a2", 2000, 2.0)]),
            (b.clone(), vec![ex("b1", 1500, 1.0)]),
            (c.clone(), vec![ex("c1", 1000, 1.0)]),
            (never, vec![ex("n1", 1000, 1.0)]),
            // Older than a's newest: refused, the rest of the batch kept.
            (a.clone(), vec![ex("a0", 500, 1.0)]),
        ])
        .unwrap();
    assert_eq!(r.written, 4);
    assert_eq!(
        r.refused,
        vec![
            (3, ExemplarRefusal::UnknownSeries),
            (4, ExemplarRefusal::OutOfOrder)
        ]
    );

    // Two matcher sets: their union, sorted by series labels.
    let got = h.exemplars(
        &[
            vec![
                Matcher::equal("__name__", "req_total"),
                Matcher::equal("job", "web"),
            ],
            vec![Matcher::equal("job", "api")],
        ],
        i64::MIN,
        i64::MAX,
    );
    let names: Vec<&Labels> = got.iter().map(|s| &s.labels).collect();
    assert_eq!(names, vec![&c, &a, &b]);
    assert_eq!(traces(&got[1]), ["a1", "a2"]);

    // The range is inclusive and filters exemplars, then series.
    let got = h.exemplars(&[vec![Matcher::equal("job", "api")]], 1500, 2000);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, a);
    assert_eq!(traces(&got[0]), ["a2"]);
    assert_eq!(h.stats().exemplars, 4);
}

#[test]
fn exemplars_survive_a_restart_and_a_checkpoint_of_live_series() {
    let dir = tempfile::tempdir().unwrap();
    let live = l(&[("__name__", "live")]);
    let gone = l(&[("__name__", "gone")]);
    {
        let h = open(dir.path(), HeadOptions::default());
        h.append(&[
            (live.clone(), vec![Sample::new(1000, 1.0)]),
            (gone.clone(), vec![Sample::new(1000, 1.0)]),
        ])
        .unwrap();
        h.append_exemplars(&[
            (live.clone(), vec![ex("l1", 1000, 1.0)]),
            (gone.clone(), vec![ex("g1", 1000, 1.0)]),
        ])
        .unwrap();
    }
    let h = open(dir.path(), HeadOptions::default());
    let got = all(&h);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[1].exemplars[0].same_as(&ex("l1", 1000, 1.0)));

    // `live` goes on; `gone` gets no more samples and is truncated away.
    let cut = 3 * 3600 * 1000;
    h.append(&[(live.clone(), vec![Sample::new(cut + 1000, 2.0)])])
        .unwrap();
    h.append_exemplars(&[(live.clone(), vec![ex("l2", cut + 1000, 2.0)])])
        .unwrap();
    let stats = h.truncate(cut).unwrap();
    assert!(stats.checkpoint.is_some());
    drop(h);

    let h = open(dir.path(), HeadOptions::default());
    let got = all(&h);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].labels, live);
    // Exemplars are kept by count, not by age: the checkpoint keeps l1 too.
    assert_eq!(traces(&got[0]), ["l1", "l2"]);
}

#[test]
fn the_store_is_bounded_and_can_be_turned_off() {
    let series = l(&[("__name__", "m")]);
    let small = HeadOptions {
        max_exemplars: 3,
        ..HeadOptions::default()
    };
    let h = Head::new(small).unwrap();
    h.append(&[(series.clone(), vec![Sample::new(0, 1.0)])])
        .unwrap();
    for t in 0..10 {
        let r = h
            .append_exemplars(&[(series.clone(), vec![ex(&format!("t{t}"), t, 1.0)])])
            .unwrap();
        assert_eq!(r.written, 1);
    }
    assert_eq!(traces(&all(&h)[0]), ["t7", "t8", "t9"]);

    let off = HeadOptions {
        max_exemplars: 0,
        ..HeadOptions::default()
    };
    let h = Head::new(off).unwrap();
    h.append(&[(series.clone(), vec![Sample::new(0, 1.0)])])
        .unwrap();
    let r = h
        .append_exemplars(&[(series, vec![ex("x", 0, 1.0)])])
        .unwrap();
    assert_eq!(r.refused, vec![(0, ExemplarRefusal::Disabled)]);
    assert!(all(&h).is_empty());
}
