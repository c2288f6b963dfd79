#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tidemark_model::{STALE_NAN, STALE_NAN_BITS, Sample};

use super::*;

fn encode(samples: &[(i64, f64)]) -> XorChunk {
    let mut app = XorAppender::new();
    for &(t, v) in samples {
        app.append(t, v).unwrap();
    }
    app.into_chunk()
}

fn assert_round_trip(samples: &[(i64, f64)]) {
    let chunk = encode(samples);
    assert_eq!(chunk.num_samples(), samples.len());
    let got = chunk.samples().unwrap();
    assert_eq!(got.len(), samples.len());
    for (g, &(t, v)) in got.iter().zip(samples) {
        assert_eq!(g.t, t);
        assert_eq!(g.v.to_bits(), v.to_bits(), "value at t={t}");
    }
    // Re-parsing the bytes gives the same chunk.
    let again = XorChunk::from_bytes(chunk.bytes().to_vec()).unwrap();
    assert_eq!(again.samples().unwrap().len(), samples.len());
}

/// Bytes derived by hand from Prometheus's `xor.go` algorithm:
///
/// - header: 5 samples, `00 05`
/// - t=1000: zigzag 2000 as uvarint `d0 0f`; v=1.0 raw `3f f0 00 .. 00`
/// - t=2000: delta 1000 as uvarint `e8 07`; then the bit stream:
///   - v=1.0 equal to previous: `0`
///   - t=3000 dod 0: `0`; v=2.0, XOR `0x7ff0..` (1 leading, 52 trailing),
///     new window: `1 1 00001 001011 11111111111`
///   - t=4500 dod 500: `10 00000111110100`; v=3.0, XOR `0x0008..`
///     (12 leading, 51 trailing; 51 < 52 so a new window):
///     `1 1 01100 000001 1`
///   - t=6000 dod 0: `0`; v=2.0, XOR `0x0008..` fits the window: `1 0 1`
///
/// 60 bits, packed MSB first and zero padded.
#[test]
fn encoding_is_bit_compatible_with_prometheus() {
    let chunk = encode(&[
        (1000, 1.0),
        (2000, 1.0),
        (3000, 2.0),
        (4500, 3.0),
        (6000, 2.0),
    ]);
    let expected: &[u8] = &[
        0x00, 0x05, // header
        0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, // first sample
        0xe8, 0x07, // second delta
        0x30, 0x97, 0xff, 0xe0, 0x7d, 0x36, 0x03, 0x50,
    ];
    assert_eq!(chunk.bytes(), expected);
}

#[test]
fn negative_first_timestamp_uses_zigzag_and_keeps_gos_trailing_byte() {
    // zigzag(-1) = 1; a single sample is header + varint + 8 value bytes,
    // plus the empty byte Go's bstream leaves after whole-byte writes at a
    // byte boundary.
    let chunk = encode(&[(-1, 0.0)]);
    assert_eq!(chunk.bytes(), &[0, 1, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(chunk.samples().unwrap(), vec![Sample::new(-1, 0.0)]);
}

#[test]
fn special_values_round_trip_bit_exact() {
    let other_nan = f64::from_bits(0x7ff8_0000_dead_beef);
    assert_round_trip(&[
        (0, f64::NAN),
        (15, STALE_NAN),
        (30, STALE_NAN),
        (45, f64::INFINITY),
        (60, f64::NEG_INFINITY),
        (75, -0.0),
        (90, 0.0),
        (105, -0.0),
        (120, other_nan),
        (135, f64::MIN_POSITIVE),
        (150, f64::MAX),
        (165, f64::MIN),
        (180, 5e-324),
        (195, STALE_NAN),
    ]);
    let chunk = encode(&[(1, 1.0), (2, STALE_NAN)]);
    assert_eq!(chunk.samples().unwrap()[1].v.to_bits(), STALE_NAN_BITS);
}

#[test]
fn equal_values_and_regular_intervals_are_compact() {
    let samples: Vec<_> = (0..120).map(|i| (i * 15_000, 42.0)).collect();
    let chunk = encode(&samples);
    // 2 header + 3+8 first + 3 delta bytes, then 2 bits per sample.
    assert!(
        chunk.bytes().len() <= 2 + 11 + 3 + 30,
        "{}",
        chunk.bytes().len()
    );
    assert_round_trip(&samples);
}

#[test]
fn every_delta_of_delta_bucket_and_large_gaps_round_trip() {
    let mut t = -1_000_000_000_000i64;
    let mut samples = vec![(t, 1.0)];
    let gaps = [
        1,
        2,
        8192,
        8193,
        1,
        65536,
        65537,
        1,
        524_288,
        524_289,
        1,
        10_000_000_000,
        1,
        3,
    ];
    for (i, g) in gaps.iter().enumerate() {
        t += g;
        samples.push((t, i as f64));
    }
    // A jump across the whole i64 range still round-trips (wrapping deltas).
    samples.push((i64::MAX, 7.0));
    assert_round_trip(&samples);

    let extremes = [(i64::MIN, 1.0), (0, 2.0), (i64::MAX, 3.0)];
    assert_round_trip(&extremes);
}

#[test]
fn duplicate_and_out_of_order_samples_are_refused() {
    let mut app = XorAppender::new();
    app.append(100, 1.0).unwrap();
    app.append(200, 2.0).unwrap();
    let before = app.bytes().to_vec();
    assert!(matches!(
        app.append(200, 3.0),
        Err(TsdbError::DuplicateSample { t: 200 })
    ));
    assert!(matches!(
        app.append(150, 3.0),
        Err(TsdbError::OutOfOrderSample { t: 150, last: 200 })
    ));
    assert_eq!(
        app.bytes(),
        before.as_slice(),
        "a refused sample changes nothing"
    );
    assert_eq!(app.num_samples(), 2);
    assert_eq!((app.min_time(), app.max_time()), (Some(100), Some(200)));
    app.append(300, 3.0).unwrap();
    assert_eq!(app.chunk().samples().unwrap().len(), 3);
}

#[test]
fn chunk_full_is_refused() {
    let mut app = XorAppender::new();
    for i in 0..MAX_SAMPLES_PER_CHUNK as i64 {
        app.append(i, 0.0).unwrap();
    }
    assert!(matches!(
        app.append(1 << 40, 0.0),
        Err(TsdbError::ChunkFull { .. })
    ));
    assert_eq!(app.chunk().samples().unwrap().len(), MAX_SAMPLES_PER_CHUNK);
}

#[test]
fn seek_finds_first_sample_at_or_after_and_never_goes_back() {
    let chunk = encode(&[(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)]);
    let mut it = chunk.iter();
    assert_eq!(it.seek(15), Some(Sample::new(20, 2.0)));
    assert_eq!(
        it.seek(20),
        Some(Sample::new(20, 2.0)),
        "stays on the current sample"
    );
    assert_eq!(
        it.seek(5),
        Some(Sample::new(20, 2.0)),
        "never moves backwards"
    );
    assert_eq!(it.next(), Some(Sample::new(30, 3.0)));
    assert_eq!(it.seek(40), Some(Sample::new(40, 4.0)));
    assert_eq!(it.seek(41), None);
    assert_eq!(chunk.iter().seek(i64::MIN), Some(Sample::new(10, 1.0)));
    assert_eq!(XorAppender::new().chunk().iter().seek(0), None);
}

#[test]
fn truncated_and_corrupt_chunks_report_errors() {
    let samples: Vec<_> = (0..50)
        .map(|i| (i * 1000 + (i * i) % 7, i as f64 * 1.5))
        .collect();
    let chunk = encode(&samples);
    let full = chunk.samples().unwrap();
    let bytes = chunk.bytes();
    for cut in 0..bytes.len() {
        match XorChunk::from_bytes(bytes[..cut].to_vec()) {
            Err(TsdbError::CorruptChunk { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
            // Cutting only the empty trailing byte Go's encoder may leave
            // loses nothing; any other cut must be detected.
            Ok(c) => match c.samples() {
                Err(TsdbError::CorruptChunk { .. }) => {}
                Ok(got) => assert!(
                    got == full && bytes[cut..].iter().all(|b| *b == 0) && cut + 1 == bytes.len(),
                    "cut at {cut} of {} must be detected",
                    bytes.len()
                ),
                Err(e) => panic!("unexpected error {e}"),
            },
        }
    }
    // An impossible value window (31 leading zeros + 64 significant bits).
    let mut bad = encode(&[(0, 1.0)]).into_bytes();
    assert_eq!(bad.pop(), Some(0), "Go's empty trailing byte");
    bad[1] = 2;
    bad.extend_from_slice(&[0x01, 0b1111_1110, 0]); // delta 1, '11', 11111, 000000
    let c = XorChunk::from_bytes(bad).unwrap();
    let err = c.samples().unwrap_err();
    assert!(err.to_string().contains("exceeds 64 bits"), "{err}");
}

#[test]
fn appender_resumes_an_existing_chunk() {
    let samples: Vec<_> = (0..30)
        .map(|i| (i * 15_000 + i % 3, (i * 7 % 5) as f64))
        .collect();
    for split in 0..samples.len() {
        let mut app = XorAppender::from_chunk(encode(&samples[..split])).unwrap();
        for &(t, v) in &samples[split..] {
            app.append(t, v).unwrap();
        }
        let got = app.into_chunk().samples().unwrap();
        let want: Vec<_> = samples.iter().map(|&(t, v)| Sample::new(t, v)).collect();
        assert_eq!(got, want, "split at {split}");
    }
}

fn value_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
        Just(STALE_NAN),
        Just(f64::NAN),
        Just(-0.0),
        Just(f64::INFINITY),
        (0u32..1000).prop_map(f64::from),
        (0u32..10).prop_map(|x| f64::from(x) * 0.1),
    ]
}

fn delta_strategy() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(15_000i64),
        14_990i64..15_010,
        1i64..100,
        1i64..1 << 21,
        1i64..1 << 40,
    ]
}

proptest! {
    #[test]
    fn random_samples_round_trip(
        start in any::<i32>(),
        points in proptest::collection::vec((delta_strategy(), value_strategy()), 0..300),
    ) {
        let mut t = i64::from(start) * 1000;
        let mut samples = Vec::new();
        for (d, v) in points {
            samples.push((t, v));
            t += d;
        }
        let chunk = encode(&samples);
        let got = chunk.samples().unwrap();
        prop_assert_eq!(got.len(), samples.len());
        for (g, &(t, v)) in got.iter().zip(&samples) {
            prop_assert_eq!(g.t, t);
            prop_assert_eq!(g.v.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(c) = XorChunk::from_bytes(bytes) {
            let _ = c.samples();
        }
    }
}
