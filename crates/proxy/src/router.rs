//! The routing proxy (`infermon hub --route-listen`): serves the OpenAI and Ollama inference
//! APIs and sends each request to the node a [`Picker`] ranks first for its model, streaming
//! the answer back unbuffered. A node that cannot be reached, or does not answer with a
//! response head, is passed over for the next one; once a byte of an answer has gone to the
//! client the request stays with its node. Measuring is the nodes' own proxies' work: this
//! one only chooses and forwards. Answers carry `x-infermon-node` (who served it) and, after
//! a retry, `x-infermon-passed-over` (`NODE: why; …`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::forward::{json_error, json_response, ProxyBody};
use crate::headers::{set_host, strip_hop_by_hop, token_ok};
use crate::ProxyError;

/// Where a model's requests may go.
pub trait Picker: Send + Sync + 'static {
    /// The nodes to try for `model`, best first, each with its base URL (`http://host:port`,
    /// no path); `Err(reason)` when no node can serve it.
    fn pick(&self, model: &str) -> Result<Vec<(String, String)>, String>;
    /// Models some node serves now (for `GET /v1/models`).
    fn models(&self) -> Vec<String>;
}

/// The routing proxy's settings.
#[derive(Clone)]
pub struct RouterConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token clients must send; required off loopback.
    pub token: Option<String>,
    /// Largest request body (read whole to learn the model); larger gets `413`.
    pub max_body_bytes: usize,
    /// Longest wait for a node's response head before it is passed over.
    pub header_timeout: Duration,
    /// Client connections served at once (`503` beyond).
    pub max_connections: usize,
    /// Serve HTTPS with this acceptor (the hub's `--tls-cert`); plain HTTP when `None`.
    pub tls: Option<infermon_tls::TlsAcceptor>,
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("header_timeout", &self.header_timeout)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl RouterConfig {
    /// Defaults: 32 MiB bodies, 10 min for a head (a long prompt on a slow node), 1024
    /// connections.
    pub fn new(listen: SocketAddr) -> RouterConfig {
        RouterConfig {
            listen,
            token: None,
            max_body_bytes: 32 << 20,
            header_timeout: Duration::from_secs(600),
            max_connections: 1024,
            tls: None,
        }
    }
}

/// Paths whose JSON body names a model and that the router forwards.
const ROUTED: [&str; 7] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/api/chat",
    "/api/generate",
    "/api/embed",
];

struct State {
    cfg: RouterConfig,
    picker: Arc<dyn Picker>,
    client: Client<HttpConnector, Full<Bytes>>,
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<ProxyBody> {
    if let Some(tok) = st.cfg.token.as_deref() {
        if !token_ok(req.headers(), tok) {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "infermon router: missing or wrong bearer token",
            );
        }
    }
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && (path == "/v1/models" || path == "/api/tags") {
        let picker = st.picker.clone();
        let models = tokio::task::spawn_blocking(move || picker.models())
            .await
            .unwrap_or_default();
        let body = if path == "/v1/models" {
            serde_json::json!({"object": "list", "data": models.iter().map(|m| serde_json::json!(
                {"id": m, "object": "model", "owned_by": "infermon-hub"})).collect::<Vec<_>>()})
        } else {
            serde_json::json!({"models": models.iter().map(|m| serde_json::json!(
                {"name": m, "model": m})).collect::<Vec<_>>()})
        };
        return json_response(StatusCode::OK, body);
    }
    if req.method() != Method::POST || !ROUTED.contains(&path.as_str()) {
        return json_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!(
                "infermon router: {} {path} is not routed: expected POST to one of {}, or GET \
                 /v1/models",
                req.method(),
                ROUTED.join(", ")
            ),
        );
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match Limited::new(body, st.cfg.max_body_bytes).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let status = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return json_error(
                status,
                "invalid_request_error",
                &format!(
                    "infermon router: request body not read (at most {} bytes): {e}",
                    st.cfg.max_body_bytes
                ),
            );
        }
    };
    let model = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("model")?.as_str().map(str::to_string));
    let Some(model) = model.filter(|m| !m.is_empty()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "infermon router: the body names no model: expected a JSON object with \"model\"",
        );
    };
    let picker = st.picker.clone();
    let wanted = model.clone();
    let order = match tokio::task::spawn_blocking(move || picker.pick(&wanted)).await {
        Ok(Ok(o)) => o,
        Ok(Err(why)) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_route",
                &format!("infermon router: no node for model \"{model}\": {why}"),
            )
        }
        Err(e) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "router_error",
                &format!("infermon router: choosing a node failed: {e}"),
            )
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let path_q = parts
        .uri
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let mut passed = Vec::new();
    for (node, base) in order {
        let uri: Uri = match format!("{}{path_q}", base.trim_end_matches('/')).parse() {
            Ok(u) => u,
            Err(e) => {
                passed.push(format!("{node}: bad URL {base:?}: {e}"));
                continue;
            }
        };
        let mut headers = parts.headers.clone();
        if let Some(a) = uri.authority() {
            set_host(&mut headers, a.as_str());
        }
        let mut out = Request::new(Full::new(bytes.clone()));
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = uri;
        *out.headers_mut() = headers;
        match tokio::time::timeout(st.cfg.header_timeout, st.client.request(out)).await {
            Ok(Ok(resp)) => {
                let (mut rp, body) = resp.into_parts();
                strip_hop_by_hop(&mut rp.headers);
                if let Ok(v) = HeaderValue::from_str(&node) {
                    rp.headers.insert("x-infermon-node", v);
                }
                if !passed.is_empty() {
                    tracing::warn!("router: {model} went to {node} after {}", passed.join("; "));
                    if let Ok(v) = HeaderValue::from_str(&passed.join("; ")) {
                        rp.headers.insert("x-infermon-passed-over", v);
                    }
                }
                let body = body
                    .map_err(|e| Box::new(e) as crate::body::BoxError)
                    .boxed();
                return Response::from_parts(rp, body);
            }
            Ok(Err(e)) => passed.push(format!("{node}: {e}")),
            Err(_) => passed.push(format!(
                "{node}: no answer within {} s",
                st.cfg.header_timeout.as_secs_f64()
            )),
        }
    }
    json_error(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        &format!(
            "infermon router: no node answered for model \"{model}\": {}",
            passed.join("; ")
        ),
    )
}

/// Binds the routing proxy's address.
///
/// # Errors
///
/// Off loopback without a token, or the address cannot be bound.
pub async fn bind_router(cfg: &RouterConfig) -> Result<tokio::net::TcpListener, ProxyError> {
    if !cfg.listen.ip().is_loopback() && cfg.token.as_deref().unwrap_or("").is_empty() {
        return Err(ProxyError::NoToken(cfg.listen));
    }
    tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ProxyError::Bind {
            addr: cfg.listen,
            source,
        })
}

/// Longest a client may take over its TLS handshake or its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one client connection, plain or TLS.
async fn serve_conn<IO>(st: Arc<State>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let st = st.clone();
        async move { Ok::<_, Infallible>(handle(st, req).await) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// Serves the routing proxy on `listener` (from [`bind_router`]) until `stop` completes.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    cfg: RouterConfig,
    picker: Arc<dyn Picker>,
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let st = Arc::new(State {
        cfg,
        picker,
        client: Client::builder(TokioExecutor::new()).build_http(),
    });
    tokio::pin!(stop);
    loop {
        let (sock, _) = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("router: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(sock); // over the cap: closed at once
            continue;
        };
        let st = st.clone();
        tokio::spawn(async move {
            let tls = st.cfg.tls.clone();
            match tls {
                None => serve_conn(st, sock).await,
                Some(acceptor) => {
                    let hs = tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(sock)).await;
                    match hs {
                        Ok(Ok(tls)) => serve_conn(st, tls).await,
                        Ok(Err(e)) => tracing::debug!("router: TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("router: TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
}
