//! One request: pass it through, measuring it when it is an inference call.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT_ENCODING, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE,
};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use infermon_model::request::{Api, Outcome, RequestRecord};
use infermon_reqmeter::{prepare, End, Meter};

use crate::body::{BoxError, MeteredBody, Recorder};
use crate::config::ProxyConfig;
use crate::headers::{set_host, strip_hop_by_hop, token_ok};
use crate::limits::BIG_BODY;
use crate::upstream::{self, Outgoing, Pool, SendError};
use crate::RecordSink;

pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;
pub(crate) type HttpClient = Client<HttpConnector, ProxyBody>;

/// What every request handler shares.
pub(crate) struct State {
    pub cfg: ProxyConfig,
    /// For requests passed through unmeasured (their bodies stream).
    pub client: HttpClient,
    /// For measured requests (their bodies are read whole first).
    pub pool: Arc<Pool>,
    pub sink: Arc<dyn RecordSink>,
    pub upstream: Arc<str>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A JSON error answer in the OpenAI shape (Ollama clients read `error` too).
pub(crate) fn json_error(status: StatusCode, kind: &str, message: &str) -> Response<ProxyBody> {
    json_response(
        status,
        serde_json::json!({
            "error": { "message": message, "type": kind, "code": status.as_u16() }
        }),
    )
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Handles one request.
pub(crate) async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<ProxyBody> {
    let start = Instant::now();
    let ts = now_ms();
    if let Some(tok) = st.cfg.token.as_deref() {
        if !token_ok(req.headers(), tok) {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "infermon proxy: missing or wrong bearer token",
            );
        }
    }
    let api = (req.method() == Method::POST)
        .then(|| Api::from_path(req.uri().path()))
        .flatten();
    let (mut parts, body) = req.into_parts();
    let path_q = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let uri: Uri = match format!("{}{}", st.upstream_base(), path_q).parse() {
        Ok(u) => u,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("infermon proxy: cannot forward {path_q:?}: {e}"),
            )
        }
    };
    parts.uri = uri;
    strip_hop_by_hop(&mut parts.headers);
    set_host(&mut parts.headers, &st.cfg.upstream.authority);

    let Some(api) = api else {
        let limit = st.cfg.max_passthrough_body_bytes;
        if declared_len(&parts.headers).is_some_and(|n| n > limit) {
            return too_large(&st, limit);
        }
        let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
        let req = Request::from_parts(parts, body.boxed());
        return match st.client.request(req).await {
            Ok(resp) => passthrough(resp),
            Err(e) if is_length_limit(&e) => too_large(&st, limit),
            Err(e) => json_error(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                &format!("infermon proxy: upstream {} unreachable: {e}", st.upstream),
            ),
        };
    };

    // A measured call: read the body whole (up to the limit) to learn the model and whether
    // it streams.
    let limit = st.cfg.max_body_bytes;
    if declared_len(&parts.headers).is_some_and(|n| n > limit) {
        return too_large(&st, limit);
    }
    let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if is_length_limit(&*e) => return too_large(&st, limit),
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("infermon proxy: request body broke off: {e}"),
            )
        }
    };
    let prepared = prepare(api, &bytes);
    let out_body = match &prepared.body {
        Some(b) => Bytes::from(b.clone()),
        None => bytes.clone(),
    };
    parts.headers.remove(ACCEPT_ENCODING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(out_body.len()));
    let mut meter = Meter::new(api, &prepared, start);
    if st.cfg.capture_bodies {
        meter.capture();
    }
    let rec = Recorder {
        sink: st.sink.clone(),
        upstream: st.upstream.clone(),
        ts_unix_ms: ts,
        request_body: st
            .cfg
            .capture_bodies
            .then(|| String::from_utf8_lossy(&bytes).into_owned()),
    };
    // The client's body is complete: an Expect: 100-continue is answered here, not upstream.
    parts.headers.remove(hyper::header::EXPECT);
    let target = format!("{}{path_q}", st.cfg.upstream.prefix);
    let out = Outgoing {
        method: &parts.method,
        target: &target,
        headers: &parts.headers,
        body: &out_body,
    };
    let sent = tokio::time::timeout(st.cfg.header_timeout, upstream::send(&st.pool, &out)).await;
    let answer = match sent {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            let outcome = match e {
                SendError::Connect(_) => Outcome::Unreachable,
                SendError::Failed(_) => Outcome::UpstreamFailed,
            };
            let what = match outcome {
                Outcome::Unreachable => "unreachable",
                _ => "failed before answering",
            };
            let status = StatusCode::BAD_GATEWAY;
            let msg = format!("infermon proxy: upstream {} {what}: {e}", st.upstream);
            record_failure(rec, meter, status, outcome, &msg);
            return json_error(status, "upstream_error", &msg);
        }
        Err(_) => {
            let msg = format!(
                "infermon proxy: upstream {} sent no answer within {} s",
                st.upstream,
                st.cfg.header_timeout.as_secs_f64()
            );
            record_failure(
                rec,
                meter,
                StatusCode::GATEWAY_TIMEOUT,
                Outcome::Timeout,
                &msg,
            );
            return json_error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", &msg);
        }
    };
    let mut headers = answer.headers;
    let ct = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    meter.on_head(answer.status.as_u16(), ct, Instant::now());
    strip_hop_by_hop(&mut headers);
    if meter.rewrites() {
        headers.remove(CONTENT_LENGTH);
    }
    let body = answer.body;
    let body = MeteredBody::new(body, meter, rec, st.cfg.idle_timeout);
    let mut resp = Response::new(body.boxed());
    *resp.status_mut() = answer.status;
    *resp.headers_mut() = headers;
    resp
}

fn record_failure(rec: Recorder, meter: Meter, status: StatusCode, outcome: Outcome, msg: &str) {
    let end = match outcome {
        Outcome::Timeout => End::Timeout(msg.to_string()),
        _ => End::UpstreamFailed(msg.to_string()),
    };
    let mut r: RequestRecord = meter.finish(end, Instant::now(), &rec.upstream);
    r.status = status.as_u16();
    r.outcome = outcome;
    r.error = Some(msg.to_string());
    rec.send(r);
}

/// The body length the head declares, when it declares one.
fn declared_len(h: &HeaderMap) -> Option<u64> {
    h.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// `413` for a body over `limit` bytes; the connection is closed after it, since the rest of
/// the body is never read.
fn too_large(st: &State, limit: u64) -> Response<ProxyBody> {
    BIG_BODY.hit(&st.cfg.listen);
    let mut r = json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        &format!("infermon proxy: request body over the limit of {limit} bytes"),
    );
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Whether `e` or one of its causes is the body limit's error.
fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if x.is::<LengthLimitError>() {
            return true;
        }
        cur = x.source();
    }
    false
}

fn passthrough(resp: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(BoxError::from).boxed())
}

impl State {
    fn upstream_base(&self) -> &str {
        &self.cfg.upstream.base
    }
}
