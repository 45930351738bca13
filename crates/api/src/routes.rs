//! Handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::Stream;
use infermon_store::{HistoryQuery, ObservationQuery, RequestQuery, Resolution};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use crate::streams::{Slot, Slots};
use crate::{ApiError, AppState};

const DASHBOARD: &str = include_str!("dashboard.html");

pub async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    let mut points = match st.shared.latest().await {
        Some(s) => s.series(),
        None => Vec::new(),
    };
    points.extend(infermon_detect::active_series(
        &st.shared.open_observations(),
    ));
    let mut body = crate::render(&points);
    if let Some(a) = &st.alerts {
        body.push_str(&crate::alerts::render(&a.snapshot()));
    }
    body.push_str(&crate::histograms::render(
        &st.shared.requests().histograms(),
    ));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

pub async fn snapshot(State(st): State<AppState>) -> Result<Response, ApiError> {
    match st.shared.latest().await {
        Some(s) => Ok(Json(&*s).into_response()),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no sample yet: the agent is taking its first sample",
        )),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A time parameter: `now`, milliseconds since the epoch, or a past offset like `-15m`, `-2h`.
/// `param` names it in the error.
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
        return Ok(now - n * ms);
    }
    v.parse::<i64>().map_err(|_| bad())
}

fn decode(s: &str) -> String {
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

/// The query string's `key=value` pairs, values percent-decoded.
fn query_pairs(q: Option<&str>) -> impl Iterator<Item = (&str, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k, decode(v))
        })
}

pub async fn history(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let (mut metric, mut from, mut to, mut resolution) =
        (None, now - 3_600_000, now, Resolution::Auto);
    let mut labels = Vec::new();
    for (k, v) in query_pairs(q.as_deref()) {
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
    let query = HistoryQuery {
        metric: metric.clone(),
        labels,
        from_ms: from,
        to_ms: to,
        resolution,
    };
    match st.shared.history(query).await {
        Ok(Some(series)) => Ok(Json(serde_json::json!({
            "metric": metric, "from": from, "to": to, "series": series
        }))
        .into_response()),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "history is off: the agent runs without a store",
        )),
        Err(e) => {
            tracing::warn!("history query failed: {e}");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "history query failed; see the agent log",
            ))
        }
    }
}

/// A `limit` parameter: a whole number from 1 to `max`.
fn parse_limit(v: &str, max: usize) -> Result<usize, ApiError> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid limit \"{v}\": expected a whole number from 1 to {max}"
            ))
        })
}

/// Largest `limit` the requests route accepts.
const MAX_REQUESTS: usize = 10_000;

pub async fn requests(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut query = RequestQuery {
        model: None,
        since_ms: None,
        limit: 100,
    };
    for (k, v) in query_pairs(q.as_deref()) {
        match k {
            "model" => query.model = Some(v).filter(|m| !m.is_empty()),
            "since" => query.since_ms = Some(parse_time("since", &v, now)?),
            "limit" => query.limit = parse_limit(&v, MAX_REQUESTS)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter \"{other}\": expected model, since, limit"
                )))
            }
        }
    }
    match st.shared.request_records(query).await {
        Ok(rs) => Ok(Json(serde_json::json!({ "requests": rs })).into_response()),
        Err(e) => {
            tracing::warn!("requests query failed: {e}");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "requests query failed; see the agent log",
            ))
        }
    }
}

/// Seconds a client refused for too many streams is asked to wait.
const STREAM_RETRY_AFTER_S: &str = "5";

pub async fn stream(
    State(st): State<AppState>,
    Extension(slots): Extension<Arc<Slots>>,
) -> Response {
    let Some(slot) = slots.try_acquire() else {
        let max = slots.max();
        tracing::warn!(max, "refused an event stream: {max} already open");
        let mut res = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many event streams open: this agent serves at most {max} at once; close \
                 one or retry later"
            ),
        )
        .into_response();
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(STREAM_RETRY_AFTER_S),
        );
        return res;
    };
    events(&st, slot).into_response()
}

/// Snapshots and observation changes as events; `slot` is held as long as the stream lives.
fn events(st: &AppState, slot: Slot) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let snaps = BroadcastStream::new(st.shared.subscribe()).filter_map(|item| {
        let snap = item.ok()?;
        let data = serde_json::to_string(&*snap).ok()?;
        Some(Ok(Event::default().event("snapshot").data(data)))
    });
    // One `observation` event per change: {"change": "opened"|"updated"|"resolved",
    // "observation": {...}}.
    let obs = BroadcastStream::new(st.shared.subscribe_observations()).filter_map(|item| {
        let change = item.ok()?;
        let data = serde_json::to_string(&*change).ok()?;
        Some(Ok(Event::default().event("observation").data(data)))
    });
    let events = snaps.merge(obs).map(move |e| {
        let _held = &slot;
        e
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Largest `limit` the observations route accepts.
const MAX_OBSERVATIONS: usize = 10_000;

pub async fn observations(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut query = ObservationQuery {
        since_ms: Some(now - 86_400_000),
        active_only: false,
        limit: 200,
    };
    for (k, v) in query_pairs(q.as_deref()) {
        match k {
            "since" => query.since_ms = Some(parse_time("since", &v, now)?),
            "active" => {
                query.active_only = match v.as_str() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid active \"{v}\": expected true or false"
                        )))
                    }
                }
            }
            "limit" => query.limit = parse_limit(&v, MAX_OBSERVATIONS)?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter \"{other}\": expected since, active, limit"
                )))
            }
        }
    }
    match st.shared.observations(query).await {
        Ok(obs) => Ok(Json(serde_json::json!({ "observations": obs })).into_response()),
        Err(e) => {
            tracing::warn!("observations query failed: {e}");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "observations query failed; see the agent log",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
