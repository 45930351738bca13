//! A fast, wire-faithful mock of a streaming LLM server (the OpenAI-compatible API of vLLM
//! and llama.cpp, and Ollama's native API), with per-request fault injection. It serves
//! infermon's proxy fault tests and its proxy and load-generator benchmarks, so it is built
//! to be cheap: hyper HTTP/1.1 with keep-alive, no task or channel per stream, and every
//! repeated token frame formatted once per request and then only reference-counted.
//!
//! # Endpoints
//!
//! | endpoint | reply |
//! |---|---|
//! | `POST /v1/chat/completions` | `chat.completion`, or with `"stream": true` an SSE stream of `chat.completion.chunk` events |
//! | `POST /v1/completions` | `text_completion` (object and chunks), text in `choices[0].text` |
//! | `POST /api/chat`, `POST /api/generate` | Ollama: NDJSON (`application/x-ndjson`), streamed unless `"stream": false` |
//! | `GET /v1/models`, `GET /api/tags`, `GET /api/version` | one model, named by [`MockConfig::model`] |
//! | `GET /health` | `{"status":"ok"}` |
//! | `GET /metrics` | the text of [`MockConfig::metrics_file`], read on every request, or the mock's own counters |
//! | `GET /mock/stats` | [`StatsSnapshot`] as JSON: `{"requests","completed","cancelled","aborted","in_flight","tokens"}` |
//!
//! **Streams.** Every token is the text `" tok"` ([`TOKEN_TEXT`]) in its own event, so N
//! tokens make exactly N content events (N body frames, each flushed on its own when the
//! next is not due yet). OpenAI chat: the first token's delta also carries
//! `"role":"assistant"`; after the tokens comes a chunk with an empty delta and
//! `finish_reason`, then — only if the request had `stream_options.include_usage: true` — a
//! chunk with `"choices":[]` and `usage`, then `data: [DONE]`. Ollama: lines with
//! `message.content` (chat) or `response` (generate) and `"done":false`, then a final line
//! with `"done":true`, `done_reason`, and `total_duration`, `load_duration`,
//! `prompt_eval_count`, `prompt_eval_duration`, `eval_count`, `eval_duration` in
//! nanoseconds, from the request's actual timestamps (`load + prompt_eval + eval = total`;
//! `eval_duration` runs from when the first token was due, so it is ≥ (N−1)·itl).
//! Non-streamed replies carry the same content and `usage` / durations in one object,
//! sent when the last token would have been.
//!
//! **Token count**: the `x-mock-tokens` header, else the request's `max_completion_tokens`
//! / `max_tokens` (Ollama: `options.num_predict` ≥ 0), else [`MockConfig::tokens`].
//! `finish_reason` / `done_reason` is `length` when the request's own limit was reached,
//! else `stop`. **Prompt tokens**: [`MockConfig::prompt_tokens`], else a guess of one per
//! four characters of the prompt / messages (one per id for a token-id prompt).
//!
//! **Timing**: the first token is due `ttft` after the request body was read, then one
//! every `itl`, on a fixed grid (timer lateness does not add up). With both zero the
//! frames are written back to back.
//!
//! # Per-request headers
//!
//! * `x-mock-tokens: N`, `x-mock-ttft-ms: MS`, `x-mock-itl-ms: MS` (fractional allowed)
//!   override the configuration.
//! * `x-mock-fault:` a comma-separated list of
//!   * `hang` — read the request, never send headers;
//!   * `hang-after:K` — send headers and K tokens, then stall forever (non-streamed: `hang`);
//!   * `die-after:K` — send K tokens, then abort the connection in the middle of the
//!     chunked body (non-streamed: headers and half the body, then abort);
//!   * `status:CODE` — reply CODE with `{"error":{"message","type","param","code"}}`;
//!   * `malformed` — a `data:` line (Ollama: a line) that is not JSON after half the tokens
//!     (non-streamed: a body that is not JSON);
//!   * `slow-headers:MS` — wait MS before the response headers (combines with the others).
//!
//!   An unknown fault or a bad value is a 400 whose message lists the valid ones.
//!
//! # Counting
//!
//! Every generation request is counted once in `requests` and ends in exactly one of
//! `completed`, `cancelled` (the client closed the connection first — the body or pending
//! reply was dropped) or `aborted` (`die-after`); see [`StatsSnapshot`]. Tests use
//! `cancelled` to check that a proxy cancelled its upstream request when its own client went
//! away. The close is noticed when hyper next reads the socket, which is at once on an
//! otherwise idle connection, so poll `/mock/stats` briefly rather than reading it once.
//!
//! [`router`] stands in for llama-swap or Ollama in front of several such servers (or real
//! llama-servers), routing by the model a request names.
//!
//! # Use
//!
//! In-process (tests):
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use infermon_mockllm::{spawn, MockConfig};
//!
//! let mock = spawn(MockConfig {
//!     tokens: 32,
//!     ttft: Duration::from_millis(50),
//!     itl: Duration::from_millis(10),
//!     ..MockConfig::default()
//! })
//! .await?;
//! let url = format!("{}/v1/chat/completions", mock.url());
//! // … send requests, possibly with `x-mock-fault: die-after:3` …
//! assert_eq!(mock.stats().cancelled, 0);
//! mock.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! As a process (benchmarks): `infermon-mockllm --listen 127.0.0.1:0 --tokens 128
//! --ttft-ms 20 --itl-ms 5 [--prompt-tokens N] [--model NAME] [--metrics-file PATH]
//! [--workers N]` prints the bound address (`127.0.0.1:PORT`) as the first line of stdout,
//! serves until SIGINT/SIGTERM, then prints the final stats JSON to stderr.

#![deny(missing_docs)]

mod body;
mod control;
mod handler;
pub mod router;
mod stats;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use stats::{Stats, StatsSnapshot};
pub use wire::TOKEN_TEXT;

use handler::Shared;

/// How the mock answers when a request does not say otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// Completion tokens per reply when neither `x-mock-tokens` nor the request's limit
    /// says. Default 16.
    pub tokens: usize,
    /// Time from reading the request to the first token. Default zero.
    pub ttft: Duration,
    /// Time between tokens. Default zero (back to back).
    pub itl: Duration,
    /// Prompt tokens reported in `usage` / `prompt_eval_count`; `None` (the default)
    /// guesses one per four characters of the prompt.
    pub prompt_tokens: Option<u64>,
    /// Model name reported when the request names none, and listed by `/v1/models`.
    /// Default `"mock"`.
    pub model: String,
    /// A file whose text `GET /metrics` serves (read on every request, so a test can
    /// rewrite it); `None` serves the mock's own counters.
    pub metrics_file: Option<PathBuf>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            tokens: 16,
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            prompt_tokens: None,
            model: "mock".to_string(),
            metrics_file: None,
        }
    }
}

/// Serves the mock on `listener` until the future is dropped, with fresh counters.
///
/// Accept errors (out of file descriptors, a connection reset before accept) are waited out,
/// not returned, so in practice this only ends by being dropped; dropping it also closes
/// every connection it accepted.
pub async fn serve(listener: TcpListener, cfg: MockConfig) -> io::Result<()> {
    serve_with_stats(listener, cfg, Arc::default()).await
}

/// [`serve`], counting into `stats` so that the caller can read them in-process.
pub async fn serve_with_stats(
    listener: TcpListener,
    cfg: MockConfig,
    stats: Arc<Stats>,
) -> io::Result<()> {
    let shared = Arc::new(Shared::new(cfg, stats));
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    // Owning the connection tasks here means dropping this future closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Token events are small writes that must leave at once.
                    let _ = stream.set_nodelay(true);
                    let sh = shared.clone();
                    let service = service_fn(move |req| handler::handle(req, sh.clone()));
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    conns.spawn(async move {
                        // Errors here are the client's doing (or a die-after fault).
                        let _ = conn.await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// A mock server running on a task of the current runtime; see [`spawn`]. Dropping it stops
/// the server and closes its connections.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<io::Result<()>>,
}

impl MockServer {
    /// The address it listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters now (the same numbers as `GET /mock/stats`).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The shared counters, for reading from elsewhere.
    pub fn stats_handle(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops the server and waits until its connections are closed.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `127.0.0.1:0` and serves the mock on a new task of the current runtime.
pub async fn spawn(cfg: MockConfig) -> io::Result<MockServer> {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let task = tokio::spawn(serve_with_stats(listener, cfg, stats.clone()));
    Ok(MockServer { addr, stats, task })
}
