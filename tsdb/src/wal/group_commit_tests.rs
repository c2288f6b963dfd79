//! Group commit under concurrent appenders, with the fsync replaced by a
//! stand-in that records what each real fsync covered (the segment's
//! length when it started), so acknowledgements are checked against the
//! file, not against the WAL's own watermark.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::record::{RecordType, frame};
use super::{FsyncFn, Wal, WalOptions};
use crate::TsdbError;

fn record(i: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    frame(&mut buf, RecordType::Samples, |b| {
        b.extend_from_slice(&i.to_le_bytes());
        b.extend_from_slice(&[7u8; 100]);
    });
    buf
}

fn open(dir: &std::path::Path, fsync: FsyncFn) -> Wal {
    Wal::open_with_fsync(dir, WalOptions::default(), |_| {}, fsync)
        .unwrap()
        .0
}

/// Waits (without a deadline: the test harness has one) until `n` appenders
/// have written their record.
fn wait_logged(logged: &AtomicUsize, n: usize) {
    while logged.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
}

#[test]
fn no_append_is_acknowledged_before_a_real_fsync_covered_it() {
    const THREADS: u64 = 8;
    const APPENDS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    // The oracle: bytes of the segment that a completed fsync covered.
    let durable = Arc::new(AtomicU64::new(0));
    let d = Arc::clone(&durable);
    let wal = open(
        dir.path(),
        Box::new(move |f: &File| {
            let len = f.metadata()?.len();
            // A slow disk widens the window in which others write.
            std::thread::sleep(std::time::Duration::from_micros(300));
            f.sync_data()?;
            d.fetch_max(len, Ordering::AcqRel);
            Ok(())
        }),
    );
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (wal, durable) = (&wal, &durable);
            s.spawn(move || {
                for i in 0..APPENDS {
                    let pos = wal.log(&record(t * APPENDS + i), 1).unwrap();
                    wal.wait_durable(pos).unwrap();
                    let covered = durable.load(Ordering::Acquire);
                    assert!(covered >= pos, "acknowledged {pos} with {covered} fsynced");
                    assert!(wal.stats().synced_bytes >= pos);
                }
            });
        }
    });
    let st = wal.stats();
    assert_eq!(st.synced_appends, THREADS * APPENDS);
    assert_eq!(st.synced_bytes, st.bytes_written);
    assert!(st.fsyncs <= THREADS * APPENDS);
}

#[test]
fn appends_written_during_an_fsync_share_the_next_one() {
    const THREADS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let logged = Arc::new(AtomicUsize::new(0));
    let l = Arc::clone(&logged);
    // The first fsync holds on until every appender has written, as a slow
    // disk would: the records written meanwhile must need one more fsync
    // between them, not one each.
    let wal = open(
        dir.path(),
        Box::new(move |f: &File| {
            wait_logged(&l, THREADS);
            f.sync_data()
        }),
    );
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (wal, logged) = (&wal, &logged);
            s.spawn(move || {
                let pos = wal.log(&record(t as u64), 1).unwrap();
                logged.fetch_add(1, Ordering::AcqRel);
                wal.wait_durable(pos).unwrap();
            });
        }
    });
    let st = wal.stats();
    assert_eq!(st.synced_appends, THREADS as u64);
    assert!(
        (1..=2).contains(&st.fsyncs),
        "{} fsyncs for {THREADS} concurrent appends",
        st.fsyncs
    );
    assert_eq!(st.synced_bytes, st.bytes_written);
}

#[test]
fn a_failed_fsync_fails_every_waiter_it_was_to_cover() {
    const THREADS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let logged = Arc::new(AtomicUsize::new(0));
    let l = Arc::clone(&logged);
    let wal = open(
        dir.path(),
        Box::new(move |_: &File| {
            wait_logged(&l, THREADS);
            Err(std::io::Error::other("injected fsync failure"))
        }),
    );
    let results: Vec<Result<(), TsdbError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (wal, logged) = (&wal, &logged);
                s.spawn(move || {
                    let pos = wal.log(&record(t as u64), 1).unwrap();
                    logged.fetch_add(1, Ordering::AcqRel);
                    wal.wait_durable(pos)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(Result::is_err), "{results:?}");
    let st = wal.stats();
    assert_eq!(st.synced_appends, 0);
    assert_eq!(st.synced_bytes, 0);
    assert!(matches!(
        wal.log(&record(99), 1),
        Err(TsdbError::WalFailed { .. })
    ));
}
