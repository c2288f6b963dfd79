//! Prometheus-style parse error messages.
//!
//! `promql-parser` 0.11 reports many syntax errors as just "invalid promql
//! query" and drops the position it failed at. Prometheus says
//! `1:7: parse error: unclosed left parenthesis`; Grafana users expect the
//! position, so the engine finds the most common culprits itself —
//! unterminated strings and unbalanced parentheses, brackets and braces —
//! and otherwise passes the parser's message through.

/// The message for a query the parser refused with `msg`.
pub(crate) fn describe(query: &str, msg: &str) -> String {
    match locate(query) {
        Some((pos, what)) => {
            let (line, col) = line_col(query, pos);
            let detail = if msg == "invalid promql query" {
                what.to_string()
            } else {
                msg.to_string()
            };
            format!("{line}:{col}: parse error: {detail}")
        }
        None => format!("parse error: {msg}"),
    }
}

fn line_col(query: &str, pos: usize) -> (usize, usize) {
    let before = &query[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |p| before[p + 1..].chars().count())
        + 1;
    (line, col)
}

/// The byte offset and nature of the first structural error, if any.
fn locate(query: &str) -> Option<(usize, &'static str)> {
    let b = query.as_bytes();
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Some((start, "unterminated quoted string"));
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c @ (b'(' | b'[' | b'{') => stack.push((c, i)),
            c @ (b')' | b']' | b'}') => {
                let open = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                match stack.pop() {
                    Some((o, _)) if o == open => {}
                    _ => {
                        return Some((
                            i,
                            match c {
                                b')' => "unexpected right parenthesis ')'",
                                b']' => "unexpected right bracket ']'",
                                _ => "unexpected right brace '}'",
                            },
                        ));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    stack.pop().map(|(c, pos)| {
        (
            pos,
            match c {
                b'(' => "unclosed left parenthesis",
                b'[' => "unclosed left bracket",
                _ => "unclosed left brace",
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_the_culprit() {
        assert_eq!(
            describe("sum(rate(x[5m])", "unclosed left parenthesis"),
            "1:4: parse error: unclosed left parenthesis"
        );
        assert_eq!(
            describe("x{a=\"b}", "invalid promql query"),
            "1:5: parse error: unterminated quoted string"
        );
        assert_eq!(
            describe("x + + y", "invalid promql query"),
            "parse error: invalid promql query"
        );
    }
}
