//! The detectors' input: one tick of figures, flattened. The agent builds a [`Frame`] from each
//! [`Snapshot`](infermon_model::Snapshot) (see [`crate::from_snapshot`]); replay builds one from
//! each row of a trace (see [`crate::trace`]). Every figure is optional: absent is not zero, and
//! a detector whose input is absent stays silent.

use infermon_model::thermal::ThermalState;
use serde::{Deserialize, Serialize};

/// One tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Frame {
    /// Time, seconds (Unix seconds in the agent, the trace's `t_s` in replay).
    pub t_s: f64,
    /// Node-wide figures.
    pub node: NodeFrame,
    /// One entry per GPU.
    pub gpus: Vec<GpuFrame>,
    /// One entry per (engine, model) being served.
    pub engines: Vec<EngineFrame>,
}

/// Node-wide figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeFrame {
    /// Share of all CPUs busy, 0–1.
    pub cpu_util: Option<f64>,
    /// Logical CPUs.
    pub cpu_count: Option<u32>,
    /// MemAvailable, bytes.
    pub mem_available_bytes: Option<f64>,
    /// MemTotal, bytes.
    pub mem_total_bytes: Option<f64>,
    /// Pages (4 KiB) swapped in per second.
    pub swap_in_pages_per_s: Option<f64>,
    /// PSI memory `some avg10`, 0–1.
    pub psi_memory_some: Option<f64>,
    /// Worst thermal state of the node (CPU and GPUs), from the hardware's own signal.
    pub thermal_state: Option<ThermalState>,
    /// The signal's active reasons, e.g. `sw_power_cap`, `hw_thermal_slowdown`.
    pub thermal_reasons: Vec<String>,
    /// Power of the parts that run inference, watts.
    pub power_w: Option<f64>,
    /// Penalized WES.
    pub wes_penalized: Option<f64>,
    /// Generated tokens per second over every engine (the WES numerator).
    pub generation_tokens_per_s: Option<f64>,
    /// Decode's memory-bandwidth use against the device's peak, 0–1.
    pub bandwidth_util: Option<f64>,
    /// Processes by CPU use over the window, busiest first (engines' own processes included,
    /// marked).
    pub top_processes: Vec<ProcessCpu>,
}

/// A process and the CPU it used over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpu {
    /// PID.
    pub pid: u32,
    /// Command name.
    pub name: String,
    /// CPU-seconds per second over the window (1.0 = one core busy).
    pub cores: f64,
    /// An engine's own process, or the agent's.
    pub is_engine: bool,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GpuFrame {
    /// Stable id, e.g. `0` or a PCI slot.
    pub id: String,
    /// Busy, percent 0–100.
    pub util_pct: Option<f64>,
    /// Graphics clock, MHz.
    pub clock_mhz: Option<f64>,
    /// Max graphics clock, MHz.
    pub clock_max_mhz: Option<f64>,
    /// Power, watts.
    pub power_w: Option<f64>,
    /// Power limit, watts.
    pub power_limit_w: Option<f64>,
    /// Temperature, Celsius.
    pub temp_c: Option<f64>,
    /// Its own thermal state.
    pub thermal_state: Option<ThermalState>,
    /// Active throttle reasons.
    pub thermal_reasons: Vec<String>,
}

/// One model on one engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EngineFrame {
    /// The engine's base URL (or the trace's `engine` column).
    pub engine: String,
    /// The engine's process, when local.
    pub pid: Option<u32>,
    /// Whether the engine answered; `None` when not known.
    pub up: Option<bool>,
    /// Why it is down, when it is.
    pub down_reason: Option<String>,
    /// A discovered server whose process has exited: gone on purpose (stopped, or unloaded by
    /// llama-swap), not down. Clears `engine_down` instead of opening it.
    #[serde(default)]
    pub gone: bool,
    /// The model served (`None` while not known).
    pub model: Option<String>,
    /// Requests running.
    pub requests_running: Option<f64>,
    /// Requests waiting.
    pub requests_waiting: Option<f64>,
    /// Prompt tokens per wall-clock second.
    pub prompt_tokens_per_s: Option<f64>,
    /// Generated tokens per wall-clock second (aggregate throughput).
    pub generation_tokens_per_s: Option<f64>,
    /// Median TTFT of requests that ended recently, ms.
    pub ttft_p50_ms: Option<f64>,
    /// Median TPOT of requests that ended recently (or the engine's per-stream decode time
    /// per token), ms.
    pub tpot_p50_ms: Option<f64>,
    /// Mean prompt length of requests that ended recently, tokens (the prompt-size band).
    pub prompt_tokens_mean: Option<f64>,
    /// KV cache use, 0–1.
    pub kv_usage: Option<f64>,
    /// Failed ÷ all requests that ended recently.
    pub error_ratio: Option<f64>,
    /// Requests that ended recently (the error ratio's denominator).
    pub requests_ended: Option<f64>,
    /// Model lifecycle events in the window.
    pub events: Vec<ModelEvent>,
    /// Estimated memory of the model as configured (`infermon fit`), bytes.
    pub memory_estimate_bytes: Option<f64>,
    /// Memory the engine's process holds now, bytes.
    pub memory_resident_bytes: Option<f64>,
}

/// A model load or unload seen on an engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEvent {
    /// The model.
    pub model: String,
    /// `loaded`, `unloaded`, `starting`, `ready`, `stopped`, … (the engine's own word).
    pub kind: String,
}
