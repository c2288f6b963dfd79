//! Long-term storage in a cluster of separate processes, with the
//! compactor killed (SIGKILL) in the middle of its work.
//!
//! Processes: an ingester+distributor (the only Raft voter), a compactor
//! and a querier, sharing one filesystem bucket. 12 h of samples written
//! with old timestamps are cut into six 2 h blocks by `POST
//! /ingester/flush`, handed to the compactor, and compacted into one 12 h
//! block. The compactor is started with the test-only crash point
//! `TIDEMARK_COMPACTOR_TEST_PAUSE` (see `compactor/src/crash_point.rs`),
//! which makes it stop at a chosen step and wait to be killed:
//!
//! 1. a hand-off's bucket upload after 2 objects (a partial block);
//! 2. a handed-off block whole in the bucket, before the index rewrite;
//! 3. a merged block's upload after 2 objects (a partial merged block);
//! 4. a merged block whole in the bucket, before its inputs are marked.
//!
//! After each kill, and after the final restart, the querier returns every
//! sample exactly once (raw samples, `count_over_time`, `sum_over_time`);
//! at no point does a successful answer count a sample twice. At the end
//! the bucket holds the one 12 h block only: partial uploads were removed
//! and the inputs deleted after their (short) deletion delay.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tidemark_tests::prom::{get, matrix, secs};
use tidemark_tests::remote_write::{encode, now_ms, push, series};
use tidemark_tests::{Process, free_port, wait_until};

const HOUR: i64 = 3_600_000;
const STEP: i64 = 60_000;
const SERIES: usize = 10;
const TENANT: &str = "crash";
/// `compactor::CRASH_POINT_ENV` and `compactor::PAUSE_MESSAGE`.
const PAUSE_ENV: &str = "TIDEMARK_COMPACTOR_TEST_PAUSE";
const PAUSE_MESSAGE: &str = "compactor test pause reached";
/// Long: a loaded 2-core CI machine runs debug builds.
const WAIT: Duration = Duration::from_secs(180);

struct Cluster {
    ingester: Process,
    compactor: Process,
    querier: Process,
    bucket: PathBuf,
    _bucket_tmp: tempfile::TempDir,
}

fn common(voters: &str, role: &str, id: &str, bucket: &Path) -> Vec<String> {
    vec![
        format!("-target={role}"),
        format!("--membership.voters={voters}"),
        format!("--membership.instance-id={id}"),
        "--membership.replication-factor=1".into(),
        "--membership.heartbeat-interval=200ms".into(),
        "--membership.heartbeat-timeout=5s".into(),
        "--membership.ring-refresh-interval=200ms".into(),
        "--membership.election-timeout=300ms".into(),
        "--server.graceful-shutdown-timeout=5s".into(),
        format!("--bucket.filesystem.dir={}", bucket.display()),
    ]
}

impl Cluster {
    fn start(first_pause: &str) -> Cluster {
        let bucket_tmp = tempfile::tempdir().unwrap();
        let bucket = bucket_tmp.path().join("bucket");
        let (ih, ig) = (free_port(), free_port());
        let (ch, cg) = (free_port(), free_port());
        let voters = format!("127.0.0.1:{ig}");
        let build = |role: &str, id: &str| {
            let mut b = Process::builder();
            for a in common(&voters, role, id, &bucket) {
                b = b.arg(a);
            }
            b
        };
        let ingester = build("ingester,distributor", "ingester-0")
            .ports(ih, ig)
            .arg(format!(
                "--ingester.blocks.compactor-address=127.0.0.1:{cg}"
            ))
            // Blocks are cut by the flush only, so the test knows all six.
            .arg("--ingester.blocks.cut-check-interval=1h")
            .arg("--ingester.blocks.ship-interval=500ms")
            .arg("--ingester.blocks.handoff-min-backoff=200ms")
            .arg("--ingester.blocks.handoff-max-backoff=1s")
            .arg("--ingester.blocks.recent-query-window=0s")
            .arg("--distributor.limits.ingestion-rate=0")
            .start();
        let compactor = build("compactor", "compactor-0")
            .ports(ch, cg)
            .arg("--compactor.compaction-interval=1s")
            .arg("--compactor.partial-block-delay=2s")
            .arg("--compactor.deletion-delay=3s")
            .env(PAUSE_ENV, first_pause)
            .start();
        let querier = build("querier", "querier-0")
            .arg("--querier.blocks.index-refresh-interval=500ms")
            .start();
        let mut c = Cluster {
            ingester,
            compactor,
            querier,
            bucket,
            _bucket_tmp: bucket_tmp,
        };
        for p in [&mut c.ingester, &mut c.compactor, &mut c.querier] {
            p.wait_ready(WAIT);
        }
        c
    }

    fn logs(&self) -> String {
        let tail = |name: &str, p: &Process| {
            let log = p.log();
            let lines: Vec<&str> = log.lines().rev().take(60).collect();
            let lines: Vec<&str> = lines.into_iter().rev().collect();
            format!("----- {name}\n{}\n", lines.join("\n"))
        };
        tail("ingester", &self.ingester)
            + &tail("compactor", &self.compactor)
            + &tail("querier", &self.querier)
    }

    /// Waits until the compactor logged its `n`-th pause (its log spans
    /// every restart), then kills it.
    fn kill_compactor_at_pause(&mut self, n: usize) {
        let paused = wait_until(WAIT, || {
            self.compactor.log().matches(PAUSE_MESSAGE).count() >= n
        });
        assert!(paused, "compactor pause {n} never reached\n{}", self.logs());
        self.compactor.kill();
    }

    /// Restarts the compactor with another crash point (or none).
    fn restart_compactor(&mut self, pause: Option<&str>) {
        self.compactor.set_env(PAUSE_ENV, pause);
        self.compactor.restart();
        self.compactor.wait_ready(WAIT);
    }

    /// Block directories of the tenant in the bucket that hold a file:
    /// ULID -> whether `meta.json` is there (a directory without it is a
    /// partial upload).
    fn bucket_blocks(&self) -> BTreeMap<String, bool> {
        std::fs::read_dir(self.bucket.join(TENANT))
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir() && holds_a_file(p))
                    .map(|p| {
                        let name = p.file_name().unwrap().to_string_lossy().into_owned();
                        (name, p.join("meta.json").exists())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tenant's bucket index: its block ULIDs and its marked ULIDs.
    fn index(&self) -> Option<(Vec<Value>, BTreeSet<String>)> {
        let bytes = std::fs::read(self.bucket.join(TENANT).join("bucket-index.json")).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        let marks = v["deletion_marks"]
            .as_array()?
            .iter()
            .filter_map(|m| m["id"].as_str().map(String::from))
            .collect();
        Some((v["blocks"].as_array()?.clone(), marks))
    }

    fn ingester_local_blocks(&self) -> usize {
        std::fs::read_dir(
            self.ingester
                .data_dir
                .join("ingester")
                .join(TENANT)
                .join("blocks"),
        )
        .map(|rd| {
            rd.filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
                .count()
        })
        .unwrap_or(0)
    }
}

fn holds_a_file(p: &Path) -> bool {
    if p.is_file() {
        return true;
    }
    std::fs::read_dir(p)
        .map(|rd| rd.filter_map(Result::ok).any(|e| holds_a_file(&e.path())))
        .unwrap_or(false)
}

/// 12 h-aligned, two to three days ago: a window long complete.
fn base() -> i64 {
    (now_ms() - 60 * HOUR).div_euclid(12 * HOUR) * 12 * HOUR
}

fn value(t: i64, i: usize) -> f64 {
    (t / STEP) as f64 + i as f64
}

fn write_12h(c: &Cluster, b: i64) {
    let client = reqwest::blocking::Client::new();
    // Two requests of 6 h each, every series in both.
    for half in 0..2 {
        let from = b + half * 6 * HOUR;
        let ts = (0..SERIES)
            .map(|i| {
                let samples: Vec<(i64, f64)> = (from..from + 6 * HOUR)
                    .step_by(STEP as usize)
                    .map(|t| (t, value(t, i)))
                    .collect();
                series(&[("__name__", "blk"), ("i", &i.to_string())], &samples)
            })
            .collect();
        let url = c.ingester.url("/api/v1/push");
        let (status, body) = push(&client, &url, Some(TENANT), encode(ts)).unwrap();
        assert!((200..300).contains(&status), "push: {status} {body}");
    }
}

fn flush(c: &Cluster) -> BTreeSet<String> {
    let r = reqwest::blocking::Client::new()
        .post(c.ingester.url("/ingester/flush"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["block"].as_str().unwrap().to_string())
        .collect()
}

/// What the querier answers about the 12 h window, as seen at its last
/// sample.
#[derive(Debug, PartialEq)]
struct Answer {
    samples: BTreeMap<String, Vec<(i64, f64)>>,
    count: f64,
    sum: f64,
}

fn expected(b: i64) -> Answer {
    let samples: BTreeMap<String, Vec<(i64, f64)>> = (0..SERIES)
        .map(|i| {
            let v = (b..b + 12 * HOUR)
                .step_by(STEP as usize)
                .map(|t| (t, value(t, i)))
                .collect();
            (i.to_string(), v)
        })
        .collect();
    let count = samples.values().map(Vec::len).sum::<usize>() as f64;
    let sum = samples.values().flatten().map(|(_, v)| v).sum();
    Answer {
        samples,
        count,
        sum,
    }
}

fn scalar(base: &str, query: &str, at: &str) -> Option<f64> {
    let (status, body) = get(
        base,
        Some(TENANT),
        "/api/v1/query",
        &[("query", query), ("time", at)],
    );
    if status != 200 {
        return None;
    }
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// The querier's answer, `None` while it fails (e.g. its cached index
/// names a block just deleted).
fn ask(c: &Cluster, b: i64) -> Option<Answer> {
    let base = c.querier.url("");
    let at = secs(b + 12 * HOUR - STEP);
    let (status, body) = get(
        &base,
        Some(TENANT),
        "/api/v1/query",
        &[("query", "blk[12h]"), ("time", &at)],
    );
    if status != 200 {
        return None;
    }
    let samples = matrix(&body)?
        .into_iter()
        .map(|(labels, v)| {
            let i = labels
                .iter()
                .find(|(k, _)| k == "i")
                .map(|(_, v)| v.clone());
            (i.unwrap_or_default(), v)
        })
        .collect();
    Some(Answer {
        samples,
        count: scalar(&base, "sum(count_over_time(blk[12h]))", &at)?,
        sum: scalar(&base, "sum(sum_over_time(blk[12h]))", &at)?,
    })
}

/// Polls the querier until it answers exactly `want`; every successful
/// answer on the way must not count more samples than were written.
fn assert_exact(c: &Cluster, b: i64, want: &Answer, when: &str) {
    let mut last = None;
    let ok = wait_until(WAIT, || {
        let Some(got) = ask(c, b) else {
            return false;
        };
        let per_series_max = got.samples.values().map(Vec::len).max().unwrap_or(0);
        assert!(
            got.count <= want.count && got.sum <= want.sum && per_series_max <= 720,
            "{when}: samples counted twice: count {} (want {}), sum {} (want {})",
            got.count,
            want.count,
            got.sum,
            want.sum
        );
        let same = got == *want;
        last = Some((got.count, got.sum, got.samples.len()));
        same
    });
    assert!(
        ok,
        "{when}: query never returned every sample once; last (count, sum, series) {last:?}, want ({}, {}, {SERIES})\n{}",
        want.count,
        want.sum,
        c.logs()
    );
}

#[test]
fn killed_compactor_loses_no_block_counts_no_sample_twice_and_leaves_no_partial_block() {
    let b = base();
    let want = expected(b);
    let mut c = Cluster::start("handoff-upload:2");
    write_12h(&c, b);
    let flushed = flush(&c);
    assert_eq!(flushed.len(), 6, "six 2 h blocks: {flushed:?}");

    // 1. Killed two objects into a hand-off upload: a partial block in the
    //    bucket, no index naming it; the ingester still has every block.
    c.kill_compactor_at_pause(1);
    let partial: Vec<String> = c
        .bucket_blocks()
        .into_iter()
        .filter(|(_, whole)| !whole)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(partial.len(), 1, "{:?}", c.bucket_blocks());
    assert!(flushed.contains(&partial[0]));
    assert!(c.index().is_none_or(|(blocks, _)| blocks.is_empty()));
    assert_exact(&c, b, &want, "after a kill during a hand-off upload");

    // 2. Killed with a handed-off block whole in the bucket but not yet in
    //    the index.
    c.restart_compactor(Some("handoff-index"));
    c.kill_compactor_at_pause(2);
    assert!(c.bucket_blocks().values().any(|whole| *whole));
    assert_exact(
        &c,
        b,
        &want,
        "after a kill before a hand-off's index rewrite",
    );

    // 3. Killed two objects into the upload of a merged block.
    c.restart_compactor(Some("merge-upload:2"));
    c.kill_compactor_at_pause(3);
    let merged_partial = c
        .bucket_blocks()
        .into_iter()
        .any(|(id, whole)| !whole && !flushed.contains(&id));
    assert!(merged_partial, "{:?}", c.bucket_blocks());
    assert_exact(&c, b, &want, "after a kill during a merged block's upload");

    // 4. Killed with a merged block whole in the bucket, its inputs not yet
    //    marked and the index not naming it.
    c.restart_compactor(Some("merge-marks"));
    c.kill_compactor_at_pause(4);
    let (indexed, _) = c.index().unwrap();
    let indexed: BTreeSet<String> = indexed
        .iter()
        .filter_map(|b| b["ulid"].as_str().map(String::from))
        .collect();
    let unindexed_whole = c
        .bucket_blocks()
        .into_iter()
        .any(|(id, whole)| whole && !flushed.contains(&id) && !indexed.contains(&id));
    assert!(
        unindexed_whole,
        "{:?} vs index {indexed:?}",
        c.bucket_blocks()
    );
    assert_exact(
        &c,
        b,
        &want,
        "after a kill before a merge marked its inputs",
    );

    // Restarted without a crash point: one 12 h block holding all six
    // sources, nothing else left in the bucket, every sample once.
    c.restart_compactor(None);
    let mut state = String::new();
    let settled = wait_until(WAIT, || {
        let blocks = c.bucket_blocks();
        let Some((indexed, marks)) = c.index() else {
            return false;
        };
        state = format!("bucket {blocks:?}, index {indexed:?}, marks {marks:?}");
        let [only] = indexed.as_slice() else {
            return false;
        };
        let sources: BTreeSet<String> = only["sources"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let id = only["ulid"].as_str().unwrap_or_default().to_string();
        blocks.len() == 1
            && blocks.get(&id) == Some(&true)
            && marks.is_empty()
            && sources == flushed
            && only["min_time"] == b
            && c.ingester_local_blocks() == 0
    });
    assert!(
        settled,
        "bucket never settled to one 12 h block: {state}\n{}",
        c.logs()
    );
    assert_exact(&c, b, &want, "after the final restart");
}
