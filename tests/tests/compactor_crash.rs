//! Long-term storage in a cluster of separate processes, with the
//! compactor killed (SIGKILL) in the middle of its work.
//!
//! Processes: one or two ingesters (the first is also the distributor and
//! the only Raft voter), a compactor and a querier, sharing one filesystem
//! bucket. Samples written with old timestamps are cut into 2 h blocks by
//! `POST /ingester/flush` on every ingester, handed to the compactor and
//! merged. The compactor is started with the test-only crash point
//! `TIDEMARK_COMPACTOR_TEST_PAUSE` (see `compactor/src/crash_point.rs`),
//! which makes it stop at a chosen step and wait to be killed.
//!
//! Level compaction, one ingester: 12 h of samples, six 2 h blocks
//! compacted into one 12 h block. The compactor is killed at
//!
//! 1. a hand-off's bucket upload after 2 objects (a partial block);
//! 2. a handed-off block whole in the bucket, before the index rewrite;
//! 3. a merged block's upload after 2 objects (a partial merged block);
//! 4. a merged block whole in the bucket, before its inputs are marked.
//!
//! Vertical compaction, two ingesters with replication factor 2: 6 h of
//! samples, so the bucket receives each of three 2 h ranges twice (one
//! block per ingester, the same samples), and the two copies of each range
//! are merged into one deduplicated block. The compactor is killed at
//! steps 3 and 4 of such a merge. Level compaction is held back (a
//! compaction delay of 1000 days), so every merge is a vertical one,
//! whatever order the hand-offs arrive in.
//!
//! After each kill, and after the final restart, the querier returns every
//! sample exactly once (raw samples, `count_over_time`, `sum_over_time`);
//! at no point does a successful answer count a sample twice. At the end
//! the bucket holds only the merged blocks, none overlapping another, each
//! holding its range's samples once: partial uploads were removed and the
//! inputs deleted after their (short) deletion delay.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tidemark_tests::prom::{get, matrix, secs, strings};
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
/// How long an exact answer must keep being exact: over two of the
/// querier's index refreshes, so it answers from the bucket index as the
/// test sees it.
const HOLD: Duration = Duration::from_millis(1500);

/// Blocks by their time range `(min time, max time)`: the ULIDs of the
/// 2 h blocks the ingesters cut (whose data a merged block must hold).
type Sources = BTreeMap<(i64, i64), BTreeSet<String>>;

struct Cluster {
    /// The first is also the distributor and the only Raft voter.
    ingesters: Vec<Process>,
    compactor: Process,
    querier: Process,
    bucket: PathBuf,
    _bucket_tmp: tempfile::TempDir,
}

fn common(voters: &str, rf: usize, role: &str, id: &str, bucket: &Path) -> Vec<String> {
    vec![
        format!("-target={role}"),
        format!("--membership.voters={voters}"),
        format!("--membership.instance-id={id}"),
        format!("--membership.replication-factor={rf}"),
        "--membership.heartbeat-interval=200ms".into(),
        "--membership.heartbeat-timeout=5s".into(),
        "--membership.ring-refresh-interval=200ms".into(),
        "--membership.election-timeout=300ms".into(),
        "--server.graceful-shutdown-timeout=5s".into(),
        format!("--bucket.filesystem.dir={}", bucket.display()),
    ]
}

impl Cluster {
    /// `ingesters` ingesters, with a replication factor of as many so every
    /// series is on each; a compactor with `compactor_args`, stopping at the
    /// crash point `first_pause`; a querier.
    fn start(ingesters: usize, first_pause: &str, compactor_args: &[&str]) -> Cluster {
        let bucket_tmp = tempfile::tempdir().unwrap();
        let bucket = bucket_tmp.path().join("bucket");
        let ingester_ports: Vec<(u16, u16)> =
            (0..ingesters).map(|_| (free_port(), free_port())).collect();
        let (ch, cg) = (free_port(), free_port());
        let voters = format!("127.0.0.1:{}", ingester_ports[0].1);
        let build = |role: &str, id: &str| {
            let mut b = Process::builder();
            for a in common(&voters, ingesters, role, id, &bucket) {
                b = b.arg(a);
            }
            b
        };
        let ingesters = ingester_ports
            .iter()
            .enumerate()
            .map(|(i, &(h, g))| {
                let role = if i == 0 {
                    "ingester,distributor"
                } else {
                    "ingester"
                };
                build(role, &format!("ingester-{i}"))
                    .ports(h, g)
                    .arg(format!(
                        "--ingester.blocks.compactor-address=127.0.0.1:{cg}"
                    ))
                    // Blocks are cut by the flush only, so the test knows
                    // them all.
                    .arg("--ingester.blocks.cut-check-interval=1h")
                    .arg("--ingester.blocks.ship-interval=500ms")
                    .arg("--ingester.blocks.handoff-min-backoff=200ms")
                    .arg("--ingester.blocks.handoff-max-backoff=1s")
                    .arg("--ingester.blocks.recent-query-window=0s")
                    .arg("--distributor.limits.ingestion-rate=0")
                    .start()
            })
            .collect();
        let mut compactor = build("compactor", "compactor-0")
            .ports(ch, cg)
            .arg("--compactor.compaction-interval=1s")
            .arg("--compactor.partial-block-delay=2s")
            .arg("--compactor.deletion-delay=3s");
        for a in compactor_args {
            compactor = compactor.arg(*a);
        }
        let compactor = compactor.env(PAUSE_ENV, first_pause).start();
        let querier = build("querier", "querier-0")
            .arg("--querier.blocks.index-refresh-interval=500ms")
            .start();
        let mut c = Cluster {
            ingesters,
            compactor,
            querier,
            bucket,
            _bucket_tmp: bucket_tmp,
        };
        for p in c.ingesters.iter_mut() {
            p.wait_ready(WAIT);
        }
        c.compactor.wait_ready(WAIT);
        c.querier.wait_ready(WAIT);
        // A write needs every replica of its series in the ring (the
        // quorum of 2 is 2), and a query asks every ingester.
        let n = c.ingesters.len();
        let joined = wait_until(WAIT, || c.healthy_ingesters() == n);
        assert!(
            joined,
            "the ring never showed {n} healthy ingesters\n{}",
            c.logs()
        );
        c
    }

    fn logs(&self) -> String {
        let tail = |name: &str, p: &Process| {
            let log = p.log();
            let lines: Vec<&str> = log.lines().rev().take(60).collect();
            let lines: Vec<&str> = lines.into_iter().rev().collect();
            format!("----- {name}\n{}\n", lines.join("\n"))
        };
        let mut out = String::new();
        for (i, p) in self.ingesters.iter().enumerate() {
            out += &tail(&format!("ingester-{i}"), p);
        }
        out + &tail("compactor", &self.compactor) + &tail("querier", &self.querier)
    }

    /// Ingesters the querier's ring shows as `ACTIVE` and healthy.
    fn healthy_ingesters(&self) -> usize {
        let ring: Value = reqwest::blocking::Client::new()
            .get(self.querier.url("/ring?format=json"))
            .header("Accept", "application/json")
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        ring["members"].as_array().map_or(0, |ms| {
            ms.iter()
                .filter(|m| {
                    m["roles"]
                        .to_string()
                        .to_ascii_lowercase()
                        .contains("ingester")
                        && m["state"]
                            .as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case("active"))
                        && m["healthy"].as_bool().unwrap_or(false)
                })
                .count()
        })
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

    /// Blocks in the bucket that no ingester cut (merge results), whole
    /// (`meta.json` uploaded) or partial.
    fn merged_blocks(&self, cut: &BTreeSet<String>, whole: bool) -> Vec<String> {
        self.bucket_blocks()
            .into_iter()
            .filter(|(id, w)| *w == whole && !cut.contains(id))
            .map(|(id, _)| id)
            .collect()
    }

    /// The `meta.json` of a whole block in the bucket.
    fn bucket_meta(&self, ulid: &str) -> Option<Value> {
        let bytes = std::fs::read(self.bucket.join(TENANT).join(ulid).join("meta.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The `meta.json` of a block the killed compactor was uploading, from
    /// its work directory (`<data_dir>/compactor/work/<tenant>/<job>/out/
    /// <ULID>/`), which holds the merged block whole until the compactor
    /// starts again: the bucket's partial copy has no `meta.json` yet.
    fn local_merged_meta(&self, ulid: &str) -> Option<Value> {
        let work = self.compactor.data_dir.join("compactor/work").join(TENANT);
        std::fs::read_dir(work)
            .ok()?
            .filter_map(Result::ok)
            .find_map(|job| {
                let meta = job.path().join("out").join(ulid).join("meta.json");
                serde_json::from_slice(&std::fs::read(meta).ok()?).ok()
            })
    }

    /// The tenant's bucket index: its blocks and its marked ULIDs.
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

    /// ULIDs of the blocks the bucket index names.
    fn indexed(&self) -> BTreeSet<String> {
        self.index()
            .map(|(blocks, _)| {
                blocks
                    .iter()
                    .filter_map(|b| b["ulid"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Blocks the ingesters still keep locally (not yet confirmed uploaded).
    fn ingester_blocks(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for p in &self.ingesters {
            let dir = p.data_dir.join("ingester").join(TENANT).join("blocks");
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
                out.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
        out
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

/// The samples of every series in `range`, once each, in `meta.json`'s
/// `numSamples` or the index's `num_samples`.
fn samples_in(range: (i64, i64)) -> u64 {
    (SERIES as i64 * (range.1 - range.0) / STEP) as u64
}

/// 12 h-aligned, two to three days ago: a window long complete.
fn base() -> i64 {
    (now_ms() - 60 * HOUR).div_euclid(12 * HOUR) * 12 * HOUR
}

fn value(t: i64, i: usize) -> f64 {
    (t / STEP) as f64 + i as f64
}

/// What a test writes: every series, a sample a minute in `[from, to)`.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: i64,
    to: i64,
}

impl Window {
    /// Writes the window through the distributor (the first ingester), in
    /// requests of at most 6 h, every series in each.
    fn write(self, c: &Cluster) {
        let client = reqwest::blocking::Client::new();
        let url = c.ingesters[0].url("/api/v1/push");
        for from in (self.from..self.to).step_by(6 * HOUR as usize) {
            let to = (from + 6 * HOUR).min(self.to);
            let ts = (0..SERIES)
                .map(|i| {
                    let samples: Vec<(i64, f64)> = (from..to)
                        .step_by(STEP as usize)
                        .map(|t| (t, value(t, i)))
                        .collect();
                    series(&[("__name__", "blk"), ("i", &i.to_string())], &samples)
                })
                .collect();
            let (status, body) = push(&client, &url, Some(TENANT), encode(ts)).unwrap();
            assert!((200..300).contains(&status), "push: {status} {body}");
        }
    }

    /// The range selector over the whole window, at its last sample.
    fn selector(self) -> (String, String) {
        let range = format!("{}h", (self.to - self.from) / HOUR);
        (range, secs(self.to - STEP))
    }

    fn expected(self) -> Answer {
        let samples: BTreeMap<String, Vec<(i64, f64)>> = (0..SERIES)
            .map(|i| {
                let v = (self.from..self.to)
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
}

/// Cuts every head of the ingester into blocks: ULID -> (min time, max
/// time).
fn flush(ingester: &Process) -> BTreeMap<String, (i64, i64)> {
    let r = reqwest::blocking::Client::new()
        .post(ingester.url("/ingester/flush"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let range = (
                b["min_time"].as_i64().unwrap(),
                b["max_time"].as_i64().unwrap(),
            );
            (b["block"].as_str().unwrap().to_string(), range)
        })
        .collect()
}

/// What the querier answers about a window, as seen at its last sample.
#[derive(Debug, PartialEq)]
struct Answer {
    samples: BTreeMap<String, Vec<(i64, f64)>>,
    count: f64,
    sum: f64,
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
fn ask(c: &Cluster, w: Window) -> Option<Answer> {
    let base = c.querier.url("");
    let (range, at) = w.selector();
    let (status, body) = get(
        &base,
        Some(TENANT),
        "/api/v1/query",
        &[("query", &format!("blk[{range}]")), ("time", &at)],
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
        count: scalar(&base, &format!("sum(count_over_time(blk[{range}]))"), &at)?,
        sum: scalar(&base, &format!("sum(sum_over_time(blk[{range}]))"), &at)?,
    })
}

/// Polls the querier until it answers exactly `want`, then for [`HOLD`]
/// more; every successful answer on the way must not count more samples
/// than were written. Blocks the index names are first dropped by the
/// ingesters (the upload was confirmed and the recent-query window is 0),
/// so their samples can only come from the bucket: from both copies of a
/// range while a vertical merge of them is unfinished.
fn assert_exact(c: &Cluster, w: Window, want: &Answer, when: &str) {
    let dropped = wait_until(WAIT, || c.ingester_blocks().is_disjoint(&c.indexed()));
    assert!(
        dropped,
        "{when}: ingesters keep indexed blocks {:?}\n{}",
        c.ingester_blocks(),
        c.logs()
    );
    let per_series = want.samples.values().map(Vec::len).max().unwrap_or(0);
    let checked_answer = || {
        let got = ask(c, w)?;
        let per_series_max = got.samples.values().map(Vec::len).max().unwrap_or(0);
        assert!(
            got.count <= want.count && got.sum <= want.sum && per_series_max <= per_series,
            "{when}: samples counted twice: count {} (want {}), sum {} (want {}), \
             {per_series_max} samples in a series (want {per_series})",
            got.count,
            want.count,
            got.sum,
            want.sum
        );
        Some(got)
    };
    let mut last = None;
    let ok = wait_until(WAIT, || {
        let Some(got) = checked_answer() else {
            return false;
        };
        last = Some((got.count, got.sum, got.samples.len()));
        got == *want
    });
    assert!(
        ok,
        "{when}: query never returned every sample once; last (count, sum, series) {last:?}, want ({}, {}, {SERIES})\n{}",
        want.count,
        want.sum,
        c.logs()
    );
    let until = Instant::now() + HOLD;
    while Instant::now() < until {
        if let Some(got) = checked_answer() {
            assert!(
                got == *want,
                "{when}: every sample was returned once, then count {}, sum {}, {} series\n{}",
                got.count,
                got.sum,
                got.samples.len(),
                c.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the bucket holds exactly the blocks `want` and nothing
/// else: each whole, indexed, unmarked, its `meta.json` and its index entry
/// naming the wanted sources, and holding its range's samples once; no
/// partial upload and no input left (the wanted ranges do not overlap, so
/// neither do the blocks). The ingesters must have deleted their copies.
fn assert_settled(c: &Cluster, want: &Sources) {
    let mut state = String::new();
    let settled = wait_until(WAIT, || {
        let blocks = c.bucket_blocks();
        let Some((indexed, marks)) = c.index() else {
            return false;
        };
        state = format!("bucket {blocks:?}, index {indexed:?}, marks {marks:?}");
        let mut got = Sources::new();
        for b in &indexed {
            let (Some(id), Some(min), Some(max)) = (
                b["ulid"].as_str(),
                b["min_time"].as_i64(),
                b["max_time"].as_i64(),
            ) else {
                return false;
            };
            let sources = strings::<BTreeSet<String>>(&b["sources"]);
            let meta_sources = c
                .bucket_meta(id)
                .map(|m| strings::<BTreeSet<String>>(&m["compaction"]["sources"]));
            let once = b["num_samples"].as_u64() == Some(samples_in((min, max)));
            if blocks.get(id) != Some(&true) || meta_sources.as_ref() != Some(&sources) || !once {
                return false;
            }
            got.insert((min, max), sources);
        }
        got == *want
            && indexed.len() == want.len()
            && blocks.len() == want.len()
            && marks.is_empty()
            && c.ingester_blocks().is_empty()
    });
    assert!(
        settled,
        "bucket never settled to {want:?}: {state}\n{}",
        c.logs()
    );
}

#[test]
fn killed_compactor_loses_no_block_counts_no_sample_twice_and_leaves_no_partial_block() {
    let b = base();
    let w = Window {
        from: b,
        to: b + 12 * HOUR,
    };
    let want = w.expected();
    let mut c = Cluster::start(1, "handoff-upload:2", &[]);
    w.write(&c);
    let flushed: BTreeSet<String> = flush(&c.ingesters[0]).into_keys().collect();
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
    assert!(c.indexed().is_empty());
    assert_exact(&c, w, &want, "after a kill during a hand-off upload");

    // 2. Killed with a handed-off block whole in the bucket but not yet in
    //    the index.
    c.restart_compactor(Some("handoff-index"));
    c.kill_compactor_at_pause(2);
    assert!(c.bucket_blocks().values().any(|whole| *whole));
    assert_exact(
        &c,
        w,
        &want,
        "after a kill before a hand-off's index rewrite",
    );

    // 3. Killed two objects into the upload of a merged block (of two or
    //    more of the 2 h blocks: the six may not all be in yet).
    c.restart_compactor(Some("merge-upload:2"));
    c.kill_compactor_at_pause(3);
    let merged_partial = c.merged_blocks(&flushed, false);
    assert_eq!(merged_partial.len(), 1, "{:?}", c.bucket_blocks());
    let meta = c.local_merged_meta(&merged_partial[0]).unwrap();
    let sources = strings::<BTreeSet<String>>(&meta["compaction"]["sources"]);
    assert!(sources.len() >= 2 && sources.is_subset(&flushed), "{meta}");
    assert_exact(&c, w, &want, "after a kill during a merged block's upload");

    // 4. Killed with a merged block whole in the bucket, its inputs not yet
    //    marked and the index not naming it.
    c.restart_compactor(Some("merge-marks"));
    c.kill_compactor_at_pause(4);
    let indexed = c.indexed();
    let unindexed_whole = c
        .merged_blocks(&flushed, true)
        .into_iter()
        .any(|id| !indexed.contains(&id));
    assert!(
        unindexed_whole,
        "{:?} vs index {indexed:?}",
        c.bucket_blocks()
    );
    assert_exact(
        &c,
        w,
        &want,
        "after a kill before a merge marked its inputs",
    );

    // Restarted without a crash point: one 12 h block holding all six
    // sources, nothing else left in the bucket, every sample once.
    c.restart_compactor(None);
    assert_settled(&c, &Sources::from([((w.from, w.to), flushed)]));
    assert_exact(&c, w, &want, "after the final restart");
}

#[test]
fn killed_vertical_merge_of_replicas_loses_no_block_counts_no_sample_twice() {
    let b = base();
    let w = Window {
        from: b,
        to: b + 6 * HOUR,
    };
    let want = w.expected();
    let mut c = Cluster::start(2, "merge-upload:2", &["--compactor.compaction-delay=1000d"]);
    w.write(&c);
    // Every series is on both ingesters: each 2 h range is cut twice.
    let mut replicas = Sources::new();
    for ingester in &c.ingesters {
        let cut = flush(ingester);
        assert_eq!(cut.len(), 3, "three 2 h blocks: {cut:?}");
        for (id, range) in cut {
            replicas.entry(range).or_default().insert(id);
        }
    }
    let ranges: Vec<(i64, i64)> = (0..3)
        .map(|k| (b + k * 2 * HOUR, b + (k + 1) * 2 * HOUR))
        .collect();
    assert_eq!(replicas.keys().copied().collect::<Vec<_>>(), ranges);
    assert!(replicas.values().all(|r| r.len() == 2), "{replicas:?}");
    let cut: BTreeSet<String> = replicas.values().flatten().cloned().collect();

    // 1. Killed two objects into the upload of the merge of one range's two
    //    copies: a partial block with a new ULID, no index naming it. The
    //    block being uploaded (whole in the compactor's work directory)
    //    holds both ingesters' blocks of one 2 h range, each sample once.
    c.kill_compactor_at_pause(1);
    let partial = c.merged_blocks(&cut, false);
    assert_eq!(partial.len(), 1, "{:?}", c.bucket_blocks());
    assert!(!c.indexed().contains(&partial[0]));
    let meta = c.local_merged_meta(&partial[0]).unwrap();
    let range = vertical_merge_range(&meta, &replicas);
    assert_eq!(
        meta["stats"]["numSamples"].as_u64(),
        Some(samples_in(range))
    );
    // Both copies are indexed: queriers read the range twice.
    assert!(replicas[&range].is_subset(&c.indexed()));
    assert_exact(
        &c,
        w,
        &want,
        "after a kill during a vertical merge's upload",
    );

    // 2. Killed with a merged block whole in the bucket, both copies of its
    //    range still unmarked and the index not naming it.
    c.restart_compactor(Some("merge-marks"));
    c.kill_compactor_at_pause(2);
    let indexed = c.indexed();
    let unindexed: Vec<String> = c
        .merged_blocks(&cut, true)
        .into_iter()
        .filter(|id| !indexed.contains(id))
        .collect();
    assert_eq!(
        unindexed.len(),
        1,
        "{:?} vs index {indexed:?}",
        c.bucket_blocks()
    );
    let meta = c.bucket_meta(&unindexed[0]).unwrap();
    let range = vertical_merge_range(&meta, &replicas);
    let (_, marks) = c.index().unwrap();
    assert!(
        replicas[&range].is_subset(&indexed) && replicas[&range].is_disjoint(&marks),
        "the merge's inputs are not indexed and unmarked: index {indexed:?}, marks {marks:?}"
    );
    assert_exact(
        &c,
        w,
        &want,
        "after a kill before a vertical merge marked its inputs",
    );

    // Restarted without a crash point: one block per 2 h range, holding
    // both copies' sources and each sample once; copies, partial upload
    // and marks gone.
    c.restart_compactor(None);
    assert_settled(&c, &replicas);
    assert_exact(&c, w, &want, "after the final restart");
}

/// The 2 h range a merged block's `meta.json` covers, checking that its
/// sources are exactly the copies of that range (a vertical merge).
fn vertical_merge_range(meta: &Value, replicas: &Sources) -> (i64, i64) {
    let range = (
        meta["minTime"].as_i64().unwrap(),
        meta["maxTime"].as_i64().unwrap(),
    );
    assert_eq!(
        Some(&strings::<BTreeSet<String>>(&meta["compaction"]["sources"])),
        replicas.get(&range),
        "not a vertical merge of one range's copies: {meta}"
    );
    range
}
