//! Three scraper processes split 300 targets by the ring: every target is
//! scraped by exactly one of them once per interval, and when one is
//! killed with SIGKILL the others take its targets over within two
//! intervals, without moving anyone else's.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tidemark_tests::{Process, free_port, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TARGETS: usize = 300;
const INTERVAL: Duration = Duration::from_secs(5);

type Log = Arc<Mutex<Vec<(usize, Instant)>>>;

/// One HTTP server answering `/t/<i>` for 300 targets; records every scrape.
fn start_targets(rt: &tokio::runtime::Runtime) -> (u16, Log) {
    let log: Log = Arc::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let l = Arc::clone(&log);
    rt.spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&l);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request head at a time (scrapes have no body).
                    let end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end);
                    let path = head.split_whitespace().nth(1).unwrap_or("");
                    let i: Option<usize> = path.strip_prefix("/t/").and_then(|s| s.parse().ok());
                    let (status, body) = match i {
                        Some(i) if i < TARGETS => {
                            log.lock().unwrap().push((i, Instant::now()));
                            ("200 OK", format!("target_value{{n=\"{i}\"}} {i}\n"))
                        }
                        _ => ("404 Not Found", String::new()),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, log)
}

fn scrape_config(port: u16) -> String {
    let mut s = format!(
        "global:\n  scrape_interval: {}s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: sharded\n    static_configs:\n",
        INTERVAL.as_secs()
    );
    for i in 0..TARGETS {
        s.push_str(&format!(
            "      - {{targets: ['127.0.0.1:{port}'], labels: {{__metrics_path__: '/t/{i}', t: '{i}'}}}}\n"
        ));
    }
    s
}

/// Targets (by index) a scraper's `/api/v1/targets` lists as active.
fn owned(p: &Process) -> Option<HashSet<usize>> {
    let v: Value = reqwest::blocking::get(p.url("/api/v1/targets"))
        .ok()?
        .json()
        .ok()?;
    v["data"]["activeTargets"]
        .as_array()?
        .iter()
        .map(|t| t["labels"]["t"].as_str()?.parse().ok())
        .collect()
}

/// Scrape times of each target within `[from, to)`.
fn scrapes(log: &Log, from: Instant, to: Instant) -> BTreeMap<usize, Vec<Instant>> {
    let mut m: BTreeMap<usize, Vec<Instant>> = BTreeMap::new();
    for &(i, t) in log.lock().unwrap().iter() {
        if t >= from && t < to {
            m.entry(i).or_default().push(t);
        }
    }
    m
}

/// Every target scraped in the window, each exactly once per interval:
/// consecutive scrapes of a target are one interval apart (a target
/// scraped by two scrapers shows gaps far shorter than the interval).
fn assert_once_per_interval(log: &Log, from: Instant, to: Instant, what: &str) {
    let m = scrapes(log, from, to);
    assert_eq!(m.len(), TARGETS, "{what}: targets scraped in the window");
    let lo = INTERVAL.mul_f64(0.8);
    let hi = INTERVAL.mul_f64(1.2);
    let periods = ((to - from).as_secs_f64() / INTERVAL.as_secs_f64()).floor() as usize;
    for (i, times) in &m {
        assert!(
            times.len() >= periods - 1 && times.len() <= periods + 1,
            "{what}: target {i} scraped {} times in {periods} intervals",
            times.len()
        );
        for w in times.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= lo && gap <= hi,
                "{what}: target {i} scraped twice {gap:?} apart (interval {INTERVAL:?})"
            );
        }
    }
}

#[test]
fn three_scrapers_split_300_targets_and_take_over_a_killed_one() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (port, log) = start_targets(&rt);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, scrape_config(port)).unwrap();

    // Three scraper processes, also the membership voters. Pushes go to a
    // port nobody listens on: this test looks at who scrapes what.
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let voters = ports
        .iter()
        .map(|(_, g)| format!("127.0.0.1:{g}"))
        .collect::<Vec<_>>()
        .join(",");
    let nowhere = free_port();
    let mut scrapers: Vec<Process> = ports
        .iter()
        .enumerate()
        .map(|(i, &(h, g))| {
            Process::builder()
                .ports(h, g)
                .arg("-target=scraper")
                .arg(format!("--membership.voters={voters}"))
                .arg(format!("--membership.instance-id=scraper-{i}"))
                .arg("--membership.heartbeat-interval=200ms")
                .arg("--membership.heartbeat-timeout=2s")
                .arg("--membership.ring-refresh-interval=200ms")
                .arg("--membership.election-timeout=300ms")
                .arg(format!("--scraper.config-file={}", cfg.display()))
                .arg(format!(
                    "--scraper.distributor-addresses=127.0.0.1:{nowhere}"
                ))
                .arg("--scraper.push.max-retries=0")
                .start()
        })
        .collect();
    for s in &mut scrapers {
        s.wait_ready(Duration::from_secs(60));
    }
    let logs = |s: &[Process]| {
        s.iter()
            .enumerate()
            .map(|(i, p)| format!("--- scraper-{i}\n{}", p.log()))
            .collect::<String>()
    };

    // The three shares partition the 300 targets.
    let mut shares: Vec<HashSet<usize>> = Vec::new();
    let ok = wait_until(Duration::from_secs(30), || {
        shares = scrapers.iter().filter_map(owned).collect();
        shares.len() == 3
            && shares.iter().map(HashSet::len).sum::<usize>() == TARGETS
            && shares.iter().all(|s| !s.is_empty())
            && shares.iter().flatten().collect::<HashSet<_>>().len() == TARGETS
    });
    let sizes: Vec<usize> = shares.iter().map(HashSet::len).collect();
    assert!(
        ok,
        "shares never partitioned the targets: {sizes:?}\n{}",
        logs(&scrapers)
    );
    // Spread-minimizing tokens: no scraper has less than a sixth.
    assert!(sizes.iter().all(|&n| n >= TARGETS / 6), "{sizes:?}");

    // Let loops settle into their phase, then watch three intervals.
    std::thread::sleep(INTERVAL);
    let from = Instant::now();
    std::thread::sleep(INTERVAL * 3);
    assert_once_per_interval(&log, from, Instant::now(), "three scrapers");

    // SIGKILL scraper 2: its targets move to the others within two intervals.
    let victim = shares[2].clone();
    let survivors_before: Vec<HashSet<usize>> = shares[..2].to_vec();
    let killed_at = Instant::now();
    scrapers[2].kill();
    let deadline = killed_at + INTERVAL * 2;
    let ok = wait_until(deadline - Instant::now(), || {
        let seen = scrapes(&log, killed_at, Instant::now());
        victim.iter().all(|i| seen.contains_key(i))
    });
    let seen = scrapes(&log, killed_at, Instant::now());
    let missing: Vec<_> = victim.iter().filter(|i| !seen.contains_key(i)).collect();
    assert!(
        ok,
        "{} of the killed scraper's {} targets not scraped within two intervals: {missing:?}\n{}",
        missing.len(),
        victim.len(),
        logs(&scrapers[..2])
    );
    // Survivors kept their own targets and split the victim's.
    let after: Vec<HashSet<usize>> = scrapers[..2].iter().filter_map(owned).collect();
    assert_eq!(after.len(), 2);
    for (b, a) in survivors_before.iter().zip(&after) {
        assert!(b.is_subset(a), "a survivor lost targets it owned");
    }
    assert_eq!(after[0].len() + after[1].len(), TARGETS);

    // And the two survivors again scrape each target once per interval.
    std::thread::sleep(INTERVAL);
    let from = Instant::now();
    std::thread::sleep(INTERVAL * 2);
    assert_once_per_interval(&log, from, Instant::now(), "two scrapers");
}
