//! Ollama: `/api/version` (health and build) and `/api/ps` (models in memory, their size, the
//! part of it in GPU memory, context and keep-alive expiry).
//!
//! Ollama serves no token counters and no Prometheus endpoint, so `metrics` stays unavailable
//! with a reason; request latency and tokens can only come from infermon's proxy.

use std::time::Duration;

use infermon_model::detail::ModelRaw;
use infermon_model::raw::{EngineHealth, EngineKind, EngineProps, EngineRaw, Reading};
use serde_json::Value;

use crate::http::{ok_status, EngineHttp, Fetched};

/// The note every engine without token counters carries until a proxy fronts it; the agent
/// matches this exact text to remove it when infermon's proxy is in front of the engine.
pub const NO_PROXY_NOTE: &str =
    "request latency and tokens come from infermon proxy; none is in front of this engine";

/// Why `metrics` is unavailable for Ollama.
pub const NO_COUNTERS_REASON: &str =
    "ollama exposes no token counters; request metrics come from infermon's proxy";

/// Polls one Ollama server.
#[derive(Debug, Clone)]
pub struct Ollama {
    origin: String,
    http: EngineHttp,
}

impl Ollama {
    /// A collector for the server at `base` (e.g. `http://127.0.0.1:11434`); every request is
    /// bounded by `timeout`.
    pub fn new(base: &str, origin: &str, timeout: Duration) -> Self {
        Ollama {
            origin: origin.to_string(),
            http: EngineHttp::new(base, timeout),
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    /// Reads `/api/version` and `/api/ps` concurrently.
    pub async fn read(&self) -> EngineRaw {
        let (version, ps) = tokio::join!(self.http.get("/api/version"), self.http.get("/api/ps"));
        let mut raw = EngineRaw::blank(EngineKind::Ollama, self.base(), &self.origin, "not read");
        raw.slots = Reading::unavailable("ollama has no slots endpoint");
        raw.metrics = Reading::unavailable(NO_COUNTERS_REASON);
        raw.notes.push(NO_PROXY_NOTE.to_string());

        raw.health =
            Reading::from_result(version.clone().map(|(s, _, b)| health_from_version(s, &b)));
        let build = version
            .ok()
            .filter(|(s, _, _)| *s == 200)
            .and_then(|(_, _, b)| parse_version(&b).ok());

        let models = checked(&self.http, "/api/ps", ps, parse_ps);
        raw.props = match &models {
            Ok(list) => Reading::ok(props_from(list, build)),
            Err(e) => Reading::unavailable(e.clone()),
        };
        raw.models = Some(Reading::from_result(models));
        raw
    }
}

/// A fetched body checked for 200 and parsed, the error naming the URL (shared by the
/// collectors of this crate that read JSON).
pub(crate) fn checked<T>(
    http: &EngineHttp,
    path: &str,
    fetched: Fetched,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, String> {
    let url = http.url(path);
    let (status, _, body) = fetched?;
    ok_status(&url, status, &body)?;
    parse(&body).map_err(|e| format!("{url}: {e}"))
}

fn props_from(models: &[ModelRaw], build: Option<String>) -> EngineProps {
    EngineProps {
        model: joined_names(models.iter().map(|m| m.name.as_str())),
        model_path: None,
        n_ctx: match models {
            [only] => only.context_length,
            _ => None,
        },
        total_slots: None,
        build_info: build,
    }
}

/// Names joined with `, `, or `none loaded` when there are none.
pub fn joined_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none loaded".to_string()
    } else {
        v.join(", ")
    }
}

/// `/api/version` → health: a 200 with a version string is `ok`; anything else says what came.
pub fn health_from_version(status: u16, body: &str) -> EngineHealth {
    let word = match (status, parse_version(body)) {
        (200, Ok(_)) => "ok".to_string(),
        (200, Err(e)) => format!("http 200 but {e}"),
        (s, _) => format!("http {s}: \"{}\"", head(body)),
    };
    EngineHealth {
        http_status: status,
        status: word,
    }
}

/// `/api/version` body `{"version":"0.5.7"}` → the version.
pub fn parse_version(body: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("/api/version is not JSON ({e}): \"{}\"", head(body)))?;
    v.get("version")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("/api/version has no \"version\" string: \"{}\"", head(body)))
}

/// `/api/ps` body → the models in memory, each in state `loaded`.
pub fn parse_ps(body: &str) -> Result<Vec<ModelRaw>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): \"{}\"", head(body)))?;
    let list = match v.get("models") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(Value::Null) => &[],
        _ => return Err(format!("no \"models\" array: \"{}\"", head(body))),
    };
    list.iter().map(ps_model).collect()
}

fn ps_model(m: &Value) -> Result<ModelRaw, String> {
    let text = |p: &str| m.pointer(p).and_then(Value::as_str).map(str::to_string);
    let name = text("/name")
        .or_else(|| text("/model"))
        .ok_or_else(|| format!("a model without \"name\": {}", head(&m.to_string())))?;
    let expires_unix_ms = match m.get("expires_at").and_then(Value::as_str) {
        None => None,
        Some(s) => expiry_ms(s).map_err(|e| format!("model {name}: expires_at: {e}"))?,
    };
    Ok(ModelRaw {
        state: "loaded".to_string(),
        size_bytes: m.get("size").and_then(Value::as_u64),
        vram_bytes: m.get("size_vram").and_then(Value::as_u64),
        context_length: m
            .get("context_length")
            .and_then(Value::as_u64)
            .or_else(|| m.pointer("/details/context_length").and_then(Value::as_u64)),
        expires_unix_ms,
        quantization: text("/details/quantization_level").filter(|s| !s.is_empty()),
        parameter_size: text("/details/parameter_size").filter(|s| !s.is_empty()),
        upstream: None,
        name,
    })
}

/// Keep-alive expiry: Go's zero time (`0001-01-01T00:00:00Z`) means none.
fn expiry_ms(s: &str) -> Result<Option<i64>, String> {
    if s.starts_with("0001-01-01") {
        return Ok(None);
    }
    parse_rfc3339_ms(s).map(Some)
}

/// RFC 3339 date-time (`2024-06-04T14:38:31.83753-07:00`, `…Z`) → Unix milliseconds.
/// Fractional seconds of any length are truncated to milliseconds; the offset is applied.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let bad = |what: &str| format!("\"{s}\" is not an RFC 3339 date-time: {what}");
    let b = s.as_bytes();
    let num = |at: usize, len: usize| -> Result<i64, String> {
        let part = s.get(at..at + len).unwrap_or("");
        if part.len() != len || !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad(&format!("expected {len} digits at byte {at}")));
        }
        part.parse::<i64>().map_err(|e| bad(&e.to_string()))
    };
    let sep = |at: usize, ok: &[u8]| match b.get(at) {
        Some(c) if ok.contains(c) => Ok(()),
        _ => Err(bad(&format!(
            "expected one of {:?} at byte {at}",
            ok_chars(ok)
        ))),
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    sep(10, b"Tt ")?;
    let hour = num(11, 2)?;
    sep(13, b":")?;
    let minute = num(14, 2)?;
    sep(16, b":")?;
    let second = num(17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("no such time"));
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad("no digits after '.'"));
        }
        let frac = s.get(start..i).unwrap_or("");
        let ms3: String = frac.chars().chain("00".chars()).take(3).collect();
        millis = ms3.parse::<i64>().map_err(|e| bad(&e.to_string()))?;
    }
    let offset_minutes = match s.get(i..).unwrap_or("") {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            sep(i + 3, b":")?;
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if rest.starts_with('-') {
                -m
            } else {
                m
            }
        }
        rest => return Err(bad(&format!("offset \"{rest}\" is not Z or ±hh:mm"))),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(secs * 1_000 + millis)
}

fn ok_chars(ok: &[u8]) -> Vec<char> {
    ok.iter().map(|&c| c as char).collect()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn head(body: &str) -> String {
    body.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        let ok = |s: &str| parse_rfc3339_ms(s).unwrap();
        assert_eq!(ok("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ok("2024-06-04T14:38:31.83753-07:00"), 1_717_537_111_837);
        assert_eq!(ok("2025-01-31T23:59:59.999999999+05:30"), 1_738_348_199_999);
        assert_eq!(ok("2318-11-07T10:15:02.123Z"), 11_008_606_502_123);
        assert_eq!(ok("1969-12-31T23:59:59.5Z"), -500);
        assert_eq!(ok("2024-02-29t00:00:00z"), 1_709_164_800_000);
        assert_eq!(ok("2024-02-29 00:00:00.1+00:00"), 1_709_164_800_100);
    }

    #[test]
    fn rfc3339_errors_quote_the_value() {
        for s in [
            "",
            "2024-06-04",
            "2024-06-04T14:38:31",
            "2024-06-04T14:38:31.Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-06-04T24:00:00Z",
            "2024-06-04T14:38:31+0700",
            "2024-06-04T14:38:31 UTC",
            "２024-06-04T14:38:31Z",
        ] {
            let e = parse_rfc3339_ms(s).unwrap_err();
            assert!(e.contains(&format!("\"{s}\"")), "{s}: {e}");
        }
    }

    #[test]
    fn version_and_health() {
        assert_eq!(parse_version(r#"{"version":"0.5.7"}"#).unwrap(), "0.5.7");
        assert_eq!(
            health_from_version(200, r#"{"version":"0.5.7"}"#).status,
            "ok"
        );
        let h = health_from_version(200, "<html>login</html>");
        assert!(h.status.contains("not JSON"), "{}", h.status);
        let h = health_from_version(502, "bad gateway");
        assert_eq!(
            (h.http_status, h.status.as_str()),
            (502, "http 502: \"bad gateway\"")
        );
    }

    #[test]
    fn ps_edge_cases() {
        assert!(parse_ps(r#"{"models":null}"#).unwrap().is_empty());
        assert!(parse_ps(r#"{"models":[]}"#).unwrap().is_empty());
        assert!(parse_ps("[]").unwrap_err().contains("\"models\""));
        let m =
            parse_ps(r#"{"models":[{"name":"a","expires_at":"0001-01-01T00:00:00Z"}]}"#).unwrap();
        assert_eq!(m[0].expires_unix_ms, None);
        assert_eq!(m[0].size_bytes, None);
        let e = parse_ps(r#"{"models":[{"name":"a","expires_at":"soon"}]}"#).unwrap_err();
        assert!(
            e.contains("model a: expires_at") && e.contains("\"soon\""),
            "{e}"
        );
    }
}
