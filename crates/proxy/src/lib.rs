//! `infermon proxy`: a transparent HTTP/1.1 proxy in front of an inference engine that
//! measures every OpenAI (`/v1/chat/completions`, `/v1/completions`, `/v1/responses`) and
//! Ollama (`/api/chat`, `/api/generate`) request with [`infermon_reqmeter`].
//!
//! Bytes stream through as they arrive; nothing is buffered except a measured request's body
//! (read whole, up to [`ProxyConfig::max_body_bytes`], to learn its model and whether it
//! streams) and, only when
//! infermon asked for usage on the client's behalf, the current SSE event (so the usage chunk
//! can be removed). Other paths pass through untouched and unmeasured. When the client goes
//! away mid-answer the upstream request is dropped (its connection closed, which makes
//! llama-server and vLLM stop generating) and the request is recorded as cancelled, unless
//! the answer's terminal event (`data: [DONE]`, Ollama's `done: true`, a whole JSON body) had
//! already passed: a client closing then (the OpenAI SDK closes on `[DONE]`, often before the
//! upstream's end of body) cancelled nothing, and the request is recorded as complete. An
//! unreachable upstream gets the client a 502 and a hanging one a 504, both with a JSON error,
//! and both are recorded. Prompt and completion text are never kept unless
//! [`ProxyConfig::capture_bodies`] is set.
//!
//! Limits against a hostile network: at most [`ProxyConfig::max_connections`] client
//! connections at once across the workers (one more is answered `503` with `Retry-After: 1`
//! and closed); a request head must arrive within [`ProxyConfig::client_header_timeout`]
//! (else the connection is closed; hyper sends no `408`), be at most 32 KiB and carry at most
//! 100 fields (`431`); bodies over [`ProxyConfig::max_body_bytes`] (measured) or
//! [`ProxyConfig::max_passthrough_body_bytes`] (anything else) get `413`. Each limit logs a
//! line, at most one per kind every 10 s with the count since. At stop, requests in flight
//! finish for up to [`ProxyConfig::drain_timeout`].
#![deny(missing_docs)]

mod body;
mod config;
mod forward;
mod headers;
mod limits;
pub mod router;
mod server;
mod upstream;

pub use config::{ProxyConfig, ProxyError, Upstream};
pub use server::{serve, Proxy};
#[doc(hidden)]
pub use upstream::fuzzing;

use infermon_model::request::RequestRecord;

/// Where measured requests go (the agent's recorder, a test's vector).
pub trait RecordSink: Send + Sync + 'static {
    /// Takes one finished request. Must not block.
    fn record(&self, r: RequestRecord);
}
