//! OpenMetrics 1.0 text.

use super::cursor::{Cursor, is_label_start, is_metric_start};
use super::error::{ParseError, ParseErrorKind};
use super::escape::{EscapeKind, Escaped};
use super::number::{parse_seconds, parse_value};
use super::text::{SeriesHead, Step};
use super::{Entry, MetricType};

const OM_TYPES: &str =
    "counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown";

/// A streaming parser of OpenMetrics 1.0 text.
///
/// `_created` samples are returned as ordinary series, which is what
/// Prometheus stores unless created-timestamp ingestion is on; call
/// [`OpenMetricsParser::skip_created_series`] to drop them instead.
pub struct OpenMetricsParser<'a> {
    cur: Cursor<'a>,
    labels: Vec<(Escaped<'a>, Escaped<'a>)>,
    exemplar_labels: Vec<(Escaped<'a>, Escaped<'a>)>,
    done: bool,
    skip_created: bool,
    family_type: MetricType,
}

impl<'a> OpenMetricsParser<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        OpenMetricsParser {
            cur: Cursor::new(body),
            labels: Vec::with_capacity(16),
            exemplar_labels: Vec::with_capacity(4),
            done: false,
            skip_created: false,
            family_type: MetricType::Unknown,
        }
    }

    /// Drops `<name>_created` samples of counters, histograms, gauge
    /// histograms and summaries (Prometheus's behaviour with
    /// created-timestamp ingestion enabled).
    pub fn skip_created_series(mut self, skip: bool) -> Self {
        self.skip_created = skip;
        self
    }

    /// The next entry, `Ok(None)` after `# EOF`.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ParseError> {
        loop {
            match self.step()? {
                Step::Done => return Ok(None),
                Step::Entry(e) => return Ok(Some(e)),
                Step::Series(head) => {
                    if self.skip_created && self.is_created(&head) {
                        continue;
                    }
                    return Ok(Some(head.with_labels(&self.labels, &self.exemplar_labels)));
                }
            }
        }
    }

    fn is_created(&self, head: &SeriesHead<'a>) -> bool {
        matches!(
            self.family_type,
            MetricType::Counter
                | MetricType::Histogram
                | MetricType::GaugeHistogram
                | MetricType::Summary
        ) && head.name.raw().ends_with("_created")
    }

    fn step(&mut self) -> Result<Step<'a>, ParseError> {
        if self.done {
            return Ok(Step::Done);
        }
        match self.cur.peek() {
            None => Err(self.cur.error_at(self.cur.pos, ParseErrorKind::MissingEof)),
            Some(b'#') => self.comment(),
            Some(b'{') => self.series(),
            Some(b) if is_metric_start(b) => self.series(),
            Some(_) => Err(self.cur.expected("metric name, `{` or `#`")),
        }
    }

    fn comment(&mut self) -> Result<Step<'a>, ParseError> {
        if !self.cur.eat(b"# ") {
            return Err(self.cur.expected("`# ` starting a metadata line"));
        }
        if self.cur.eat(b"EOF") {
            self.cur.eat(b"\n");
            if !self.cur.at_end() {
                return Err(self
                    .cur
                    .error_at(self.cur.pos, ParseErrorKind::DataAfterEof));
            }
            self.done = true;
            return Ok(Step::Done);
        }
        let which = if self.cur.eat(b"HELP ") {
            0
        } else if self.cur.eat(b"TYPE ") {
            1
        } else if self.cur.eat(b"UNIT ") {
            2
        } else {
            return Err(self.cur.expected("HELP, TYPE, UNIT or EOF after `# `"));
        };
        let metric = match self.cur.peek() {
            Some(b'"') => self.cur.quoted(false, "metric name")?,
            _ => match self.cur.metric_name() {
                Some(n) => Escaped::new(n, EscapeKind::Quoted),
                None => return Err(self.cur.expected("metric name in metadata")),
            },
        };
        if !self.cur.eat(b" ") {
            return Err(self.cur.expected("a space and text after the metric name"));
        }
        let start = self.cur.take_until(|b| b == b'\n');
        let text = self.cur.str(start, self.cur.pos, "metadata text")?;
        if !self.cur.eat(b"\n") {
            return Err(self.cur.error_at(self.cur.pos, ParseErrorKind::MissingEof));
        }
        match which {
            0 => Ok(Step::Entry(Entry::Help {
                metric,
                text: Escaped::new(text, EscapeKind::Quoted),
            })),
            1 => {
                let kind = match text {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "gaugehistogram" => MetricType::GaugeHistogram,
                    "summary" => MetricType::Summary,
                    "info" => MetricType::Info,
                    "stateset" => MetricType::StateSet,
                    "unknown" => MetricType::Unknown,
                    other => {
                        return Err(self.cur.error_at(
                            start,
                            ParseErrorKind::InvalidType {
                                text: other.to_string(),
                                allowed: OM_TYPES,
                            },
                        ));
                    }
                };
                self.family_type = kind;
                Ok(Step::Entry(Entry::Type { metric, kind }))
            }
            _ => {
                let m = metric.raw();
                let suffix_ok = text.is_empty()
                    || (m.len() > text.len()
                        && m.ends_with(text)
                        && m.as_bytes()[m.len() - text.len() - 1] == b'_');
                if !suffix_ok {
                    return Err(self.cur.error_at(
                        start,
                        ParseErrorKind::UnitNotSuffix {
                            unit: text.to_string(),
                            metric: m.to_string(),
                        },
                    ));
                }
                Ok(Step::Entry(Entry::Unit { metric, unit: text }))
            }
        }
    }

    fn series(&mut self) -> Result<Step<'a>, ParseError> {
        let start = self.cur.pos;
        self.labels.clear();
        let mut name = self
            .cur
            .metric_name()
            .map(|n| Escaped::new(n, EscapeKind::Quoted));
        if self.cur.eat(b"{") {
            self.label_block(&mut name)?;
        }
        let raw = self.cur.str(start, self.cur.pos, "series")?;
        let Some(name) = name else {
            return Err(self.cur.error_at(start, ParseErrorKind::MissingMetricName));
        };
        let value = self.value("sample value")?;
        let mut timestamp_ms = None;
        let mut exemplar = None;
        if self.cur.peek() == Some(b' ') && !self.cur.rest().starts_with(b" # {") {
            self.cur.bump();
            let tstart = self.cur.take_until(|b| b == b' ' || b == b'\n');
            let ttext = self.cur.str(tstart, self.cur.pos, "timestamp")?;
            timestamp_ms = Some(parse_seconds(ttext).map_err(|reason| {
                self.cur.error_at(
                    tstart,
                    ParseErrorKind::InvalidTimestamp {
                        text: ttext.to_string(),
                        reason,
                    },
                )
            })?);
        }
        if self.cur.eat(b" # {") {
            exemplar = Some(self.exemplar()?);
        }
        self.line_end()?;
        Ok(Step::Series(SeriesHead {
            raw,
            name,
            value,
            timestamp_ms,
            exemplar,
        }))
    }

    /// ` <value>`: a single space, then the value up to a space or line feed.
    fn value(&mut self, what: &'static str) -> Result<f64, ParseError> {
        if !self.cur.eat(b" ") {
            return Err(self.cur.expected("a space before the value"));
        }
        let vstart = self.cur.take_until(|b| b == b' ' || b == b'\n');
        if vstart == self.cur.pos {
            return Err(self.cur.expected(what));
        }
        let vtext = self.cur.str(vstart, self.cur.pos, what)?;
        parse_value(vtext).map_err(|reason| {
            self.cur.error_at(
                vstart,
                ParseErrorKind::InvalidValue {
                    text: vtext.to_string(),
                    reason,
                },
            )
        })
    }

    fn line_end(&mut self) -> Result<(), ParseError> {
        match self.cur.peek() {
            Some(b'\n') => {
                self.cur.bump();
                Ok(())
            }
            None => Err(self.cur.error_at(self.cur.pos, ParseErrorKind::MissingEof)),
            Some(_) => Err(self.cur.expected("timestamp, exemplar or line break")),
        }
    }

    /// The exemplar after ` # {`: its labels into `exemplar_labels`, its
    /// value and optional timestamp returned.
    fn exemplar(&mut self) -> Result<(f64, Option<i64>), ParseError> {
        self.exemplar_labels.clear();
        loop {
            match self.cur.peek() {
                Some(b'}') => {
                    self.cur.bump();
                    break;
                }
                Some(b) if is_label_start(b) => {}
                _ => return Err(self.cur.expected("exemplar label name or `}`")),
            }
            let Some(name) = self.cur.label_name() else {
                return Err(self.cur.expected("exemplar label name"));
            };
            let name = Escaped::new(name, EscapeKind::Quoted);
            if !self.cur.eat(b"=") {
                return Err(self.cur.expected("`=` after exemplar label name"));
            }
            if self.cur.peek() != Some(b'"') {
                return Err(self.cur.expected("quoted exemplar label value"));
            }
            let value = self.cur.quoted(false, "exemplar label value")?;
            self.exemplar_labels.push((name, value));
            if !self.cur.eat(b",") && self.cur.peek() != Some(b'}') {
                return Err(self.cur.expected("`,` or `}` in exemplar labels"));
            }
        }
        let value = self.value("exemplar value")?;
        let mut timestamp_ms = None;
        if self.cur.eat(b" ") {
            let tstart = self.cur.take_until(|b| b == b' ' || b == b'\n');
            let ttext = self.cur.str(tstart, self.cur.pos, "exemplar timestamp")?;
            timestamp_ms = Some(parse_seconds(ttext).map_err(|reason| {
                self.cur.error_at(
                    tstart,
                    ParseErrorKind::InvalidTimestamp {
                        text: ttext.to_string(),
                        reason,
                    },
                )
            })?);
        }
        Ok((value, timestamp_ms))
    }

    /// Labels up to and including `}`; no blanks allowed, a trailing comma
    /// is. A quoted string standing alone is the metric name.
    fn label_block(&mut self, name: &mut Option<Escaped<'a>>) -> Result<(), ParseError> {
        loop {
            let lname = match self.cur.peek() {
                Some(b'}') => {
                    self.cur.bump();
                    return Ok(());
                }
                Some(b'"') => {
                    let at = self.cur.pos;
                    let q = self.cur.quoted(false, "name")?;
                    if matches!(self.cur.peek(), Some(b',' | b'}')) {
                        if name.is_some() {
                            return Err(self.cur.error_at(at, ParseErrorKind::DuplicateMetricName));
                        }
                        *name = Some(q);
                        self.cur.eat(b",");
                        continue;
                    }
                    q
                }
                Some(b) if is_label_start(b) => match self.cur.label_name() {
                    Some(n) => Escaped::new(n, EscapeKind::Quoted),
                    None => return Err(self.cur.expected("label name")),
                },
                _ => return Err(self.cur.expected("label name or `}`")),
            };
            if !self.cur.eat(b"=") {
                return Err(self.cur.expected("`=` after label name"));
            }
            if self.cur.peek() != Some(b'"') {
                return Err(self.cur.expected("quoted label value"));
            }
            let value = self.cur.quoted(false, "label value")?;
            self.labels.push((lname, value));
            match self.cur.peek() {
                Some(b',') => self.cur.bump(),
                Some(b'}') => {
                    self.cur.bump();
                    return Ok(());
                }
                _ => return Err(self.cur.expected("`,` or `}` after label value")),
            }
        }
    }
}
