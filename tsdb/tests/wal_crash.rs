//! Crash recovery with a real process killed by SIGKILL.
//!
//! The parent re-executes this test binary running only `crash_writer`
//! (ignored in normal runs) with `TIDEMARK_WAL_CRASH_DIR` set. The writer
//! opens a head with its WAL (batch fsync policy, real files) and runs two
//! appending threads (so fsyncs are shared by group commit), each appending
//! numbered batches of its own series forever and printing
//! `ACK <thread> <n>` after each append returned; one of them also
//! truncates the head (with a WAL checkpoint) now and then, printing
//! `TRUNC <t>` first. The parent kills the writer at random moments,
//! reopens the WAL in-process and checks that every acknowledged sample is
//! there exactly once with its value, then starts the writer again on the
//! same directory.

#![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tidemark_model::{Labels, MatchOp, Matcher, Sample};
use tidemark_tsdb::{Head, HeadOptions, WalOptions};

const DIR_ENV: &str = "TIDEMARK_WAL_CRASH_DIR";
const THREADS: usize = 2;
const SERIES: usize = 20;
const SAMPLES_PER_BATCH: i64 = 5;
const TRUNCATE_EVERY: i64 = 150;

fn labels(thread: usize, i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "crash_test"),
        ("thread", &thread.to_string()),
        ("series", &i.to_string()),
        ("pod", &format!("writer-{}", i % 3)),
    ])
    .unwrap()
}

fn sample_time(batch: i64, j: i64) -> i64 {
    batch * 10 + j
}

fn value(batch: i64, series: usize, j: i64) -> f64 {
    (batch * 1000 + series as i64 * 10 + j) as f64
}

fn thread_matchers(thread: usize) -> [Matcher; 2] {
    [
        Matcher::equal("__name__", "crash_test"),
        Matcher::new(MatchOp::Equal, "thread", thread.to_string()).unwrap(),
    ]
}

/// Child mode only: appends batches from two threads until killed.
#[test]
#[ignore = "run by wal_crash_sigkill_loop in a child process"]
fn crash_writer() {
    let dir = std::env::var(DIR_ENV).expect("started by the crash test with its env var set");
    let (head, _) = Head::open(
        Path::new(&dir),
        HeadOptions::default(),
        WalOptions::default(),
    )
    .unwrap();
    let out = Mutex::new(std::io::stdout());
    let say = |line: String| {
        let mut o = out.lock().unwrap();
        writeln!(o, "{line}").unwrap();
        o.flush().unwrap();
    };
    // Each thread resumes after its newest batch that survived.
    let progress: Vec<AtomicI64> = (0..THREADS)
        .map(|t| {
            let newest = head
                .select(&thread_matchers(t), i64::MIN, i64::MAX)
                .iter()
                .filter_map(|s| s.samples.last().map(|x| x.t))
                .max();
            AtomicI64::new(newest.map_or(0, |t| t / 10 + 1))
        })
        .collect();
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let (head, progress, say) = (&head, &progress, &say);
            sc.spawn(move || {
                loop {
                    let batch = progress[t].load(Ordering::SeqCst);
                    let b: Vec<(Labels, Vec<Sample>)> = (0..SERIES)
                        .map(|i| {
                            let samples = (0..SAMPLES_PER_BATCH)
                                .map(|j| Sample::new(sample_time(batch, j), value(batch, i, j)))
                                .collect();
                            (labels(t, i), samples)
                        })
                        .collect();
                    let r = head.append(&b).unwrap();
                    assert_eq!(r.samples_written, SERIES * SAMPLES_PER_BATCH as usize);
                    say(format!("ACK {t} {batch}"));
                    progress[t].store(batch + 1, Ordering::SeqCst);
                    if t == 0 && batch > 0 && batch % TRUNCATE_EVERY == 0 {
                        // Below every thread's next batch. Announced before
                        // it starts: once begun, data before `before` may be
                        // gone whether or not the truncation completes.
                        let slowest = progress
                            .iter()
                            .map(|p| p.load(Ordering::SeqCst))
                            .min()
                            .unwrap_or(0);
                        let before = sample_time(slowest - TRUNCATE_EVERY / 2, 0);
                        say(format!("TRUNC {before}"));
                        head.truncate(before).unwrap();
                    }
                }
            });
        }
    });
}

#[test]
fn wal_crash_sigkill_loop() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let acked: Arc<Vec<AtomicI64>> = Arc::new((0..THREADS).map(|_| AtomicI64::new(-1)).collect());
    let truncated = Arc::new(AtomicI64::new(i64::MIN));
    let started = Instant::now();
    let mut kills = 0;
    for iteration in 0..20 {
        if started.elapsed() > Duration::from_secs(90) {
            eprintln!("stopping after {iteration} iterations to bound the test time");
            break;
        }
        let before_acked = acked[0].load(Ordering::SeqCst);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = {
            let acked = Arc::clone(&acked);
            let truncated = Arc::clone(&truncated);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("ACK ") {
                        let (t, n) = rest.trim().split_once(' ').unwrap();
                        let t: usize = t.parse().unwrap();
                        acked[t].store(n.parse().unwrap(), Ordering::SeqCst);
                    } else if let Some(t) = line.strip_prefix("TRUNC ") {
                        truncated.store(t.trim().parse().unwrap(), Ordering::SeqCst);
                    }
                }
            })
        };
        // Let the writer get going (replay included), then kill it at a
        // random moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked[0].load(Ordering::SeqCst) == before_acked && Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("writer exited on its own with {status}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_ne!(
            acked[0].load(Ordering::SeqCst),
            before_acked,
            "writer made no progress"
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        // `Child::kill` sends SIGKILL on Unix: no destructor, no flush runs.
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        kills += 1;

        let last: Vec<i64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        verify(dir.path(), &last, truncated.load(Ordering::SeqCst));
    }
    assert!(kills >= 5, "only {kills} kill cycles ran");
    assert!(acked.iter().all(|a| a.load(Ordering::SeqCst) > 0));
}

/// Every acknowledged sample at or after the last announced truncation
/// point is present once with its value; at most the one batch per thread
/// whose acknowledgement the kill interrupted is there beyond the last
/// acknowledged one.
fn verify(dir: &Path, last: &[i64], trunc: i64) {
    let (head, stats) = Head::open(dir, HeadOptions::default(), WalOptions::default()).unwrap();
    eprintln!(
        "after kill: last acks {last:?}, truncated before {trunc}, replayed {} samples, torn records {}, checkpoint {:?}",
        stats.samples, stats.torn_records, stats.checkpoint
    );
    for (thread, &last) in last.iter().enumerate() {
        let got = head.select(&thread_matchers(thread), i64::MIN, i64::MAX);
        if last < 0 {
            continue;
        }
        assert_eq!(
            got.len(),
            SERIES,
            "thread {thread} series after replay: {stats:?}"
        );
        for s in &got {
            let i: usize = s.labels.get("series").unwrap().parse().unwrap();
            assert!(
                s.samples.windows(2).all(|w| w[0].t < w[1].t),
                "duplicate or unordered samples in series {thread}/{i}"
            );
            for smp in &s.samples {
                let (batch, j) = (smp.t / 10, smp.t % 10);
                assert!(j < SAMPLES_PER_BATCH, "unexpected timestamp {}", smp.t);
                assert_eq!(smp.v, value(batch, i, j), "corrupt value at {}", smp.t);
                assert!(
                    batch <= last + 1,
                    "batch {batch} of thread {thread} beyond the last acknowledged {last}"
                );
            }
            let present: std::collections::HashSet<i64> = s.samples.iter().map(|x| x.t).collect();
            for batch in 0..=last {
                for j in 0..SAMPLES_PER_BATCH {
                    let t = sample_time(batch, j);
                    if t >= trunc {
                        assert!(
                            present.contains(&t),
                            "acknowledged sample t={t} of series {thread}/{i} lost (last ack {last}, replay {stats:?})"
                        );
                    }
                }
            }
        }
    }
}
