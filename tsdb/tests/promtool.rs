//! Compatibility with Prometheus's own tools, both directions.
//!
//! These tests run `promtool` from Debian's `prometheus` package (CI
//! installs it: `apt-get install prometheus`). Where `promtool` is not on
//! the PATH (or `$PROMTOOL` does not name it) they print why and pass
//! without checking anything.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tidemark_model::{Labels, STALE_NAN, Sample};
use tidemark_tsdb::{BlockReader, BlockWriter};

fn promtool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMTOOL") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
}

macro_rules! require_promtool {
    () => {
        match promtool() {
            Some(p) => p,
            None => {
                eprintln!(
                    "SKIPPED: promtool not found (install Debian's `prometheus` package or set PROMTOOL)"
                );
                return;
            }
        }
    };
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Go's `strconv.Quote` for the characters the tests use.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How Prometheus prints a label set: `{a="b", c="d"}`.
fn prom_labels(l: &Labels) -> String {
    let pairs: Vec<String> = l
        .iter()
        .map(|(n, v)| format!("{n}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Parses `promtool tsdb dump` output: `{labels} value timestamp` lines.
fn parse_dump(out: &str) -> Vec<(String, f64, i64)> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (rest, ts) = line.rsplit_once(' ').unwrap();
            let (labels, value) = rest.rsplit_once(' ').unwrap();
            (
                labels.to_owned(),
                value.parse::<f64>().unwrap(),
                ts.parse().unwrap(),
            )
        })
        .collect()
}

fn test_series() -> Vec<(Labels, Vec<Sample>)> {
    let l = |p: &[(&str, &str)]| Labels::from_pairs(p.iter().copied()).unwrap();
    let mut counter = Vec::new();
    let mut v = 0.0;
    for i in 0..400 {
        v += (i % 7) as f64 * 1.25;
        counter.push(Sample::new(1_700_006_400_000 + i * 15_000 + i % 3, v));
    }
    vec![
        (
            l(&[
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("mode", "idle"),
            ]),
            counter,
        ),
        (
            l(&[("__name__", "special"), ("kind", "values")]),
            vec![
                Sample::new(1_700_006_400_000, f64::NAN),
                Sample::new(1_700_006_415_000, STALE_NAN),
                Sample::new(1_700_006_430_000, f64::INFINITY),
                Sample::new(1_700_006_445_000, f64::NEG_INFINITY),
                Sample::new(1_700_006_460_000, -0.0),
                Sample::new(1_700_006_475_000, 1e-300),
                Sample::new(1_700_006_490_000, 123_456_789.125),
                Sample::new(1_700_006_505_000, -2.5e20),
                Sample::new(1_700_006_520_000, 0.1),
            ],
        ),
        (
            l(&[
                ("__name__", "quoted"),
                ("path", "C:\\dir \"x\""),
                ("ü", "ñ✓"),
            ]),
            vec![
                Sample::new(1_700_006_400_000, 3.0),
                Sample::new(1_700_013_599_999, 4.0),
            ],
        ),
    ]
}

#[test]
fn promtool_reads_a_tidemark_block_exactly() {
    let promtool = require_promtool!();
    let db = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new();
    let mut series = test_series();
    for (l, s) in &series {
        w.add_samples(l.clone(), s).unwrap();
    }
    let meta = w.write(db.path()).unwrap();
    // promtool 2.42's dump opens the directory as a read-only DB, which
    // needs a (possibly empty) WAL directory.
    std::fs::create_dir(db.path().join("wal")).unwrap();

    let analyze = run(Command::new(&promtool)
        .args(["tsdb", "analyze"])
        .arg(db.path())
        .arg(meta.ulid.to_string()));
    assert!(
        analyze.contains(&format!("Block ID: {}", meta.ulid)),
        "{analyze}"
    );
    assert!(analyze.contains("Series: 3"), "{analyze}");

    series.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<(String, Sample)> = series
        .iter()
        .flat_map(|(l, s)| s.iter().map(move |x| (prom_labels(l), *x)))
        .collect();
    let check = |dumped: Vec<(String, f64, i64)>, want: Vec<&(String, Sample)>| {
        assert_eq!(dumped.len(), want.len());
        for (d, (l, s)) in dumped.iter().zip(want) {
            assert_eq!(&d.0, l);
            assert_eq!(d.2, s.t, "{l}");
            if s.v.is_nan() {
                // promtool prints every NaN (StaleNaN too) as `NaN`.
                assert!(d.1.is_nan(), "{l} at {}", s.t);
            } else {
                assert_eq!(
                    d.1.to_bits(),
                    s.v.to_bits(),
                    "{l} at {}: {} vs {}",
                    s.t,
                    d.1,
                    s.v
                );
            }
        }
    };

    let dump = run(Command::new(&promtool)
        .args(["tsdb", "dump"])
        .arg(db.path()));
    check(parse_dump(&dump), expected.iter().collect());

    let (lo, hi) = (1_700_006_430_000i64, 1_700_006_500_000i64);
    let dump = run(Command::new(&promtool)
        .args(["tsdb", "dump"])
        .arg(format!("--min-time={lo}"))
        .arg(format!("--max-time={hi}"))
        .arg(db.path()));
    check(
        parse_dump(&dump),
        expected
            .iter()
            .filter(|(_, s)| (lo..=hi).contains(&s.t))
            .collect(),
    );
}

fn om_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

#[test]
fn tidemark_reads_a_promtool_block_exactly() {
    let promtool = require_promtool!();
    let dir = tempfile::tempdir().unwrap();
    // One aligned 2 h window so promtool makes a single block; timestamps
    // are seconds with quarter-second fractions, exact in binary.
    let start_ms: i64 = 1_700_006_400_000;
    let mut want: Vec<(Labels, Vec<Sample>)> = Vec::new();
    let mut om = String::new();
    om.push_str("# TYPE http_requests counter\n");
    for code in ["200", "500"] {
        let labels =
            Labels::from_pairs([("__name__", "http_requests_total"), ("code", code)]).unwrap();
        let mut samples = Vec::new();
        let mut v = 0.0;
        for i in 0..300i64 {
            let t = start_ms + i * 15_000 + (i % 4) * 250;
            v += (i % 5) as f64;
            samples.push(Sample::new(t, v));
        }
        for s in &samples {
            om.push_str(&format!(
                "http_requests_total{{code=\"{code}\"}} {} {}.{:03}\n",
                om_value(s.v),
                s.t / 1000,
                s.t % 1000
            ));
        }
        want.push((labels, samples));
    }
    om.push_str("# TYPE temperature gauge\n");
    let values = [
        21.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e-9,
        0.1,
        3.0e15,
    ];
    let labels = Labels::from_pairs([("__name__", "temperature"), ("room", "a b\"c")]).unwrap();
    let samples: Vec<Sample> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Sample::new(start_ms + i as i64 * 60_000, *v))
        .collect();
    for s in &samples {
        om.push_str(&format!(
            "temperature{{room=\"a b\\\"c\"}} {} {}.{:03}\n",
            om_value(s.v),
            s.t / 1000,
            s.t % 1000
        ));
    }
    want.push((labels, samples));
    om.push_str("# EOF\n");
    let input = dir.path().join("input.om");
    std::fs::write(&input, om).unwrap();
    let out = dir.path().join("blocks");
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(&out));

    let blocks: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let r = BlockReader::open(Path::new(&blocks[0])).unwrap();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let got = r.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, (l, s)) in got.iter().zip(&want) {
        assert_eq!(&g.labels, l);
        assert_eq!(g.samples.len(), s.len(), "{l}");
        for (a, b) in g.samples.iter().zip(s) {
            assert_eq!(a.t, b.t, "{l}");
            if b.v.is_nan() {
                assert!(a.v.is_nan(), "{l} at {}", b.t);
            } else {
                assert_eq!(a.v.to_bits(), b.v.to_bits(), "{l} at {}", b.t);
            }
        }
    }
    let total: u64 = want.iter().map(|(_, s)| s.len() as u64).sum();
    assert_eq!(r.meta().stats.num_samples, total);
    assert_eq!(r.label_values("code"), vec!["200", "500"]);
    assert!(r.tombstones().is_empty());
}

#[test]
fn promtool_reads_a_merged_block_of_replicas() {
    let promtool = require_promtool!();
    let dir = tempfile::tempdir().unwrap();
    let series = test_series();
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut w = BlockWriter::new();
        for (l, s) in &series {
            w.add_samples(l.clone(), s).unwrap();
        }
        let meta = w.write(dir.path()).unwrap();
        readers.push(BlockReader::open(&dir.path().join(meta.ulid.to_string())).unwrap());
    }
    let db = dir.path().join("db");
    std::fs::create_dir_all(db.join("wal")).unwrap();
    let refs: Vec<&BlockReader> = readers.iter().collect();
    let merged = tidemark_tsdb::block::merge_blocks(&refs, &db).unwrap();
    let total: usize = series.iter().map(|(_, s)| s.len()).sum();
    assert_eq!(merged.stats.duplicates, total as u64);
    let dump = run(Command::new(&promtool).args(["tsdb", "dump"]).arg(&db));
    assert_eq!(parse_dump(&dump).len(), total);
    let list = run(Command::new(&promtool).args(["tsdb", "list"]).arg(&db));
    assert!(list.contains(&merged.meta.ulid.to_string()), "{list}");
}
