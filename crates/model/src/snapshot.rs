//! The derived view of one sample: what the API, `/metrics`, the store and `status` show.

use serde::{Deserialize, Serialize};

use crate::raw::{EngineKind, GpuProcess, GpuVendor, Temperature};
use crate::thermal::Thermal;
use crate::wes::{NoWes, Wes};

/// Every figure derived from one sample (and the one before it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Sample time, milliseconds since the Unix epoch.
    pub ts_unix_ms: i64,
    /// Seconds since the previous sample (`None` for the first one: no rates yet).
    pub window_seconds: Option<f64>,
    /// Node-wide figures.
    pub host: HostFigures,
    /// One entry per GPU.
    pub gpus: Vec<GpuFigures>,
    /// One entry per engine.
    pub engines: Vec<EngineFigures>,
    /// Efficiency of the node as a whole.
    pub efficiency: Efficiency,
    /// Every source and whether it could be read (the reason when not).
    pub sources: Vec<SourceState>,
    /// The agent's own cost and schedule.
    pub agent: AgentFigures,
    /// Per-model figures of requests measured by infermon's proxies over the recent window
    /// (empty when no proxy runs).
    #[serde(default)]
    pub requests: Vec<crate::reqstats::RequestStats>,
    /// How the agent's writing of its history is going, set by the agent after it tried to
    /// write this round (`None` from `derive`, and when no history is kept). Whether the store
    /// is writable, and why not, is its `store` entry in `sources`.
    #[serde(default)]
    pub store: Option<StoreFigures>,
}

/// The agent's writes to its history store, counted since the agent started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFigures {
    /// Attempts to write a sample that failed (a sample retried every round counts each time).
    pub write_errors_total: u64,
    /// Samples not written yet, kept in memory to be written when the store takes writes again.
    pub backlog_samples: u64,
    /// Samples written late, from that backlog.
    pub samples_written_late_total: u64,
    /// Samples given up: the oldest of the backlog when it outgrew its memory bound, or a
    /// sample the store refused for a reason that retrying cannot fix.
    pub samples_dropped_total: u64,
}

/// A source and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// Name, e.g. `host.cpu`, `host.rapl`, `gpu.nvml`, `engine.llamacpp.metrics[http://…]`.
    pub source: String,
    /// Whether it was read.
    pub ok: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// Node-wide figures; `None` means the source was unavailable (see `sources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HostFigures {
    /// Share of CPU time not idle over the window, 0–1.
    pub cpu_utilization_ratio: Option<f64>,
    /// Number of logical CPUs.
    pub cpu_count: Option<u32>,
    /// Mean current CPU frequency, Hz.
    pub cpu_frequency_hertz: Option<f64>,
    /// Hardware max CPU frequency, Hz.
    pub cpu_frequency_max_hertz: Option<f64>,
    /// MemTotal, bytes.
    pub memory_total_bytes: Option<u64>,
    /// MemAvailable, bytes.
    pub memory_available_bytes: Option<u64>,
    /// SwapTotal, bytes.
    pub swap_total_bytes: Option<u64>,
    /// SwapTotal − SwapFree, bytes.
    pub swap_used_bytes: Option<u64>,
    /// Bytes swapped in since boot.
    pub swap_in_bytes_total: Option<u64>,
    /// Bytes swapped out since boot.
    pub swap_out_bytes_total: Option<u64>,
    /// Swap-in rate over the window.
    pub swap_in_bytes_per_second: Option<f64>,
    /// Swap-out rate over the window.
    pub swap_out_bytes_per_second: Option<f64>,
    /// Major page faults since boot.
    pub major_page_faults_total: Option<u64>,
    /// PSI memory `some avg10`, 0–1.
    pub pressure_memory_some_ratio: Option<f64>,
    /// PSI memory `full avg10`, 0–1.
    pub pressure_memory_full_ratio: Option<f64>,
    /// PSI cpu `some avg10`, 0–1.
    pub pressure_cpu_some_ratio: Option<f64>,
    /// PSI io `some avg10`, 0–1.
    pub pressure_io_some_ratio: Option<f64>,
    /// CPU package energy since an arbitrary origin (RAPL), joules, summed over packages.
    pub cpu_energy_joules_total: Option<f64>,
    /// CPU package power over the window (RAPL), watts.
    pub cpu_power_watts: Option<f64>,
    /// Temperatures.
    pub temperatures: Vec<Temperature>,
    /// CPU thermal state from its own throttle counters.
    pub cpu_thermal: Option<Thermal>,
    /// The processes that used the most CPU over the reader's window, most first (empty
    /// without a window). Not exported as series (one per pid would be unbounded cardinality).
    #[serde(default)]
    pub top_processes: Vec<ProcessCpuFigures>,
}

/// One process's share of the CPU over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpuFigures {
    /// Process id.
    pub pid: u32,
    /// Command name (`comm`).
    pub name: String,
    /// CPU seconds per second over the window: 1.0 is one core kept busy.
    pub cpu_cores: f64,
    /// `cpu_cores` ÷ the number of logical CPUs: the share of the whole node, 0–1 (`None` when
    /// the CPU count is unavailable).
    pub cpu_ratio: Option<f64>,
    /// User + system CPU seconds since the process started.
    pub cpu_seconds_total: f64,
}

/// One GPU's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuFigures {
    /// Vendor.
    pub vendor: GpuVendor,
    /// Index among this vendor's devices.
    pub index: u32,
    /// Stable id (UUID or PCI slot).
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Busy share, 0–1.
    pub utilization_ratio: Option<f64>,
    /// Memory controller busy share, 0–1.
    pub memory_busy_ratio: Option<f64>,
    /// VRAM used, bytes.
    pub vram_used_bytes: Option<u64>,
    /// VRAM total, bytes.
    pub vram_total_bytes: Option<u64>,
    /// GTT used, bytes.
    pub gtt_used_bytes: Option<u64>,
    /// GTT total, bytes.
    pub gtt_total_bytes: Option<u64>,
    /// Power, watts: the energy counter's average over the window when there is one,
    /// else the driver's power reading.
    pub power_watts: Option<f64>,
    /// Power limit, watts.
    pub power_limit_watts: Option<f64>,
    /// Energy counter, joules.
    pub energy_joules_total: Option<f64>,
    /// Temperature, Celsius.
    pub temperature_celsius: Option<f64>,
    /// Graphics clock, Hz.
    pub clock_hertz: Option<f64>,
    /// Max graphics clock, Hz.
    pub clock_max_hertz: Option<f64>,
    /// Memory clock, Hz.
    pub memory_clock_hertz: Option<f64>,
    /// Thermal state from the device's throttle signal (`None`: the device gives none).
    pub thermal: Option<Thermal>,
    /// Processes on the GPU.
    pub processes: Vec<GpuProcess>,
    /// Fields the driver did not provide, with reasons.
    pub unavailable: Vec<String>,
}

/// One engine's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineFigures {
    /// Kind.
    pub kind: EngineKind,
    /// Base URL.
    pub instance: String,
    /// How it was found.
    pub origin: String,
    /// Model name (`unknown` until `/props` answers).
    pub model: String,
    /// Server PID when known.
    pub pid: Option<u32>,
    /// Health endpoint answered OK.
    pub up: bool,
    /// Health status word or the reason it could not be read.
    pub health: String,
    /// Whether `/metrics` could be read; when false, `metrics_reason` says why (e.g. the
    /// server was started without `--metrics`).
    pub metrics_available: bool,
    /// Why `/metrics` could not be read.
    pub metrics_reason: Option<String>,
    /// Prompt tokens processed (server counter, passed through).
    pub prompt_tokens_total: Option<f64>,
    /// Generated tokens (server counter, passed through).
    pub generation_tokens_total: Option<f64>,
    /// Generation speed while generating over the window, per stream: decode steps per second
    /// of generation time, as the server's `timings.predicted_per_second` counts it per request.
    /// See `speed_basis` for where it came from.
    pub generation_tokens_per_second: Option<f64>,
    /// Basis of the two speeds: `server_window` (the server's own rate over exactly this
    /// window: exact µs timing, first token excluded) or `counters` (Δtokens ÷ Δseconds of the
    /// cumulative counters, which llama-server prints with 6 significant digits).
    pub speed_basis: Option<SpeedBasis>,
    /// Generated tokens per wall-clock second over the window (aggregate throughput).
    pub generation_throughput_tokens_per_second: Option<f64>,
    /// Prompt processing speed while processing: Δprompt tokens ÷ Δprompt-seconds.
    pub prompt_tokens_per_second: Option<f64>,
    /// Prompt tokens per wall-clock second over the window.
    pub prompt_throughput_tokens_per_second: Option<f64>,
    /// Tokens generated in the window.
    pub generation_tokens_in_window: Option<f64>,
    /// Requests running now.
    pub requests_running: Option<f64>,
    /// Requests waiting now.
    pub requests_waiting: Option<f64>,
    /// Slots busy / total from `/slots`.
    pub slots_processing: Option<u32>,
    /// Total slots.
    pub slots_total: Option<u32>,
    /// Context size per slot set.
    pub n_ctx: Option<u64>,
    /// Counters went down or the server restarted since the previous sample: no rates for
    /// this window.
    pub counters_reset: bool,
    /// Resident memory of the server process, bytes.
    #[serde(default)]
    pub memory_resident_bytes: Option<u64>,
    /// Proportional set size of the server process, bytes.
    #[serde(default)]
    pub memory_proportional_bytes: Option<u64>,
    /// Estimated memory (`infermon fit`) against resident memory.
    #[serde(default)]
    pub memory_estimate: Option<crate::compare::Comparison>,
    /// Why memory could not be measured or estimated.
    #[serde(default)]
    pub memory_unavailable: Vec<String>,
    /// Decode memory-bandwidth utilisation (MBU), 0–1: the model's weight bytes (the `fit`
    /// estimate's) × decode steps per second (`generation_tokens_per_second`, per stream) ÷
    /// the peak bandwidth of the first GPU whose name [`crate::bandwidth`] knows. `None`
    /// when any of the three is missing (no local process or estimate, no rate, no known GPU).
    ///
    /// **Approximation.** Decode reads every weight once per step; one step serves the whole
    /// batch, so per-stream steps per second is the step rate. The KV cache read (grows with
    /// context) is left out, so this is a lower bound; for mixture-of-experts models only the
    /// active experts are read, so it is an upper bound there (and can exceed 1). Layers kept
    /// on the host are counted against the GPU's peak as if they were on it.
    #[serde(default)]
    pub memory_bandwidth_utilization_ratio: Option<f64>,
    /// Latency quantiles from the engine's own histograms over the window (vLLM, SGLang).
    #[serde(default)]
    pub latency: Vec<crate::detail::LatencyFigures>,
    /// Per-model scheduler and cache figures (vLLM, SGLang).
    #[serde(default)]
    pub scheduler: Vec<crate::detail::SchedulerFigures>,
    /// Models a multi-model engine knows (`None`: single-model engine).
    #[serde(default)]
    pub models: Option<Vec<crate::detail::ModelFigures>>,
    /// Why the model list could not be read.
    #[serde(default)]
    pub models_reason: Option<String>,
    /// Model lifecycle events seen in the window.
    #[serde(default)]
    pub events: Vec<crate::detail::EngineEvent>,
    /// Facts worth showing that are not numbers.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Where an engine's speed figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeedBasis {
    /// The server's rate over the window since the previous scrape.
    ServerWindow,
    /// Deltas of the cumulative token and seconds counters.
    Counters,
}

/// Node efficiency: tokens, power, thermal penalty and WES.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    /// Generated tokens per wall-clock second, summed over engines with counters.
    pub generation_tokens_per_second: Option<f64>,
    /// Power of the parts that run inference (GPUs + CPU packages, where readable), watts.
    pub power_watts: Option<f64>,
    /// Which readings make up `power_watts`.
    pub power_sources: Vec<String>,
    /// Tokens per joule over the window.
    pub tokens_per_joule: Option<f64>,
    /// Worst thermal state over CPU and GPUs, with reasons.
    pub thermal: Thermal,
    /// Penalty of that state.
    pub thermal_penalty: f64,
    /// PUE used.
    pub pue: f64,
    /// WES, or why there is none.
    pub wes: Result<Wes, NoWes>,
}

/// The agent's own cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentFigures {
    /// CPU seconds used by the agent since it started.
    pub cpu_seconds_total: Option<f64>,
    /// Share of one CPU the agent used over the window, 0–1 per core.
    pub cpu_ratio: Option<f64>,
    /// Resident memory, bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Current sampling interval, seconds.
    pub interval_seconds: f64,
    /// Time the sampling round took, seconds.
    pub collect_seconds: f64,
}
