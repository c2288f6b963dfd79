#![allow(clippy::unwrap_used)]

use tidemark_model::{Labels, MatchOp, Matcher, STALE_NAN, Sample};

use super::*;
use crate::TsdbError;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn samples(n: i64, start: i64, step: i64, f: impl Fn(i64) -> f64) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample::new(start + i * step, f(i)))
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    reader: BlockReader,
    written: Vec<(Labels, Vec<Sample>)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut written = vec![
        (
            labels(&[("__name__", "up"), ("job", "node"), ("instance", "a:9100")]),
            samples(300, 0, 15_000, |i| (i % 2) as f64),
        ),
        (
            labels(&[("__name__", "up"), ("job", "node"), ("instance", "b:9100")]),
            samples(10, 1_000, 15_000, |_| 1.0),
        ),
        (
            labels(&[("__name__", "up"), ("job", "prom"), ("instance", "c:9090")]),
            vec![Sample::new(5, 1.0), Sample::new(20, STALE_NAN)],
        ),
        (
            labels(&[("__name__", "http_requests_total"), ("code", "200")]),
            samples(500, -7_000, 10_000, |i| (i * 3) as f64),
        ),
    ];
    let mut w = BlockWriter::new();
    // Added in reverse order: the writer sorts.
    for (l, s) in written.iter().rev() {
        w.add_samples(l.clone(), s).unwrap();
    }
    let meta = w.write(dir.path()).unwrap();
    written.sort_by(|a, b| a.0.cmp(&b.0));
    let reader = BlockReader::open(&dir.path().join(meta.ulid.to_string())).unwrap();
    Fixture {
        _dir: dir,
        reader,
        written,
    }
}

#[test]
fn written_block_reads_back_exactly() {
    let f = fixture();
    let meta = f.reader.meta();
    assert_eq!(meta.stats.num_series, 4);
    assert_eq!(meta.stats.num_samples, 300 + 10 + 2 + 500);
    // 300 samples -> 3 chunks, 500 -> 5, others 1 each.
    assert_eq!(meta.stats.num_chunks, 3 + 1 + 1 + 5);
    assert_eq!(meta.min_time, -7_000);
    assert_eq!(meta.max_time, -7_000 + 499 * 10_000 + 1);
    assert_eq!(meta.compaction.level, 1);
    assert_eq!(meta.compaction.sources, vec![meta.ulid]);

    let all = f.reader.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(all.len(), f.written.len());
    for (got, (l, s)) in all.iter().zip(&f.written) {
        assert_eq!(&got.labels, l);
        assert_eq!(got.samples.len(), s.len());
        for (a, b) in got.samples.iter().zip(s) {
            assert!(a.bit_eq(b), "{l}: {a:?} != {b:?}");
        }
    }
}

#[test]
fn labels_and_postings_are_indexed() {
    let f = fixture();
    assert_eq!(
        f.reader.label_names(),
        vec!["__name__", "code", "instance", "job"]
    );
    assert_eq!(f.reader.label_values("job"), vec!["node", "prom"]);
    assert!(f.reader.label_values("nope").is_empty());
    let syms = f.reader.symbols();
    assert!(syms.windows(2).all(|w| w[0] < w[1]), "symbols sorted");
    assert!(syms.iter().any(|s| s == "a:9100"));
    let node = f.reader.postings("job", "node").unwrap();
    assert_eq!(node.len(), 2);
    assert!(f.reader.postings("job", "missing").unwrap().is_empty());
    let s = f.reader.series(node[0]).unwrap();
    assert_eq!(s.labels.get("instance"), Some("a:9100"));
    assert_eq!(s.chunks.len(), 3);
    assert_eq!(s.chunks[0].min_time, 0);
    assert_eq!(s.chunks[0].max_time, 119 * 15_000);
    assert_eq!(s.chunks[1].min_time, 120 * 15_000);
}

#[test]
fn select_applies_matchers_and_time_range() {
    let f = fixture();
    let names = |m: Vec<Matcher>, mint, maxt| -> Vec<String> {
        f.reader
            .select(&m, mint, maxt)
            .unwrap()
            .iter()
            .map(|s| s.labels.to_string())
            .collect()
    };
    let re = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    assert_eq!(
        names(vec![Matcher::equal("job", "node")], i64::MIN, i64::MAX).len(),
        2
    );
    assert_eq!(
        names(
            vec![
                Matcher::equal("__name__", "up"),
                re(MatchOp::NotEqual, "job", "node")
            ],
            i64::MIN,
            i64::MAX
        ),
        vec![r#"up{instance="c:9090", job="prom"}"#]
    );
    // `job=""` selects the series without a job label.
    assert_eq!(
        names(vec![Matcher::equal("job", "")], i64::MIN, i64::MAX),
        vec![r#"http_requests_total{code="200"}"#]
    );
    assert_eq!(
        names(
            vec![re(MatchOp::Regex, "instance", "(a|c):.*")],
            i64::MIN,
            i64::MAX
        )
        .len(),
        2
    );
    assert_eq!(
        names(
            vec![re(MatchOp::NotRegex, "instance", ".*9100")],
            i64::MIN,
            i64::MAX
        )
        .len(),
        2
    );
    assert!(names(vec![Matcher::equal("job", "nope")], i64::MIN, i64::MAX).is_empty());
    // Time range: only instance b's 10 samples start at 1000; the range
    // [1000, 16000] holds 2 samples of a, 2 of b, 2 of the counter.
    let sel = f
        .reader
        .select(&[Matcher::equal("__name__", "up")], 1_000, 16_000)
        .unwrap();
    let counts: Vec<usize> = sel.iter().map(|s| s.samples.len()).collect();
    assert_eq!(counts, vec![1, 2]);
    assert!(
        sel.iter()
            .all(|s| s.samples.iter().all(|x| (1_000..=16_000).contains(&x.t)))
    );
}

#[test]
fn small_segments_split_chunks_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new().with_max_segment_size(300);
    let mut want = Vec::new();
    for i in 0..20 {
        let l = labels(&[("__name__", "m"), ("i", &i.to_string())]);
        let s = samples(200, 0, 1000, |k| (k * i) as f64 * 0.5);
        w.add_samples(l.clone(), &s).unwrap();
        want.push((l, s));
    }
    let meta = w.write(dir.path()).unwrap();
    let bdir = dir.path().join(meta.ulid.to_string());
    let segments = std::fs::read_dir(bdir.join("chunks")).unwrap().count();
    assert!(segments > 5, "{segments} segments");
    let r = BlockReader::open(&bdir).unwrap();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let got = r.select(&[], i64::MIN, i64::MAX).unwrap();
    assert_eq!(got.len(), 20);
    for (g, (l, s)) in got.iter().zip(&want) {
        assert_eq!(&g.labels, l);
        assert_eq!(&g.samples, s);
    }
}

#[test]
fn corruption_is_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new();
    w.add_samples(labels(&[("a", "b")]), &samples(10, 0, 1, |_| 1.0))
        .unwrap();
    let meta = w.write(dir.path()).unwrap();
    let bdir = dir.path().join(meta.ulid.to_string());

    let chunk_path = bdir.join("chunks").join("000001");
    let mut bytes = std::fs::read(&chunk_path).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x40;
    std::fs::write(&chunk_path, &bytes).unwrap();
    let r = BlockReader::open(&bdir).unwrap();
    let err = r.select(&[], i64::MIN, i64::MAX).unwrap_err();
    assert!(
        matches!(&err, TsdbError::ChecksumMismatch { path, offset: 8, .. } if path.ends_with("000001")),
        "{err}"
    );

    let index_path = bdir.join(INDEX_FILENAME);
    let mut bytes = std::fs::read(&index_path).unwrap();
    bytes[12] ^= 0xff; // inside the symbol table
    std::fs::write(&index_path, &bytes).unwrap();
    let err = BlockReader::open(&bdir).unwrap_err();
    assert!(matches!(err, TsdbError::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn writer_refuses_bad_input_and_leaves_no_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new();
    let err = w
        .add_samples(
            labels(&[("a", "b")]),
            &[Sample::new(5, 1.0), Sample::new(5, 2.0)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("duplicate"), "{err}");

    let mut w = BlockWriter::new();
    w.add_samples(labels(&[("a", "b")]), &samples(3, 0, 1, |_| 1.0))
        .unwrap();
    w.add_samples(labels(&[("a", "b")]), &samples(3, 10, 1, |_| 1.0))
        .unwrap();
    let err = w.write(dir.path()).unwrap_err();
    assert!(err.to_string().contains("added twice"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp dir removed"
    );

    let err = BlockWriter::new().write(dir.path()).unwrap_err();
    assert!(matches!(err, TsdbError::InvalidBlockInput { .. }));

    // An explicit range must contain the samples.
    let mut w = BlockWriter::new().with_time_range(0, 10);
    w.add_samples(labels(&[("a", "b")]), &samples(3, 8, 1, |_| 1.0))
        .unwrap();
    assert!(w.write(dir.path()).is_err());
}

#[test]
fn empty_block_with_explicit_range_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let meta = BlockWriter::new()
        .with_time_range(0, 7_200_000)
        .write(dir.path())
        .unwrap();
    let r = BlockReader::open(&dir.path().join(meta.ulid.to_string())).unwrap();
    assert_eq!(r.meta().stats.num_series, 0);
    assert!(r.select(&[], i64::MIN, i64::MAX).unwrap().is_empty());
    assert!(r.label_names().is_empty());
}

#[test]
fn chunks_are_cut_like_prometheus_head() {
    let counts = |samples: &[Sample], range| -> Vec<usize> {
        cut_chunks_with_range(samples, range)
            .unwrap()
            .iter()
            .map(|c| c.num_samples())
            .collect()
    };
    // 2 h of 15 s scrapes from an aligned start: four chunks of 120, as
    // promtool writes them.
    let regular = samples(480, 1_700_006_400_000, 15_000, |i| i as f64);
    assert_eq!(counts(&regular, DEFAULT_CHUNK_RANGE), vec![120; 4]);
    assert_eq!(counts(&regular, 2 * DEFAULT_CHUNK_RANGE), vec![120; 4]);
    // A chunk never crosses a multiple of the chunk range.
    let across = samples(240, 1_700_006_400_000 - 3_600_000, 15_000, |_| 1.0);
    let chunks = cut_chunks(&across).unwrap();
    let mut t = 0;
    for c in &chunks {
        let s = c.samples().unwrap();
        let (first, last) = (s[0].t, s[s.len() - 1].t);
        assert_eq!(
            first.div_euclid(DEFAULT_CHUNK_RANGE),
            last.div_euclid(DEFAULT_CHUNK_RANGE),
            "chunk [{first}, {last}] crosses a range boundary"
        );
        t += s.len();
    }
    assert_eq!(t, 240);
    // Dense data is capped at twice the target.
    let dense = samples(1000, 0, 1, |_| 0.0);
    assert!(
        counts(&dense, DEFAULT_CHUNK_RANGE)
            .iter()
            .all(|&n| n <= 240)
    );
    assert!(cut_chunks(&[Sample::new(2, 1.0), Sample::new(1, 1.0)]).is_err());
}

mod corrupt_input {
    use proptest::prelude::*;

    use super::*;

    fn block_bytes() -> (Vec<u8>, Vec<u8>) {
        static BYTES: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
        BYTES.get_or_init(write_block).clone()
    }

    fn write_block() -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new();
        for i in 0..5 {
            let l = labels(&[("__name__", "m"), ("i", &i.to_string())]);
            w.add_samples(l, &samples(150, 0, 15_000, |k| (k * i) as f64))
                .unwrap();
        }
        let meta = w.write(dir.path()).unwrap();
        let b = dir.path().join(meta.ulid.to_string());
        (
            std::fs::read(b.join(INDEX_FILENAME)).unwrap(),
            std::fs::read(b.join("chunks").join("000001")).unwrap(),
        )
    }

    /// Reads everything a query would read; must not panic whatever the bytes.
    fn read_all(index: Vec<u8>, chunks: Vec<u8>) {
        let Ok(ix) = IndexReader::open(Box::new(MemSource::new(index, "index"))) else {
            return;
        };
        let Ok(cr) = ChunkReader::new(vec![Box::new(MemSource::new(chunks, "000001"))]) else {
            return;
        };
        let _ = ix.label_names();
        let Ok(refs) = ix.all_postings() else { return };
        for r in refs {
            if let Ok(s) = ix.series(r) {
                for m in s.chunks {
                    if let Ok(c) = cr.chunk(m.chunk_ref) {
                        let _ = c.samples();
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn mutated_index_and_chunks_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            in_index in any::<bool>(),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let (mut index, mut chunks) = block_bytes();
            let target = if in_index { &mut index } else { &mut chunks };
            for (pos, x) in flips {
                let n = target.len();
                target[pos % n] ^= x | 1;
            }
            if let Some(c) = cut {
                let n = target.len();
                target.truncate(c % n);
            }
            read_all(index, chunks);
        }
    }
}

/// A segment file that counts the read rounds asked of it.
struct CountingSource {
    inner: FileSource,
    rounds: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ByteSource for CountingSource {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_range(&self, offset: u64, len: usize) -> Result<std::borrow::Cow<'_, [u8]>, TsdbError> {
        self.rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.read_range(offset, len)
    }
    fn read_ranges(
        &self,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<std::borrow::Cow<'_, [u8]>>, TsdbError> {
        self.rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ranges
            .iter()
            .map(|r| self.inner.read_range(r.start, (r.end - r.start) as usize))
            .collect()
    }
    fn path(&self) -> &std::path::Path {
        self.inner.path()
    }
}

#[test]
fn select_reads_neighbouring_chunks_in_few_rounds_and_returns_them_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new();
    let mut want = Vec::new();
    for i in 0..300 {
        let l = labels(&[("__name__", "m"), ("i", &format!("{i:03}"))]);
        // Every tenth series has irregular values: its chunks are longer
        // than the first read of a chunk and take a second read.
        let s = if i % 10 == 0 {
            samples(360, 0, 15_000, |k| ((k * 7919 + i) % 1013) as f64 / 7.0)
        } else {
            samples(360, 0, 15_000, |k| (k + i) as f64)
        };
        w.add_samples(l.clone(), &s).unwrap();
        want.push((l, s));
    }
    let meta = w.write(dir.path()).unwrap();
    let bdir = dir.path().join(meta.ulid.to_string());
    let rounds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seg = CountingSource {
        inner: FileSource::open(&bdir.join("chunks").join("000001")).unwrap(),
        rounds: std::sync::Arc::clone(&rounds),
    };
    let chunks = ChunkReader::new(vec![Box::new(seg)]).unwrap();
    let index = IndexReader::open(Box::new(
        MemSource::read_file(&bdir.join(INDEX_FILENAME)).unwrap(),
    ))
    .unwrap();
    let r = BlockReader::from_parts(bdir.clone(), meta, index, chunks, Tombstones::default());
    rounds.store(0, std::sync::atomic::Ordering::Relaxed);

    let got = r.select(&[], 0, 360 * 15_000).unwrap();
    assert_eq!(got.len(), 300);
    for (g, (l, s)) in got.iter().zip(&want) {
        assert_eq!(&g.labels, l);
        assert_eq!(&g.samples, s, "{l}");
    }
    // 900 chunks: one round for all, plus one per long chunk (30 series
    // with 3 chunks each) instead of 900 or more.
    let n = rounds.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n <= 1 + 90, "{n} read rounds for 900 chunks");

    // Any order and repeats: each reference gets its own chunk back.
    let s = r.series(r.select_refs(&[]).unwrap()[42]).unwrap();
    let mut refs: Vec<ChunkRef> = s.chunks.iter().map(|m| m.chunk_ref).collect();
    refs.reverse();
    refs.push(refs[0]);
    let batch = r.chunks().chunks(&refs).unwrap();
    assert_eq!(batch.len(), refs.len());
    for (c, cr) in batch.iter().zip(&refs) {
        assert_eq!(c.bytes(), r.chunks().chunk(*cr).unwrap().bytes());
    }
    let past = ChunkRef::new(0, u32::MAX);
    let err = r.chunks().chunks(&[past]).unwrap_err();
    assert!(
        err.to_string().contains("past the end of the segment"),
        "{err}"
    );
}
