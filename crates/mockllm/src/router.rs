//! A constructed stand-in for a model-routing server — llama-swap or Ollama — for tests of
//! `infermon bench sweep --url … --models …`, where neither can run. It answers the routes
//! infermon reads, shaped after their sources (see `shared/reference/engines-and-hardware.md`):
//!
//! | kind | routes |
//! |---|---|
//! | llama-swap | `GET /v1/models`, `GET /running` (`model`, `state: ready`, `cmd` with `-m FILE`, `proxy`), `POST /api/models/unload/NAME` |
//! | Ollama | `GET /api/tags` (`name`, `size`), `GET /api/ps`, `POST /api/show` (`modelfile` `FROM FILE`, `details.quantization_level`, `model_info."general.parameter_count"`), `POST /api/generate` with `keep_alive: 0` (unload) |
//!
//! and forwards every inference request (`POST /v1/chat/completions`, `/v1/completions`,
//! `/api/chat`, `/api/generate`) to the upstream serving the model its body names, streaming
//! the answer back. A request for a model loads it (llama-swap: in place of the one loaded
//! before, as a swap group does). Every request line is logged and every unload recorded, so
//! a test can check what infermon asked for. Anything else is a 404.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Which server to stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// llama-swap.
    LlamaSwap,
    /// Ollama.
    Ollama,
}

/// One model the router offers.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedModel {
    /// Its name.
    pub name: String,
    /// Base URL of the server that runs it (`http://127.0.0.1:PORT`).
    pub upstream: String,
    /// Quantization Ollama's `/api/show` reports.
    pub quant: Option<String>,
    /// Parameter count Ollama's `/api/show` reports.
    pub parameters: Option<u64>,
    /// The GGUF file (llama-swap's `cmd`, Ollama's `FROM`).
    pub file: Option<PathBuf>,
    /// Size in `/api/tags`.
    pub size_bytes: Option<u64>,
}

impl RoutedModel {
    /// A model with only a name and an upstream.
    pub fn new(name: &str, upstream: &str) -> Self {
        RoutedModel {
            name: name.to_string(),
            upstream: upstream.trim_end_matches('/').to_string(),
            quant: None,
            parameters: None,
            file: None,
            size_bytes: None,
        }
    }
}

struct State {
    kind: RouterKind,
    models: Vec<RoutedModel>,
    loaded: Mutex<Vec<String>>,
    log: Mutex<Vec<String>>,
    unloaded: Mutex<Vec<String>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A running router.
pub struct Router {
    url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Router {
    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request it got, as `METHOD PATH`.
    pub fn log(&self) -> Vec<String> {
        lock(&self.state.log).clone()
    }

    /// Models unloaded through it, in order.
    pub fn unloaded(&self) -> Vec<String> {
        lock(&self.state.unloaded).clone()
    }

    /// Models loaded now.
    pub fn loaded(&self) -> Vec<String> {
        lock(&self.state.loaded).clone()
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts a router of `kind` on a free loopback port; `loaded` are resident from the start.
///
/// # Errors
///
/// When no port can be bound.
pub async fn spawn_router(
    kind: RouterKind,
    models: Vec<RoutedModel>,
    loaded: &[&str],
) -> std::io::Result<Router> {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = Arc::new(State {
        kind,
        models,
        loaded: Mutex::new(loaded.iter().map(|s| s.to_string()).collect()),
        log: Mutex::new(Vec::new()),
        unloaded: Mutex::new(Vec::new()),
        // No idle pooling: llama-server closes an idle keep-alive connection after a few
        // seconds, and a pooled one reused at that moment fails the request with a 502 the
        // test would blame on the sweep. A fresh loopback connection per request costs nothing.
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(HttpConnector::new()),
    });
    let st = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let st = st.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let st = st.clone();
                    async move { Ok::<_, Infallible>(handle(st, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok(Router { url, state, task })
}

type Body = BoxBody<Bytes, hyper::Error>;

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(v.to_string()))
            .map_err(|n| match n {})
            .boxed(),
    );
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(v: Value) -> Response<Body> {
    json_response(StatusCode::OK, &v)
}

fn fail(code: StatusCode, msg: &str) -> Response<Body> {
    json_response(code, &json!({ "error": msg }))
}

fn file_of(m: &RoutedModel) -> String {
    m.file.as_ref().map_or_else(
        || format!("/nonexistent/{}.gguf", m.name),
        |f| f.display().to_string(),
    )
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    lock(&st.log).push(format!("{method} {path}"));
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return fail(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let named = v.get("model").and_then(Value::as_str).map(str::to_string);
    let find = |n: &str| st.models.iter().find(|m| m.name == n);
    let loaded = lock(&st.loaded).clone();
    match (st.kind, method.as_str(), path.as_str()) {
        (RouterKind::LlamaSwap, "GET", "/v1/models") => ok(json!({
            "object": "list",
            "data": st.models.iter().map(|m| json!({"id": m.name, "object": "model", "owned_by": "llama-swap"})).collect::<Vec<_>>()
        })),
        (RouterKind::LlamaSwap, "GET", "/running") => ok(json!({
            "running": loaded.iter().filter_map(|n| find(n)).map(|m| json!({
                "model": m.name, "state": "ready",
                "cmd": format!("llama-server --port 0 -m {}", file_of(m)),
                "proxy": m.upstream, "ttl": 0, "name": "", "description": ""
            })).collect::<Vec<_>>()
        })),
        (RouterKind::LlamaSwap, "POST", p) if p.starts_with("/api/models/unload/") => {
            let m = p.trim_start_matches("/api/models/unload/").to_string();
            lock(&st.loaded).retain(|x| *x != m);
            lock(&st.unloaded).push(m);
            ok(json!({"msg": "ok"}))
        }
        (RouterKind::Ollama, "GET", "/api/tags") => ok(json!({
            "models": st.models.iter().map(|m| json!({"name": m.name, "model": m.name, "size": m.size_bytes, "details": {"format": "gguf"}})).collect::<Vec<_>>()
        })),
        (RouterKind::Ollama, "GET", "/api/ps") => ok(json!({
            "models": loaded.iter().map(|n| json!({"name": n, "model": n, "size": 1, "size_vram": 1})).collect::<Vec<_>>()
        })),
        (RouterKind::Ollama, "POST", "/api/show") => match named.as_deref().and_then(find) {
            Some(m) => ok(json!({
                "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {}\n", file_of(m)),
                "details": {"format": "gguf", "quantization_level": m.quant},
                "model_info": {"general.parameter_count": m.parameters}
            })),
            None => fail(StatusCode::NOT_FOUND, "model not found"),
        },
        (RouterKind::Ollama, "POST", "/api/generate") if v.get("keep_alive") == Some(&json!(0)) => {
            let m = named.unwrap_or_default();
            lock(&st.loaded).retain(|x| *x != m);
            lock(&st.unloaded).push(m.clone());
            ok(json!({"model": m, "done": true, "done_reason": "unload"}))
        }
        (_, "POST", "/v1/chat/completions" | "/v1/completions" | "/api/chat" | "/api/generate") => {
            let Some(m) = named.as_deref().and_then(find) else {
                return fail(StatusCode::NOT_FOUND, "unknown model");
            };
            {
                let mut l = lock(&st.loaded);
                if !l.contains(&m.name) {
                    if st.kind == RouterKind::LlamaSwap {
                        l.clear();
                    }
                    l.push(m.name.clone());
                }
            }
            let mut fwd = Request::builder()
                .method(parts.method)
                .uri(format!("{}{path}", m.upstream));
            for (k, val) in &parts.headers {
                if k != hyper::header::HOST {
                    fwd = fwd.header(k, val);
                }
            }
            let Ok(req) = fwd.body(Full::new(body)) else {
                return fail(StatusCode::BAD_REQUEST, "cannot forward");
            };
            match st.client.request(req).await {
                Ok(resp) => resp.map(BodyExt::boxed),
                Err(e) => fail(StatusCode::BAD_GATEWAY, &e.to_string()),
            }
        }
        _ => fail(StatusCode::NOT_FOUND, "no such route in this router"),
    }
}
