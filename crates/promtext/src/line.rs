//! The line parser: one line of exposition text (without its line ending) into a [`Line`].
//!
//! Every delimiter of the format is ASCII, so the byte cursor below only ever slices the line at
//! ASCII positions, which are always `char` boundaries.

use crate::error::{snippet, ParseErrorKind};
use crate::{parse_value, MetricType, Sample};

/// What one line holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Line<'a> {
    /// A blank line or a comment that is neither `# HELP` nor `# TYPE`.
    Skip,
    /// `# HELP <family> <docstring>`, the docstring unescaped.
    Help(&'a str, String),
    /// `# TYPE <family> <type>`.
    Type(&'a str, MetricType),
    /// A sample.
    Sample(Sample),
}

/// Parses one line. `line` must not contain `\n`; a trailing `\r` must already be removed.
pub(crate) fn parse_line(line: &str) -> Result<Line<'_>, ParseErrorKind> {
    let mut cur = Cursor::new(line);
    cur.skip_blanks();
    match cur.peek() {
        None => Ok(Line::Skip),
        Some(b'#') => {
            cur.bump();
            parse_comment(cur)
        }
        Some(_) => parse_sample(cur).map(Line::Sample),
    }
}

/// A position in a line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
    }

    /// Advances while `pred` holds and returns what was passed over.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.bump();
        }
        &self.s[start..self.pos]
    }

    /// The next token: everything up to a blank, a tab or the end of the line.
    fn token(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }

    /// A metric name, which must end at a blank, at the end of the line, or (when `brace_ok`)
    /// at `{`. On failure the error quotes the whole offending token.
    fn metric_name(&mut self, brace_ok: bool) -> Result<&'a str, ParseErrorKind> {
        let start = self.pos;
        let name = self.take_while(is_name_byte);
        let ends_well = match self.peek() {
            None | Some(b' ' | b'\t') => true,
            Some(b'{') => brace_ok,
            Some(_) => false,
        };
        let starts_well = name.bytes().next().is_some_and(|b| !b.is_ascii_digit());
        if starts_well && ends_well {
            return Ok(name);
        }
        self.pos = start;
        let bad = self.take_while(|b| b != b' ' && b != b'\t' && !(brace_ok && b == b'{'));
        // An empty token means the line starts with `{` or similar: quote the rest instead.
        let text = if bad.is_empty() { self.rest() } else { bad };
        Err(ParseErrorKind::InvalidMetricName {
            text: snippet(text),
        })
    }
}

/// `[a-zA-Z0-9_:]`; the first character must also not be a digit.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// `[a-zA-Z0-9_]`; the first character must also not be a digit.
fn is_label_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The part of a comment line after `#`.
///
/// As in the reference (Go) parser, `# HELP` or `# TYPE` without a family name, and `# TYPE
/// <family>` without a type, are plain comments; other comments are ignored.
fn parse_comment(mut cur: Cursor<'_>) -> Result<Line<'_>, ParseErrorKind> {
    cur.skip_blanks();
    let keyword = cur.token();
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(Line::Skip);
    }
    cur.skip_blanks();
    if cur.at_end() {
        return Ok(Line::Skip);
    }
    let family = cur.metric_name(false)?;
    cur.skip_blanks();
    if keyword == "HELP" {
        return Ok(Line::Help(family, unescape_help(cur.rest())));
    }
    let word = cur.rest().trim_end_matches([' ', '\t']);
    if word.is_empty() {
        return Ok(Line::Skip);
    }
    match MetricType::from_word(word) {
        Some(ty) => Ok(Line::Type(family, ty)),
        None => Err(ParseErrorKind::UnknownType {
            metric: family.to_owned(),
            text: snippet(word),
        }),
    }
}

/// Undoes `\\` and `\n` in a docstring. Any other backslash is kept as it is: a malformed
/// docstring is not worth rejecting a whole scrape for.
fn unescape_help(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => {
                out.push('\\');
                chars.next();
            }
            Some('n') => {
                out.push('\n');
                chars.next();
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// A sample line: `name[{labels}] value [timestamp]`.
fn parse_sample(mut cur: Cursor<'_>) -> Result<Sample, ParseErrorKind> {
    let line = cur.s;
    let name = cur.metric_name(true)?;
    cur.skip_blanks();
    let labels = if cur.peek() == Some(b'{') {
        cur.bump();
        parse_labels(&mut cur, name)?
    } else {
        Vec::new()
    };
    cur.skip_blanks();
    let value_text = cur.token();
    if value_text.is_empty() {
        return Err(ParseErrorKind::MissingValue {
            metric: name.to_owned(),
            text: snippet(line.trim_matches([' ', '\t'])),
        });
    }
    let Some(value) = parse_value(value_text) else {
        return Err(ParseErrorKind::InvalidValue {
            metric: name.to_owned(),
            text: snippet(value_text),
        });
    };
    cur.skip_blanks();
    let timestamp_ms = if cur.at_end() {
        None
    } else {
        let ts_text = cur.token();
        match ts_text.parse::<i64>() {
            Ok(ts) => Some(ts),
            Err(_) => {
                return Err(ParseErrorKind::InvalidTimestamp {
                    metric: name.to_owned(),
                    text: snippet(ts_text),
                })
            }
        }
    };
    cur.skip_blanks();
    if !cur.at_end() {
        return Err(ParseErrorKind::TrailingText {
            metric: name.to_owned(),
            text: snippet(cur.rest()),
        });
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

/// The label set after its `{`, up to and including the `}`. A trailing comma is allowed, and
/// blanks may surround every token.
fn parse_labels(
    cur: &mut Cursor<'_>,
    metric: &str,
) -> Result<Vec<(String, String)>, ParseErrorKind> {
    let mut labels = Vec::new();
    loop {
        cur.skip_blanks();
        if cur.peek() == Some(b'}') {
            cur.bump();
            return Ok(labels);
        }
        if cur.at_end() {
            return Err(set_error(cur, metric, "a label name or '}'"));
        }
        let name_start = cur.rest();
        let key = cur.take_while(is_label_name_byte);
        if key.bytes().next().is_none_or(|b| b.is_ascii_digit()) {
            return Err(ParseErrorKind::InvalidLabelName {
                metric: metric.to_owned(),
                text: snippet(name_start),
            });
        }
        cur.skip_blanks();
        expect(cur, b'=', metric, "'=' after the label name")?;
        cur.skip_blanks();
        expect(cur, b'"', metric, "'\"' to open the label value")?;
        let value = label_value(cur, metric)?;
        labels.push((key.to_owned(), value));
        cur.skip_blanks();
        match cur.peek() {
            Some(b',') => cur.bump(),
            Some(b'}') => {}
            _ => return Err(set_error(cur, metric, "',' or '}' after the label value")),
        }
    }
}

/// Consumes `want` or fails with an [`ParseErrorKind::InvalidLabelSet`].
fn expect(
    cur: &mut Cursor<'_>,
    want: u8,
    metric: &str,
    expected: &'static str,
) -> Result<(), ParseErrorKind> {
    if cur.peek() == Some(want) {
        cur.bump();
        Ok(())
    } else {
        Err(set_error(cur, metric, expected))
    }
}

fn set_error(cur: &Cursor<'_>, metric: &str, expected: &'static str) -> ParseErrorKind {
    let rest = cur.rest();
    ParseErrorKind::InvalidLabelSet {
        metric: metric.to_owned(),
        text: snippet(if rest.is_empty() { cur.s } else { rest }),
        expected,
    }
}

/// A label value after its opening quote, up to and including the closing quote, unescaped.
/// Allocates once: the returned string.
fn label_value(cur: &mut Cursor<'_>, metric: &str) -> Result<String, ParseErrorKind> {
    let open = cur.pos - 1;
    let mut out = String::new();
    let mut chunk = cur.pos;
    loop {
        match cur.peek() {
            None => {
                return Err(ParseErrorKind::UnterminatedLabelValue {
                    metric: metric.to_owned(),
                    text: snippet(&cur.s[open..]),
                })
            }
            Some(b'"') => {
                let last = &cur.s[chunk..cur.pos];
                cur.bump();
                if out.is_empty() {
                    // No escapes: one exact allocation.
                    out.reserve_exact(last.len());
                }
                out.push_str(last);
                return Ok(out);
            }
            Some(b'\\') => {
                out.push_str(&cur.s[chunk..cur.pos]);
                cur.bump();
                let replacement = match cur.peek() {
                    Some(b'\\') => '\\',
                    Some(b'"') => '"',
                    Some(b'n') => '\n',
                    _ => {
                        let seq_end = cur.s[cur.pos..]
                            .chars()
                            .next()
                            .map_or(cur.pos, |c| cur.pos + c.len_utf8());
                        return Err(ParseErrorKind::InvalidEscape {
                            metric: metric.to_owned(),
                            text: snippet(&cur.s[cur.pos - 1..seq_end]),
                        });
                    }
                };
                out.push(replacement);
                cur.bump();
                chunk = cur.pos;
            }
            Some(_) => cur.bump(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> Sample {
        match parse_line(line) {
            Ok(Line::Sample(s)) => s,
            other => panic!("expected a sample from {line:?}, got {other:?}"),
        }
    }

    #[test]
    fn plain_sample() {
        let s = sample("foo 1");
        assert_eq!(s.name, "foo");
        assert!(s.labels.is_empty());
        assert_eq!(s.value, 1.0);
        assert_eq!(s.timestamp_ms, None);
    }

    #[test]
    fn labels_without_blank_before_value() {
        let s = sample(r#"foo{a="b"}2"#);
        assert_eq!(s.labels, vec![("a".to_owned(), "b".to_owned())]);
        assert_eq!(s.value, 2.0);
    }

    #[test]
    fn empty_label_set_and_empty_value() {
        assert!(sample("foo{} 3").labels.is_empty());
        assert_eq!(sample(r#"foo{a=""} 3"#).labels[0].1, "");
    }

    #[test]
    fn escapes_in_label_values() {
        let s = sample(r#"foo{a="x\\y\"z\nw",b="\\"} 1"#);
        assert_eq!(s.label("a"), Some("x\\y\"z\nw"));
        assert_eq!(s.label("b"), Some("\\"));
    }

    #[test]
    fn unicode_in_label_values() {
        assert_eq!(
            sample("foo{m=\"Qwen/Qwen3-8B ✓ é\"} 1").label("m"),
            Some("Qwen/Qwen3-8B ✓ é")
        );
    }

    #[test]
    fn help_unescaping() {
        assert_eq!(unescape_help(r"a\\b\nc"), "a\\b\nc");
        assert_eq!(
            unescape_help(r"keep \t and trailing \"),
            "keep \\t and trailing \\"
        );
        assert_eq!(unescape_help("plain"), "plain");
    }

    #[test]
    fn comment_forms() {
        assert_eq!(parse_line("# just a comment"), Ok(Line::Skip));
        assert_eq!(parse_line("#"), Ok(Line::Skip));
        assert_eq!(parse_line("# HELP"), Ok(Line::Skip));
        assert_eq!(parse_line("# TYPE foo"), Ok(Line::Skip));
        assert_eq!(
            parse_line("#HELP foo x"),
            Ok(Line::Help("foo", "x".to_owned()))
        );
        assert_eq!(
            parse_line("# HELP foo"),
            Ok(Line::Help("foo", String::new()))
        );
        assert_eq!(
            parse_line("# TYPE foo COUNTER"),
            Ok(Line::Type("foo", MetricType::Counter))
        );
    }

    #[test]
    fn names_starting_with_a_digit_are_rejected() {
        assert!(parse_line("1foo 1").is_err());
        assert!(parse_line("foo{1a=\"x\"} 1").is_err());
    }
}
