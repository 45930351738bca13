//! Handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use crate::query;
use crate::streams::{Slot, Slots};
use crate::{ApiError, AppState};

/// The series of the latest snapshot, by name and labels: what `/api/v1/history` can be asked
/// for (a series that stopped being produced may still be stored).
pub async fn series(State(st): State<AppState>) -> Result<Response, ApiError> {
    let Some(snap) = st.shared.latest().await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no sample yet: the agent is taking its first sample",
        ));
    };
    let list: Vec<serde_json::Value> = snap
        .series()
        .iter()
        .map(|p| {
            let labels: serde_json::Map<String, serde_json::Value> = p
                .labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(v.as_str())))
                .collect();
            serde_json::json!({ "name": p.name, "labels": labels, "kind": p.kind })
        })
        .collect();
    Ok(Json(serde_json::json!({ "series": list })).into_response())
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
    body.push_str(&crate::remote::render(&st.remote_write));
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

/// Now, ms since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn history(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = query::history_query(q.as_deref(), now_ms())?;
    let (metric, from, to) = (query.metric.clone(), query.from_ms, query.to_ms);
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

pub async fn requests(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = query::request_query(q.as_deref(), now_ms())?;
    let gaps = query::wants_gaps(q.as_deref())?;
    match st.shared.request_records(query).await {
        Ok(rs) if gaps => {
            // Each record with every gap between its token chunks (stored as f32: µs kept).
            let with: Vec<serde_json::Value> = rs
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    let gaps: Vec<f64> = r
                        .itl_gaps_ms
                        .iter()
                        .map(|g| (g * 1000.0).round() / 1000.0)
                        .collect();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("itl_gaps_ms".into(), gaps.into());
                    }
                    v
                })
                .collect();
            Ok(Json(serde_json::json!({ "requests": with })).into_response())
        }
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

pub async fn observations(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = query::observation_query(q.as_deref(), now_ms())?;
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
