//! Rendering an alert into the request the outbox stores: method, headers, body.

use infermon_detect::{Observation, Severity};
use serde::{Deserialize, Serialize};

use crate::target::Format;

/// What happened to the observation, as alerted. (`Updated` changes are not alerted.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// It opened (or opened and closed at once, for instant kinds such as `model_change`).
    Opened,
    /// It resolved.
    Resolved,
}

impl Event {
    /// `opened` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Resolved => "resolved",
        }
    }
}

/// The outbox payload's version.
pub const PAYLOAD_VERSION: u32 = 1;
/// ntfy turns longer messages into attachments; bodies are cut below it.
const NTFY_MAX_BODY: usize = 4000;
/// Header values (ntfy's title) are cut to this many characters.
const MAX_HEADER_CHARS: usize = 200;

/// A rendered request, as stored in the outbox (JSON): everything but the URL (taken from the
/// target when sending, so a corrected URL applies to queued alerts) and the signature
/// headers (computed when sending, so the secret never reaches the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedRequest {
    /// [`PAYLOAD_VERSION`].
    pub v: u32,
    /// `POST`.
    pub method: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: String,
}

impl RenderedRequest {
    /// The JSON the outbox stores.
    pub fn to_payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a stored payload back.
    pub fn from_payload(bytes: &[u8]) -> Result<RenderedRequest, String> {
        let r: RenderedRequest = serde_json::from_slice(bytes)
            .map_err(|e| format!("payload is not a rendered request: {e}"))?;
        if r.v != PAYLOAD_VERSION {
            return Err(format!(
                "payload version {} is not supported: expected {PAYLOAD_VERSION}",
                r.v
            ));
        }
        Ok(r)
    }

    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The generic JSON body.
#[derive(Serialize)]
struct Generic<'a> {
    event: Event,
    observation: &'a Observation,
}

/// The Slack-compatible body.
#[derive(Serialize)]
struct Slack {
    text: String,
}

/// Renders one alert.
pub fn render(
    format: Format,
    event: Event,
    obs: &Observation,
) -> Result<RenderedRequest, serde_json::Error> {
    let (headers, body) = match format {
        Format::Json => (
            vec![("Content-Type".into(), "application/json".into())],
            serde_json::to_string(&Generic {
                event,
                observation: obs,
            })?,
        ),
        Format::Slack => (
            vec![("Content-Type".into(), "application/json".into())],
            serde_json::to_string(&Slack {
                text: format!("[infermon] {}", slack_escape(&summary(event, obs))),
            })?,
        ),
        Format::Ntfy => ntfy(event, obs),
    };
    Ok(RenderedRequest {
        v: PAYLOAD_VERSION,
        method: "POST".into(),
        headers,
        body,
    })
}

/// The one-line summary: `CRITICAL thermal_throttling on gpu:0: <action>`, or
/// `RESOLVED thermal_throttling on gpu:0 (was critical, lasted 4m 10s)`.
pub fn summary(event: Event, obs: &Observation) -> String {
    let s = match event {
        Event::Opened => format!(
            "{} {} on {}: {}",
            obs.severity.as_str().to_ascii_uppercase(),
            obs.kind,
            obs.subject,
            obs.action
        ),
        Event::Resolved => format!(
            "RESOLVED {} on {} (was {}{})",
            obs.kind,
            obs.subject,
            obs.severity.as_str(),
            lasted(obs)
                .map(|d| format!(", lasted {d}"))
                .unwrap_or_default()
        ),
    };
    one_line(&s)
}

/// `4m 10s`, when start and end are known.
fn lasted(obs: &Observation) -> Option<String> {
    let end = obs.end_s?;
    let secs = end - obs.start_s;
    (secs.is_finite() && secs >= 0.0).then(|| human_duration(secs))
}

/// `45s`, `4m 10s`, `2h 5m`, `3d 4h`.
pub(crate) fn human_duration(secs: f64) -> String {
    let s = secs.round().max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// Newlines, tabs and other control characters become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Slack's three escapes (`&`, `<`, `>`), so text is never read as a link or mention.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A number as people read it: at most three decimals, no trailing zeros.
fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// ntfy priority: critical 5 (urgent), warning 4 (high), info 3 (default); a resolution is 3.
pub fn ntfy_priority(event: Event, severity: Severity) -> u8 {
    match (event, severity) {
        (Event::Resolved, _) | (Event::Opened, Severity::Info) => 3,
        (Event::Opened, Severity::Warning) => 4,
        (Event::Opened, Severity::Critical) => 5,
    }
}

/// ntfy: plain-text body, `Title`, `Priority` and `Tags` headers (values outside printable
/// ASCII as RFC 2047 encoded words, which ntfy decodes).
fn ntfy(event: Event, obs: &Observation) -> (Vec<(String, String)>, String) {
    let (title, tags, body) = match event {
        Event::Opened => {
            let emoji = match obs.severity {
                Severity::Critical => "rotating_light",
                Severity::Warning => "warning",
                Severity::Info => "information_source",
            };
            let mut body = one_line(&obs.action);
            for f in &obs.evidence.figures {
                let now = f.now.map(number).unwrap_or_else(|| "unknown".into());
                body += &format!("\n{}: {now}", one_line(&f.name));
                if let Some(b) = f.baseline {
                    body += &format!(" (normal {})", number(b));
                }
            }
            if let Some(c) = &obs.evidence.context {
                body += &format!("\nat {}", one_line(c));
            }
            if let Some(c) = &obs.cause {
                body += &format!("\ncause: {} on {}", c.kind, one_line(&c.subject));
            }
            body += &format!("\nid: {}", one_line(&obs.id));
            (
                format!("{}: {} on {}", obs.severity.as_str(), obs.kind, obs.subject),
                format!("{emoji},{}", obs.kind),
                body,
            )
        }
        Event::Resolved => (
            format!("resolved: {} on {}", obs.kind, obs.subject),
            format!("white_check_mark,{}", obs.kind),
            format!(
                "Resolved{} (was {}).\nid: {}",
                lasted(obs)
                    .map(|d| format!(" after {d}"))
                    .unwrap_or_default(),
                obs.severity.as_str(),
                one_line(&obs.id)
            ),
        ),
    };
    let headers = vec![
        ("Content-Type".into(), "text/plain; charset=utf-8".into()),
        ("Title".into(), header_value(&title)),
        (
            "Priority".into(),
            ntfy_priority(event, obs.severity).to_string(),
        ),
        ("Tags".into(), header_value(&tags)),
    ];
    (headers, cut(body, NTFY_MAX_BODY))
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn cut(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

/// One line, at most [`MAX_HEADER_CHARS`] characters; printable ASCII as is, anything else as
/// one RFC 2047 encoded word (`=?UTF-8?B?...?=`).
pub(crate) fn header_value(s: &str) -> String {
    let line: String = one_line(s).chars().take(MAX_HEADER_CHARS).collect();
    let line = line.trim();
    if line.bytes().all(|b| (0x20..0x7f).contains(&b)) && !line.contains("=?") {
        line.to_owned()
    } else {
        format!("=?UTF-8?B?{}?=", base64(line.as_bytes()))
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn header_values_are_always_safe() {
        assert_eq!(
            header_value("warning: swap_storm on node"),
            "warning: swap_storm on node"
        );
        assert_eq!(header_value("a\r\nInjected: x"), "a  Injected: x");
        assert_eq!(
            header_value("model:Llama-3 ü"),
            "=?UTF-8?B?bW9kZWw6TGxhbWEtMyDDvA==?="
        );
        assert!(header_value("=?UTF-8?B?x?=").starts_with("=?UTF-8?B?"));
        assert!(header_value(&"x".repeat(500)).len() <= MAX_HEADER_CHARS);
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(12.3456), "12.346");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(1500.0), "1500");
        assert_eq!(human_duration(45.2), "45s");
        assert_eq!(human_duration(250.0), "4m 10s");
        assert_eq!(human_duration(7_500.0), "2h 5m");
        assert_eq!(human_duration(3.0 * 86_400.0 + 4.0 * 3_600.0), "3d 4h");
    }

    #[test]
    fn cut_keeps_char_boundaries() {
        assert_eq!(cut("abc".into(), 10), "abc");
        let c = cut("é".repeat(10), 8);
        assert!(c.len() <= 8 && c.ends_with('…'), "{c}");
    }

    #[test]
    fn payload_round_trip_and_version() {
        let r = RenderedRequest {
            v: PAYLOAD_VERSION,
            method: "POST".into(),
            headers: vec![("Title".into(), "x".into())],
            body: "b".into(),
        };
        let p = r.to_payload().unwrap();
        assert_eq!(RenderedRequest::from_payload(&p).unwrap(), r);
        assert_eq!(r.header("title"), Some("x"));
        let mut old = r.clone();
        old.v = 9;
        let e = RenderedRequest::from_payload(&old.to_payload().unwrap()).unwrap_err();
        assert_eq!(e, "payload version 9 is not supported: expected 1");
        assert!(RenderedRequest::from_payload(b"nope").is_err());
    }
}
