//! The in-place decoder against prost's, which is the reference.

use proptest::prelude::*;
use prost::Message;
use tidemark_proto::prometheus as pb;

use super::*;

/// A decoded exemplar, comparable: labels, value bits, timestamp.
type PlainExemplar = (Vec<(String, String)>, u64, i64);

/// A decoded series, comparable: labels, (value bits, timestamp) samples,
/// histogram count, exemplars.
type Plain = (
    Vec<(String, String)>,
    Vec<(u64, i64)>,
    u64,
    Vec<PlainExemplar>,
);

/// What prost decodes, in the decoder's terms.
fn by_prost(body: &[u8]) -> Result<Vec<Plain>, String> {
    let req = pb::WriteRequest::decode(body).map_err(|e| e.to_string())?;
    Ok(req
        .timeseries
        .into_iter()
        .map(|ts| {
            (
                ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                ts.samples
                    .iter()
                    .map(|s| (s.value.to_bits(), s.timestamp))
                    .collect(),
                ts.histograms.len() as u64,
                ts.exemplars
                    .into_iter()
                    .map(|e| {
                        (
                            e.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                            e.value.to_bits(),
                            e.timestamp,
                        )
                    })
                    .collect(),
            )
        })
        .collect())
}

fn by_us(body: &[u8]) -> Result<Vec<Plain>, String> {
    Ok(decode_write_request(body)?
        .into_iter()
        .map(|s| {
            (
                s.labels
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                s.samples
                    .iter()
                    .map(|s| (s.value.to_bits(), s.timestamp))
                    .collect(),
                s.histograms,
                s.exemplars
                    .iter()
                    .map(|e| {
                        (
                            e.labels
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.to_string()))
                                .collect(),
                            e.value.to_bits(),
                            e.timestamp,
                        )
                    })
                    .collect(),
            )
        })
        .collect())
}

fn request() -> impl Strategy<Value = pb::WriteRequest> {
    let label = ("\\PC{0,12}", "\\PC{0,12}").prop_map(|(name, value)| pb::Label { name, value });
    let sample = (any::<u64>(), any::<i64>()).prop_map(|(bits, timestamp)| pb::Sample {
        value: f64::from_bits(bits),
        timestamp,
    });
    let exemplar = (
        proptest::collection::vec(label.clone(), 0..3),
        any::<f64>(),
        any::<i64>(),
    )
        .prop_map(|(labels, value, timestamp)| pb::Exemplar {
            labels,
            value,
            timestamp,
        });
    let histogram = any::<i64>().prop_map(|timestamp| pb::Histogram {
        timestamp,
        sum: 1.5,
        ..Default::default()
    });
    let series = (
        proptest::collection::vec(label, 0..6),
        proptest::collection::vec(sample, 0..4),
        proptest::collection::vec(exemplar, 0..2),
        proptest::collection::vec(histogram, 0..2),
    )
        .prop_map(|(labels, samples, exemplars, histograms)| pb::TimeSeries {
            labels,
            samples,
            exemplars,
            histograms,
        });
    let metadata = "\\PC{0,8}".prop_map(|name| pb::MetricMetadata {
        r#type: 1,
        metric_family_name: name,
        help: "help".into(),
        unit: String::new(),
    });
    (
        proptest::collection::vec(series, 0..5),
        proptest::collection::vec(metadata, 0..2),
    )
        .prop_map(|(timeseries, metadata)| pb::WriteRequest {
            timeseries,
            metadata,
        })
}

proptest! {
    #[test]
    fn decodes_what_prost_decodes(req in request()) {
        let body = req.encode_to_vec();
        prop_assert_eq!(by_us(&body).unwrap(), by_prost(&body).unwrap());
    }

    #[test]
    fn a_cut_body_fails_exactly_when_it_fails_for_prost(req in request(), cut in any::<prop::sample::Index>()) {
        let body = req.encode_to_vec();
        if !body.is_empty() {
            let short = &body[..cut.index(body.len())];
            let ours = by_us(short);
            let theirs = by_prost(short);
            prop_assert_eq!(ours.is_err(), theirs.is_err(), "ours {:?} prost {:?}", ours, theirs);
            if let (Ok(a), Ok(b)) = (ours, theirs) {
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn garbage_is_an_error_or_a_decoding_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = by_us(&body);
    }
}

#[test]
fn errors_name_the_problem_and_its_offset() {
    // A label whose name is not UTF-8.
    let mut label = Vec::new();
    label.extend_from_slice(&[0x0a, 2, 0xff, 0xfe]);
    let mut series = vec![0x0a, label.len() as u8];
    series.extend_from_slice(&label);
    let mut body = vec![0x0a, series.len() as u8];
    body.extend_from_slice(&series);
    let e = decode_write_request(&body).unwrap_err();
    assert_eq!(e, "string at byte 6 is not valid UTF-8");

    // A length past the end.
    let e = decode_write_request(&[0x0a, 0x05, 0x0a]).unwrap_err();
    assert!(e.contains("length 5 runs past the end"), "{e}");
    // A sample value sent as a varint.
    let e = decode_write_request(&[0x0a, 0x04, 0x12, 0x02, 0x08, 0x01]).unwrap_err();
    assert!(
        e.contains("Sample field 1 has wire type 0, expected 1"),
        "{e}"
    );
    // Field number 0.
    let e = decode_write_request(&[0x00]).unwrap_err();
    assert!(e.contains("field number 0 at byte 1"), "{e}");
}
