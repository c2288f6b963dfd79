#![allow(clippy::unwrap_used)]
//! Every file of the shared textparse corpus (`../shared/conformance/textparse`,
//! Prometheus's own `model/textparse/testdata`) parses, and yields the number
//! of float samples Prometheus would store from it.
//!
//! How each expected count was derived (by reading the files and
//! Prometheus's promparse.go / openmetricsparse.go / scrape.go):
//!
//! - `alltypes.237mfs.prom.txt`: 2332 lines = 237 `# HELP` + 237 `# TYPE` +
//!   a final `# EOF` (only a comment in the text format) + 1857 sample lines.
//!   Classic histograms and summaries are stored as their `_bucket`/`_sum`/
//!   `_count`/quantile series, one sample per line: **1857**.
//! - `alltypes.237mfs.nometa.prom.txt`: the same samples without HELP/TYPE:
//!   1858 lines = `# EOF` + 1857 samples: **1857**.
//! - `alltypes.5mfs.om.txt`: 64 lines = 5 HELP + 5 TYPE + `# EOF` + 53 sample
//!   lines. 9 of them are `_created` samples (2 for the errors counter, 1
//!   for the histogram, 3 for the summary, 3 for the requests counter).
//!   Prometheus's scrape loop builds the OpenMetrics parser with
//!   `SkipCTSeries` only when created-timestamp zero ingestion is enabled, so
//!   by default it stores them as ordinary series: **53** (44 with skipping).
//!   The 6 exemplars on bucket lines are parsed and add no series.
//! - `1histogram.om.txt`: 44 lines = HELP + TYPE + 3 label sets x (12
//!   buckets + `_sum` + `_count`) + `# EOF` with no final line feed (allowed:
//!   the OpenMetrics lexer's rule is `EOF\n?`): **42**. Prometheus's
//!   benchmarks use this file for native histograms with custom buckets
//!   (NHCB): that is a conversion of these classic series done on top of the
//!   parser, only when `convert_classic_histograms_to_nhcb` is set (it would
//!   then store 3 histogram samples). The body itself is a classic
//!   histogram in valid OpenMetrics, and also valid text format (`# EOF` is
//!   a comment there, values have no exemplars), which both parsers accept
//!   with the same 42 series.

use std::path::PathBuf;

use tidemark_scraper::parse::{Entry, Format, OpenMetricsParser, Parser};

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/textparse");
    dir.is_dir().then_some(dir)
}

fn count_series(body: &[u8], format: Format) -> Result<usize, String> {
    let mut p = Parser::new(body, format);
    let mut n = 0;
    while let Some(e) = p.next_entry().map_err(|e| e.to_string())? {
        if let Entry::Series(_) = e {
            n += 1;
        }
    }
    Ok(n)
}

fn format_for(name: &str) -> Format {
    if name.ends_with(".om.txt") {
        Format::from_content_type(Some("application/openmetrics-text; version=1.0.0"))
    } else {
        Format::from_content_type(Some("text/plain; version=0.0.4"))
    }
}

#[test]
fn every_corpus_file_parses_with_prometheus_counts() {
    let Some(dir) = corpus_dir() else {
        println!("skipping: ../shared/conformance/textparse not found next to the repository");
        return;
    };
    let expected = [
        ("alltypes.237mfs.prom.txt", 1857),
        ("alltypes.237mfs.nometa.prom.txt", 1857),
        ("alltypes.5mfs.om.txt", 53),
        ("1histogram.om.txt", 42),
    ];
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read(&path).unwrap();
        let got = count_series(&body, format_for(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Independent cross-check: one sample per non-comment, non-empty line.
        let naive = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
        assert_eq!(got, naive, "{name}: series vs sample lines");
        match expected.iter().find(|(f, _)| *f == name) {
            Some((_, want)) => {
                assert_eq!(got, *want, "{name}");
                seen += 1;
            }
            None => println!("{name}: {got} series (no recorded expectation)"),
        }
    }
    assert_eq!(
        seen,
        expected.len(),
        "corpus files missing from {}",
        dir.display()
    );
}

#[test]
fn openmetrics_created_series_can_be_skipped() {
    let Some(dir) = corpus_dir() else {
        println!("skipping: ../shared/conformance/textparse not found next to the repository");
        return;
    };
    let body = std::fs::read(dir.join("alltypes.5mfs.om.txt")).unwrap();
    let mut p = OpenMetricsParser::new(&body).skip_created_series(true);
    let mut n = 0;
    while let Some(e) = p.next_entry().unwrap() {
        if let Entry::Series(_) = e {
            n += 1;
        }
    }
    assert_eq!(n, 44);
}

#[test]
fn cross_format_behaviour_matches_prometheus() {
    let Some(dir) = corpus_dir() else {
        println!("skipping: ../shared/conformance/textparse not found next to the repository");
        return;
    };
    // The classic histogram file is also valid text format.
    let body = std::fs::read(dir.join("1histogram.om.txt")).unwrap();
    assert_eq!(count_series(&body, Format::PrometheusText), Ok(42));
    // Exemplars are not text format: Prometheus's text parser rejects them too.
    let body = std::fs::read(dir.join("alltypes.5mfs.om.txt")).unwrap();
    let err = count_series(&body, Format::PrometheusText).unwrap_err();
    // Line 19 is the first bucket carrying an exemplar.
    assert!(err.starts_with("line 19: invalid timestamp \"#\""), "{err}");
    // The text corpus happens to be valid OpenMetrics too (single spaces,
    // OpenMetrics types only, ends with `# EOF`), as Prometheus's benchmark
    // of the OpenMetrics parser on it relies on.
    let body = std::fs::read(dir.join("alltypes.237mfs.prom.txt")).unwrap();
    assert_eq!(count_series(&body, Format::OpenMetrics), Ok(1857));
}
