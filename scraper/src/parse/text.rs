//! The Prometheus text format, version 0.0.4.

use super::cursor::{Cursor, is_label_start, is_metric_start};
use super::error::{ParseError, ParseErrorKind};
use super::escape::{EscapeKind, Escaped};
use super::number::{parse_millis, parse_value};
use super::{Entry, ExemplarText, MetricType, Series};

/// A streaming parser of the Prometheus text format.
pub struct TextParser<'a> {
    cur: Cursor<'a>,
    labels: Vec<(Escaped<'a>, Escaped<'a>)>,
}

/// What [`TextParser::next_entry`] found before it borrows the label buffer.
pub(super) enum Step<'a> {
    Done,
    Entry(Entry<'a>),
    Series(SeriesHead<'a>),
}

/// A parsed sample line whose labels sit in the parser's buffer.
pub(super) struct SeriesHead<'a> {
    pub(super) raw: &'a str,
    pub(super) name: Escaped<'a>,
    pub(super) value: f64,
    pub(super) timestamp_ms: Option<i64>,
    /// An exemplar's value and timestamp; its labels sit in the parser's
    /// exemplar label buffer.
    pub(super) exemplar: Option<(f64, Option<i64>)>,
}

impl<'a> SeriesHead<'a> {
    pub(super) fn with_labels<'p>(
        self,
        labels: &'p [(Escaped<'a>, Escaped<'a>)],
        exemplar_labels: &'p [(Escaped<'a>, Escaped<'a>)],
    ) -> Entry<'p>
    where
        'a: 'p,
    {
        Entry::Series(Series {
            raw: self.raw,
            name: self.name,
            labels,
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            exemplar: self.exemplar.map(|(value, timestamp_ms)| ExemplarText {
                labels: exemplar_labels,
                value,
                timestamp_ms,
            }),
        })
    }
}

const TEXT_TYPES: &str = "counter, gauge, histogram, summary, untyped";

impl<'a> TextParser<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        TextParser {
            cur: Cursor::new(body),
            labels: Vec::with_capacity(16),
        }
    }

    /// The next entry, `Ok(None)` at the end of the body.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ParseError> {
        match self.step()? {
            Step::Done => Ok(None),
            Step::Entry(e) => Ok(Some(e)),
            Step::Series(head) => Ok(Some(head.with_labels(&self.labels, &[]))),
        }
    }

    fn step(&mut self) -> Result<Step<'a>, ParseError> {
        loop {
            self.cur.skip_blanks();
            match self.cur.peek() {
                // A NUL byte ends the exposition, as in Prometheus's lexer.
                None | Some(0) => return Ok(Step::Done),
                Some(b'\n') => self.cur.bump(),
                Some(b'#') => return self.comment(),
                Some(b'{') => return self.series(),
                Some(b) if is_metric_start(b) => return self.series(),
                Some(_) => return Err(self.cur.expected("metric name, `{`, `#` or line break")),
            }
        }
    }

    fn comment(&mut self) -> Result<Step<'a>, ParseError> {
        self.cur.bump(); // '#'
        let text_start = self.cur.pos;
        if matches!(self.cur.peek(), Some(b' ' | b'\t')) {
            self.cur.skip_blanks();
            let is_meta = |kw: &[u8], rest: &[u8]| {
                rest.starts_with(kw) && matches!(rest.get(kw.len()), Some(b' ' | b'\t'))
            };
            let rest = self.cur.rest();
            if is_meta(b"HELP", rest) {
                self.cur.pos += 4;
                return self.metadata(true);
            }
            if is_meta(b"TYPE", rest) {
                self.cur.pos += 4;
                return self.metadata(false);
            }
        }
        self.cur.take_until(|b| b == b'\n');
        // Prometheus does not look inside comments: one that is not UTF-8 is
        // passed on with empty text rather than failing the scrape.
        let text = std::str::from_utf8(&self.cur.buf[text_start..self.cur.pos]).unwrap_or("");
        if !self.cur.at_end() {
            self.cur.bump();
        }
        Ok(Step::Entry(Entry::Comment(text.trim_start())))
    }

    fn metadata(&mut self, help: bool) -> Result<Step<'a>, ParseError> {
        self.cur.skip_blanks();
        let metric = match self.cur.peek() {
            Some(b'"') => self.cur.quoted(true, "metric name")?,
            _ => match self.cur.metric_name() {
                Some(n) => Escaped::new(n, EscapeKind::Quoted),
                None => {
                    return Err(self.cur.expected(if help {
                        "metric name after HELP"
                    } else {
                        "metric name after TYPE"
                    }));
                }
            },
        };
        // Like Prometheus's lexer, the text is the rest of the line minus the
        // one separating blank.
        if matches!(self.cur.peek(), Some(b' ' | b'\t')) {
            self.cur.bump();
        }
        let start = self.cur.take_until(|b| b == b'\n');
        let text = self.cur.str(start, self.cur.pos, "HELP text")?;
        // The line feed, or the end of the body (see `series`).
        self.cur.eat(b"\n");
        if help {
            return Ok(Step::Entry(Entry::Help {
                metric,
                text: Escaped::new(text, EscapeKind::TextHelp),
            }));
        }
        let kind = match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Unknown,
            other => {
                return Err(self.cur.error_at(
                    start,
                    ParseErrorKind::InvalidType {
                        text: other.to_string(),
                        allowed: TEXT_TYPES,
                    },
                ));
            }
        };
        Ok(Step::Entry(Entry::Type { metric, kind }))
    }

    fn series(&mut self) -> Result<Step<'a>, ParseError> {
        let start = self.cur.pos;
        self.labels.clear();
        let mut name = self
            .cur
            .metric_name()
            .map(|n| Escaped::new(n, EscapeKind::Quoted));
        self.cur.skip_blanks();
        if self.cur.peek() == Some(b'{') {
            self.cur.bump();
            self.label_block(&mut name)?;
        }
        let raw = self.cur.str(start, self.cur.pos, "series")?;
        let Some(name) = name else {
            return Err(self.cur.error_at(start, ParseErrorKind::MissingMetricName));
        };
        self.cur.skip_blanks();
        let vstart = self
            .cur
            .take_until(|b| matches!(b, b'{' | b' ' | b'\t' | b'\n'));
        if vstart == self.cur.pos {
            self.cur.pos = vstart;
            return Err(self.cur.expected("sample value"));
        }
        let vtext = self.cur.str(vstart, self.cur.pos, "sample value")?;
        let value = parse_value(vtext).map_err(|reason| {
            self.cur.error_at(
                vstart,
                ParseErrorKind::InvalidValue {
                    text: vtext.to_string(),
                    reason,
                },
            )
        })?;
        self.cur.skip_blanks();
        let mut timestamp_ms = None;
        if matches!(self.cur.peek(), Some(b) if b != b'\n') {
            let tstart = self.cur.take_until(|b| matches!(b, b' ' | b'\t' | b'\n'));
            let ttext = self.cur.str(tstart, self.cur.pos, "timestamp")?;
            timestamp_ms = Some(parse_millis(ttext).map_err(|reason| {
                self.cur.error_at(
                    tstart,
                    ParseErrorKind::InvalidTimestamp {
                        text: ttext.to_string(),
                        reason,
                    },
                )
            })?);
            self.cur.skip_blanks();
        }
        // Prometheus appends a line feed to every text body before lexing,
        // so the last line may end at the end of the body.
        match self.cur.peek() {
            Some(b'\n') => self.cur.bump(),
            None => {}
            Some(_) => {
                return Err(self.cur.expected(if timestamp_ms.is_some() {
                    "line break after timestamp"
                } else {
                    "timestamp or line break after value"
                }));
            }
        }
        Ok(Step::Series(SeriesHead {
            raw,
            name,
            value,
            timestamp_ms,
            exemplar: None,
        }))
    }

    /// Reads labels up to and including `}`; a quoted string standing alone
    /// is the metric name (the UTF-8 form `{"my.metric", a="b"}`).
    fn label_block(&mut self, name: &mut Option<Escaped<'a>>) -> Result<(), ParseError> {
        loop {
            self.cur.skip_blanks();
            let lname = match self.cur.peek() {
                Some(b'}') => {
                    self.cur.bump();
                    return Ok(());
                }
                Some(b'"') => {
                    let at = self.cur.pos;
                    let q = self.cur.quoted(true, "name")?;
                    self.cur.skip_blanks();
                    if matches!(self.cur.peek(), Some(b',' | b'}')) {
                        if name.is_some() {
                            return Err(self.cur.error_at(at, ParseErrorKind::DuplicateMetricName));
                        }
                        *name = Some(q);
                        if self.cur.peek() == Some(b',') {
                            self.cur.bump();
                        }
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
            self.cur.skip_blanks();
            if !self.cur.eat(b"=") {
                return Err(self.cur.expected("`=` after label name"));
            }
            self.cur.skip_blanks();
            if self.cur.peek() != Some(b'"') {
                return Err(self.cur.expected("quoted label value"));
            }
            let value = self.cur.quoted(true, "label value")?;
            self.labels.push((lname, value));
            self.cur.skip_blanks();
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
