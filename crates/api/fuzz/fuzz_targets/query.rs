//! Fuzz target: the API's query-string parsing (`infermon_api::query`). Run with
//! `cargo +nightly fuzz run query` from `crates/api`.
//!
//! Byte 0 picks the mode; the rest must be UTF-8 (as axum's `RawQuery` is).
//! - Even: the rest is a raw query string, given to the three routes' parsers and to
//!   `parse_time` for every value. Nothing may panic, and what parses must be in range: a
//!   history's metric is non-empty, from ≤ to, there are no more labels than `label` pairs; a
//!   limit is within 1..=max; an offset time is not after now; a number is itself.
//! - Odd: the rest is split on `\n` into a metric, a label name and a label value, which are
//!   percent-encoded into a history query; parsing it must give them back unchanged (a
//!   `=` in the label name is dropped, since the first `=` splits name from value).
#![no_main]

use infermon_api::query::{
    decode, history_query, observation_query, parse_time, query_pairs, request_query,
    MAX_OBSERVATIONS, MAX_REQUESTS,
};
use libfuzzer_sys::fuzz_target;

/// A realistic current time (ms since the epoch), as the handlers pass.
const NOW: i64 = 1_747_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    if mode & 1 == 0 {
        raw(s);
    } else {
        round_trip(s);
    }
});

fn raw(q: &str) {
    let pairs: Vec<(&str, String)> = query_pairs(Some(q)).collect();
    assert!(pairs.len() <= q.matches('&').count() + 1);
    for (k, v) in &pairs {
        assert!(!k.contains('&') && !k.contains('='), "key {k:?}");
        match parse_time("from", v, NOW) {
            Ok(t) if v == "now" => assert_eq!(t, NOW),
            Ok(t) if v.starts_with('-') => assert!(t <= NOW, "{v:?} gave {t}"),
            Ok(t) => assert_eq!(Ok(t), v.parse::<i64>(), "{v:?}"),
            Err(e) => assert!(e.message.contains("invalid from"), "{}", e.message),
        }
    }
    match history_query(Some(q), NOW) {
        Ok(h) => {
            assert!(!h.metric.is_empty());
            assert!(h.from_ms <= h.to_ms);
            assert!(h.labels.len() <= pairs.iter().filter(|(k, _)| *k == "label").count());
        }
        Err(e) => assert_eq!(e.status.as_u16(), 400, "{}", e.message),
    }
    match request_query(Some(q), NOW) {
        Ok(r) => {
            assert!((1..=MAX_REQUESTS).contains(&r.limit));
            assert!(r.model.as_deref() != Some(""));
        }
        Err(e) => assert_eq!(e.status.as_u16(), 400, "{}", e.message),
    }
    match observation_query(Some(q), NOW) {
        Ok(o) => assert!((1..=MAX_OBSERVATIONS).contains(&o.limit)),
        Err(e) => assert_eq!(e.status.as_u16(), 400, "{}", e.message),
    }
}

/// Percent-encodes everything but unreserved characters; spaces become `+`.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn round_trip(s: &str) {
    let mut parts = s.splitn(3, '\n');
    let metric = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default().replace('=', "");
    let value = parts.next().unwrap_or_default();
    assert_eq!(decode(&encode(s)), s);
    let q = format!(
        "metric={}&label={}={}&resolution=raw&from=-1h",
        encode(metric),
        encode(&name),
        encode(value)
    );
    match history_query(Some(&q), NOW) {
        Ok(h) => {
            assert_eq!(h.metric, metric);
            assert_eq!(h.labels, [(name, value.to_string())]);
            assert_eq!((h.from_ms, h.to_ms), (NOW - 3_600_000, NOW));
        }
        Err(e) => assert!(
            metric.is_empty() && e.message.contains("missing parameter \"metric\""),
            "{q:?}: {}",
            e.message
        ),
    }
}
