//! One measured inference request, as the proxy (and `infermon bench`) record it.
//!
//! Definitions (the same as vLLM's `bench serve`):
//! - TTFT: from the moment the request arrived to the first chunk carrying a non-empty token
//!   (content, reasoning or a tool-call fragment). For a non-streamed answer the whole answer
//!   arrives at once, so TTFT is the time to its first byte.
//! - TPOT: (E2E − TTFT) ÷ (completion tokens − 1), streamed answers with ≥ 2 tokens only.
//! - ITL: every gap between consecutive token-bearing chunks.
//! - E2E: from arrival to the last byte of the answer.

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// Which API a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// OpenAI `/v1/chat/completions`.
    OpenaiChat,
    /// OpenAI `/v1/completions`.
    OpenaiCompletions,
    /// OpenAI `/v1/responses`.
    OpenaiResponses,
    /// Ollama `/api/chat`.
    OllamaChat,
    /// Ollama `/api/generate`.
    OllamaGenerate,
}

impl Api {
    /// The API served at `path` (query string ignored), if it is one infermon measures.
    pub fn from_path(path: &str) -> Option<Api> {
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        match path {
            // LM Studio's REST API (`/api/v0/...`) speaks the OpenAI shapes plus `stats`.
            "/v1/chat/completions" | "/chat/completions" | "/api/v0/chat/completions" => {
                Some(Api::OpenaiChat)
            }
            "/v1/completions" | "/completions" | "/api/v0/completions" => {
                Some(Api::OpenaiCompletions)
            }
            "/v1/responses" | "/responses" => Some(Api::OpenaiResponses),
            "/api/chat" => Some(Api::OllamaChat),
            "/api/generate" => Some(Api::OllamaGenerate),
            _ => None,
        }
    }

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenaiChat => "openai_chat",
            Api::OpenaiCompletions => "openai_completions",
            Api::OpenaiResponses => "openai_responses",
            Api::OllamaChat => "ollama_chat",
            Api::OllamaGenerate => "ollama_generate",
        }
    }

    /// The OpenTelemetry GenAI `gen_ai.operation.name` of this API.
    pub fn operation(self) -> &'static str {
        match self {
            Api::OpenaiChat | Api::OllamaChat | Api::OpenaiResponses => "chat",
            Api::OpenaiCompletions | Api::OllamaGenerate => "text_completion",
        }
    }

    /// Whether a request that does not say `stream` is streamed (Ollama streams by default).
    pub fn streams_by_default(self) -> bool {
        matches!(self, Api::OllamaChat | Api::OllamaGenerate)
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered in full with a 2xx status.
    Ok,
    /// The upstream answered with a non-2xx status.
    HttpError,
    /// The upstream sent an error object inside a 2xx stream.
    StreamError,
    /// The upstream could not be reached (the client got a 502).
    Unreachable,
    /// The upstream did not answer, or stalled mid-stream, longer than the timeout.
    Timeout,
    /// The upstream connection broke before the answer was complete.
    UpstreamFailed,
    /// The client went away before the answer was complete; the upstream request was dropped.
    Cancelled,
    /// The answer was complete but some of it could not be parsed.
    Malformed,
}

impl Outcome {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::StreamError => "stream_error",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::UpstreamFailed => "upstream_failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Malformed => "malformed",
        }
    }

    /// Whether this counts as an error for error rates (a cancelled request is the client's
    /// choice, not the engine's failure).
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Cancelled)
    }
}

/// The engine's own account of a request, where it sends one (llama.cpp `timings`, Ollama's
/// final object, LM Studio's `stats`). Milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct ServerTimings {
    /// Prompt tokens evaluated (llama.cpp `prompt_n`, Ollama `prompt_eval_count`).
    pub prompt_n: Option<u64>,
    /// Prompt evaluation time.
    pub prompt_ms: Option<f64>,
    /// Tokens generated (llama.cpp `predicted_n`, Ollama `eval_count`).
    pub predicted_n: Option<u64>,
    /// Generation time.
    pub predicted_ms: Option<f64>,
    /// Time per generated token (llama.cpp `predicted_per_token_ms`, else
    /// predicted_ms ÷ predicted_n).
    pub predicted_per_token_ms: Option<f64>,
    /// Prompt tokens served from cache (llama.cpp `cache_n`).
    pub cache_n: Option<u64>,
    /// Model load time (Ollama `load_duration`).
    pub load_ms: Option<f64>,
    /// Total time the server counted (Ollama `total_duration`).
    pub total_ms: Option<f64>,
    /// Time to first token as the server counted it (LM Studio `time_to_first_token`).
    #[serde(default)]
    pub ttft_ms: Option<f64>,
}

/// One request as measured on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When it arrived, ms since the Unix epoch.
    pub ts_unix_ms: i64,
    /// Upstream base URL it went to.
    pub upstream: String,
    /// API used.
    pub api: Api,
    /// Model the request asked for (`unknown` when it named none).
    pub model: String,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// HTTP status the client got (502/504 when infermon answered for a failed upstream).
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// What went wrong, when something did.
    pub error: Option<String>,
    /// Time to the first byte of the answer body, ms.
    pub ttfb_ms: Option<f64>,
    /// Time to first token, ms (see the module docs).
    pub ttft_ms: Option<f64>,
    /// Time per output token after the first, ms.
    pub tpot_ms: Option<f64>,
    /// End to end, ms.
    pub e2e_ms: f64,
    /// Summary of the gaps between token-bearing chunks, ms.
    pub itl_ms: Option<Summary>,
    /// Every gap between token-bearing chunks, ms (kept for pooled percentiles; not sent by the
    /// requests API).
    #[serde(default, skip_serializing)]
    pub itl_gaps_ms: Vec<f64>,
    /// Prompt tokens (from `usage` or the engine's final object).
    pub prompt_tokens: Option<u64>,
    /// Completion tokens (from `usage` or the engine's final object).
    pub completion_tokens: Option<u64>,
    /// Chunks that carried a token.
    pub token_chunks: u64,
    /// Whether infermon asked for `stream_options.include_usage` and removed the usage chunk
    /// before it reached the client.
    pub usage_injected: bool,
    /// The engine's own timings, when it sent them.
    pub server_timings: Option<ServerTimings>,
    /// Request body, only with `--capture-bodies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// Response body, only with `--capture-bodies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// TPOT from E2E, TTFT and the number of output tokens: (E2E − TTFT) ÷ (N − 1) for N ≥ 2.
pub fn tpot_ms(e2e_ms: f64, ttft_ms: f64, completion_tokens: u64) -> Option<f64> {
    (completion_tokens >= 2).then(|| (e2e_ms - ttft_ms) / (completion_tokens - 1) as f64)
}
