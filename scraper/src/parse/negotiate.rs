//! Content negotiation: the `Accept` header sent and the parser chosen by
//! the response's `Content-Type`, as Prometheus does it.

use std::fmt;

/// The exposition formats tidemark parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4` (also the fallback).
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0` (and 0.0.1).
    OpenMetrics,
}

impl Format {
    /// Chooses the parser from a response's `Content-Type`:
    /// `application/openmetrics-text` is OpenMetrics, `text/plain` and
    /// anything else (missing, unknown, protobuf we did not ask for) is read
    /// as the text format, as Prometheus 2 falls back.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let Some(ct) = content_type else {
            return Format::PrometheusText;
        };
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// A protocol a scrape may ask for, by the names `scrape_protocols` in
/// prometheus.yml uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    OpenMetricsText1_0_0,
    OpenMetricsText0_0_1,
    PrometheusText1_0_0,
    PrometheusText0_0_4,
    /// Protobuf: accepted in configs, never requested (no parser yet).
    PrometheusProto,
}

impl ScrapeProtocol {
    /// Parses the prometheus.yml spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "OpenMetricsText1.0.0" => ScrapeProtocol::OpenMetricsText1_0_0,
            "OpenMetricsText0.0.1" => ScrapeProtocol::OpenMetricsText0_0_1,
            "PrometheusText1.0.0" => ScrapeProtocol::PrometheusText1_0_0,
            "PrometheusText0.0.4" => ScrapeProtocol::PrometheusText0_0_4,
            "PrometheusProto" => ScrapeProtocol::PrometheusProto,
            _ => return None,
        })
    }

    fn media_type(self) -> Option<&'static str> {
        Some(match self {
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusProto => return None,
        })
    }

    /// Prometheus's default preference order.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];
}

impl fmt::Display for ScrapeProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
        })
    }
}

/// The `Accept` header for a list of protocols in preference order, built
/// as Prometheus builds it: q-values descending by 0.1 from 0.6 (the
/// number of known protocols plus one), then `*/*;q=0.1` so a target that
/// knows none of them still answers. Protocols tidemark cannot parse
/// (protobuf) are left out. Names are requested underscore-escaped (no
/// `escaping=allow-utf-8`), since tidemark's label names are still the
/// classic charset.
pub fn accept_header(protocols: &[ScrapeProtocol]) -> String {
    let media: Vec<&str> = protocols.iter().filter_map(|p| p.media_type()).collect();
    let mut out = String::with_capacity(256);
    let mut weight = 6;
    for m in media {
        out.push_str(m);
        out.push_str(&format!(";q=0.{weight},"));
        weight -= 1;
    }
    out.push_str("*/*;q=0.1");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_type_selects_parser() {
        let om = Some("application/openmetrics-text; version=1.0.0; charset=utf-8");
        assert_eq!(Format::from_content_type(om), Format::OpenMetrics);
        assert_eq!(
            Format::from_content_type(Some("Application/OpenMetrics-Text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4; charset=utf-8")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::from_content_type(Some("application/json")),
            Format::PrometheusText
        );
        assert_eq!(Format::from_content_type(None), Format::PrometheusText);
    }

    #[test]
    fn accept_header_prefers_openmetrics() {
        let h = accept_header(&ScrapeProtocol::DEFAULT);
        assert_eq!(
            h,
            "application/openmetrics-text;version=1.0.0;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
        );
        let h = accept_header(&[
            ScrapeProtocol::PrometheusText0_0_4,
            ScrapeProtocol::PrometheusProto,
        ]);
        assert_eq!(h, "text/plain;version=0.0.4;q=0.6,*/*;q=0.1");
    }
}
