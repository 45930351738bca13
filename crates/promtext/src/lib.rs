//! A parser for the Prometheus text exposition format, version 0.0.4: what vLLM, llama.cpp's
//! `llama-server`, SGLang and most exporters serve on `/metrics`.
//!
//! Unlike some parsers it keeps metric names that contain colons (`vllm:num_requests_running`,
//! `llamacpp:prompt_tokens_total`), reads every float spelling those servers print (`7.0`,
//! `1.23457e+06`, `+Inf`, `NaN`), and fails with an error that names the line, quotes the
//! offending text and says what was expected. It also recognises an HTML or JSON body served
//! in place of the metrics text and says so.
//!
//! The result is flat: a list of [`Sample`]s in input order plus the `# TYPE` and `# HELP`
//! lines by family name. Histogram and summary series (`_bucket{le="…"}`, `_sum`, `_count`,
//! `quantile`) are ordinary samples; `le` and `quantile` stay string labels.
//!
//! ```
//! use infermon_promtext::{parse, MetricType};
//!
//! let text = "\
//! ## HELP vllm:request_success_total Count of successfully processed requests.
//! ## TYPE vllm:request_success_total counter
//! vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 7.0
//! vllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 1.0
//! llamacpp:tokens_predicted_total 1.23457e+06
//! ";
//! let expo = parse(text)?;
//! assert_eq!(expo.sum("vllm:request_success_total"), Some(8.0));
//! assert_eq!(expo.metric_type("vllm:request_success_total"), Some(MetricType::Counter));
//! assert_eq!(expo.get("llamacpp:tokens_predicted_total"), Some(1_234_570.0));
//!
//! let stop = expo
//!     .find("vllm:request_success_total")
//!     .find(|s| s.label("finished_reason") == Some("stop"));
//! assert_eq!(stop.map(|s| s.value), Some(7.0));
//!
//! let err = parse("<!DOCTYPE html>\n<html>").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "line 1: body looks like html, not prometheus text: \"<!DOCTYPE html>\": \
//!      expected metric samples and # comments"
//! );
//! # Ok::<(), infermon_promtext::ParseError>(())
//! ```
//!
//! Accepted input, in detail:
//! - lines end in `\n` or `\r\n`; the last line may lack one; a leading UTF-8 byte order mark is
//!   skipped; blank lines are skipped;
//! - blanks (spaces and tabs) may precede and follow every token, including inside `{…}`; a label
//!   set may end with a comma;
//! - label values may hold the escapes `\\`, `\"` and `\n` (anything else is an error); `# HELP`
//!   docstrings may hold `\\` and `\n` (any other backslash is kept as it is);
//! - a value is anything [`parse_value`] accepts, optionally followed by an integer timestamp in
//!   milliseconds;
//! - `# TYPE` words are matched case-insensitively; comments other than `# HELP <name> …` and
//!   `# TYPE <name> <type>` are ignored; when a family has several `# HELP` or `# TYPE` lines the
//!   last one wins.
#![deny(missing_docs)]

mod error;
mod line;

use std::collections::HashMap;
use std::fmt;

pub use error::{ParseError, ParseErrorKind};

use error::snippet;
use line::{parse_line, Line};

/// One parsed exposition body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Every sample, in input order.
    pub samples: Vec<Sample>,
    /// `# TYPE` lines: family name → type.
    pub types: HashMap<String, MetricType>,
    /// `# HELP` lines: family name → unescaped docstring.
    pub help: HashMap<String, String>,
}

impl Exposition {
    /// The value of the sample named exactly `name` that has no labels; `None` when there is
    /// none (a name that only occurs with labels gives `None`: use [`find`](Self::find) or
    /// [`sum`](Self::sum) for those).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels.is_empty())
            .map(|s| s.value)
    }

    /// Every sample named exactly `name`, whatever its labels, in input order.
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sum of the values of every sample named exactly `name` (all label series);
    /// `None` when there is no such sample.
    pub fn sum(&self, name: &str) -> Option<f64> {
        self.find(name)
            .map(|s| s.value)
            .reduce(|total, value| total + value)
    }

    /// The type a `# TYPE` line declared for the family named exactly `family` (for a
    /// histogram that is the name without `_bucket`, `_sum` or `_count`).
    pub fn metric_type(&self, family: &str) -> Option<MetricType> {
        self.types.get(family).copied()
    }
}

/// One sample line: a metric name, its labels, its value and an optional timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name as written, e.g. `vllm:time_to_first_token_seconds_bucket`.
    pub name: String,
    /// Label pairs in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds since the Unix epoch, when the line has one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of the first label named `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A metric family's type, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped`.
    Untyped,
}

impl MetricType {
    /// The word used on `# TYPE` lines, e.g. `"counter"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }

    /// The type a `# TYPE` word names, ignoring case.
    fn from_word(word: &str) -> Option<Self> {
        [
            Self::Counter,
            Self::Gauge,
            Self::Histogram,
            Self::Summary,
            Self::Untyped,
        ]
        .into_iter()
        .find(|ty| ty.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a sample value: a decimal or scientific number (`7`, `-3`, `7.0`, `1.23457e+06`), or
/// `+Inf`, `-Inf`, `Inf` or `NaN` (in any case). Blanks around the number are not accepted.
///
/// ```
/// use infermon_promtext::parse_value;
///
/// assert_eq!(parse_value("1.23457e+06"), Some(1_234_570.0));
/// assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
/// assert!(parse_value("NaN").is_some_and(f64::is_nan));
/// assert_eq!(parse_value("abc"), None);
/// ```
pub fn parse_value(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// Parses a whole exposition body.
///
/// Fails on the first malformed line; see [`ParseErrorKind`] for what is rejected.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut expo = Exposition::default();
    let mut seen_content = false;
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if !seen_content {
            let trimmed = line.trim_start_matches([' ', '\t']);
            if trimmed.is_empty() {
                continue;
            }
            seen_content = true;
            sniff_foreign_body(trimmed).map_err(|kind| ParseError::new(line_no, kind))?;
        }
        match parse_line(line).map_err(|kind| ParseError::new(line_no, kind))? {
            Line::Skip => {}
            Line::Sample(sample) => expo.samples.push(sample),
            Line::Help(family, doc) => {
                expo.help.insert(family.to_owned(), doc);
            }
            Line::Type(family, ty) => {
                expo.types.insert(family.to_owned(), ty);
            }
        }
    }
    Ok(expo)
}

/// Rejects a body whose first non-blank line shows it is HTML or JSON rather than metrics.
fn sniff_foreign_body(first_line: &str) -> Result<(), ParseErrorKind> {
    let what = match first_line.as_bytes().first() {
        Some(b'<') => {
            return Err(ParseErrorKind::Html {
                text: snippet(first_line),
            })
        }
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a quoted string",
        _ => return Ok(()),
    };
    Err(ParseErrorKind::Json {
        what,
        text: snippet(first_line),
    })
}
