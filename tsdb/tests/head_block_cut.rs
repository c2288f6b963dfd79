//! Cutting a block from the head: `series_in_range` feeds the block writer,
//! the block reads back exactly what the head held in that range, and the
//! head truncated afterwards keeps the rest.

#![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

use tidemark_model::{Labels, Matcher, STALE_NAN, Sample};
use tidemark_tsdb::{BlockReader, BlockWriter, Head, HeadOptions, WalOptions};

const HOUR: i64 = 3_600_000;

#[test]
fn block_cut_from_the_head_reads_back_what_the_head_held() {
    let wal = tempfile::tempdir().unwrap();
    let blocks = tempfile::tempdir().unwrap();
    let (head, _) = Head::open(wal.path(), HeadOptions::default(), WalOptions::default()).unwrap();
    // 3 hours of 15 s samples for 30 series, one of them ending stale.
    for step in 0..(3 * HOUR / 15_000) {
        let batch: Vec<(Labels, Vec<Sample>)> = (0..30)
            .map(|i| {
                let v = if i == 7 && step == 3 * HOUR / 15_000 - 1 {
                    STALE_NAN
                } else {
                    (step * (i + 1)) as f64
                };
                (
                    Labels::from_pairs([("__name__", "up"), ("i", &i.to_string())]).unwrap(),
                    vec![Sample::new(step * 15_000, v)],
                )
            })
            .collect();
        head.append(&batch).unwrap();
    }
    let (mint, maxt) = (0, 2 * HOUR);
    let mut w = BlockWriter::new().with_time_range(mint, maxt);
    for s in head.series_in_range(mint, maxt) {
        w.add_chunks(s.labels, s.chunks);
    }
    let meta = w.write(blocks.path()).unwrap();
    let block = BlockReader::open(&blocks.path().join(meta.ulid.to_string())).unwrap();

    let m = [Matcher::equal("__name__", "up")];
    let from_block = block.select(&m, mint, maxt - 1).unwrap();
    let from_head = head.select(&m, mint, maxt - 1);
    assert_eq!(from_block.len(), 30);
    assert_eq!(from_block, from_head);
    assert!(from_block.iter().all(|s| s.samples.len() == 480));

    head.truncate(maxt).unwrap();
    let rest = head.select(&m, i64::MIN, i64::MAX);
    assert!(
        rest.iter()
            .all(|s| s.samples.first().unwrap().t >= maxt - 2 * 15_000 * 120)
    );
    assert!(
        rest.iter()
            .all(|s| s.samples.last().unwrap().t == 3 * HOUR - 15_000)
    );
    // Nothing at or after the cut was lost.
    for s in &rest {
        assert_eq!(s.samples.iter().filter(|x| x.t >= maxt).count(), 240);
    }
}
