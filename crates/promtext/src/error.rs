//! The parse error type.

/// Longest snippet of offending input (in characters) kept in an error.
const SNIPPET_CHARS: usize = 80;

/// Why an exposition could not be parsed: the 1-based line number and what was wrong there.
///
/// The [`Display`](std::fmt::Display) form is `line N: <problem> "<offending text>": expected …`,
/// all lowercase, for example
/// `line 3: invalid value "abc" for metric "foo": expected a number, +Inf, -Inf or NaN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number of the offending line.
    pub line: usize,
    /// What was wrong on that line.
    pub kind: ParseErrorKind,
}

/// The problem found on a line. Every `text` field holds the offending input, cut to about 80
/// characters (an ellipsis `…` marks a cut), and is shown quoted in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The body is an HTML page (an error page, a login page, a proxy's landing page, …).
    #[error("body looks like html, not prometheus text: {text:?}: expected metric samples and # comments")]
    Html {
        /// The first non-blank line.
        text: String,
    },
    /// The body is JSON: an object, an array or a quoted string (llama.cpp build 7010 returned
    /// its metrics text wrapped in a JSON string).
    #[error("body looks like json ({what}), not prometheus text: {text:?}: expected metric samples and # comments")]
    Json {
        /// `"object"`, `"array"` or `"a quoted string"`.
        what: &'static str,
        /// The first non-blank line.
        text: String,
    },
    /// A metric name (on a sample, `# HELP` or `# TYPE` line) is empty or has a bad character.
    #[error("invalid metric name {text:?}: expected [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName {
        /// The offending token.
        text: String,
    },
    /// A label name is empty or has a bad character.
    #[error("invalid label name {text:?} for metric {metric:?}: expected [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidLabelName {
        /// The metric the label set belongs to.
        metric: String,
        /// The rest of the line from the label name on.
        text: String,
    },
    /// The label set is malformed: a missing `=`, `"`, `,` or `}`.
    #[error("invalid label set {text:?} for metric {metric:?}: expected {expected}")]
    InvalidLabelSet {
        /// The metric the label set belongs to.
        metric: String,
        /// The rest of the line from the unexpected character on.
        text: String,
        /// What should have come instead.
        expected: &'static str,
    },
    /// A label value has no closing quote before the end of the line.
    #[error("unterminated label value {text:?} for metric {metric:?}: expected a closing '\"'")]
    UnterminatedLabelValue {
        /// The metric the label set belongs to.
        metric: String,
        /// The label value from its opening quote on.
        text: String,
    },
    /// A label value has a backslash escape other than `\\`, `\"` or `\n`.
    #[error("invalid escape {text:?} in a label value for metric {metric:?}: expected \\\\, \\\" or \\n")]
    InvalidEscape {
        /// The metric the label set belongs to.
        metric: String,
        /// The escape sequence.
        text: String,
    },
    /// A sample line ends after the metric name or label set.
    #[error("missing value for metric {metric:?} in {text:?}: expected a number after the name and labels")]
    MissingValue {
        /// The metric name.
        metric: String,
        /// The whole line.
        text: String,
    },
    /// A sample value is not a number.
    #[error("invalid value {text:?} for metric {metric:?}: expected a number, +Inf, -Inf or NaN")]
    InvalidValue {
        /// The metric name.
        metric: String,
        /// The value token.
        text: String,
    },
    /// A sample timestamp is not an integer.
    #[error("invalid timestamp {text:?} for metric {metric:?}: expected an integer number of milliseconds")]
    InvalidTimestamp {
        /// The metric name.
        metric: String,
        /// The timestamp token.
        text: String,
    },
    /// Something follows the timestamp.
    #[error("unexpected text {text:?} after the timestamp for metric {metric:?}: expected the end of the line")]
    TrailingText {
        /// The metric name.
        metric: String,
        /// The rest of the line.
        text: String,
    },
    /// A `# TYPE` line names a type this format does not have.
    #[error("unknown metric type {text:?} for metric {metric:?}: expected counter, gauge, histogram, summary or untyped")]
    UnknownType {
        /// The metric family.
        metric: String,
        /// The type word(s).
        text: String,
    },
}

impl ParseError {
    /// An error on 1-based line `line`.
    pub(crate) fn new(line: usize, kind: ParseErrorKind) -> Self {
        Self { line, kind }
    }
}

/// `s` cut to [`SNIPPET_CHARS`] characters, with `…` appended when cut.
pub(crate) fn snippet(s: &str) -> String {
    match s.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + '…'.len_utf8());
            out.push_str(&s[..cut]);
            out.push('…');
            out
        }
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippet_keeps_short_text() {
        assert_eq!(snippet("abc"), "abc");
        assert_eq!(snippet(&"x".repeat(80)), "x".repeat(80));
    }

    #[test]
    fn snippet_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = snippet(&long);
        assert_eq!(cut.chars().count(), 81);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with(&"é".repeat(80)));
    }
}
