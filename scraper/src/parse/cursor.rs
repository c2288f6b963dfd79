//! The byte cursor both parsers walk the body with.
//!
//! Positions are byte offsets into the body; line numbers are computed only
//! when an error is reported, so the happy path never counts lines.

use super::error::{ParseError, ParseErrorKind};
use super::escape::{EscapeKind, Escaped};

pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

pub(super) fn is_metric_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_metric_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

pub(super) fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Cursor<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn bump(&mut self) {
        self.pos += 1;
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    /// Consumes `prefix` if the input continues with it.
    pub(super) fn eat(&mut self, prefix: &[u8]) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs (the text format allows them between tokens).
    #[inline]
    pub(super) fn skip_blanks(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes bytes until one of `stops` (or the end); returns the start.
    #[inline]
    pub(super) fn take_until(&mut self, stops: impl Fn(u8) -> bool) -> usize {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if stops(b) {
                break;
            }
            self.pos += 1;
        }
        start
    }

    /// The bytes `start..end` as text, checking UTF-8 (names are ASCII by
    /// construction; values, help and comments come from the target).
    pub(super) fn str(
        &self,
        start: usize,
        end: usize,
        what: &'static str,
    ) -> Result<&'a str, ParseError> {
        std::str::from_utf8(&self.buf[start..end])
            .map_err(|_| self.error_at(start, ParseErrorKind::InvalidUtf8 { what }))
    }

    /// An unquoted metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), if one starts here.
    pub(super) fn metric_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if is_metric_start(b) => {}
            _ => return None,
        }
        let start = self.take_until(|b| !is_metric_char(b));
        // ASCII by construction.
        std::str::from_utf8(&self.buf[start..self.pos]).ok()
    }

    /// An unquoted label name (`[a-zA-Z_][a-zA-Z0-9_]*`), if one starts here.
    pub(super) fn label_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if is_label_start(b) => {}
            _ => return None,
        }
        let start = self.take_until(|b| !is_label_char(b));
        std::str::from_utf8(&self.buf[start..self.pos]).ok()
    }

    /// A double-quoted string at the cursor (which must be at `"`), returned
    /// without the quotes and still escaped. A backslash escapes any byte;
    /// `allow_newline` says whether a raw line feed may appear inside
    /// (Prometheus's text lexer allows it, OpenMetrics does not).
    pub(super) fn quoted(
        &mut self,
        allow_newline: bool,
        what: &'static str,
    ) -> Result<Escaped<'a>, ParseError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        let open = self.pos;
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(open, ParseErrorKind::UnterminatedString { what }));
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => {
                            return Err(
                                self.error_at(open, ParseErrorKind::UnterminatedString { what })
                            );
                        }
                        Some(b'\n') if !allow_newline => {
                            return Err(
                                self.error_at(open, ParseErrorKind::UnterminatedString { what })
                            );
                        }
                        Some(_) => self.pos += 1,
                    }
                }
                Some(b'\n') if !allow_newline => {
                    return Err(self.error_at(open, ParseErrorKind::UnterminatedString { what }));
                }
                Some(_) => self.pos += 1,
            }
        }
        let end = self.pos;
        self.pos += 1;
        Ok(Escaped::new(
            self.str(start, end, what)?,
            EscapeKind::Quoted,
        ))
    }

    /// An error at the cursor: "expected X, found <what is here>".
    pub(super) fn expected(&self, expected: &'static str) -> ParseError {
        self.error_at(
            self.pos,
            ParseErrorKind::Unexpected {
                expected,
                found: self.describe_here(),
            },
        )
    }

    pub(super) fn error_at(&self, pos: usize, kind: ParseErrorKind) -> ParseError {
        let pos = pos.min(self.buf.len());
        let line = 1 + self.buf[..pos].iter().filter(|&&b| b == b'\n').count();
        ParseError { line, kind }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(b'\n') => "line break".to_string(),
            Some(_) => {
                let rest = self.rest();
                let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                let shown = &rest[..line_end.min(32)];
                format!("{:?}", String::from_utf8_lossy(shown))
            }
        }
    }
}
