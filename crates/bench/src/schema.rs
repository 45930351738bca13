//! The JSON report of `infermon bench` (`--out run.json`), schema version 1.
//!
//! The schema is stable: fields are only ever added (readers must ignore fields they do not
//! know); renaming or removing one, or changing its meaning, bumps [`SCHEMA_VERSION`].
//! **Absent is not zero**: a figure that could not be measured (no request completed, no power
//! reading, no model size) is `null`, never `0`. Times are milliseconds (`_ms`) or seconds
//! (`_s`), sizes bytes, rates per second.
//!
//! # Definitions (the same as vLLM's `bench serve`)
//!
//! Per request (measured by `infermon-reqmeter`, the same code the proxy uses):
//! - **TTFT**: from sending the request to the first chunk carrying a non-empty token.
//! - **TPOT**: (E2E − TTFT) ÷ (completion tokens − 1), requests with ≥ 2 tokens.
//! - **ITL**: every gap between consecutive token-bearing chunks (pooled over requests, so
//!   the ITL mean is token-weighted while the TPOT mean is request-weighted).
//! - **E2E**: from sending the request to the last token-bearing chunk (the trailing usage
//!   chunk and `[DONE]` do not count, as in vLLM).
//! - Completion and prompt tokens come from the server's `usage` (asked for with
//!   `stream_options.include_usage`) or Ollama's final object.
//!
//! Per configuration: percentiles interpolate linearly (NumPy's default, as vLLM);
//! throughputs divide by the configuration's duration (first request sent → last answer
//! ended); only completed requests (outcome `ok`) enter latency figures and token totals.
//!
//! # Top level ([`BenchReport`])
//!
//! | field | meaning |
//! |---|---|
//! | `schema_version` | `1` |
//! | `infermon_version` | version of the binary that wrote it |
//! | `status` | `complete`, or `partial` when the run stopped early or requests failed |
//! | `aborted` | why the run stopped early (unreachable endpoint, interrupted), else `null` |
//! | `started_unix_ms`, `finished_unix_ms` | wall-clock bounds of the run |
//! | `target` | `url` as given, `endpoint` requested, `api` (`openai_chat`, `openai_completions`, `ollama_chat`, `ollama_generate`), `model` |
//! | `settings` | the run's settings ([`RunSettings`]) |
//! | `system` | GPUs, engine process, which engine the collectors polled and where (`engine_kind`, `engine_url`), model file and peak memory bandwidth ([`SystemInfo`]) |
//! | `warmup` | warm-up requests (excluded from every figure): `requests`, `completed`, `completion_tokens` |
//! | `requests_sent`, `requests_completed`, `requests_failed`, `requests_not_sent` | counts over all configurations (`not_sent`: planned but never sent because the run stopped) |
//! | `outcomes` | count per outcome (`ok`, `http_error`, `stream_error`, `unreachable`, `timeout`, `upstream_failed`, `malformed`, `cancelled`) |
//! | `errors` | distinct error messages with their outcome and count (first 20) |
//! | `completion_tokens_total`, `prompt_tokens_total` | tokens of completed requests; `null` when none completed |
//! | `duration_s` | sum of the configurations' durations |
//! | `ttft_ms`, `tpot_ms`, `itl_ms`, `e2e_ms` | summaries `{count, mean, min, p50, p90, p99, max}` over every configuration together; `null` when nothing was measured |
//! | `server_tpot_ms` | the engine's own time per output token after the first (llama.cpp `timings.predicted_per_token_ms`, else `predicted_ms ÷ (predicted_n − 1)`), where it sends timings |
//! | `output_tokens_per_second`, `total_tokens_per_second`, `requests_per_second` | over `duration_s`; `null` when nothing completed |
//! | `goodput_requests_per_second`, `slo_attainment_ratio` | with `--slo`: completed requests meeting every objective, per second and as a share |
//! | `configs` | one [`ConfigReport`] per configuration (concurrency level or rate) |
//! | `sweep` | the quantization sweep, when `infermon bench sweep` wrote the report |
//!
//! With one configuration the top-level figures equal that configuration's.
//!
//! # Per configuration ([`ConfigReport`])
//!
//! `label` (`sync`, `concurrency=4`, `rate=2/s poisson`), `profile`, `concurrency` (the
//! in-flight limit, `null` for an uncapped rate), `rate_rps` and `arrivals` (rate profile),
//! the same counts, tokens, summaries and throughputs as the top level, then:
//! - `hardware` ([`HwReport`]): node figures sampled every second while it ran — mean/peak
//!   power, energy, tokens per joule, WES, worst thermal state and throttle time, peak
//!   resident memory of the engine process, swap-in/out bytes and `swap_any`, the engine's own
//!   token counter delta; `null` with `--no-hardware`.
//! - `memory_bandwidth` ([`Bandwidth`]): achieved bytes/s = model file size × 1000 ÷ mean TPOT
//!   (each decode step reads the weights once; at concurrency > 1 one step serves the whole
//!   batch, so this is bytes per decode step × steps per second, with steps/s ≈ 1000 ÷ TPOT;
//!   the KV cache read is left out, so it is a lower bound), ÷ the device's peak bandwidth.
//! - `schedule_lag_ms` (rate profile): how late requests left against their arrival times;
//!   a p99 above a few milliseconds means the client could not keep the pace.
//! - `requests`: every measured request ([`RequestSample`]), in the order they were sent.
//!
//! # Sweep ([`SweepReport`])
//!
//! `points`, one per model in the order swept ([`SweepPoint`]): `file` and/or `model` (the
//! name asked for on a server), `quant` and `facts_source` (`GGUF header`, `Ollama /api/show`
//! or `model name`, whose quantization then reads `… (from name)`), `size_bytes`,
//! `bits_per_weight`, `tokens_per_second` (output tokens/s of its run), `tpot_ms` (mean),
//! `error` when it could not be run, `perplexity` with `perplexity_stderr` and
//! `perplexity_chunks`, or `perplexity_error`, and `on_front` / `knee` (see
//! [`crate::pareto`]). Unmeasured figures are `null`. `notes` say how the front and knee were
//! chosen and what failed. The report's top-level run is the knee's.

use std::collections::BTreeMap;

use infermon_model::reqstats::Slo;
use infermon_model::stats::Summary;
use infermon_model::wes::Wes;
use serde::{Deserialize, Serialize};

/// Version of this schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole report, as written to `--out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of infermon that wrote the report.
    pub infermon_version: String,
    /// The measured run.
    #[serde(flatten)]
    pub run: RunReport,
    /// The quantization sweep, when one produced this report.
    #[serde(default)]
    pub sweep: Option<SweepReport>,
}

impl BenchReport {
    /// Wraps a run (and optionally a sweep) with the schema and infermon versions.
    pub fn new(run: RunReport, sweep: Option<SweepReport>) -> Self {
        BenchReport {
            schema_version: SCHEMA_VERSION,
            infermon_version: env!("CARGO_PKG_VERSION").to_string(),
            run,
            sweep,
        }
    }
}

/// Whether every planned request was sent and completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every planned request was sent and completed.
    #[default]
    Complete,
    /// The run stopped early, or some requests failed.
    Partial,
}

/// What one call of [`crate::run`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunReport {
    /// Complete or partial.
    pub status: RunStatus,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    /// When the run started, ms since the Unix epoch.
    pub started_unix_ms: i64,
    /// When it ended, ms since the Unix epoch.
    pub finished_unix_ms: i64,
    /// What was measured.
    pub target: Target,
    /// How.
    pub settings: RunSettings,
    /// The node and the engine.
    pub system: SystemInfo,
    /// Warm-up requests (excluded from every figure).
    pub warmup: Warmup,
    /// Totals and summaries over every configuration.
    #[serde(flatten)]
    pub totals: Figures,
    /// One entry per configuration.
    pub configs: Vec<ConfigReport>,
}

/// The endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Target {
    /// URL as given.
    pub url: String,
    /// The endpoint requests were sent to.
    pub endpoint: String,
    /// API (`openai_chat`, `openai_completions`, `ollama_chat`, `ollama_generate`).
    pub api: String,
    /// Model asked for (`null` when the request named none and the server did not say).
    pub model: Option<String>,
}

/// The settings a run used, echoed so that a report says how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunSettings {
    /// `sync`, `concurrency` or `rate`.
    pub profile: String,
    /// In-flight limits, one configuration each (`concurrency`, `sync` = `[1]`).
    pub concurrency: Vec<u32>,
    /// Request rates per second, one configuration each (`rate`; `inf` is written as `null`).
    pub rates: Vec<Option<f64>>,
    /// `constant` or `poisson` (`rate`).
    pub arrivals: Option<String>,
    /// In-flight cap under a rate (`rate`).
    pub max_concurrency: Option<u32>,
    /// Measured requests per configuration.
    pub requests: u64,
    /// Warm-up requests before the first configuration.
    pub warmup: u64,
    /// `max_tokens` asked for (a JSONL prompt may ask for its own).
    pub max_tokens: u32,
    /// Synthetic prompt length asked for, in (approximate) tokens; `null` for a JSONL file.
    pub input_tokens: Option<u32>,
    /// `synthetic` or the JSONL file's path.
    pub prompts: String,
    /// Seed of the prompts and arrivals.
    pub seed: u64,
    /// Whether `ignore_eos` was sent (OpenAI APIs), so every answer runs to `max_tokens`.
    pub ignore_eos: bool,
    /// Objectives for goodput.
    pub slo: Slo,
    /// Longest silence (no head, no chunk) before a request counts as timed out, seconds.
    pub timeout_s: f64,
    /// Whether the node was sampled.
    pub hardware: bool,
}

/// The node and the engine, as far as they could be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SystemInfo {
    /// GPU names.
    pub gpus: Vec<String>,
    /// Logical CPUs.
    pub cpu_count: Option<u32>,
    /// Memory of the node.
    pub memory_total_bytes: Option<u64>,
    /// Engine process serving the endpoint, when it is local and was found.
    pub engine_pid: Option<u32>,
    /// Kind of engine the collectors polled (`llamacpp`, `vllm`, …).
    #[serde(default)]
    pub engine_kind: Option<String>,
    /// Where they polled it: the endpoint's base URL, or behind llama-swap the model's own
    /// llama-server.
    #[serde(default)]
    pub engine_url: Option<String>,
    /// Model file the engine serves (llama.cpp `/props`), or `--model-file`.
    pub model_path: Option<String>,
    /// Its size (or `--model-size`).
    pub model_size_bytes: Option<u64>,
    /// Peak memory bandwidth of the device, GB/s (10⁹ bytes/s).
    pub peak_bandwidth_gb_s: Option<f64>,
    /// Where the peak came from: `--peak-bandwidth`, `table: NAME`, or `unknown`.
    pub peak_bandwidth_source: String,
    /// What could not be read.
    pub unavailable: Vec<String>,
}

/// Warm-up requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Warmup {
    /// Sent.
    pub requests: u64,
    /// Completed.
    pub completed: u64,
    /// Their completion tokens (they reach the engine's counters too).
    pub completion_tokens: u64,
}

/// Counts, tokens, latency summaries and throughputs of a set of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Figures {
    /// Requests sent.
    pub requests_sent: u64,
    /// Requests that completed (outcome `ok`).
    pub requests_completed: u64,
    /// Requests that failed (any outcome but `ok` and `cancelled`).
    pub requests_failed: u64,
    /// Requests planned but not sent because the run stopped.
    pub requests_not_sent: u64,
    /// Count per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Distinct error messages.
    pub errors: Vec<ErrorCount>,
    /// Completed requests whose answer carried no token count.
    pub requests_without_usage: u64,
    /// Completion tokens of completed requests (`null` when none completed).
    pub completion_tokens_total: Option<u64>,
    /// Prompt tokens of completed requests (`null` when none completed).
    pub prompt_tokens_total: Option<u64>,
    /// Wall time, seconds.
    pub duration_s: f64,
    /// Time to first token, ms.
    pub ttft_ms: Option<Summary>,
    /// Time per output token after the first, ms.
    pub tpot_ms: Option<Summary>,
    /// Gaps between token chunks, pooled, ms.
    pub itl_ms: Option<Summary>,
    /// End to end, ms.
    pub e2e_ms: Option<Summary>,
    /// The engine's own time per output token after the first, ms.
    pub server_tpot_ms: Option<Summary>,
    /// Completion tokens per second.
    pub output_tokens_per_second: Option<f64>,
    /// Prompt + completion tokens per second.
    pub total_tokens_per_second: Option<f64>,
    /// Completed requests per second.
    pub requests_per_second: Option<f64>,
    /// Completed requests meeting every SLO per second (`null` without `--slo`).
    pub goodput_requests_per_second: Option<f64>,
    /// Share of completed requests meeting every SLO.
    pub slo_attainment_ratio: Option<f64>,
}

/// One distinct error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// Outcome.
    pub outcome: String,
    /// Message (the first one seen of its kind).
    pub message: String,
    /// How many requests ended with it.
    pub count: u64,
}

/// One configuration: a concurrency level or a request rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConfigReport {
    /// `sync`, `concurrency=4`, `rate=2/s poisson`.
    pub label: String,
    /// `sync`, `concurrency` or `rate`.
    pub profile: String,
    /// In-flight limit (`null` for an uncapped rate).
    pub concurrency: Option<u32>,
    /// Requests per second (`null` for `sync`/`concurrency` and for `rate=inf`).
    pub rate_rps: Option<f64>,
    /// `constant` or `poisson` (rate profile).
    pub arrivals: Option<String>,
    /// When it started, ms since the Unix epoch.
    pub started_unix_ms: i64,
    /// Counts, tokens, summaries, throughputs.
    #[serde(flatten)]
    pub figures: Figures,
    /// The node while it ran.
    pub hardware: Option<HwReport>,
    /// Memory-bandwidth utilisation.
    pub memory_bandwidth: Option<Bandwidth>,
    /// How late the client sent requests against their schedule, ms (rate profile only):
    /// a p99 above a few ms means the client, not the server, set the pace.
    #[serde(default)]
    pub schedule_lag_ms: Option<Summary>,
    /// Every measured request.
    pub requests: Vec<RequestSample>,
}

/// One measured request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RequestSample {
    /// Sent this long after the configuration started, ms.
    pub start_ms: f64,
    /// Outcome.
    pub outcome: String,
    /// HTTP status (0 when none arrived).
    pub status: u16,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// TTFT, ms.
    pub ttft_ms: Option<f64>,
    /// TPOT, ms.
    pub tpot_ms: Option<f64>,
    /// E2E, ms.
    pub e2e_ms: f64,
    /// Largest gap between token chunks, ms.
    pub itl_max_ms: Option<f64>,
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    pub completion_tokens: Option<u64>,
    /// Chunks that carried a token.
    pub token_chunks: u64,
    /// The engine's time per output token after the first, ms.
    pub server_tpot_ms: Option<f64>,
    /// The engine's prompt time, ms.
    pub server_prompt_ms: Option<f64>,
    /// Prompt tokens the engine served from its cache.
    pub server_cache_n: Option<u64>,
}

/// The node while one configuration ran, from the agent's collectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HwReport {
    /// Samples taken (one at the start, one per interval, one at the end).
    pub samples: u32,
    /// Mean power of the parts that run inference (GPUs + CPU packages), W.
    pub power_watts_mean: Option<f64>,
    /// Highest sampled power, W.
    pub power_watts_peak: Option<f64>,
    /// Which readings make up the power.
    pub power_sources: Vec<String>,
    /// Energy over the configuration, J.
    pub energy_joules: Option<f64>,
    /// Completion tokens per joule.
    pub tokens_per_joule: Option<f64>,
    /// WES from output tokens/s, mean power, PUE and the worst thermal penalty.
    pub wes: Option<Wes>,
    /// Why there is no WES.
    pub wes_unavailable: Option<String>,
    /// Worst thermal state seen (`normal`, `fair`, `serious`, `critical`).
    pub thermal_state: String,
    /// Throttle reasons seen.
    pub thermal_reasons: Vec<String>,
    /// Seconds of sampled windows in a state worse than normal.
    pub throttle_seconds: f64,
    /// Mean GPU utilisation, 0–1.
    pub gpu_utilization_mean_ratio: Option<f64>,
    /// Mean CPU utilisation of the node, 0–1.
    pub cpu_utilization_mean_ratio: Option<f64>,
    /// Engine process.
    pub engine_pid: Option<u32>,
    /// Highest resident memory of the engine process.
    pub engine_memory_peak_bytes: Option<u64>,
    /// Bytes swapped in during the configuration.
    pub swap_in_bytes: Option<u64>,
    /// Bytes swapped out during the configuration.
    pub swap_out_bytes: Option<u64>,
    /// Whether anything was swapped in or out.
    pub swap_any: Option<bool>,
    /// Major page faults of the node during the configuration.
    pub major_page_faults: Option<u64>,
    /// The engine's own generated-token counter, its change over the configuration.
    pub engine_generation_tokens: Option<f64>,
    /// What could not be read.
    pub unavailable: Vec<String>,
}

/// Memory-bandwidth utilisation of decode (see the module docs for the approximation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Bandwidth {
    /// Bytes read per decode step (the model file's size).
    pub model_size_bytes: Option<u64>,
    /// Decode steps per second (1000 ÷ mean TPOT).
    pub steps_per_second: Option<f64>,
    /// Achieved bytes per second.
    pub achieved_bytes_per_second: Option<f64>,
    /// Peak bytes per second of the device.
    pub peak_bytes_per_second: Option<f64>,
    /// achieved ÷ peak.
    pub utilization_ratio: Option<f64>,
    /// Where the peak came from.
    pub peak_source: String,
}

/// A quantization sweep: one point per model (filled by `infermon bench sweep`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SweepReport {
    /// One point per model, in the order swept.
    pub points: Vec<SweepPoint>,
    /// Remarks shown under the Pareto plot.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One model of a sweep. A figure that could not be measured is `null`, with the reason in
/// `error` / `perplexity_error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SweepPoint {
    /// Model file (a file sweep, or the file a served model was found to load).
    pub file: Option<String>,
    /// Model name asked for on the server (a model-list sweep).
    #[serde(default)]
    pub model: Option<String>,
    /// Quantization (`Q4_K_M`; `… (guessed)` / `… (from name)` when not read from the
    /// file's `general.file_type` or said by the server; `unknown`).
    pub quant: String,
    /// Where `quant`, size and bits come from: `GGUF header`, `Ollama /api/show`, `model name`.
    #[serde(default)]
    pub facts_source: String,
    /// File size.
    pub size_bytes: Option<u64>,
    /// Bits per weight.
    pub bits_per_weight: Option<f64>,
    /// Output tokens per second.
    pub tokens_per_second: Option<f64>,
    /// Mean TPOT, ms.
    pub tpot_ms: Option<f64>,
    /// Why the model could not be run.
    #[serde(default)]
    pub error: Option<String>,
    /// Perplexity, when measured.
    pub perplexity: Option<f64>,
    /// Its standard error, as llama-perplexity prints it.
    #[serde(default)]
    pub perplexity_stderr: Option<f64>,
    /// Chunks of the text it was computed over.
    #[serde(default)]
    pub perplexity_chunks: Option<u32>,
    /// Why there is no perplexity (asked for but failed or impossible).
    #[serde(default)]
    pub perplexity_error: Option<String>,
    /// Whether it is on the Pareto front (no other point is both faster and better).
    pub on_front: bool,
    /// Whether it is the front's knee (the sweet spot).
    pub knee: bool,
}
