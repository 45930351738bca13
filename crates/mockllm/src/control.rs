//! Per-request control headers: `x-mock-fault`, `x-mock-tokens`, `x-mock-ttft-ms`,
//! `x-mock-itl-ms`.

use std::time::Duration;

use hyper::header::HeaderMap;
use hyper::StatusCode;

/// The faults asked for by `x-mock-fault` (comma-separated, any combination).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    /// `hang`: read the request, never answer.
    pub hang: bool,
    /// `hang-after:K`: send K tokens, then stall forever.
    pub hang_after: Option<usize>,
    /// `die-after:K`: send K tokens, then abort the connection mid-body.
    pub die_after: Option<usize>,
    /// `status:CODE`: answer CODE with an OpenAI-style JSON error body.
    pub status: Option<StatusCode>,
    /// `malformed`: a non-JSON data line mid-stream (a non-JSON body when not streaming).
    pub malformed: bool,
    /// `slow-headers:MS`: wait MS before sending the response headers.
    pub slow_headers: Option<Duration>,
}

/// What the request's headers change for this request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Control {
    pub faults: Faults,
    pub tokens: Option<usize>,
    pub ttft: Option<Duration>,
    pub itl: Option<Duration>,
}

/// The header names, lower case as `http` stores them.
pub(crate) const FAULT_HEADER: &str = "x-mock-fault";
const TOKENS_HEADER: &str = "x-mock-tokens";
const TTFT_HEADER: &str = "x-mock-ttft-ms";
const ITL_HEADER: &str = "x-mock-itl-ms";

const FAULT_HELP: &str = "expected a comma-separated list of hang, hang-after:K, die-after:K, \
                          status:CODE, malformed, slow-headers:MS";

impl Control {
    /// Reads the control headers; the error is a message for a 400 reply.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Control, String> {
        let mut control = Control::default();
        for value in headers.get_all(FAULT_HEADER) {
            let text = value
                .to_str()
                .map_err(|_| format!("{FAULT_HEADER} is not visible ASCII; {FAULT_HELP}"))?;
            parse_faults(text, &mut control.faults)?;
        }
        control.tokens = header_parse(headers, TOKENS_HEADER, |s| {
            s.parse::<usize>().map_err(|e| e.to_string())
        })?;
        control.ttft = header_parse(headers, TTFT_HEADER, parse_ms)?;
        control.itl = header_parse(headers, ITL_HEADER, parse_ms)?;
        Ok(control)
    }
}

fn header_parse<T>(
    headers: &HeaderMap,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| format!("{name} is not visible ASCII"))?;
    parse(text.trim())
        .map(Some)
        .map_err(|e| format!("{name}: '{text}': {e}"))
}

/// Milliseconds, fractional allowed (`0.5`), never negative.
pub(crate) fn parse_ms(text: &str) -> Result<Duration, String> {
    let ms: f64 = text
        .parse()
        .map_err(|_| "expected milliseconds, a non-negative number".to_string())?;
    Duration::try_from_secs_f64(ms / 1000.0)
        .map_err(|_| "expected milliseconds, a non-negative number".to_string())
}

fn parse_faults(text: &str, faults: &mut Faults) -> Result<(), String> {
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, arg) = match item.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (item, None),
        };
        let bad = |why: &str| format!("{FAULT_HEADER}: '{item}': {why}; {FAULT_HELP}");
        let count = |arg: Option<&str>| -> Result<usize, String> {
            arg.ok_or_else(|| bad("missing the count"))?
                .parse::<usize>()
                .map_err(|_| bad("the count is not a non-negative integer"))
        };
        match (name, arg) {
            ("hang", None) => faults.hang = true,
            ("malformed", None) => faults.malformed = true,
            ("none", None) => {}
            ("hang-after", arg) => faults.hang_after = Some(count(arg)?),
            ("die-after", arg) => faults.die_after = Some(count(arg)?),
            ("status", Some(code)) => {
                let code = code
                    .parse::<u16>()
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .ok_or_else(|| bad("not an HTTP status code"))?;
                faults.status = Some(code);
            }
            ("slow-headers", Some(ms)) => {
                faults.slow_headers = Some(parse_ms(ms).map_err(|e| bad(&e))?);
            }
            _ => return Err(bad("unknown fault")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use hyper::header::HeaderValue;

    fn control(pairs: &[(&'static str, &'static str)]) -> Result<Control, String> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        Control::from_headers(&h)
    }

    #[test]
    fn parses_every_fault() {
        let c = control(&[
            (FAULT_HEADER, "hang-after:3, die-after:0,malformed"),
            (FAULT_HEADER, "status:503,slow-headers:12.5,hang"),
            (TOKENS_HEADER, "7"),
            (TTFT_HEADER, "20"),
            (ITL_HEADER, "0.5"),
        ])
        .unwrap();
        assert_eq!(
            c.faults,
            Faults {
                hang: true,
                hang_after: Some(3),
                die_after: Some(0),
                status: Some(StatusCode::SERVICE_UNAVAILABLE),
                malformed: true,
                slow_headers: Some(Duration::from_micros(12_500)),
            }
        );
        assert_eq!(c.tokens, Some(7));
        assert_eq!(c.ttft, Some(Duration::from_millis(20)));
        assert_eq!(c.itl, Some(Duration::from_micros(500)));
    }

    #[test]
    fn rejects_bad_values_with_a_message() {
        for (k, v) in [
            (FAULT_HEADER, "explode"),
            (FAULT_HEADER, "die-after"),
            (FAULT_HEADER, "die-after:x"),
            (FAULT_HEADER, "status:42"),
            (FAULT_HEADER, "slow-headers:-1"),
            (TOKENS_HEADER, "-1"),
            (ITL_HEADER, "NaN"),
        ] {
            let err = control(&[(k, v)]).unwrap_err();
            assert!(err.contains(k), "{err}");
        }
        assert_eq!(control(&[]).unwrap(), Control::default());
    }
}
