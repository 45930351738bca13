//! `infermon proxy`: a transparent HTTP/1.1 proxy in front of an inference engine that
//! measures every OpenAI (`/v1/chat/completions`, `/v1/completions`, `/v1/responses`) and
//! Ollama (`/api/chat`, `/api/generate`) request with [`infermon_reqmeter`].
//!
//! Bytes stream through as they arrive; nothing is buffered except a measured request's body
//! (read whole, with no size cap, to learn its model and whether it streams) and, only when
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
#![deny(missing_docs)]

mod body;
mod config;
mod forward;
mod headers;
mod server;
mod upstream;

pub use config::{ProxyConfig, ProxyError, Upstream};
pub use server::{serve, Proxy};

use infermon_model::request::RequestRecord;

/// Where measured requests go (the agent's recorder, a test's vector).
pub trait RecordSink: Send + Sync + 'static {
    /// Takes one finished request. Must not block.
    fn record(&self, r: RequestRecord);
}
