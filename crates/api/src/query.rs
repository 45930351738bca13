//! Query strings of the JSON routes: `key=value` pairs with percent-decoded values, and the
//! parameters of `/api/v1/history`, `/api/v1/requests` and `/api/v1/observations` read from
//! them. Pure (the current time is passed in), so the cargo-fuzz target in `crates/api/fuzz`
//! and the tests call the same code as the handlers. Every error is a 400 naming the
//! parameter, the value and what was expected.

use infermon_store::{HistoryQuery, ObservationQuery, RequestQuery, Resolution};

use crate::ApiError;

/// Largest `limit` the requests route accepts.
pub const MAX_REQUESTS: usize = 10_000;

/// Largest `limit` the observations route accepts.
pub const MAX_OBSERVATIONS: usize = 10_000;

/// A time parameter: `now`, milliseconds since the epoch, or a past offset like `-15m`, `-2h`.
/// `param` names it in the error.
///
/// # Errors
///
/// Anything else, naming `param` and `v`.
pub fn parse_time(param: &str, v: &str, now: i64) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "invalid {param} \"{v}\": expected now, milliseconds since the Unix epoch, or an \
             offset like -15m, -2h, -7d"
        ))
    };
    if v == "now" {
        return Ok(now);
    }
    if let Some(rel) = v.strip_prefix('-') {
        let (num, unit) = rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        // A far offset would overflow (a panic in debug builds, a wrapped time in release).
        return n
            .checked_mul(ms)
            .and_then(|back| now.checked_sub(back))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid {param} \"{v}\": the offset reaches past the range of \
                     milliseconds since the Unix epoch; expected a smaller offset like -7d"
                ))
            });
    }
    v.parse::<i64>().map_err(|_| bad())
}

/// Percent-decodes a query value: `+` is a space, `%XX` a byte; a `%` not followed by two
/// hex digits stays as it is; bytes that are not UTF-8 become U+FFFD.
pub fn decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string's `key=value` pairs, values percent-decoded (keys are not). Empty
/// pairs (`a=1&&b=2`) are skipped; a pair without `=` has an empty value.
pub fn query_pairs(q: Option<&str>) -> impl Iterator<Item = (&str, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k, decode(v))
        })
}

/// A `limit` parameter: a whole number from 1 to `max`.
///
/// # Errors
///
/// Anything else, naming the value and the range.
pub fn parse_limit(v: &str, max: usize) -> Result<usize, ApiError> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid limit \"{v}\": expected a whole number from 1 to {max}"
            ))
        })
}

/// `/api/v1/history`'s parameters: `metric` (required), `from` (default an hour before
/// `now`), `to` (default `now`), `resolution` (`auto`, `raw`, `1m`, `1h`) and any number of
/// `label=NAME=VALUE`.
///
/// # Errors
///
/// An unknown parameter, a bad value, no `metric`, or `from` after `to`.
pub fn history_query(q: Option<&str>, now: i64) -> Result<HistoryQuery, ApiError> {
    let (mut metric, mut from, mut to, mut resolution) =
        (None, now - 3_600_000, now, Resolution::Auto);
    let mut labels = Vec::new();
    for (k, v) in query_pairs(q) {
        match k {
            "metric" => metric = Some(v),
            "from" => from = parse_time("from", &v, now)?,
            "to" => to = parse_time("to", &v, now)?,
            "resolution" => {
                resolution = match v.as_str() {
                    "auto" => Resolution::Auto,
                    "raw" => Resolution::Raw,
                    "1m" | "minute" => Resolution::Minute,
                    "1h" | "hour" => Resolution::Hour,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid resolution \"{v}\": expected auto, raw, 1m or 1h"
                        )))
                    }
                }
            }
            "label" => {
                let (lk, lv) = v.split_once('=').ok_or_else(|| {
                    ApiError::bad_request(format!("invalid label \"{v}\": expected NAME=VALUE"))
                })?;
                labels.push((lk.to_string(), lv.to_string()));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter \"{other}\": expected metric, from, to, resolution, label"
                )))
            }
        }
    }
    let metric = metric.filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::bad_request("missing parameter \"metric\", e.g. metric=infermon_wes")
    })?;
    if from > to {
        return Err(ApiError::bad_request(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    Ok(HistoryQuery {
        metric,
        labels,
        from_ms: from,
        to_ms: to,
        resolution,
    })
}

/// `/api/v1/requests`' parameters: `model`, `since`, `limit` (default 100, at most
/// [`MAX_REQUESTS`]); `gaps` is checked here and read by [`wants_gaps`].
///
/// # Errors
///
/// An unknown parameter or a bad value.
pub fn request_query(q: Option<&str>, now: i64) -> Result<RequestQuery, ApiError> {
    let mut query = RequestQuery {
        model: None,
        since_ms: None,
        limit: 100,
    };
    for (k, v) in query_pairs(q) {
        match k {
            "model" => query.model = Some(v).filter(|m| !m.is_empty()),
            "since" => query.since_ms = Some(parse_time("since", &v, now)?),
            "limit" => query.limit = parse_limit(&v, MAX_REQUESTS)?,
            "gaps" => {
                flag("gaps", &v)?; // what it asks for is read by `wants_gaps`
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter \"{other}\": expected model, since, limit, gaps"
                )))
            }
        }
    }
    Ok(query)
}

/// A yes/no parameter: `true`, `1` or empty, or `false`, `0`.
fn flag(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid {name} \"{v}\": expected true or false"
        ))),
    }
}

/// Whether `/api/v1/requests` is asked for every inter-token gap (`gaps=true`).
///
/// # Errors
///
/// A `gaps` value that is not a yes or no.
pub fn wants_gaps(q: Option<&str>) -> Result<bool, ApiError> {
    let mut on = false;
    for (k, v) in query_pairs(q) {
        if k == "gaps" {
            on = flag("gaps", &v)?;
        }
    }
    Ok(on)
}

/// `/api/v1/observations`' parameters: `since` (default a day before `now`), `active`
/// (`true`/`1`/empty or `false`/`0`), `limit` (default 200, at most [`MAX_OBSERVATIONS`]).
///
/// # Errors
///
/// An unknown parameter or a bad value.
pub fn observation_query(q: Option<&str>, now: i64) -> Result<ObservationQuery, ApiError> {
    let mut query = ObservationQuery {
        since_ms: Some(now - 86_400_000),
        active_only: false,
        limit: 200,
    };
    for (k, v) in query_pairs(q) {
        match k {
            "since" => query.since_ms = Some(parse_time("since", &v, now)?),
            "active" => {
                query.active_only = flag("active", &v)?;
            }
            "limit" => query.limit = parse_limit(&v, MAX_OBSERVATIONS)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter \"{other}\": expected since, active, limit"
                )))
            }
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: i64 = 1_747_000_000_000;

    #[test]
    fn times() {
        assert_eq!(parse_time("from", "now", 1000).unwrap(), 1000);
        assert_eq!(parse_time("from", "-2s", 10_000).unwrap(), 8000);
        assert_eq!(parse_time("from", "123", 0).unwrap(), 123);
        let e = parse_time("from", "yesterday", 0).unwrap_err();
        assert!(e.message.contains("invalid from \"yesterday\""));
        assert_eq!(decode("a%3Db+c"), "a=b c");
        assert_eq!(parse_limit("10", 100).unwrap(), 10);
        let e = parse_limit("0", 100).unwrap_err();
        assert!(e
            .message
            .contains("invalid limit \"0\": expected a whole number from 1 to 100"));
    }

    #[test]
    fn far_offsets_are_errors_not_overflows() {
        // Found by the fuzz target (corpus/query/crash_parse_time_overflow): the offset
        // times the unit overflowed i64.
        let e = parse_time("from", "-1111111111111111131m", NOW).unwrap_err();
        assert!(
            e.message.contains("invalid from \"-1111111111111111131m\"")
                && e.message.contains("offset reaches past"),
            "{}",
            e.message
        );
        assert!(parse_time("since", &format!("-{}s", i64::MAX), NOW).is_err());
        let e = history_query(Some("metric=m&from=-9999999999999999d"), NOW).unwrap_err();
        assert!(e.message.contains("invalid from"), "{}", e.message);
        // The largest offset that fits still parses.
        let n = i64::MAX / 86_400_000;
        assert_eq!(
            parse_time("from", &format!("-{n}d"), 0).unwrap(),
            -n * 86_400_000
        );
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(decode("%41%2b%2B"), "A++");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("%C3%A9t%C3%A9"), "été");
        assert_eq!(decode("%FF"), "\u{FFFD}");
        let pairs: Vec<_> = query_pairs(Some("a=1&&b&c=x=y")).collect();
        assert_eq!(
            pairs,
            [("a", "1".into()), ("b", String::new()), ("c", "x=y".into())]
        );
        assert_eq!(query_pairs(None).count(), 0);
    }

    #[test]
    fn history_parameters() {
        let q = history_query(
            Some("metric=infermon_gpu_power_watts&from=-2h&to=now&resolution=1m&label=gpu%3D0&label=model=qwen%2B1"),
            NOW,
        )
        .unwrap();
        assert_eq!(q.metric, "infermon_gpu_power_watts");
        assert_eq!((q.from_ms, q.to_ms), (NOW - 7_200_000, NOW));
        assert_eq!(q.resolution, Resolution::Minute);
        assert_eq!(
            q.labels,
            [
                ("gpu".to_string(), "0".to_string()),
                ("model".to_string(), "qwen+1".to_string())
            ]
        );
        let q = history_query(Some("metric=m"), NOW).unwrap();
        assert_eq!((q.from_ms, q.to_ms), (NOW - 3_600_000, NOW));
        for (query, want) in [
            ("from=-1h", "missing parameter \"metric\""),
            ("metric=", "missing parameter \"metric\""),
            ("metric=m&from=now&to=-1m", "is after to"),
            ("metric=m&resolution=5m", "invalid resolution \"5m\""),
            (
                "metric=m&label=gpu",
                "invalid label \"gpu\": expected NAME=VALUE",
            ),
            ("metric=m&step=10", "unknown parameter \"step\""),
            ("metric=m&to=tomorrow", "invalid to \"tomorrow\""),
        ] {
            let e = history_query(Some(query), NOW).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(e.message.contains(want), "{query}: {}", e.message);
        }
    }

    #[test]
    fn request_and_observation_parameters() {
        let q = request_query(Some("model=llama3.2%3A1b&since=-15m&limit=5"), NOW).unwrap();
        assert_eq!(q.model.as_deref(), Some("llama3.2:1b"));
        assert_eq!((q.since_ms, q.limit), (Some(NOW - 900_000), 5));
        assert_eq!(request_query(Some("model="), NOW).unwrap().model, None);
        assert_eq!(request_query(None, NOW).unwrap().limit, 100);
        let e = request_query(Some("limit=10001"), NOW).unwrap_err();
        assert!(e.message.contains("from 1 to 10000"), "{}", e.message);
        assert!(request_query(Some("active=1"), NOW).is_err());
        assert_eq!(
            request_query(Some("gaps=true&limit=3"), NOW).unwrap().limit,
            3
        );
        let e = request_query(Some("gaps=maybe"), NOW).unwrap_err();
        assert!(
            e.message.contains("invalid gaps \"maybe\""),
            "{}",
            e.message
        );
        assert!(wants_gaps(Some("limit=3&gaps=1")).unwrap());
        assert!(wants_gaps(Some("gaps")).unwrap());
        assert!(!wants_gaps(Some("gaps=false")).unwrap());
        assert!(!wants_gaps(None).unwrap());

        let q = observation_query(Some("active&limit=3"), NOW).unwrap();
        assert_eq!((q.active_only, q.limit), (true, 3));
        assert_eq!(q.since_ms, Some(NOW - 86_400_000));
        let q = observation_query(Some("active=false&since=123"), NOW).unwrap();
        assert_eq!((q.active_only, q.since_ms), (false, Some(123)));
        let e = observation_query(Some("active=maybe"), NOW).unwrap_err();
        assert!(e.message.contains("invalid active \"maybe\""));
        assert!(observation_query(Some("model=x"), NOW).is_err());
    }
}
