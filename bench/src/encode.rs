//! Remote write 1.0 requests written straight into a buffer: labels are
//! encoded once per series and copied, so the generator costs a small
//! fraction of what the targets spend decoding (it shares their cores).

use bytes::Bytes;
use prost::encoding::{encode_varint, encoded_len_varint};

/// The protobuf `repeated Label labels = 1` part of a `TimeSeries`, from
/// `(name, value)` pairs already sorted by name.
pub(crate) fn encode_labels(labels: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in labels {
        let len = 2
            + encoded_len_varint(name.len() as u64)
            + name.len()
            + encoded_len_varint(value.len() as u64)
            + value.len();
        out.push(0x0a);
        encode_varint(len as u64, &mut out);
        for (tag, s) in [(0x0a, name), (0x12, value)] {
            out.push(tag);
            encode_varint(s.len() as u64, &mut out);
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

fn sample_len(t: i64) -> usize {
    9 + 1 + encoded_len_varint(t as u64)
}

/// Builds one `WriteRequest` series by series, then snappy-compresses it.
#[derive(Debug, Default)]
pub(crate) struct RequestBuilder {
    buf: Vec<u8>,
    samples: usize,
    series: usize,
}

impl RequestBuilder {
    /// Appends a `TimeSeries` with `labels` (from [`encode_labels`]) and
    /// `samples` as `(timestamp ms, value)`.
    pub(crate) fn push(&mut self, labels: &[u8], samples: &[(i64, f64)]) {
        let body: usize = labels.len()
            + samples
                .iter()
                .map(|(t, _)| 1 + 1 + sample_len(*t))
                .sum::<usize>();
        self.buf.push(0x0a);
        encode_varint(body as u64, &mut self.buf);
        self.buf.extend_from_slice(labels);
        for (t, v) in samples {
            self.buf.push(0x12);
            encode_varint(sample_len(*t) as u64, &mut self.buf);
            self.buf.push(0x09);
            self.buf.extend_from_slice(&v.to_le_bytes());
            self.buf.push(0x10);
            encode_varint(*t as u64, &mut self.buf);
        }
        self.samples += samples.len();
        self.series += 1;
    }

    /// Samples pushed since the last [`RequestBuilder::take`].
    pub(crate) fn samples(&self) -> usize {
        self.samples
    }

    /// The snappy-compressed request (block format, as remote write
    /// requires) and its sample count; the builder is empty afterwards.
    pub(crate) fn take(&mut self) -> anyhow::Result<(Bytes, usize)> {
        let body = snap::raw::Encoder::new().compress_vec(&self.buf)?;
        let n = self.samples;
        self.buf.clear();
        self.samples = 0;
        self.series = 0;
        Ok((Bytes::from(body), n))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prost::Message;

    // The remote write 1.0 messages (prometheus/prompb/types.proto and
    // remote.proto), decoded by prost rather than by our own code.
    #[derive(Clone, PartialEq, prost::Message)]
    struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        timeseries: Vec<TimeSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        samples: Vec<Sample>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Label {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Sample {
        #[prost(double, tag = "1")]
        value: f64,
        #[prost(int64, tag = "2")]
        timestamp: i64,
    }

    /// Decodes [`encode_labels`] output with prost.
    pub(crate) fn decode_labels(b: &[u8]) -> Vec<(String, String)> {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Labels {
            #[prost(message, repeated, tag = "1")]
            labels: Vec<Label>,
        }
        let l = Labels::decode(b).unwrap_or_default();
        l.labels.into_iter().map(|l| (l.name, l.value)).collect()
    }

    #[test]
    fn requests_decode_as_remote_write() {
        let labels = vec![
            ("__name__".to_string(), "up".to_string()),
            ("instance".to_string(), "a:9100".to_string()),
            ("long".to_string(), "x".repeat(300)),
        ];
        let enc = encode_labels(&labels);
        assert_eq!(decode_labels(&enc), labels);
        let mut b = RequestBuilder::default();
        b.push(&enc, &[(1_700_000_000_000, 1.5), (1_700_000_015_003, 0.0)]);
        b.push(&encode_labels(&labels[..1]), &[(5, f64::NAN)]);
        assert_eq!(b.samples(), 3);
        let (body, n) = b.take().unwrap();
        assert_eq!(n, 3);
        assert_eq!(b.samples(), 0);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(req.timeseries.len(), 2);
        let ts = &req.timeseries[0];
        assert_eq!(ts.labels.len(), 3);
        assert_eq!(ts.labels[2].value.len(), 300);
        assert_eq!(ts.samples[1].timestamp, 1_700_000_015_003);
        assert_eq!(ts.samples[0].value, 1.5);
        assert!(req.timeseries[1].samples[0].value.is_nan());
    }
}
