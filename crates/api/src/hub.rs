//! The hub's HTTP API: join and push (each with its own token), and the fleet's read routes
//! (the hub's read token off loopback, like the agent's API).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use infermon_fleet::push::JoinRequest;
use infermon_fleet::RouteSettings;
use infermon_hub::{Hub, HubError};
use tokio::sync::Semaphore;

use crate::guard::{bearer, check, constant_time_eq};
use crate::query::{history_query, query_pairs};
use crate::routes::now_ms;
use crate::ApiError;

/// What the hub's router serves from.
#[derive(Clone)]
pub struct HubState {
    /// The hub.
    pub hub: Arc<Hub>,
    /// Bearer token for the read routes (`None`: none asked, loopback only).
    pub token: Option<Arc<str>>,
    /// Host names allowed besides loopback names and IP literals.
    pub allowed_hosts: Arc<[String]>,
    /// The routing score's knobs.
    pub route: Arc<RouteSettings>,
    /// Alert delivery counters for `/metrics`, when `--alert` targets are set.
    pub alerts: Option<infermon_alert::AlertStatsHandle>,
    /// How many pushes and folds touch the node stores at once ([`write_slots`]).
    pub writes: Arc<WriteSlots>,
}

/// Limits on the blocking store work the hub runs at once. A push waits for a slot as a
/// task, not as a thread: unbounded, a thousand nodes' pushes became hundreds of threads
/// competing for two cores and queueing behind whichever held a lock when it was
/// descheduled. Folds (and the checkpoint after each) have slots of their own, so a fold
/// that waits on the disk never holds a push back (docs/PERFORMANCE.md, "Hub scale").
#[derive(Debug)]
pub struct WriteSlots {
    push: Semaphore,
    fold: Semaphore,
}

/// Pushes: four per core (a push mostly waits on SQLite's file writes, not the CPU); folds:
/// one per core.
pub fn write_slots() -> Arc<WriteSlots> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Arc::new(WriteSlots {
        push: Semaphore::new(cores.max(2) * 4),
        fold: Semaphore::new(cores.max(2)),
    })
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        ApiError::new(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.message,
        )
    }
}

/// The hub's router.
pub fn hub_app(state: HubState) -> Router {
    Router::new()
        .route("/api/v1/hub/join", post(join))
        .route("/api/v1/hub/push", post(push))
        .route("/api/v1/fleet/nodes", get(nodes))
        .route("/api/v1/fleet/leaderboard", get(board))
        .route("/api/v1/fleet/observations", get(observations))
        .route("/api/v1/fleet/history", get(history))
        .route("/api/v1/fleet/node", get(node))
        .route("/api/v1/route", get(route))
        .route("/metrics", get(metrics))
        .route("/", get(crate::assets::hub_index))
        .route("/assets/{version}/{name}", get(crate::assets::asset))
        .fallback(crate::routes::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Host and Origin checks on every route; the read token on every route but join and push,
/// which carry their own, and the page (`/`, `/assets/…`).
async fn guard(State(st): State<HubState>, req: Request, next: Next) -> Response {
    if let Err(e) = check(req.method(), req.headers(), &st.allowed_hosts) {
        return e.into_response();
    }
    // Join and push carry their own tokens; the page's static files carry no data.
    let own_auth = (req.method() == Method::POST && req.uri().path().starts_with("/api/v1/hub/"))
        || crate::assets::is_page(req.uri().path());
    if let Some(token) = st.token.as_ref().filter(|_| !own_auth) {
        if !bearer(req.headers()).is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
        {
            return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(req).await
}

fn closed(e: tokio::sync::AcquireError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("hub shutting down: {e}"),
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("hub task: {e}")))?
        .map_err(ApiError::from)
}

async fn join(
    State(st): State<HubState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let given = bearer(&headers).unwrap_or("").to_string();
    let req: JoinRequest = serde_json::from_slice(&body).map_err(|e| {
        st.hub.stats.refused.fetch_add(1, Ordering::Relaxed);
        ApiError::bad_request(format!("expected a JSON body {{\"node\": NAME}}: {e}"))
    })?;
    let hub = st.hub.clone();
    let reply = blocking(move || hub.join(&given, &req.node, now_ms())).await?;
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

async fn push(
    State(st): State<HubState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(token) = bearer(&headers).map(str::to_string) else {
        st.hub.stats.refused.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing node token: expected Authorization: Bearer NODE_TOKEN (join first)",
        ));
    };
    let snappy = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok("snappy")) => true,
        Some(other) => {
            st.hub.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding {other:?}: expected snappy or none"),
            ));
        }
    };
    let hub = st.hub.clone();
    let (node, reply) = {
        let _slot = st.writes.push.acquire().await.map_err(closed)?;
        blocking(move || hub.push(&token, &body, snappy, now_ms())).await?
    };
    // Folding a node's pending rounds is not the push's business: it runs after the answer.
    if st.hub.fold_due(&node) {
        let (hub, writes) = (st.hub.clone(), st.writes.clone());
        tokio::spawn(async move {
            let Ok(_slot) = writes.fold.acquire().await else {
                return;
            };
            let r = tokio::task::spawn_blocking(move || hub.fold(&node)).await;
            if let Ok(Err(e)) = r {
                tracing::warn!(status = e.status, "hub: {}", e.message);
            }
        });
    }
    Ok(Json(reply).into_response())
}

/// The query's `model` (optional) after checking that nothing else was given.
fn model_param(q: Option<&str>) -> Result<Option<String>, ApiError> {
    let mut model = None;
    for (k, v) in query_pairs(q) {
        match k {
            "model" if !v.is_empty() => model = Some(v),
            "model" => return Err(ApiError::bad_request("empty model: expected a model name")),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter \"{other}\": expected model"
                )))
            }
        }
    }
    Ok(model)
}

async fn nodes(State(st): State<HubState>) -> Result<Response, ApiError> {
    let hub = st.hub.clone();
    let nodes = blocking(move || hub.nodes(now_ms())).await?;
    Ok(Json(serde_json::json!({ "nodes": nodes })).into_response())
}

async fn board(State(st): State<HubState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let model = model_param(q.as_deref())?;
    let hub = st.hub.clone();
    let b = blocking(move || hub.leaderboard(model.as_deref(), now_ms())).await?;
    Ok(Json(b).into_response())
}

async fn observations(State(st): State<HubState>) -> Result<Response, ApiError> {
    let hub = st.hub.clone();
    let obs = blocking(move || hub.observations(now_ms())).await?;
    Ok(Json(serde_json::json!({ "observations": obs })).into_response())
}

/// How many candidates a route answer lists unless `?candidates=` says otherwise.
pub const ROUTE_CANDIDATES: usize = 10;

/// `?model=M[&candidates=N|all]` of `/api/v1/route`.
fn route_params(q: Option<&str>) -> Result<(String, Option<usize>), ApiError> {
    let (mut model, mut keep) = (None, Some(ROUTE_CANDIDATES));
    for (k, v) in query_pairs(q) {
        match k {
            "model" if !v.is_empty() => model = Some(v),
            "model" => return Err(ApiError::bad_request("empty model: expected a model name")),
            "candidates" if v == "all" => keep = None,
            "candidates" => {
                keep = Some(v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "bad candidates \"{v}\": expected a count of nodes (0 or more) or all"
                    ))
                })?)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter \"{other}\": expected model or candidates"
                )))
            }
        }
    }
    let model =
        model.ok_or_else(|| ApiError::bad_request("missing model: expected ?model=NAME"))?;
    Ok((model, keep))
}

/// `/api/v1/route`: the choice and the first [`ROUTE_CANDIDATES`] candidates (`candidates=N`
/// or `all` for more); `candidates_total` counts every node considered.
async fn route(State(st): State<HubState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let (model, keep) = route_params(q.as_deref())?;
    let (hub, settings) = (st.hub.clone(), st.route.clone());
    match blocking(move || hub.route(&model, &settings, now_ms())).await? {
        Ok(mut choice) => {
            if let Some(n) = keep {
                choice.keep_candidates(n);
            }
            Ok(Json(choice).into_response())
        }
        Err(mut none) => {
            if let Some(n) = keep {
                none.keep_candidates(n);
            }
            Ok((StatusCode::SERVICE_UNAVAILABLE, Json(none)).into_response())
        }
    }
}

/// `/api/v1/fleet/history`: the agent's `/api/v1/history` parameters plus `node`.
async fn history(State(st): State<HubState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let mut node = None;
    let mut rest = Vec::new();
    for pair in q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("node", v)) => node = Some(crate::query::decode(v)),
            _ => rest.push(pair),
        }
    }
    let node = node.ok_or_else(|| ApiError::bad_request("missing node: expected ?node=NAME"))?;
    let rest = rest.join("&");
    let query = history_query(Some(&rest), now_ms())?;
    let (metric, from, to) = (query.metric.clone(), query.from_ms, query.to_ms);
    let (hub, n) = (st.hub.clone(), node.clone());
    let series = blocking(move || hub.history(&n, &query)).await?;
    Ok(Json(serde_json::json!({
        "node": node, "metric": metric, "from": from, "to": to, "series": series
    }))
    .into_response())
}

/// `GET /api/v1/fleet/node?name=N`: `{"name", "last_seen_unix_ms", "interval_seconds",
/// "snapshot", "observations"}`, the node's latest snapshot and open observations as its agent
/// serves them (what `infermon top --node` reads).
async fn node(State(st): State<HubState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let mut name = None;
    for (k, v) in query_pairs(q.as_deref()) {
        match k {
            "name" if !v.is_empty() => name = Some(v),
            other => {
                return Err(ApiError::bad_request(format!(
                    "parameter \"{other}\" (value \"{v}\"): expected name=NODE"
                )))
            }
        }
    }
    let name = name.ok_or_else(|| ApiError::bad_request("missing name: expected ?name=NODE"))?;
    let hub = st.hub.clone();
    let n = blocking(move || hub.node(&name)).await?;
    Ok(Json(n).into_response())
}

async fn metrics(State(st): State<HubState>) -> Result<Response, ApiError> {
    let hub = st.hub.clone();
    let nodes = blocking(move || hub.nodes(now_ms())).await?;
    let s = &st.hub.stats;
    let mut out = String::new();
    let counters = [
        (
            "infermon_hub_pushes_total",
            "Push requests stored.",
            &s.pushes,
        ),
        (
            "infermon_hub_samples_accepted_total",
            "Samples stored.",
            &s.accepted,
        ),
        (
            "infermon_hub_samples_duplicate_total",
            "Samples the hub already held (sent again).",
            &s.duplicates,
        ),
        (
            "infermon_hub_requests_refused_total",
            "Join and push requests refused.",
            &s.refused,
        ),
        (
            "infermon_hub_samples_refused_total",
            "Pushed samples refused one by one (time too far ahead, raw and snapshot disagree).",
            &s.samples_refused,
        ),
        (
            "infermon_hub_joins_total",
            "Nodes that joined since start.",
            &s.joins,
        ),
    ];
    for (name, help, c) in counters {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            c.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# HELP infermon_fleet_node_up Whether the node pushed within three intervals (1), else 0.\n# TYPE infermon_fleet_node_up gauge\n");
    for n in &nodes {
        let up = u8::from(n.liveness == infermon_fleet::Liveness::Up);
        out.push_str(&format!(
            "infermon_fleet_node_up{{node=\"{}\"}} {up}\n",
            n.name
        ));
    }
    out.push_str("# HELP infermon_fleet_wes_penalized Penalized WES of the node (absent when unavailable).\n# TYPE infermon_fleet_wes_penalized gauge\n");
    for n in &nodes {
        if let Some(w) = n.wes_penalized {
            out.push_str(&format!(
                "infermon_fleet_wes_penalized{{node=\"{}\"}} {w}\n",
                n.name
            ));
        }
    }
    if let Some(a) = &st.alerts {
        out.push_str(&crate::alerts::render(&a.snapshot()));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code

    use super::*;
    use tower::ServiceExt;

    const JOIN: &str = "join-token-0123456789";

    fn app(dir: &std::path::Path, token: Option<&str>) -> Router {
        let hub = Hub::open(dir, JOIN, infermon_store::Retention::default()).unwrap();
        hub_app(HubState {
            hub: Arc::new(hub),
            token: token.map(Into::into),
            allowed_hosts: Vec::new().into(),
            route: Arc::new(RouteSettings::default()),
            alerts: None,
            writes: write_slots(),
        })
    }

    async fn call(
        app: Router,
        method: &str,
        uri: &str,
        pairs: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:9465");
        for (k, v) in pairs {
            req = req.header(*k, *v);
        }
        let res = app
            .oneshot(req.body(axum::body::Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).to_string())
    }

    #[tokio::test]
    async fn the_read_token_guards_the_fleet_views_but_not_the_page_join_or_push() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), Some("read-token"));
        let (s, _) = call(app.clone(), "GET", "/api/v1/fleet/nodes", &[], "").await;
        assert_eq!(s, 401);
        let auth = [("authorization", "Bearer read-token")];
        let (s, body) = call(app.clone(), "GET", "/api/v1/fleet/nodes", &auth, "").await;
        assert_eq!((s, body.as_str()), (200, "{\"nodes\":[]}"));
        let (s, page) = call(app.clone(), "GET", "/", &[], "").await;
        assert_eq!(s, 200);
        assert!(page.contains("<title>infermon hub</title>"), "{page}");
        let join = [
            ("authorization", "Bearer join-token-0123456789"),
            ("content-type", "application/json"),
        ];
        let (s, body) = call(
            app.clone(),
            "POST",
            "/api/v1/hub/join",
            &join,
            r#"{"node":"edge-1"}"#,
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let push = [
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/json".to_string()),
        ];
        let push: Vec<(&str, &str)> = push.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, body) = call(app.clone(), "POST", "/api/v1/hub/push", &push, "[]").await;
        assert_eq!(
            s, 400,
            "an empty batch is refused, not unauthorized: {body}"
        );
        let (s, body) = call(app.clone(), "POST", "/api/v1/hub/push", &push, "{").await;
        assert_eq!(s, 400, "{body}");
        let (s, _) = call(app, "GET", "/api/v1/route", &auth, "").await;
        assert_eq!(s, 400, "route without a model");
    }

    #[test]
    fn route_parameters_say_how_many_candidates() {
        let p = |q: &str| route_params(Some(q)).map_err(|e| e.message);
        assert_eq!(p("model=m").unwrap(), ("m".into(), Some(ROUTE_CANDIDATES)));
        assert_eq!(p("model=m&candidates=3").unwrap(), ("m".into(), Some(3)));
        assert_eq!(p("candidates=all&model=m").unwrap(), ("m".into(), None));
        let e = p("model=m&candidates=-1").unwrap_err();
        assert!(e.contains("\"-1\"") && e.contains("or all"), "{e}");
        assert!(p("candidates=2").unwrap_err().contains("missing model"));
        assert!(p("model=m&top=2").unwrap_err().contains("\"top\""));
    }

    #[tokio::test]
    async fn a_foreign_host_is_refused_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let req = axum::http::Request::builder()
            .uri("/api/v1/fleet/nodes")
            .header("host", "evil.example")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app(dir.path(), None).oneshot(req).await.unwrap();
        assert_eq!(res.status().as_u16(), 421);
    }
}
