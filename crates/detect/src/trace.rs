//! The replay trace format: a CSV with a header row, one row per tick (2 s in our traces; any
//! spacing is accepted). An empty cell means "not measured". Unknown columns are ignored; a
//! required column that is missing switches off the detectors that need it (see
//! [`crate::Detector::disabled`]), and replay says which.
//!
//! The first sixteen columns ([`COLUMNS`]) are the format; [`EXTRA_COLUMNS`] are
//! optional ones infermon's own export and trace generator add so that replay can name a
//! culprit, see an engine go down, and so on.

/// The base columns, in order.
pub const COLUMNS: [&str; 16] = [
    "t_s",
    "model",
    "requests_running",
    "requests_waiting",
    "prompt_tokens_per_s",
    "generation_tokens_per_s",
    "ttft_p50_ms",
    "tpot_p50_ms",
    "gpu_util",
    "gpu_clock_mhz",
    "power_w",
    "gpu_temp_c",
    "thermal_state",
    "kv_usage",
    "swap_in_pages_per_s",
    "mem_available_bytes",
];

/// Optional columns (infermon's extension of the format).
///
/// | column | meaning |
/// |---|---|
/// | `engine` | engine name or base URL (default `trace`) |
/// | `engine_up` | `1` answering, `0` down |
/// | `error_ratio` | failed ÷ ended requests recently, 0–1 |
/// | `requests_ended` | requests that ended recently |
/// | `prompt_tokens_mean` | mean prompt length recently, tokens |
/// | `cpu_util` | share of all CPUs busy, 0–1 |
/// | `cpu_count` | logical CPUs |
/// | `top_process` | the busiest process that is not an engine: `NAME:PID:CORES` |
/// | `gpu_clock_max_mhz` | the GPU's max graphics clock |
/// | `power_limit_w` | the GPU's power limit |
/// | `thermal_reasons` | active throttle reasons, `;`-separated |
/// | `mem_total_bytes` | MemTotal |
/// | `psi_memory_some` | PSI memory some avg10, 0–1 |
/// | `memory_estimate_bytes` | the `fit` estimate of the engine's model |
/// | `memory_resident_bytes` | the engine process's resident memory |
/// | `events` | model lifecycle events, `;`-separated `KIND:MODEL` (e.g. `loaded:qwen`) |
/// | `bandwidth_util` | decode memory-bandwidth use against peak, 0–1 |
pub const EXTRA_COLUMNS: [&str; 17] = [
    "engine",
    "engine_up",
    "error_ratio",
    "requests_ended",
    "prompt_tokens_mean",
    "cpu_util",
    "cpu_count",
    "top_process",
    "gpu_clock_max_mhz",
    "power_limit_w",
    "thermal_reasons",
    "mem_total_bytes",
    "psi_memory_some",
    "memory_estimate_bytes",
    "memory_resident_bytes",
    "events",
    "bandwidth_util",
];
