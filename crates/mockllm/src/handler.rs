//! Routing and the per-request logic.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use crate::body::{MockBody, Stop, TokenStream};
use crate::control::Control;
use crate::stats::{Stats, Tracker};
use crate::wire::{json_string, Api, GenRequest, Plan, Times};
use crate::MockConfig;

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: MockConfig,
    pub stats: Arc<Stats>,
    id_seed: u64,
    id_next: AtomicU64,
}

impl Shared {
    pub(crate) fn new(cfg: MockConfig, stats: Arc<Stats>) -> Shared {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Shared {
            cfg,
            stats,
            id_seed: seed,
            id_next: AtomicU64::new(seed.rotate_left(29)),
        }
    }

    fn next_id(&self) -> u128 {
        let n = self.id_next.fetch_add(1, Ordering::Relaxed);
        (u128::from(self.id_seed) << 64) | u128::from(n)
    }
}

enum Route {
    Generate(Api),
    Health,
    Models,
    OllamaTags,
    OllamaVersion,
    Metrics,
    MockStats,
    WrongMethod,
    NotFound,
}

fn route(method: &Method, path: &str) -> Route {
    let (want, route) = match path {
        "/v1/chat/completions" => (Method::POST, Route::Generate(Api::Chat)),
        "/v1/completions" => (Method::POST, Route::Generate(Api::Completion)),
        "/api/chat" => (Method::POST, Route::Generate(Api::OllamaChat)),
        "/api/generate" => (Method::POST, Route::Generate(Api::OllamaGenerate)),
        "/health" => (Method::GET, Route::Health),
        "/v1/models" => (Method::GET, Route::Models),
        "/api/tags" => (Method::GET, Route::OllamaTags),
        "/api/version" => (Method::GET, Route::OllamaVersion),
        "/metrics" => (Method::GET, Route::Metrics),
        "/mock/stats" => (Method::GET, Route::MockStats),
        _ => return Route::NotFound,
    };
    if *method == want {
        route
    } else {
        Route::WrongMethod
    }
}

/// The hyper service function.
pub(crate) async fn handle(
    req: Request<Incoming>,
    sh: Arc<Shared>,
) -> Result<Response<MockBody>, Infallible> {
    let arrived = Instant::now();
    let model = &sh.cfg.model;
    Ok(match route(req.method(), req.uri().path()) {
        Route::Generate(api) => generate(req, api, &sh, arrived).await,
        Route::Health => json(StatusCode::OK, r#"{"status":"ok"}"#),
        Route::Models => {
            let created = unix_secs();
            json(
                StatusCode::OK,
                format!(
                    r#"{{"object":"list","data":[{{"id":{m},"object":"model","created":{created},"owned_by":"infermon-mockllm","root":{m},"parent":null,"max_model_len":8192}}]}}"#,
                    m = json_string(model)
                ),
            )
        }
        Route::OllamaTags => json(
            StatusCode::OK,
            format!(
                r#"{{"models":[{{"name":{m},"model":{m},"modified_at":"1970-01-01T00:00:00Z","size":0,"digest":"","details":{{"format":"gguf","family":"mock","parameter_size":"0B","quantization_level":"F16"}}}}]}}"#,
                m = json_string(model)
            ),
        ),
        Route::OllamaVersion => json(StatusCode::OK, r#"{"version":"0.0.0-mock"}"#),
        Route::Metrics => metrics(&sh).await,
        Route::MockStats => json(
            StatusCode::OK,
            serde_json::to_string(&sh.stats.snapshot()).unwrap_or_default(),
        ),
        Route::WrongMethod => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", None),
        Route::NotFound => error(StatusCode::NOT_FOUND, "not found", None),
    })
}

async fn generate(
    req: Request<Incoming>,
    api: Api,
    sh: &Shared,
    arrived: Instant,
) -> Response<MockBody> {
    // Counted from here; dropped before the reply (the client went away) = cancelled.
    let tracker = Tracker::new(sh.stats.clone());
    let (parts, body) = req.into_parts();
    let ctl = match Control::from_headers(&parts.headers) {
        Ok(c) => c,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg, Some(tracker)),
    };
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let msg = format!("could not read the request body: {e}");
            return error(StatusCode::BAD_REQUEST, &msg, Some(tracker));
        }
    };
    let greq = match GenRequest::parse(&bytes) {
        Ok(r) => r,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg, Some(tracker)),
    };
    let parsed = Instant::now();
    let faults = &ctl.faults;

    if let Some(d) = faults.slow_headers {
        tokio::time::sleep(d).await;
    }
    if faults.hang {
        std::future::pending::<()>().await;
    }
    if let Some(code) = faults.status {
        let msg = format!("infermon-mockllm: injected status {}", code.as_u16());
        return error(code, &msg, Some(tracker));
    }

    let cfg = &sh.cfg;
    let ttft = ctl.ttft.unwrap_or(cfg.ttft);
    let itl = ctl.itl.unwrap_or(cfg.itl);
    let tokens = ctl.tokens.or_else(|| greq.limit(api)).unwrap_or(cfg.tokens);
    let prompt_tokens = cfg
        .prompt_tokens
        .unwrap_or_else(|| greq.estimate_prompt_tokens());
    let plan = Plan::new(api, &greq, tokens, prompt_tokens, &cfg.model, sh.next_id());
    let times = Times {
        arrived,
        parsed,
        first_due: parsed + ttft,
    };
    let content_type = plan.content_type();

    if plan.stream {
        let stop = match (faults.die_after, faults.hang_after) {
            (Some(k), _) => Stop::Die(k),
            (None, Some(k)) => Stop::Hang(k),
            (None, None) => Stop::Never,
        };
        let stream = TokenStream::new(plan, times, ttft, itl, stop, faults.malformed);
        return response(
            StatusCode::OK,
            content_type,
            MockBody::stream(stream, tracker),
        );
    }

    // Not streamed: the whole answer when the last token would have been produced.
    if faults.hang_after.is_some() {
        std::future::pending::<()>().await;
    }
    let rest = u32::try_from(tokens.saturating_sub(1)).unwrap_or(u32::MAX);
    tokio::time::sleep_until(times.first_due + itl.saturating_mul(rest)).await;
    let mut tracker = tracker;
    tracker.add_tokens(tokens as u64);
    if faults.malformed {
        let body = MockBody::full(&b"{\"id\": this is not json"[..], Some(tracker));
        return response(StatusCode::OK, content_type, body);
    }
    let full = plan.full_body(&times);
    let body = if faults.die_after.is_some() {
        MockBody::truncated(full, tracker)
    } else {
        MockBody::full(full, Some(tracker))
    };
    response(StatusCode::OK, content_type, body)
}

async fn metrics(sh: &Shared) -> Response<MockBody> {
    const PROM: &str = "text/plain; version=0.0.4; charset=utf-8";
    if let Some(path) = &sh.cfg.metrics_file {
        return match tokio::fs::read(path).await {
            Ok(text) => response(StatusCode::OK, PROM, MockBody::full(text, None)),
            Err(e) => {
                let msg = format!("reading metrics file {}: {e}", path.display());
                error(StatusCode::INTERNAL_SERVER_ERROR, &msg, None)
            }
        };
    }
    let s = sh.stats.snapshot();
    let mut text = String::with_capacity(1024);
    for (name, kind, help, value) in [
        (
            "mockllm_requests_total",
            "counter",
            "Generation requests received.",
            s.requests,
        ),
        (
            "mockllm_completed_total",
            "counter",
            "Generation requests answered in full.",
            s.completed,
        ),
        (
            "mockllm_cancelled_total",
            "counter",
            "Generation requests whose client went away first.",
            s.cancelled,
        ),
        (
            "mockllm_aborted_total",
            "counter",
            "Streams cut off by a die-after fault.",
            s.aborted,
        ),
        (
            "mockllm_generation_tokens_total",
            "counter",
            "Completion tokens sent.",
            s.tokens,
        ),
        (
            "mockllm_requests_running",
            "gauge",
            "Generation requests in flight.",
            s.in_flight,
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    response(StatusCode::OK, PROM, MockBody::full(text, None))
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn response(status: StatusCode, content_type: &'static str, body: MockBody) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<MockBody> {
    response(status, "application/json", MockBody::full(body, None))
}

/// An OpenAI-style error: `{"error":{"message","type","param","code"}}`, with `type` made
/// from the reason phrase as vLLM does (`ServiceUnavailableError`).
fn error(status: StatusCode, message: &str, tracker: Option<Tracker>) -> Response<MockBody> {
    let mut kind: String = status
        .canonical_reason()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if !kind.ends_with("Error") {
        kind.push_str("Error");
    }
    let body = serde_json::json!({
        "error": {
            "message": message,
            "type": kind,
            "param": null,
            "code": status.as_u16(),
        }
    });
    let text = serde_json::to_vec(&body).unwrap_or_default();
    response(status, "application/json", MockBody::full(text, tracker))
}
