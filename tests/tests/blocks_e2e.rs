//! Long-term storage end to end with the real binary: samples remote-written
//! with old timestamps are cut into 2 h blocks by `POST /ingester/flush`,
//! handed to the compactor over gRPC, land in the filesystem bucket under
//! the data directory, and after a SIGKILL restart a query over bucket and
//! head returns every sample exactly once. A second test keeps the
//! compactor unreachable during the flush (a TCP proxy in the test that
//! first refuses, then breaks the first upload part-way, then forwards) and
//! checks that the hand-off resumes and completes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidemark_tests::remote_write::{encode, now_ms, push, series};
use tidemark_tests::{Process, ProcessBuilder, wait_until};

const HOUR: i64 = 3_600_000;
const STEP: i64 = 60_000;
const SERIES: usize = 10;

/// Flags that make the hand-off and the querier's view of the bucket quick.
fn fast(b: ProcessBuilder) -> ProcessBuilder {
    b.arg("--ingester.blocks.ship-interval=500ms")
        .arg("--ingester.blocks.handoff-min-backoff=200ms")
        .arg("--ingester.blocks.handoff-max-backoff=1s")
        .arg("--querier.blocks.index-refresh-interval=500ms")
}

/// A 2 h-aligned time three days ago: old samples, as a backfill would send.
fn base() -> i64 {
    (now_ms() - 72 * HOUR).div_euclid(2 * HOUR) * 2 * HOUR
}

fn write(p: &Process, from: i64, to: i64) {
    let ts: Vec<_> = (0..SERIES)
        .map(|i| {
            let samples: Vec<(i64, f64)> = (from..to)
                .step_by(STEP as usize)
                .map(|t| (t, (t / STEP) as f64 + i as f64))
                .collect();
            series(&[("__name__", "blk"), ("i", &i.to_string())], &samples)
        })
        .collect();
    let client = reqwest::blocking::Client::new();
    let (status, body) = push(&client, &p.url("/api/v1/push"), None, encode(ts)).unwrap();
    assert!((200..300).contains(&status), "push: {status} {body}");
}

fn flush(p: &Process) -> Vec<serde_json::Value> {
    let r = reqwest::blocking::Client::new()
        .post(p.url("/ingester/flush"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    v["blocks"].as_array().unwrap().clone()
}

/// Every sample of `blk` in `(at - 6h, at]`, per series `i`.
fn samples_at(p: &Process, at: i64) -> BTreeMap<String, Vec<(i64, f64)>> {
    let r: serde_json::Value = reqwest::blocking::Client::new()
        .post(p.url("/api/v1/query"))
        .form(&[("query", "blk[6h]"), ("time", &format!("{}", at / 1000))])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["status"], "success", "{r}");
    r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let i = s["metric"]["i"].as_str().unwrap().to_string();
            let values = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
                    (t, v[1].as_str().unwrap().parse::<f64>().unwrap())
                })
                .collect();
            (i, values)
        })
        .collect()
}

fn expected(ranges: &[(i64, i64)]) -> BTreeMap<String, Vec<(i64, f64)>> {
    (0..SERIES)
        .map(|i| {
            let v = ranges
                .iter()
                .flat_map(|&(from, to)| (from..to).step_by(STEP as usize))
                .map(|t| (t, (t / STEP) as f64 + i as f64))
                .collect();
            (i.to_string(), v)
        })
        .collect()
}

fn bucket_has(data: &Path, block: &str) -> bool {
    data.join("bucket/anonymous")
        .join(block)
        .join("meta.json")
        .exists()
}

fn local_blocks(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("ingester/anonymous/blocks"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn ids(blocks: &[serde_json::Value]) -> Vec<String> {
    blocks
        .iter()
        .map(|b| b["block"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn flushed_blocks_reach_the_bucket_and_queries_see_each_sample_once_after_a_restart() {
    let b = base();
    let mut tm = fast(Process::builder())
        .arg("--ingester.blocks.recent-query-window=0s")
        .start();
    tm.wait_ready(Duration::from_secs(60));
    // 2 h 40 min of samples across a block boundary.
    write(&tm, b + HOUR / 2, b + 3 * HOUR + 10 * STEP);
    let blocks = flush(&tm);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let data = tm.data_dir.clone();
    let in_bucket = wait_until(Duration::from_secs(60), || {
        ids(&blocks).iter().all(|id| bucket_has(&data, id)) && local_blocks(&data).is_empty()
    });
    assert!(in_bucket, "blocks not handed off; log:\n{}", tm.log());

    // Newer samples stay in the head (and WAL) across the restart.
    write(&tm, b + 4 * HOUR, b + 4 * HOUR + 20 * STEP);
    tm.kill();
    let mut again = fast(Process::builder()).data_dir(&data).start();
    again.wait_ready(Duration::from_secs(60));
    let want = expected(&[
        (b + HOUR / 2, b + 3 * HOUR + 10 * STEP),
        (b + 4 * HOUR, b + 4 * HOUR + 20 * STEP),
    ]);
    let mut got = BTreeMap::new();
    let answered = wait_until(Duration::from_secs(20), || {
        got = samples_at(&again, b + 4 * HOUR + 30 * STEP);
        got == want
    });
    assert!(
        answered,
        "query after restart differs; got {} series, first: {:?}; log:\n{}",
        got.len(),
        got.values().next().map(|v| (v.len(), v.first(), v.last())),
        again.log()
    );
}

/// A TCP proxy: refuses connections while it has no target, can cut the
/// next connection after some bytes sent upstream, and forwards otherwise.
struct Proxy {
    port: u16,
    target: Arc<Mutex<Option<u16>>>,
    cut_after: Arc<Mutex<Option<usize>>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let p = Proxy {
            port: listener.local_addr().unwrap().port(),
            target: Arc::default(),
            cut_after: Arc::default(),
            stop: Arc::default(),
            conns: Arc::default(),
        };
        let (target, cut, stop, conns) = (
            Arc::clone(&p.target),
            Arc::clone(&p.cut_after),
            Arc::clone(&p.stop),
            Arc::clone(&p.conns),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let Some(port) = *target.lock().unwrap() else {
                    drop(client);
                    continue;
                };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let budget = cut.lock().unwrap().take();
                let mut c = conns.lock().unwrap();
                c.push(client.try_clone().unwrap());
                c.push(upstream.try_clone().unwrap());
                pipe(
                    client.try_clone().unwrap(),
                    upstream.try_clone().unwrap(),
                    budget,
                );
                pipe(upstream, client, None);
            }
        });
        p
    }
}

/// Copies `from` to `to` on a thread; after `budget` bytes both are shut.
fn pipe(mut from: TcpStream, mut to: TcpStream, budget: Option<usize>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        let mut left = budget.unwrap_or(usize::MAX);
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n.min(left),
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            left -= n;
            if left == 0 {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().iter() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn hand_off_resumes_when_the_compactor_comes_back_after_the_flush() {
    let b = base();
    let proxy = Proxy::start();
    let mut tm = fast(Process::builder())
        .arg(format!(
            "--ingester.blocks.compactor-address=127.0.0.1:{}",
            proxy.port
        ))
        .start();
    tm.wait_ready(Duration::from_secs(60));
    write(&tm, b + HOUR / 2, b + 3 * HOUR);
    let blocks = flush(&tm);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let data = tm.data_dir.clone();

    // Compactor unreachable: the blocks stay local and are served from there.
    let failing = wait_until(Duration::from_secs(20), || {
        tm.log().contains("block hand-off failed")
    });
    assert!(failing, "no failed hand-off logged; log:\n{}", tm.log());
    assert!(ids(&blocks).iter().all(|id| !bucket_has(&data, id)));
    let want = expected(&[(b + HOUR / 2, b + 3 * HOUR)]);
    assert_eq!(samples_at(&tm, b + 3 * HOUR), want);

    // The compactor comes back; the first stream breaks after 2 KiB.
    *proxy.cut_after.lock().unwrap() = Some(2048);
    *proxy.target.lock().unwrap() = Some(tm.grpc_port);
    let landed = wait_until(Duration::from_secs(60), || {
        ids(&blocks).iter().all(|id| bucket_has(&data, id))
    });
    assert!(
        landed,
        "blocks never reached the bucket; log:\n{}",
        tm.log()
    );
    // Local copies (within the recent-query window) and bucket together:
    // still every sample exactly once.
    assert_eq!(local_blocks(&data).len(), 2);
    let mut got = BTreeMap::new();
    let same = wait_until(Duration::from_secs(10), || {
        got = samples_at(&tm, b + 3 * HOUR);
        got == want
    });
    assert!(same, "query over local blocks and bucket differs: {got:?}");
}
