//! The head with its WAL: reopen, torn records, corruption, repair,
//! checkpoints and the interval policy, on real files.

#![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tidemark_model::{Labels, Matcher, STALE_NAN, Sample, TenantId, is_stale_nan};
use tidemark_tsdb::{Head, HeadOptions, SyncPolicy, TenantHeads, TsdbError, WalOptions};

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn series(i: usize) -> Labels {
    l(&[("__name__", "m"), ("i", &i.to_string())])
}

fn open(dir: &Path, opts: WalOptions) -> Head {
    Head::open(dir, HeadOptions::default(), opts).unwrap().0
}

/// Appends `batches` batches of 10 series with one sample each.
fn write(h: &Head, batches: std::ops::Range<i64>) {
    for b in batches {
        let batch: Vec<(Labels, Vec<Sample>)> = (0..10)
            .map(|i| (series(i), vec![Sample::new(b * 1000, b as f64 + i as f64)]))
            .collect();
        let r = h.append(&batch).unwrap();
        assert_eq!(r.samples_written, 10);
    }
}

fn all(h: &Head) -> Vec<(Labels, Vec<Sample>)> {
    h.select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| (s.labels, s.samples))
        .collect()
}

/// Samples as (t, value bits), so NaNs compare by bits.
fn bits(v: &[(Labels, Vec<Sample>)]) -> Vec<(Labels, Vec<(i64, u64)>)> {
    v.iter()
        .map(|(l, s)| (l.clone(), s.iter().map(|x| (x.t, x.v.to_bits())).collect()))
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().len() == 8)
        .collect();
    v.sort();
    v
}

#[test]
fn reopen_restores_series_samples_and_refs() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let h = open(dir.path(), WalOptions::default());
        write(&h, 0..50);
        h.append(&[(
            l(&[("__name__", "m"), ("stale", "1")]),
            vec![Sample::new(5, STALE_NAN)],
        )])
        .unwrap();
        before = all(&h);
        assert!(h.wal().unwrap().stats().fsyncs > 0);
    }
    let (h, stats) = Head::open(dir.path(), HeadOptions::default(), WalOptions::default()).unwrap();
    assert_eq!(stats.samples, 501);
    assert_eq!(stats.series, 11);
    assert_eq!(stats.torn_records, 0);
    let after = all(&h);
    assert_eq!(bits(&after), bits(&before));
    let stale = after
        .iter()
        .find(|(l, _)| l.get("stale").is_some())
        .unwrap();
    assert!(is_stale_nan(stale.1[0].v));
    // Appending continues where it stopped: old refs resolve, order is enforced.
    let r = h
        .append(&[(series(0), vec![Sample::new(10, 1.0)])])
        .unwrap();
    assert_eq!(r.series_created, 0);
    assert_eq!(r.refused.len(), 1);
    write(&h, 50..60);
    drop(h);
    let h = open(dir.path(), WalOptions::default());
    assert_eq!(all(&h)[0].1.len(), 60);
}

#[test]
fn torn_final_record_is_truncated_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = open(dir.path(), WalOptions::default());
        write(&h, 0..20);
    }
    let segs = segments(dir.path());
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    // Cut the final record in half, as a crash in the middle of a write does.
    OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let (h, stats) = Head::open(dir.path(), HeadOptions::default(), WalOptions::default()).unwrap();
    assert_eq!(stats.torn_records, 1);
    assert!(stats.torn_bytes > 0);
    assert_eq!(h.wal().unwrap().stats().torn_records_truncated, 1);
    // The torn batch (the 20th) is gone, the 19 before it are whole.
    for (_, samples) in all(&h) {
        assert_eq!(samples.len(), 19);
    }
    write(&h, 19..25);
    drop(h);
    let (h, stats) = Head::open(dir.path(), HeadOptions::default(), WalOptions::default()).unwrap();
    assert_eq!(stats.torn_records, 0, "the torn tail was removed for good");
    assert_eq!(all(&h)[0].1.len(), 25);
}

/// Writes two segments' worth of data and flips a byte inside the first.
fn corrupt_first_segment(dir: &Path) -> (PathBuf, u64) {
    {
        let h = open(dir, WalOptions::default());
        write(&h, 0..10);
    }
    {
        // A second open starts a second segment.
        let h = open(dir, WalOptions::default());
        write(&h, 10..20);
    }
    let segs = segments(dir);
    assert!(segs.len() >= 2);
    let first = segs[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    let offset = bytes.len() as u64 / 2;
    bytes[offset as usize] ^= 0xff;
    std::fs::File::create(&first)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    (first, offset)
}

#[test]
fn corruption_in_an_earlier_segment_is_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (first, flipped) = corrupt_first_segment(dir.path());
    let err = Head::open(dir.path(), HeadOptions::default(), WalOptions::default()).unwrap_err();
    match &err {
        TsdbError::WalCorruption {
            segment, offset, ..
        } => {
            assert_eq!(segment, &first);
            assert!(
                *offset <= flipped,
                "record start {offset} before flipped byte {flipped}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(first.to_str().unwrap()) && msg.contains("repair"),
        "{msg}"
    );
}

#[test]
fn repair_truncates_at_the_corruption_and_reports_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = corrupt_first_segment(dir.path());
    let opts = WalOptions {
        repair: true,
        ..WalOptions::default()
    };
    let (h, stats) = Head::open(dir.path(), HeadOptions::default(), opts.clone()).unwrap();
    let rep = stats.repaired.expect("repair reported");
    assert_eq!(rep.segment, first);
    assert_eq!(rep.segments_deleted, 1);
    assert!(rep.bytes_discarded > 0);
    assert_eq!(std::fs::metadata(&first).unwrap().len(), rep.offset);
    // What precedes the corruption survives, in order.
    let got = all(&h);
    assert!(!got.is_empty());
    for (_, samples) in &got {
        assert!(samples.len() < 10);
        assert!(samples.windows(2).all(|w| w[0].t < w[1].t));
    }
    write(&h, 30..31);
    drop(h);
    // The repaired log opens cleanly without the option.
    let (_, stats) = Head::open(dir.path(), HeadOptions::default(), WalOptions::default()).unwrap();
    assert!(stats.repaired.is_none());
}

#[test]
fn segments_roll_over_at_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    // Thousands of batches: sync in the background to keep the test fast
    // (every open and close still fsyncs; durability is not what is tested).
    let opts = WalOptions {
        segment_size: 64 << 10,
        sync: SyncPolicy::Interval(Duration::from_millis(100)),
        ..WalOptions::default()
    };
    {
        let h = open(dir.path(), opts.clone());
        write(&h, 0..2000);
        assert!(h.wal().unwrap().stats().segments_created > 2);
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 2);
    for s in &segs {
        assert!(std::fs::metadata(s).unwrap().len() <= 64 << 10);
    }
    let h = open(dir.path(), opts);
    assert_eq!(all(&h)[0].1.len(), 2000);
}

#[test]
fn checkpoint_keeps_live_data_and_deletes_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Thousands of batches: sync in the background to keep the test fast
    // (every open and close still fsyncs; durability is not what is tested).
    let opts = WalOptions {
        segment_size: 64 << 10,
        sync: SyncPolicy::Interval(Duration::from_millis(100)),
        ..WalOptions::default()
    };
    let gone = l(&[("__name__", "gone")]);
    {
        let h = open(dir.path(), opts.clone());
        h.append(&[(gone.clone(), vec![Sample::new(0, 1.0)])])
            .unwrap();
        write(&h, 0..2000);
        let segs_before = segments(dir.path()).len();
        let stats = h.truncate(1_000_000).unwrap();
        assert_eq!(stats.series_removed, 1);
        let cp = stats.checkpoint.unwrap();
        assert_eq!(cp.series_dropped, 1);
        assert_eq!(cp.series_kept, 10);
        assert!(cp.samples_dropped >= 10_000);
        assert_eq!(cp.segments_deleted as usize, segs_before);
        assert_eq!(segments(dir.path()).len(), 1);
        write(&h, 2000..2100);
    }
    let (h, stats) = Head::open(dir.path(), HeadOptions::default(), opts.clone()).unwrap();
    assert!(stats.checkpoint.is_some());
    assert_eq!(h.num_series(), 10);
    assert!(
        h.select(&[Matcher::equal("__name__", "gone")], i64::MIN, i64::MAX)
            .is_empty()
    );
    for (_, samples) in all(&h) {
        // The head keeps whole chunks that reach the cut; the checkpoint
        // keeps every sample from the cut on, plus everything after it.
        assert!(samples.iter().any(|s| s.t == 1_000_000));
        assert_eq!(samples.last().unwrap().t, 2_099_000);
        assert!(samples.iter().all(|s| s.t >= 1_000_000));
        assert_eq!(samples.len(), 1100);
    }
    // A second truncation replaces the first checkpoint.
    h.truncate(2_000_000).unwrap();
    drop(h);
    let cps: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("checkpoint."))
        .collect();
    assert_eq!(cps.len(), 1, "{cps:?}");
    let h = open(dir.path(), opts);
    assert_eq!(all(&h)[0].1.len(), 100);
}

#[test]
fn replay_min_time_skips_samples_already_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = open(dir.path(), WalOptions::default());
        write(&h, 0..100);
    }
    let opts = HeadOptions {
        replay_min_time: 50_000,
        ..HeadOptions::default()
    };
    let (h, _) = Head::open(dir.path(), opts, WalOptions::default()).unwrap();
    for (_, samples) in all(&h) {
        assert_eq!(samples.len(), 50);
        assert_eq!(samples[0].t, 50_000);
    }
}

#[test]
fn interval_policy_syncs_in_the_background_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        sync: SyncPolicy::Interval(Duration::from_millis(20)),
        ..WalOptions::default()
    };
    {
        let h = open(dir.path(), opts.clone());
        write(&h, 0..10);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while h.wal().unwrap().stats().fsyncs == 0 {
            assert!(std::time::Instant::now() < deadline, "no background fsync");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let h = open(dir.path(), opts);
    assert_eq!(all(&h)[0].1.len(), 10);
}

#[test]
fn tenant_heads_reopen_every_tenant_with_its_own_wal() {
    let root = tempfile::tempdir().unwrap();
    let a = TenantId::new("team-a").unwrap();
    let b = TenantId::new("team-b").unwrap();
    {
        let (heads, stats) =
            TenantHeads::open(root.path(), HeadOptions::default(), WalOptions::default()).unwrap();
        assert!(stats.is_empty());
        write(&heads.get_or_create(&a).unwrap(), 0..3);
        write(&heads.get_or_create(&b).unwrap(), 0..5);
    }
    let (heads, stats) =
        TenantHeads::open(root.path(), HeadOptions::default(), WalOptions::default()).unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(all(&heads.get(&a).unwrap())[0].1.len(), 3);
    assert_eq!(all(&heads.get(&b).unwrap())[0].1.len(), 5);
    assert!(root.path().join("team-a").join("wal").is_dir());
}

#[test]
fn a_batch_larger_than_a_record_is_split_and_replays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let batch: Vec<(Labels, Vec<Sample>)> = (0..20_000)
        .map(|i| {
            (
                series(i),
                (0..60)
                    .map(|t| Sample::new(t * 1000, t as f64 + 0.1))
                    .collect(),
            )
        })
        .collect();
    {
        let h = open(dir.path(), WalOptions::default());
        assert_eq!(h.append(&batch).unwrap().samples_written, 1_200_000);
        // More than one samples record was needed (they are split at 8 MiB).
        assert!(h.wal().unwrap().stats().records_written >= 3);
    }
    let (h, stats) = Head::open(dir.path(), HeadOptions::default(), WalOptions::default()).unwrap();
    assert_eq!(stats.samples, 1_200_000);
    assert_eq!(h.num_series(), 20_000);
}

#[test]
fn concurrent_appends_to_shared_series_replay_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let h = open(dir.path(), WalOptions::default());
        std::thread::scope(|sc| {
            for t in 0..4i64 {
                let h = &h;
                sc.spawn(move || {
                    for round in 0..250i64 {
                        // Every thread appends to the same two series first,
                        // then to a varying number of its own: whichever
                        // shared sample is late is refused; the rest must
                        // reach the WAL in the order they entered memory,
                        // even when a later batch finishes first.
                        let mut batch: Vec<(Labels, Vec<Sample>)> = ["s1", "s2"]
                            .iter()
                            .map(|shared| {
                                (
                                    l(&[("__name__", "m"), ("shared", shared)]),
                                    vec![Sample::new(round * 10 + t, t as f64)],
                                )
                            })
                            .collect();
                        let own = if (round + t) % 2 == 0 { 200 } else { 1 };
                        batch.extend((0..own).map(|i| {
                            (
                                l(&[("__name__", "m"), ("own", &format!("{t}-{i}"))]),
                                vec![Sample::new(round, 1.0)],
                            )
                        }));
                        h.append(&batch).unwrap();
                    }
                });
            }
        });
        before = all(&h);
        assert_eq!(before.len(), 2 + 4 * 200);
        // Every batch was acknowledged after an fsync covering it, and no
        // batch needed more than one (group commit shares them).
        let st = h.wal().unwrap().stats();
        assert_eq!(st.synced_appends, 4 * 250);
        assert!(st.fsyncs <= st.synced_appends, "{st:?}");
        assert_eq!(st.synced_bytes, st.bytes_written);
    }
    let h = open(dir.path(), WalOptions::default());
    assert_eq!(bits(&all(&h)), bits(&before));
}

mod damaged_segments {
    //! Any damage to a segment is either cut off as a torn tail or refused
    //! as corruption; it never panics and never yields samples that were
    //! not written.
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn pristine() -> &'static Vec<u8> {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        BYTES.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            {
                let h = open(dir.path(), WalOptions::default());
                write(&h, 0..6);
            }
            std::fs::read(&segments(dir.path())[0]).unwrap()
        })
    }

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000000"), bytes).unwrap();
        match Head::open(dir.path(), HeadOptions::default(), WalOptions::default()) {
            Ok((h, _)) => {
                for (labels, samples) in all(&h) {
                    let i: f64 = labels.get("i").unwrap().parse().unwrap();
                    for (b, s) in samples.iter().enumerate() {
                        // A prefix of what was written, values intact.
                        prop_assert_eq!(s.t, b as i64 * 1000);
                        prop_assert_eq!(s.v, b as f64 + i);
                    }
                }
            }
            Err(TsdbError::WalCorruption { offset, .. }) => {
                prop_assert!(offset < bytes.len() as u64);
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn flipped_bytes(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
            let mut bytes = pristine().clone();
            for (at, x) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            check(&bytes)?;
        }

        #[test]
        fn truncated(at in any::<prop::sample::Index>()) {
            let bytes = pristine();
            check(&bytes[..at.index(bytes.len())])?;
        }

        #[test]
        fn garbage(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&bytes)?;
        }
    }
}

#[test]
fn corrupt_checkpoint_is_refused_or_repaired() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = open(dir.path(), WalOptions::default());
        write(&h, 0..30);
        h.truncate(10_000).unwrap();
        write(&h, 30..40);
    }
    let cp_dir = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("checkpoint.")
        })
        .unwrap();
    let cp = cp_dir.join("00000000");
    let mut bytes = std::fs::read(&cp).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&cp, &bytes).unwrap();
    match Head::open(dir.path(), HeadOptions::default(), WalOptions::default()) {
        Err(TsdbError::WalCorruption { segment, .. }) => assert_eq!(segment, cp),
        other => panic!("expected corruption, got {other:?}"),
    }
    let opts = WalOptions {
        repair: true,
        ..WalOptions::default()
    };
    let (h, stats) = Head::open(dir.path(), HeadOptions::default(), opts).unwrap();
    let rep = stats.repaired.unwrap();
    assert_eq!(rep.segment, cp);
    assert!(rep.offset as usize <= at);
    // The series records come first in the checkpoint and survived; the
    // samples after the damage are gone, the later segments are whole.
    assert_eq!(all(&h).len(), 10);
    for (_, samples) in all(&h) {
        assert!(samples.iter().all(|s| s.t >= 10_000));
        assert_eq!(samples.last().unwrap().t, 39_000);
        assert!(samples.windows(2).all(|w| w[0].t < w[1].t));
    }
}
