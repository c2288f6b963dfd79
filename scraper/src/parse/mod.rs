//! Parsers for the Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! Both walk the scraped body in place: [`Parser::next_entry`] returns one
//! [`Entry`] at a time whose names, labels and help text borrow from the
//! body (see [`Escaped`]), and the label list is a buffer the parser reuses,
//! so parsing a sample allocates nothing. The format is chosen from the
//! response's `Content-Type` as Prometheus does ([`Format::from_content_type`]).
//!
//! What is accepted follows Prometheus's own parsers (`promparse.go`,
//! `openmetricsparse.go`): the text format allows blanks between tokens,
//! blank lines and free comments, and takes the end of the body as the end
//! of the last line (Prometheus appends a line feed before lexing); OpenMetrics
//! is strict about spacing, needs `# EOF`, takes timestamps in seconds and
//! allows an exemplar after a sample (parsed and returned with it).
//! Quoted UTF-8 names (`{"my.metric", a="b"}`) are read by both.

mod cursor;
mod error;
mod escape;
mod negotiate;
mod number;
mod openmetrics;
mod owned;
mod text;

#[cfg(test)]
mod tests;

pub use error::{ParseError, ParseErrorKind};
pub use escape::{EscapeKind, Escaped, escape_help, escape_label_value};
pub use negotiate::{Format, ScrapeProtocol, accept_header};
pub use number::NORMAL_NAN;
pub use openmetrics::OpenMetricsParser;
pub use owned::{OwnedEntry, parse_all};
pub use text::TextParser;

/// The metric family types the two formats declare with `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `untyped` in the text format, `unknown` in OpenMetrics.
    Unknown,
}

/// One sample line: the series as exposed, its value and optional timestamp.
#[derive(Debug, Clone, Copy)]
pub struct Series<'p> {
    /// The series exactly as exposed (name and label block). Identical
    /// text means an identical series, so the scrape loop caches parsed
    /// label sets by it, as Prometheus does.
    pub raw: &'p str,
    /// The metric name (quoted names are unescaped on demand).
    pub name: Escaped<'p>,
    /// Label pairs in exposition order, names and values still escaped.
    pub labels: &'p [(Escaped<'p>, Escaped<'p>)],
    /// The value; NaN is always [`NORMAL_NAN`].
    pub value: f64,
    /// The exposed timestamp in milliseconds, if any.
    pub timestamp_ms: Option<i64>,
    /// The OpenMetrics exemplar that followed the sample, if any.
    pub exemplar: Option<ExemplarText<'p>>,
}

/// An exemplar as exposed after ` # `: labels still escaped.
#[derive(Debug, Clone, Copy)]
pub struct ExemplarText<'p> {
    pub labels: &'p [(Escaped<'p>, Escaped<'p>)],
    pub value: f64,
    /// The exposed timestamp in milliseconds, if any.
    pub timestamp_ms: Option<i64>,
}

/// One entry of an exposition.
#[derive(Debug, Clone)]
pub enum Entry<'p> {
    Series(Series<'p>),
    /// `# HELP <metric> <text>`.
    Help {
        metric: Escaped<'p>,
        text: Escaped<'p>,
    },
    /// `# TYPE <metric> <type>`.
    Type {
        metric: Escaped<'p>,
        kind: MetricType,
    },
    /// `# UNIT <metric> <unit>` (OpenMetrics only).
    Unit {
        metric: Escaped<'p>,
        unit: &'p str,
    },
    /// Any other comment line (text format only), without the `#` and
    /// leading blanks; empty when the comment is not valid UTF-8.
    Comment(&'p str),
}

/// A parser for either format, chosen at run time.
pub enum Parser<'a> {
    Text(TextParser<'a>),
    OpenMetrics(OpenMetricsParser<'a>),
}

impl<'a> Parser<'a> {
    /// A parser of `body` in `format`.
    pub fn new(body: &'a [u8], format: Format) -> Self {
        match format {
            Format::PrometheusText => Parser::Text(TextParser::new(body)),
            Format::OpenMetrics => Parser::OpenMetrics(OpenMetricsParser::new(body)),
        }
    }

    /// The next entry, `Ok(None)` at the end of the exposition.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ParseError> {
        match self {
            Parser::Text(p) => p.next_entry(),
            Parser::OpenMetrics(p) => p.next_entry(),
        }
    }
}
