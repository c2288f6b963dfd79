#![allow(clippy::unwrap_used)]

use std::path::Path;

use tidemark_model::{Labels, STALE_NAN, Sample};

use super::*;

fn labels(name: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", "node")]).unwrap()
}

fn series(n: std::ops::Range<i64>, f: impl Fn(i64) -> f64) -> Vec<Sample> {
    n.map(|i| Sample::new(i * 15_000, f(i))).collect()
}

fn write(parent: &Path, data: &[(Labels, Vec<Sample>)]) -> BlockReader {
    let mut w = BlockWriter::new();
    for (l, s) in data {
        w.add_samples(l.clone(), s).unwrap();
    }
    let meta = w.write(parent).unwrap();
    BlockReader::open(&parent.join(meta.ulid.to_string())).unwrap()
}

#[test]
fn overlapping_and_replica_blocks_merge_with_deduplication() {
    let dir = tempfile::tempdir().unwrap();
    let a_data = vec![
        (labels("s1"), series(0..300, |i| i as f64)),
        (labels("s2"), series(0..50, |_| 7.0)),
    ];
    let a = write(dir.path(), &a_data);
    let b = write(dir.path(), &a_data); // an identical replica
    let c_data = vec![
        (
            labels("s1"),
            series(200..400, |i| match i {
                250 => 1e9,       // conflicts with A's 250.0 and is greater
                260 => STALE_NAN, // loses against A's real value
                _ => i as f64,
            }),
        ),
        (labels("s3"), series(10..20, |i| -(i as f64))),
    ];
    let c = write(dir.path(), &c_data);

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let merged = merge_blocks(&[&a, &b, &c], &out).unwrap();
    let stats = &merged.stats;
    assert_eq!(stats.series, 3);
    assert_eq!(stats.samples_in, 300 + 50 + 300 + 50 + 200 + 10);
    assert_eq!(stats.samples_out, 400 + 50 + 10);
    // At t=250 both replicas' 250.0 lose against C's 1e9 (2 conflicts); at
    // t=260 C's staleness marker loses (1 conflict) and B's copy of A's value
    // is a duplicate. Every other dropped sample is a duplicate.
    assert_eq!(stats.conflicts, 3);
    assert_eq!(stats.duplicates, 910 - 460 - 3);

    let r = BlockReader::open(&out.join(merged.meta.ulid.to_string())).unwrap();
    let meta = r.meta();
    assert_eq!(meta.compaction.level, 2);
    let mut sources = vec![a.meta().ulid, b.meta().ulid, c.meta().ulid];
    sources.sort();
    assert_eq!(meta.compaction.sources, sources);
    assert_eq!(meta.compaction.parents.len(), 3);
    assert_eq!(meta.min_time, 0);
    assert_eq!(meta.max_time, 399 * 15_000 + 1);
    assert_eq!(meta.stats.num_samples, 460);

    let got = r.select(&[], i64::MIN, i64::MAX).unwrap();
    let s1 = &got[0];
    assert_eq!(s1.labels, labels("s1"));
    let want: Vec<Sample> = series(0..400, |i| if i == 250 { 1e9 } else { i as f64 });
    assert_eq!(s1.samples, want);
    assert_eq!(got[1].samples, a_data[1].1);
    assert_eq!(got[2].samples, c_data[1].1);
    // Re-cut into chunks of 120 samples.
    let refs = r.postings("__name__", "s1").unwrap();
    assert_eq!(r.series(refs[0]).unwrap().chunks.len(), 4);

    // The result does not depend on the order of the inputs.
    let out2 = dir.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    let merged2 = merge_blocks(&[&c, &b, &a], &out2).unwrap();
    assert_eq!(merged2.stats, merged.stats);
    let r2 = BlockReader::open(&out2.join(merged2.meta.ulid.to_string())).unwrap();
    assert_eq!(r2.select(&[], i64::MIN, i64::MAX).unwrap(), got);
}

#[test]
fn a_series_in_one_block_keeps_its_chunk_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        &[(labels("only"), series(0..250, |i| (i * i) as f64))],
    );
    let b = write(dir.path(), &[(labels("other"), series(0..5, |_| 1.0))]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let m = merge_blocks(&[&a, &b], &out).unwrap();
    assert_eq!((m.stats.duplicates, m.stats.conflicts), (0, 0));
    let r = BlockReader::open(&out.join(m.meta.ulid.to_string())).unwrap();
    let chunk_bytes = |blk: &BlockReader| -> Vec<Vec<u8>> {
        let refs = blk.postings("__name__", "only").unwrap();
        blk.series(refs[0])
            .unwrap()
            .chunks
            .iter()
            .map(|c| blk.chunks().chunk(c.chunk_ref).unwrap().bytes().to_vec())
            .collect()
    };
    assert_eq!(chunk_bytes(&r), chunk_bytes(&a));
}

#[test]
fn tombstones_of_the_inputs_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        &[
            (labels("s1"), series(0..100, |i| i as f64)),
            (labels("s2"), series(0..10, |i| i as f64)),
        ],
    );
    // Delete [15s, 45s] of s1, as Prometheus's delete API would.
    let r = a.postings("__name__", "s1").unwrap()[0];
    let mut t = Tombstones::default();
    t.add(r, 15_000, 45_000);
    std::fs::write(a.dir().join("tombstones"), t.encode()).unwrap();
    let a = BlockReader::open(a.dir()).unwrap();
    assert_eq!(a.tombstones().len(), 1);
    let sel = a
        .select(&[Matcher::equal("__name__", "s1")], 0, 60_000)
        .unwrap();
    let ts: Vec<i64> = sel[0].samples.iter().map(|s| s.t).collect();
    assert_eq!(ts, vec![0, 60_000]);

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let m = merge_blocks(&[&a], &out).unwrap();
    assert_eq!(m.stats.samples_out, 97 + 10);
    let merged = BlockReader::open(&out.join(m.meta.ulid.to_string())).unwrap();
    assert!(merged.tombstones().is_empty());
    let sel = merged
        .select(&[Matcher::equal("__name__", "s1")], 0, 60_000)
        .unwrap();
    assert_eq!(sel[0].samples.len(), 2);
}

#[test]
fn merging_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        merge_blocks(&[], dir.path()),
        Err(crate::TsdbError::InvalidBlockInput { .. })
    ));
}

use tidemark_model::Matcher;
