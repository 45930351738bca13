//! Engine details beyond token counters: latency histograms, cache and scheduler state,
//! loaded models and model lifecycle events. Raw types (what collectors read) and the figures
//! derived from them both live here, so each engine collector fills the same shapes.

use serde::{Deserialize, Serialize};

/// Which latency an engine histogram (or a proxy measurement) describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LatencyMetric {
    /// Time to first token.
    Ttft,
    /// Inter-token latency (gap between consecutive output tokens).
    Itl,
    /// Time per output token, per request ((E2E − TTFT) / (N − 1)).
    Tpot,
    /// End-to-end request latency.
    E2e,
    /// Time spent waiting in the scheduler queue.
    Queue,
    /// Prefill (prompt processing) time.
    Prefill,
    /// Decode time.
    Decode,
    /// Time from scheduling to finish (queue excluded).
    Inference,
}

impl LatencyMetric {
    /// Short name used in labels and series names.
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyMetric::Ttft => "ttft",
            LatencyMetric::Itl => "itl",
            LatencyMetric::Tpot => "tpot",
            LatencyMetric::E2e => "e2e",
            LatencyMetric::Queue => "queue",
            LatencyMetric::Prefill => "prefill",
            LatencyMetric::Decode => "decode",
            LatencyMetric::Inference => "inference",
        }
    }
}

/// One histogram bucket: cumulative count of observations ≤ `le` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Upper bound, seconds. `+Inf` is stored as `f64::MAX`, which JSON can carry.
    pub le: f64,
    /// Cumulative count.
    pub count: f64,
}

/// A cumulative latency histogram as the engine exposes it, summed over every label series
/// other than the model (e.g. vLLM's `engine` label), in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramRaw {
    /// What it measures.
    pub metric: LatencyMetric,
    /// Model name label (`model_name`), or the engine's only model.
    pub model: String,
    /// Buckets sorted by `le`, cumulative; the last is `+Inf` (stored as `f64::MAX`).
    pub buckets: Vec<Bucket>,
    /// `_sum`, seconds.
    pub sum: f64,
    /// `_count`.
    pub count: f64,
}

/// Cache, scheduler and speculative-decoding counters of one model on an engine. Counters
/// are cumulative as the engine reports them; every field is optional (absent is not zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SchedulerRaw {
    /// Model name label.
    pub model: String,
    /// Prompt tokens (counter).
    pub prompt_tokens_total: Option<f64>,
    /// Generated tokens (counter).
    pub generation_tokens_total: Option<f64>,
    /// Requests running now (gauge).
    pub requests_running: Option<f64>,
    /// Requests waiting now (gauge).
    pub requests_waiting: Option<f64>,
    /// KV cache usage, 0–1 (vLLM `kv_cache_usage_perc` is a fraction despite its name).
    pub kv_usage_ratio: Option<f64>,
    /// Prefix-cache lookups, tokens (counter).
    pub prefix_cache_queries_total: Option<f64>,
    /// Prefix-cache hits, tokens (counter).
    pub prefix_cache_hits_total: Option<f64>,
    /// A cache hit rate the engine reports directly as a gauge, 0–1 (SGLang).
    pub cache_hit_ratio: Option<f64>,
    /// Preemptions (counter).
    pub preemptions_total: Option<f64>,
    /// Speculative decoding: draft tokens proposed (counter).
    pub spec_draft_tokens_total: Option<f64>,
    /// Speculative decoding: draft tokens accepted (counter).
    pub spec_accepted_tokens_total: Option<f64>,
    /// Speculative decoding acceptance the engine reports directly as a gauge, 0–1.
    pub spec_accept_ratio: Option<f64>,
    /// Finished requests (counter, summed over finish reasons).
    pub requests_finished_total: Option<f64>,
    /// Engine-reported generation throughput gauge, tokens/s (SGLang `gen_throughput`).
    pub generation_throughput_gauge: Option<f64>,
}

/// A model known to an engine that hosts several (Ollama, llama-swap, LM Studio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRaw {
    /// Model name as the engine calls it.
    pub name: String,
    /// State word as the engine says it (`ready`, `starting`, `stopped`, `loaded`, …).
    pub state: String,
    /// Bytes the loaded model takes in total (Ollama `size`).
    pub size_bytes: Option<u64>,
    /// Bytes of it in GPU memory (Ollama `size_vram`).
    pub vram_bytes: Option<u64>,
    /// Context length it was loaded with.
    pub context_length: Option<u64>,
    /// When it will be unloaded (keep-alive expiry), Unix ms.
    pub expires_unix_ms: Option<i64>,
    /// Quantization / format details where the engine says (e.g. `Q4_K_M`).
    pub quantization: Option<String>,
    /// Parameter size where the engine says (e.g. `8.0B`).
    pub parameter_size: Option<String>,
    /// Where requests for it are proxied (llama-swap upstream), when known.
    pub upstream: Option<String>,
}

/// Something that happened to a model on an engine (llama-swap's event stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineEvent {
    /// When the collector saw it, Unix ms.
    pub ts_unix_ms: i64,
    /// Model it concerns.
    pub model: String,
    /// What happened: `starting`, `ready`, `stopping`, `stopped`, `loaded`, `unloaded`,
    /// `swap`, `failed`, … (the engine's own state word where it has one).
    pub kind: String,
    /// For a transition into `ready`: how long the load took, ms (from the `starting` event).
    pub duration_ms: Option<f64>,
    /// Free text from the engine.
    pub detail: Option<String>,
}

/// Latency quantiles of one histogram over the window between two samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyFigures {
    /// Model.
    pub model: String,
    /// What it measures.
    pub metric: LatencyMetric,
    /// Observations in the window.
    pub count: f64,
    /// Mean over the window, seconds (Δsum ÷ Δcount).
    pub mean_seconds: Option<f64>,
    /// Median, seconds (linear interpolation inside the bucket, as Prometheus does).
    pub p50_seconds: Option<f64>,
    /// 90th percentile, seconds.
    pub p90_seconds: Option<f64>,
    /// 99th percentile, seconds.
    pub p99_seconds: Option<f64>,
}

/// Per-model scheduler and cache figures over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SchedulerFigures {
    /// Model.
    pub model: String,
    /// Generated tokens per wall-clock second over the window.
    pub generation_throughput_tokens_per_second: Option<f64>,
    /// Prompt tokens per wall-clock second over the window.
    pub prompt_throughput_tokens_per_second: Option<f64>,
    /// Running requests.
    pub requests_running: Option<f64>,
    /// Waiting requests.
    pub requests_waiting: Option<f64>,
    /// KV cache usage, 0–1.
    pub kv_usage_ratio: Option<f64>,
    /// Prefix-cache hit ratio over the window (Δhits ÷ Δqueries), or the engine's gauge.
    pub prefix_cache_hit_ratio: Option<f64>,
    /// Preemptions in the window.
    pub preemptions_in_window: Option<f64>,
    /// Speculative acceptance over the window (Δaccepted ÷ Δdraft), or the engine's gauge.
    pub spec_accept_ratio: Option<f64>,
}

/// A model hosted by a multi-model engine, as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFigures {
    /// Everything the engine said about it.
    #[serde(flatten)]
    pub raw: ModelRaw,
    /// Share of the model not in GPU memory (1 − vram ÷ size), 0–1: CPU offload.
    pub cpu_offload_ratio: Option<f64>,
}
