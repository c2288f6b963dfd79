//! An owning, collect-everything entry point (for fuzzing, tests and tools).

use super::{Entry, Format, MetricType, ParseError, Parser};

/// An [`Entry`] with everything unescaped and owned.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedEntry {
    Series {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
        timestamp_ms: Option<i64>,
    },
    Help {
        metric: String,
        text: String,
    },
    Type {
        metric: String,
        kind: MetricType,
    },
    Unit {
        metric: String,
        unit: String,
    },
    Comment(String),
}

impl From<Entry<'_>> for OwnedEntry {
    fn from(e: Entry<'_>) -> Self {
        match e {
            Entry::Series(s) => OwnedEntry::Series {
                name: s.name.unescape().into_owned(),
                labels: s
                    .labels
                    .iter()
                    .map(|(n, v)| (n.unescape().into_owned(), v.unescape().into_owned()))
                    .collect(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            },
            Entry::Help { metric, text } => OwnedEntry::Help {
                metric: metric.unescape().into_owned(),
                text: text.unescape().into_owned(),
            },
            Entry::Type { metric, kind } => OwnedEntry::Type {
                metric: metric.unescape().into_owned(),
                kind,
            },
            Entry::Unit { metric, unit } => OwnedEntry::Unit {
                metric: metric.unescape().into_owned(),
                unit: unit.to_string(),
            },
            Entry::Comment(c) => OwnedEntry::Comment(c.to_string()),
        }
    }
}

/// Parses a whole body, choosing the format from `content_type` as a scrape
/// would. Never panics on any input: this is the fuzzing entry point.
pub fn parse_all(body: &[u8], content_type: Option<&str>) -> Result<Vec<OwnedEntry>, ParseError> {
    let mut parser = Parser::new(body, Format::from_content_type(content_type));
    let mut out = Vec::new();
    while let Some(e) = parser.next_entry()? {
        out.push(e.into());
    }
    Ok(out)
}
