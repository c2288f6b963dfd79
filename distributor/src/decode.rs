//! Remote write request bodies: content negotiation, snappy, protobuf.
//!
//! Both protocol versions decode to [`RawSeries`] (labels as string slices
//! of the request), the form validation works on. A 2.0
//! series whose label references are broken cannot be turned into labels:
//! it becomes a [`Decoded::broken`] entry, refused by name like any other
//! invalid series, while the rest of the request is written.

use prost::Message;
use tidemark_proto::prometheus as pb;
use tidemark_proto::write_v2;

use crate::DistributorError;
use crate::validate::{RawExemplar, RawSeries};

/// The protobuf message of a remote write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `prometheus.WriteRequest` (remote write 1.0).
    V1,
    /// `io.prometheus.write.v2.Request` (remote write 2.0).
    V2,
}

const V1_PROTO: &str = "prometheus.WriteRequest";
const V2_PROTO: &str = "io.prometheus.write.v2.Request";

/// Picks the protocol from `Content-Type`, as the 2.0 spec says: a missing
/// header or a bare `application/x-protobuf` is 1.0; a `proto=` parameter
/// names the message. Anything else is refused (415).
pub fn negotiate(content_type: Option<&str>) -> Result<Protocol, DistributorError> {
    let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Protocol::V1);
    };
    let mut parts = ct.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(DistributorError::UnsupportedContentType(ct.to_string()));
    }
    let mut protocol = Protocol::V1;
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("proto") {
            protocol = match v.trim().trim_matches('"') {
                V1_PROTO => Protocol::V1,
                V2_PROTO => Protocol::V2,
                _ => return Err(DistributorError::UnsupportedContentType(ct.to_string())),
            };
        }
    }
    Ok(protocol)
}

/// Checks `Content-Encoding`: only snappy's block format is spoken. A
/// missing header is taken as snappy, the only encoding senders use.
pub fn check_encoding(content_encoding: Option<&str>) -> Result<(), DistributorError> {
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("snappy") => Ok(()),
        Some(e) => Err(DistributorError::UnsupportedEncoding(e.to_string())),
    }
}

/// Decompresses a snappy block, refusing before allocating when the
/// declared size is above `max`.
pub fn decompress(body: &[u8], max: usize) -> Result<Vec<u8>, DistributorError> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| DistributorError::BadBody(format!("snappy: {e}")))?;
    if len > max {
        return Err(DistributorError::TooLarge {
            what: "decompressed request body",
            size: format!("{len} bytes"),
            limit: max,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DistributorError::BadBody(format!("snappy: {e}")))
}

/// A decoded request, its strings borrowed from the body (1.0) or from the
/// decoded symbol table (2.0).
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    pub series: Vec<RawSeries<'a>>,
    /// 2.0 series that could not be decoded: (index, why, samples).
    pub broken: Vec<(usize, String, u64)>,
}

impl Decoded<'_> {
    /// Samples and histograms the request carried, broken series included.
    pub fn received(&self) -> u64 {
        self.series.iter().map(RawSeries::received).sum::<u64>()
            + self.broken.iter().map(|b| b.2).sum::<u64>()
    }
}

/// Decodes an uncompressed protobuf body and hands the result to `then`
/// (the series borrow from data that lives only during the call).
pub fn decode<R>(
    protocol: Protocol,
    body: &[u8],
    then: impl FnOnce(Decoded<'_>) -> R,
) -> Result<R, DistributorError> {
    match protocol {
        Protocol::V1 => {
            let series = crate::wire::decode_write_request(body)
                .map_err(|e| DistributorError::BadBody(format!("prometheus.WriteRequest: {e}")))?;
            Ok(then(Decoded {
                series,
                broken: Vec::new(),
            }))
        }
        Protocol::V2 => {
            let req = write_v2::Request::decode(body).map_err(|e| {
                DistributorError::BadBody(format!("io.prometheus.write.v2.Request: {e}"))
            })?;
            Ok(then(from_v2(&req)))
        }
    }
}

fn from_v2(req: &write_v2::Request) -> Decoded<'_> {
    let symbols = &req.symbols;
    let mut out = Decoded {
        series: Vec::with_capacity(req.timeseries.len()),
        broken: Vec::new(),
    };
    for (i, ts) in req.timeseries.iter().enumerate() {
        let refused = (ts.samples.len() + ts.histograms.len()) as u64;
        if ts.labels_refs.len() % 2 != 0 {
            out.broken.push((
                i,
                format!(
                    "labels_refs has an odd number of entries ({})",
                    ts.labels_refs.len()
                ),
                refused,
            ));
            continue;
        }
        let mut labels = Vec::with_capacity(ts.labels_refs.len() / 2);
        let mut bad = None;
        for pair in ts.labels_refs.chunks_exact(2) {
            match (symbols.get(pair[0] as usize), symbols.get(pair[1] as usize)) {
                (Some(n), Some(v)) => labels.push((n.as_str(), v.as_str())),
                _ => {
                    bad = Some(format!(
                        "labels_refs ({}, {}) point outside the {} symbols",
                        pair[0],
                        pair[1],
                        symbols.len()
                    ));
                    break;
                }
            }
        }
        if let Some(why) = bad {
            out.broken.push((i, why, refused));
            continue;
        }
        out.series.push(RawSeries {
            labels,
            samples: ts
                .samples
                .iter()
                .map(|s| pb::Sample {
                    value: s.value,
                    timestamp: s.timestamp,
                })
                .collect(),
            histograms: ts.histograms.len() as u64,
            exemplars: ts
                .exemplars
                .iter()
                .filter_map(|e| {
                    let labels = e
                        .labels_refs
                        .chunks_exact(2)
                        .map(|p| {
                            Some((
                                symbols.get(p[0] as usize)?.as_str(),
                                symbols.get(p[1] as usize)?.as_str(),
                            ))
                        })
                        .collect::<Option<Vec<_>>>()?;
                    // An odd ref count or a ref outside the symbols makes
                    // the exemplar unreadable: dropped, as a bad exemplar
                    // fails nothing.
                    (e.labels_refs.len() % 2 == 0).then_some(RawExemplar {
                        labels,
                        value: e.value,
                        timestamp: e.timestamp,
                    })
                })
                .collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_negotiation_follows_the_spec() {
        assert_eq!(negotiate(None).unwrap(), Protocol::V1);
        assert_eq!(
            negotiate(Some("application/x-protobuf")).unwrap(),
            Protocol::V1
        );
        assert_eq!(
            negotiate(Some("application/x-protobuf;proto=prometheus.WriteRequest")).unwrap(),
            Protocol::V1
        );
        assert_eq!(
            negotiate(Some(
                "application/x-protobuf; proto=io.prometheus.write.v2.Request"
            ))
            .unwrap(),
            Protocol::V2
        );
        assert!(matches!(
            negotiate(Some("application/json")),
            Err(DistributorError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            negotiate(Some("application/x-protobuf;proto=foo.Bar")),
            Err(DistributorError::UnsupportedContentType(_))
        ));
        assert!(check_encoding(Some("snappy")).is_ok());
        assert!(check_encoding(None).is_ok());
        assert!(matches!(
            check_encoding(Some("gzip")),
            Err(DistributorError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn declared_size_above_the_limit_is_refused_before_decompressing() {
        let raw = vec![0u8; 10_000];
        let c = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        assert_eq!(decompress(&c, 10_000).unwrap(), raw);
        let e = decompress(&c, 9_999).unwrap_err();
        assert!(e.to_string().contains("10000 bytes"), "{e}");
        assert!(matches!(
            decompress(b"\xff\xff\xff\xff\x0fgarbage", 1 << 20),
            Err(DistributorError::BadBody(_)) | Err(DistributorError::TooLarge { .. })
        ));
    }

    #[test]
    fn v2_symbols_resolve_and_broken_refs_name_the_series_index() {
        let req = write_v2::Request {
            symbols: vec![
                "".into(),
                "__name__".into(),
                "up".into(),
                "job".into(),
                "a".into(),
            ],
            timeseries: vec![
                write_v2::TimeSeries {
                    labels_refs: vec![1, 2, 3, 4],
                    samples: vec![write_v2::Sample {
                        value: 1.0,
                        timestamp: 5,
                    }],
                    ..Default::default()
                },
                write_v2::TimeSeries {
                    labels_refs: vec![1, 9],
                    samples: vec![write_v2::Sample {
                        value: 1.0,
                        timestamp: 5,
                    }],
                    ..Default::default()
                },
            ],
        };
        let body = req.encode_to_vec();
        decode(Protocol::V2, &body, |d| {
            assert_eq!(d.series.len(), 1);
            assert_eq!(d.series[0].labels[1], ("job", "a"));
            assert_eq!(d.broken.len(), 1);
            assert_eq!(d.broken[0].0, 1);
            assert!(d.broken[0].1.contains("outside the 5 symbols"));
            assert_eq!(d.received(), 2);
        })
        .unwrap();
    }
}
