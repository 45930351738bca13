//! Alert targets: the raw settings ([`AlertTargetSpec`]), validated into [`AlertTarget`].

use std::fmt;
use std::time::Duration;

use infermon_detect::{Kind, Severity};
use reqwest::Url;

/// A target's name: 1 to this many characters.
const MAX_NAME_CHARS: usize = 64;
/// A shared secret shorter than this is refused.
pub const MIN_SECRET_BYTES: usize = 16;
/// The longest per-request timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest cooldown.
const MAX_COOLDOWN: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cooldown per (kind, subject).
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);

/// How an alert is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `{"event": "opened"|"resolved", "observation": {...}}`, `application/json`.
    Json,
    /// Slack-compatible incoming webhook: `{"text": "<one line>"}` (also Mattermost, Rocket.Chat,
    /// Discord's `/slack` endpoint).
    Slack,
    /// ntfy: a plain-text body with `Title`, `Priority` and `Tags` headers.
    Ntfy,
}

impl Format {
    /// `json`, `slack` or `ntfy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
            Format::Ntfy => "ntfy",
        }
    }

    /// Parses `json`, `slack` or `ntfy`.
    pub fn parse(s: &str) -> Option<Format> {
        [Format::Json, Format::Slack, Format::Ntfy]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// A shared secret; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One `[[alert]]` entry as written, before validation: what the config crate fills in from
/// TOML (durations already parsed). `None` means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertTargetSpec {
    /// Unique name: 1-64 of `a-z A-Z 0-9 - _ .`; it names the outbox channel `alert:<name>`.
    pub name: String,
    /// Where to POST: an `http` or `https` URL (for ntfy, `https://host/topic`).
    pub url: String,
    /// `json` (default), `slack` or `ntfy`.
    pub format: Option<String>,
    /// HMAC-SHA256 key (at least 16 bytes); when set every request is signed.
    pub secret: Option<String>,
    /// Only these kinds (stable names such as `thermal_throttling`); empty means all.
    pub kinds: Vec<String>,
    /// `info`, `warning` (default) or `critical`: nothing less severe is sent.
    pub min_severity: Option<String>,
    /// Also send when an observation resolves (default true).
    pub send_resolved: Option<bool>,
    /// Per (kind, subject): a new observation of the same kind and subject within this time of
    /// the last one alerted is not alerted (default 5 min; zero turns it off).
    pub cooldown: Option<Duration>,
    /// Per-request timeout, connect to last byte (default 10 s, at most 5 min).
    pub timeout: Option<Duration>,
}

/// A validated alert target. Build one with [`AlertTarget::validate`]; [`Alerter::new`]
/// checks hand-built ones again.
///
/// [`Alerter::new`]: crate::Alerter::new
#[derive(Clone, PartialEq)]
pub struct AlertTarget {
    /// Unique name; the outbox channel is `alert:<name>`.
    pub name: String,
    /// Where to POST.
    pub url: Url,
    /// Body and headers.
    pub format: Format,
    /// HMAC-SHA256 key; when set, requests carry `X-Infermon-Signature`.
    pub secret: Option<Secret>,
    /// Only these kinds; empty means all.
    pub kinds: Vec<Kind>,
    /// Nothing less severe is sent.
    pub min_severity: Severity,
    /// Also send resolutions.
    pub send_resolved: bool,
    /// Per (kind, subject); zero turns it off.
    pub cooldown: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl fmt::Debug for AlertTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertTarget")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .field("secret", &self.secret)
            .field("kinds", &self.kinds)
            .field("min_severity", &self.min_severity)
            .field("send_resolved", &self.send_resolved)
            .field("cooldown", &self.cooldown)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A target that does not validate. Messages name the target, the field, the value and what
/// was expected; URL paths (Slack webhook tokens, ntfy topics) and secrets are not quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertConfigError {
    /// One field has a value that is not allowed.
    #[error("alert target \"{target}\": {field} {value} is invalid: expected {expected}")]
    Invalid {
        /// The target's name (as written).
        target: String,
        /// The field, e.g. `format`.
        field: &'static str,
        /// The value as written, quoted (or described, for secrets and URL paths).
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// Two targets share a name.
    #[error("alert target name \"{name}\" is used twice: expected unique names")]
    DuplicateName {
        /// The name.
        name: String,
    },
}

fn invalid(
    target: &str,
    field: &'static str,
    value: String,
    expected: impl Into<String>,
) -> AlertConfigError {
    AlertConfigError::Invalid {
        target: target.to_owned(),
        field,
        value,
        expected: expected.into(),
    }
}

/// `scheme://host[:port]`, then `/…` when there is a path or query: what logs and errors show
/// of a URL, since the path is often the secret (Slack webhook tokens, ntfy topics).
pub fn redact_url(url: &Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        s += &format!(":{port}");
    }
    if url.path() != "/" || url.query().is_some() {
        s += "/…";
    }
    s
}

impl AlertTarget {
    /// Validates a spec and fills in defaults. Errors name the target, the field, the value
    /// and what was expected (an unknown format, kind or severity; a URL that is not http(s);
    /// a short secret; a zero or huge timeout).
    pub fn validate(spec: &AlertTargetSpec) -> Result<AlertTarget, AlertConfigError> {
        let name = spec.name.as_str();
        let format = match spec.format.as_deref() {
            None => Format::Json,
            Some(f) => Format::parse(f).ok_or_else(|| {
                invalid(name, "format", format!("\"{f}\""), "json, slack or ntfy")
            })?,
        };
        let url = Url::parse(&spec.url).map_err(|e| {
            invalid(
                name,
                "url",
                format!("\"{}\"", spec.url),
                format!("an absolute http(s) URL ({e})"),
            )
        })?;
        let kinds = spec
            .kinds
            .iter()
            .map(|k| {
                Kind::parse(k).ok_or_else(|| {
                    let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                    invalid(
                        name,
                        "kind",
                        format!("\"{k}\""),
                        format!("one of {}", all.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let min_severity = match spec.min_severity.as_deref() {
            None => Severity::Warning,
            Some(s) => Severity::parse(s).ok_or_else(|| {
                invalid(
                    name,
                    "min_severity",
                    format!("\"{s}\""),
                    "info, warning or critical",
                )
            })?,
        };
        let target = AlertTarget {
            name: spec.name.clone(),
            url,
            format,
            secret: spec.secret.clone().map(Secret),
            kinds,
            min_severity,
            send_resolved: spec.send_resolved.unwrap_or(true),
            cooldown: spec.cooldown.unwrap_or(DEFAULT_COOLDOWN),
            timeout: spec.timeout.unwrap_or(DEFAULT_TIMEOUT),
        };
        target.check()?;
        Ok(target)
    }

    /// Checks the fields a hand-built target could get wrong: name, URL scheme and host,
    /// secret length, timeout and cooldown ranges.
    pub fn check(&self) -> Result<(), AlertConfigError> {
        let name = self.name.as_str();
        let name_ok = !name.is_empty()
            && name.chars().count() <= MAX_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(invalid(
                name,
                "name",
                format!("\"{name}\""),
                format!("1-{MAX_NAME_CHARS} characters of a-z, A-Z, 0-9, '-', '_' or '.'"),
            ));
        }
        let scheme = self.url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(invalid(
                name,
                "url scheme",
                format!("\"{scheme}\""),
                "http or https",
            ));
        }
        if self.url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(
                name,
                "url",
                format!("\"{}\"", redact_url(&self.url)),
                "a URL with a host",
            ));
        }
        if scheme == "https" && !infermon_tls::ENABLED {
            return Err(invalid(
                name,
                "url",
                format!("\"{}\"", redact_url(&self.url)),
                "http: this infermon was built without TLS (cargo's `tls` feature)",
            ));
        }
        if let Some(secret) = &self.secret {
            let n = secret.expose().len();
            if n < MIN_SECRET_BYTES {
                return Err(invalid(
                    name,
                    "secret",
                    format!("of {n} bytes"),
                    format!("at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(invalid(
                name,
                "timeout",
                format!("{:?}", self.timeout),
                format!("more than 0 s and at most {} s", MAX_TIMEOUT.as_secs()),
            ));
        }
        if self.cooldown > MAX_COOLDOWN {
            return Err(invalid(
                name,
                "cooldown",
                format!("{:?}", self.cooldown),
                format!("at most {} days", MAX_COOLDOWN.as_secs() / 86_400),
            ));
        }
        Ok(())
    }

    /// Validates every spec and refuses duplicate names.
    pub fn validate_all(specs: &[AlertTargetSpec]) -> Result<Vec<AlertTarget>, AlertConfigError> {
        let targets = specs
            .iter()
            .map(AlertTarget::validate)
            .collect::<Result<Vec<_>, _>>()?;
        check_unique(&targets)?;
        Ok(targets)
    }

    /// The outbox channel: `alert:<name>`.
    pub fn channel(&self) -> String {
        format!("alert:{}", self.name)
    }

    /// Whether this target takes an observation of `kind` at `severity`.
    pub fn accepts(&self, kind: Kind, severity: Severity) -> bool {
        self.accepts_kind(kind) && severity >= self.min_severity
    }

    /// Whether the kind filter lets `kind` through.
    pub fn accepts_kind(&self, kind: Kind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// The URL as logs show it (path hidden).
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// Refuses two targets with one name.
pub(crate) fn check_unique(targets: &[AlertTarget]) -> Result<(), AlertConfigError> {
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].iter().any(|o| o.name == t.name) {
            return Err(AlertConfigError::DuplicateName {
                name: t.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> AlertTargetSpec {
        AlertTargetSpec {
            name: "ops".into(),
            url: url.into(),
            ..Default::default()
        }
    }

    fn err(s: &AlertTargetSpec) -> String {
        AlertTarget::validate(s).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let t = AlertTarget::validate(&spec("http://127.0.0.1:9/hook")).unwrap();
        assert_eq!(t.format, Format::Json);
        assert_eq!(t.min_severity, Severity::Warning);
        assert!(t.send_resolved);
        assert!(t.kinds.is_empty());
        assert_eq!(t.cooldown, DEFAULT_COOLDOWN);
        assert_eq!(t.timeout, DEFAULT_TIMEOUT);
        assert_eq!(t.channel(), "alert:ops");
        assert!(t.accepts(Kind::SwapStorm, Severity::Warning));
        assert!(!t.accepts(Kind::SwapStorm, Severity::Info));
    }

    #[test]
    fn errors_name_the_value_and_what_was_expected() {
        let mut s = spec("http://h/x");
        s.format = Some("xml".into());
        assert_eq!(
            err(&s),
            "alert target \"ops\": format \"xml\" is invalid: expected json, slack or ntfy"
        );
        let mut s = spec("http://h/x");
        s.kinds = vec!["thermal_throttling".into(), "hot".into()];
        let e = err(&s);
        assert!(e.starts_with("alert target \"ops\": kind \"hot\" is invalid: expected one of thermal_throttling, power_capping"), "{e}");
        let mut s = spec("http://h/x");
        s.min_severity = Some("high".into());
        assert!(err(&s)
            .contains("min_severity \"high\" is invalid: expected info, warning or critical"));
        assert_eq!(
            err(&spec("ftp://h/x")),
            "alert target \"ops\": url scheme \"ftp\" is invalid: expected http or https"
        );
        assert!(err(&spec("hooks.example.com/x"))
            .contains("url \"hooks.example.com/x\" is invalid: expected an absolute http(s) URL"));
        let mut s = spec("http://h/x");
        s.secret = Some("short".into());
        let e = err(&s);
        assert_eq!(
            e,
            "alert target \"ops\": secret of 5 bytes is invalid: expected at least 16 bytes"
        );
        assert!(!e.contains("short"), "the secret is never quoted");
        let mut s = spec("http://h/x");
        s.timeout = Some(Duration::ZERO);
        assert!(err(&s).contains("timeout 0ns is invalid"));
        let mut s = spec("http://h/x");
        s.name = "ops team".into();
        assert!(err(&s).contains("name \"ops team\" is invalid: expected 1-64 characters"));
        let mut s = spec("http://h/x");
        s.name = String::new();
        assert!(err(&s).contains("name \"\" is invalid"));
    }

    #[test]
    fn https_receivers_are_accepted_and_errors_hide_the_path() {
        let r = AlertTarget::validate(&spec("https://hooks.slack.com/services/T0/B0/secret"));
        if infermon_tls::ENABLED {
            assert!(r.is_ok());
        } else {
            let e = r.unwrap_err().to_string();
            assert!(
                e.contains("\"https://hooks.slack.com/…\"") && !e.contains("secret"),
                "{e}"
            );
        }
        let e = err(&spec("ftp://hooks.example/services/secret"));
        assert!(e.contains("\"ftp\""), "{e}");
    }

    #[test]
    fn duplicates_and_debug_redaction() {
        let mut a = spec("http://h/topic-secret");
        a.secret = Some("0123456789abcdef".into());
        let e = AlertTarget::validate_all(&[a.clone(), a.clone()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "alert target name \"ops\" is used twice: expected unique names"
        );
        let t = AlertTarget::validate(&a).unwrap();
        let d = format!("{t:?}");
        assert!(
            !d.contains("0123456789abcdef") && !d.contains("topic-secret"),
            "{d}"
        );
        assert_eq!(t.redacted_url(), "http://h/…");
        let root = AlertTarget::validate(&spec("http://h:8080")).unwrap();
        assert_eq!(root.redacted_url(), "http://h:8080");
    }
}
