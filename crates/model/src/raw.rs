//! Raw samples: what the collectors read, before any derivation.
//!
//! Counters are kept as the source reports them (cumulative, in the source's own unit); rates
//! and efficiency figures are derived from two samples by [`crate::derive`]. The store keeps
//! these raw samples, so a formula fix also fixes history.
//!
//! Absent is not zero: every value a source may fail to provide is an `Option` or a
//! [`Reading`], and an unavailable reading carries the reason.

use serde::{Deserialize, Serialize};

/// One reading of a source: the value, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reading<T> {
    /// The source was read.
    Ok {
        /// What was read.
        value: T,
    },
    /// The source could not be read; `reason` says why (path, error, value).
    Unavailable {
        /// Human-readable reason, naming the path or URL and the error.
        reason: String,
    },
}

impl<T> Reading<T> {
    /// A successful reading.
    pub fn ok(value: T) -> Self {
        Reading::Ok { value }
    }

    /// An unavailable reading with its reason.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Reading::Unavailable {
            reason: reason.into(),
        }
    }

    /// The value, if the source was read.
    pub fn value(&self) -> Option<&T> {
        match self {
            Reading::Ok { value } => Some(value),
            Reading::Unavailable { .. } => None,
        }
    }

    /// The reason, if the source was not read.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Reading::Ok { .. } => None,
            Reading::Unavailable { reason } => Some(reason),
        }
    }

    /// Builds a reading from a `Result`, keeping the error text as the reason.
    pub fn from_result<E: std::fmt::Display>(r: Result<T, E>) -> Self {
        match r {
            Ok(value) => Reading::Ok { value },
            Err(e) => Reading::Unavailable {
                reason: e.to_string(),
            },
        }
    }
}

/// Everything read in one sampling round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawSample {
    /// Wall-clock time of the sample, milliseconds since the Unix epoch.
    pub ts_unix_ms: i64,
    /// Monotonic time of the sample in milliseconds since the agent started; rates use this,
    /// so a wall-clock jump never produces a negative or huge rate.
    pub mono_ms: u64,
    /// Host facts and node-wide readings.
    pub host: HostRaw,
    /// GPUs found by the detection factory (all of them, every vendor).
    pub gpus: Vec<GpuRaw>,
    /// GPU sources that could not be read at all (e.g. "nvml: libnvidia-ml.so.1 not found").
    pub gpu_sources: Vec<SourceStatus>,
    /// Engines attached to this agent.
    pub engines: Vec<EngineRaw>,
    /// The agent's own cost.
    pub agent: AgentRaw,
}

/// Whether a named source was readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Source name, e.g. `nvml`, `amdgpu`, `rapl`.
    pub source: String,
    /// `None` when readable; the reason otherwise.
    pub unavailable: Option<String>,
}

/// Node-wide readings (CPU, memory, swap, pressure, energy, temperatures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRaw {
    /// `/proc/stat` aggregate CPU times.
    pub cpu: Reading<CpuTimes>,
    /// CPU frequency from cpufreq.
    pub cpu_freq: Reading<CpuFreq>,
    /// `/proc/meminfo`.
    pub memory: Reading<MemoryRaw>,
    /// `/proc/vmstat` swap and fault counters.
    pub vmstat: Reading<VmstatRaw>,
    /// `/proc/pressure/*` (PSI).
    pub pressure: Reading<PressureRaw>,
    /// RAPL energy counters (`/sys/class/powercap`); root-only on current kernels.
    pub rapl: Reading<Vec<RaplZone>>,
    /// Temperatures (thermal zones and hwmon CPU sensors).
    pub temperatures: Reading<Vec<Temperature>>,
    /// Intel `thermal_throttle` counters (absent on AMD CPUs).
    pub cpu_throttle: Reading<CpuThrottle>,
    /// The processes that used the most CPU time since the previous read (`/proc/<pid>/stat`),
    /// most first. `None`: not read (a sample from before this field, or a reader that does not
    /// track processes). An empty list: no process used CPU time in the window, or this was the
    /// reader's first read (no window yet).
    #[serde(default)]
    pub top_processes: Option<Reading<Vec<ProcessCpuRaw>>>,
}

/// One process's CPU time as the host reader saw it (`utime + stime` of `/proc/<pid>/stat`,
/// all threads, not counting waited-for children).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpuRaw {
    /// Process id.
    pub pid: u32,
    /// Command name (`comm`, at most 15 bytes, as the kernel keeps it).
    pub name: String,
    /// User + system CPU seconds since the process started (cumulative).
    pub cpu_seconds_total: f64,
    /// CPU seconds the process used between the reader's previous read and this one; for a
    /// process that started in between, all of its CPU time. `None` without a previous read.
    pub window_cpu_seconds: Option<f64>,
    /// Length of that window, seconds, on the reader's monotonic clock. `None` without a
    /// previous read.
    pub window_seconds: Option<f64>,
}

/// Cumulative CPU time in USER_HZ ticks from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CpuTimes {
    /// user
    pub user: u64,
    /// nice
    pub nice: u64,
    /// system
    pub system: u64,
    /// idle
    pub idle: u64,
    /// iowait
    pub iowait: u64,
    /// irq
    pub irq: u64,
    /// softirq
    pub softirq: u64,
    /// steal
    pub steal: u64,
    /// Number of `cpuN` lines (online logical CPUs).
    pub n_cpus: u32,
}

/// CPU frequency figures from `/sys/devices/system/cpu/cpu*/cpufreq`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuFreq {
    /// Mean of `scaling_cur_freq` over CPUs, MHz.
    pub avg_mhz: f64,
    /// Largest `scaling_cur_freq`, MHz.
    pub max_cur_mhz: f64,
    /// `cpuinfo_max_freq` of cpu0, MHz, when readable.
    pub hw_max_mhz: Option<f64>,
}

/// Figures from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRaw {
    /// MemTotal
    pub total_bytes: u64,
    /// MemAvailable
    pub available_bytes: u64,
    /// MemFree
    pub free_bytes: u64,
    /// SwapTotal
    pub swap_total_bytes: u64,
    /// SwapFree
    pub swap_free_bytes: u64,
}

/// Cumulative counters from `/proc/vmstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmstatRaw {
    /// Pages swapped in since boot.
    pub pswpin: u64,
    /// Pages swapped out since boot.
    pub pswpout: u64,
    /// Major page faults since boot.
    pub pgmajfault: u64,
    /// Page size in bytes used to turn pages into bytes.
    pub page_size: u64,
}

/// PSI lines; each resource may be missing on its own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PressureRaw {
    /// `/proc/pressure/memory`
    pub memory: Option<Psi>,
    /// `/proc/pressure/cpu`
    pub cpu: Option<Psi>,
    /// `/proc/pressure/io`
    pub io: Option<Psi>,
}

/// One PSI file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    /// `some avg10` (percent).
    pub some_avg10: f64,
    /// `some total` (microseconds, cumulative).
    pub some_total_us: u64,
    /// `full avg10` (percent), absent for `cpu` on older kernels.
    pub full_avg10: Option<f64>,
    /// `full total` (microseconds, cumulative).
    pub full_total_us: Option<u64>,
}

/// One RAPL zone's energy counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaplZone {
    /// Zone directory, e.g. `intel-rapl:0`.
    pub zone: String,
    /// Zone `name`, e.g. `package-0`.
    pub name: String,
    /// `energy_uj`, microjoules, wraps at `max_energy_range_uj`.
    pub energy_uj: u64,
    /// `max_energy_range_uj`.
    pub max_energy_range_uj: u64,
}

/// One temperature sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    /// Where it came from, e.g. `thermal_zone0:x86_pkg_temp` or `hwmon:k10temp:Tctl`.
    pub sensor: String,
    /// Degrees Celsius.
    pub celsius: f64,
}

/// Intel x86 `thermal_throttle` counters of cpu0's package and core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuThrottle {
    /// `package_throttle_count`
    pub package_count: u64,
    /// `core_throttle_count`
    pub core_count: u64,
    /// `package_throttle_total_time_ms`, where the kernel has it.
    pub package_total_ms: Option<u64>,
}

/// GPU vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuVendor {
    /// NVIDIA, read through NVML.
    Nvidia,
    /// AMD, read through amdgpu sysfs/hwmon.
    Amd,
}

/// The hardware's own throttle signal, kept raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThrottleRaw {
    /// NVML clock-event (throttle) reason bitmask.
    NvidiaClockEvents {
        /// `nvmlDeviceGetCurrentClocksEventReasons` bits.
        mask: u64,
    },
    /// amdgpu `gpu_metrics` `indep_throttle_status` bits (v1.3+, v2.2+).
    AmdIndepThrottle {
        /// Bits as defined in `amdgpu_smu.h` (power 0-7, current 16-23, temperature 32-43,
        /// VR hot 44-45, PROCHOT 46-47).
        mask: u64,
    },
    /// amdgpu `gpu_metrics` v3.0 cumulative throttle residency counters.
    AmdThrottleResidency {
        /// `throttle_residency_prochot`
        prochot: u32,
        /// `throttle_residency_spl`
        spl: u32,
        /// `throttle_residency_fppt`
        fppt: u32,
        /// `throttle_residency_sppt`
        sppt: u32,
        /// `throttle_residency_thm_core`
        thm_core: u32,
        /// `throttle_residency_thm_gfx`
        thm_gfx: u32,
        /// `throttle_residency_thm_soc`
        thm_soc: u32,
    },
}

/// A process using GPU memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    /// Process id.
    pub pid: u32,
    /// GPU memory used by it, bytes (None when the driver does not say).
    pub used_bytes: Option<u64>,
}

/// One GPU. Every field is optional: the driver may not expose it, and absent is not zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuRaw {
    /// Vendor.
    pub vendor: GpuVendor,
    /// Index among this vendor's devices.
    pub index: u32,
    /// Stable id: NVML UUID, or the PCI slot of an amdgpu card.
    pub id: String,
    /// Marketing name where known.
    pub name: Option<String>,
    /// Busy percent (NVML utilisation.gpu, amdgpu `gpu_busy_percent`).
    pub busy_percent: Option<f64>,
    /// Memory controller busy percent.
    pub mem_busy_percent: Option<f64>,
    /// Dedicated memory used, bytes.
    pub vram_used_bytes: Option<u64>,
    /// Dedicated memory total, bytes.
    pub vram_total_bytes: Option<u64>,
    /// GTT (system memory mapped for the GPU) used, bytes — AMD.
    pub gtt_used_bytes: Option<u64>,
    /// GTT total, bytes — AMD.
    pub gtt_total_bytes: Option<u64>,
    /// Power draw, watts (NVML power usage; amdgpu `power1_input`/`power1_average`).
    pub power_watts: Option<f64>,
    /// Enforced power limit, watts.
    pub power_limit_watts: Option<f64>,
    /// Cumulative energy counter, millijoules (NVML total energy; Volta+).
    pub energy_mj: Option<u64>,
    /// Temperature, Celsius (edge/GPU sensor).
    pub temperature_c: Option<f64>,
    /// Graphics/SM clock, MHz.
    pub clock_mhz: Option<f64>,
    /// Max graphics/SM clock, MHz.
    pub clock_max_mhz: Option<f64>,
    /// Memory clock, MHz.
    pub mem_clock_mhz: Option<f64>,
    /// Throttle signal, raw.
    pub throttle: Option<ThrottleRaw>,
    /// Processes using this GPU.
    pub processes: Vec<GpuProcess>,
    /// Fields that failed to read, with reasons (e.g. "power: not supported").
    pub unavailable: Vec<String>,
}

impl GpuRaw {
    /// An empty reading for a device: every field absent.
    pub fn empty(vendor: GpuVendor, index: u32, id: impl Into<String>) -> Self {
        GpuRaw {
            vendor,
            index,
            id: id.into(),
            name: None,
            busy_percent: None,
            mem_busy_percent: None,
            vram_used_bytes: None,
            vram_total_bytes: None,
            gtt_used_bytes: None,
            gtt_total_bytes: None,
            power_watts: None,
            power_limit_watts: None,
            energy_mj: None,
            temperature_c: None,
            clock_mhz: None,
            clock_max_mhz: None,
            mem_clock_mhz: None,
            throttle: None,
            processes: Vec::new(),
            unavailable: Vec::new(),
        }
    }
}

/// Engine kinds infermon knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// llama.cpp `llama-server`.
    Llamacpp,
    /// vLLM (V1 metrics).
    Vllm,
    /// SGLang.
    Sglang,
    /// Ollama.
    Ollama,
    /// LM Studio's server.
    LmStudio,
    /// llama-swap in front of other servers.
    LlamaSwap,
}

impl EngineKind {
    /// The label value used in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Llamacpp => "llamacpp",
            EngineKind::Vllm => "vllm",
            EngineKind::Sglang => "sglang",
            EngineKind::Ollama => "ollama",
            EngineKind::LmStudio => "lm_studio",
            EngineKind::LlamaSwap => "llama_swap",
        }
    }

    /// Whether the engine exposes token counters of its own (the others are measured through
    /// infermon's proxy).
    pub fn has_counters(self) -> bool {
        matches!(
            self,
            EngineKind::Llamacpp | EngineKind::Vllm | EngineKind::Sglang
        )
    }

    /// Whether the engine has llama.cpp's `/slots`.
    pub fn has_slots(self) -> bool {
        self == EngineKind::Llamacpp
    }

    /// Every kind, in order.
    pub const ALL: [EngineKind; 6] = [
        EngineKind::Llamacpp,
        EngineKind::Vllm,
        EngineKind::Sglang,
        EngineKind::Ollama,
        EngineKind::LmStudio,
        EngineKind::LlamaSwap,
    ];

    /// Parses a label value (`llamacpp`, `vllm`, `sglang`, `ollama`, `lm_studio`, `llama_swap`).
    pub fn parse(s: &str) -> Option<EngineKind> {
        EngineKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One engine's reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineRaw {
    /// Kind of engine.
    pub kind: EngineKind,
    /// Base URL it is polled at (the `instance` label).
    pub instance: String,
    /// How it was found: `config`, `flag`, `discovered`.
    pub origin: String,
    /// PID of the server process, when known (discovery or /props).
    pub pid: Option<u32>,
    /// `/health`: true when the server answered healthy.
    pub health: Reading<EngineHealth>,
    /// `/props` facts.
    pub props: Reading<EngineProps>,
    /// `/metrics` counters and gauges (llama.cpp needs `--metrics`).
    pub metrics: Reading<EngineCounters>,
    /// `/slots` summary.
    pub slots: Reading<SlotsRaw>,
    /// Memory of the server process, measured and estimated (local servers with a known pid).
    #[serde(default)]
    pub memory: Option<EngineMemoryRaw>,
    /// Latency histograms the engine exposes (vLLM, SGLang), cumulative.
    #[serde(default)]
    pub histograms: Vec<crate::detail::HistogramRaw>,
    /// Per-model scheduler, cache and speculative-decoding counters (vLLM, SGLang).
    #[serde(default)]
    pub scheduler: Vec<crate::detail::SchedulerRaw>,
    /// Models a multi-model engine knows (Ollama `/api/ps`, llama-swap `/running`, LM Studio).
    /// `None` for engines that serve one model.
    #[serde(default)]
    pub models: Option<Reading<Vec<crate::detail::ModelRaw>>>,
    /// Model lifecycle events seen since the previous sample (llama-swap).
    #[serde(default)]
    pub events: Vec<crate::detail::EngineEvent>,
    /// Facts worth showing that are not numbers, e.g. "request latency comes from the proxy;
    /// no proxy is in front of this engine".
    #[serde(default)]
    pub notes: Vec<String>,
}

impl EngineRaw {
    /// A reading of `kind` at `instance` with nothing read yet: each endpoint is unavailable
    /// with `reason` until the collector fills it in.
    pub fn blank(kind: EngineKind, instance: &str, origin: &str, reason: &str) -> Self {
        EngineRaw {
            kind,
            instance: instance.to_string(),
            origin: origin.to_string(),
            pid: None,
            health: Reading::unavailable(reason),
            props: Reading::unavailable(reason),
            metrics: Reading::unavailable(reason),
            slots: Reading::unavailable(reason),
            memory: None,
            histograms: Vec::new(),
            scheduler: Vec::new(),
            models: None,
            events: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// A local engine process's memory: what it uses, and what `infermon fit` expects it to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineMemoryRaw {
    /// Resident set size of the process, bytes.
    pub rss_bytes: Option<u64>,
    /// Proportional set size, bytes.
    pub pss_bytes: Option<u64>,
    /// Estimated total from the model file and the server's command line.
    pub estimate_total_bytes: Option<u64>,
    /// Estimated KV cache bytes.
    pub estimate_kv_bytes: Option<u64>,
    /// Bytes of the model's weights, from the same estimate (the GGUF's tensors).
    #[serde(default)]
    pub estimate_weights_bytes: Option<u64>,
    /// Why there is no estimate or measurement.
    pub unavailable: Vec<String>,
}

/// Health as reported by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineHealth {
    /// HTTP status of the health endpoint.
    pub http_status: u16,
    /// Engine's status word (`ok`, `loading model`, ...).
    pub status: String,
}

/// Engine properties (llama.cpp `/props`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineProps {
    /// Model name: file stem of `model_path`, or the alias.
    pub model: String,
    /// `model_path`.
    pub model_path: Option<String>,
    /// Context size per the server (`default_generation_settings.n_ctx`).
    pub n_ctx: Option<u64>,
    /// `total_slots` (= `--parallel`).
    pub total_slots: Option<u64>,
    /// `build_info`.
    pub build_info: Option<String>,
}

/// Engine counters (cumulative) and gauges, in base units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineCounters {
    /// Prompt tokens processed (counter).
    pub prompt_tokens_total: f64,
    /// Seconds spent on prompt processing, summed over slots (counter).
    pub prompt_seconds_total: Option<f64>,
    /// Generated tokens (counter).
    pub generation_tokens_total: f64,
    /// Seconds spent generating, summed over slots (counter).
    pub generation_seconds_total: Option<f64>,
    /// Decode calls (counter).
    pub decode_calls_total: Option<f64>,
    /// The server's own generation speed over the window since the previous scrape, tokens
    /// per second of decode steps (llama.cpp `predicted_tokens_seconds`: its bucket is reset by
    /// every `/metrics` scrape and excludes the first token, which comes from the prompt batch).
    #[serde(default)]
    pub generation_window_rate: Option<f64>,
    /// The server's prompt speed over the window since the previous scrape (llama.cpp
    /// `prompt_tokens_seconds`).
    #[serde(default)]
    pub prompt_window_rate: Option<f64>,
    /// Requests being processed now (gauge).
    pub requests_running: Option<f64>,
    /// Requests waiting (gauge).
    pub requests_waiting: Option<f64>,
    /// Server process start, Unix seconds (llama.cpp `Process-Start-Time-Unix` header); a
    /// change means the counters were reset.
    pub process_start_unix: Option<i64>,
}

/// Summary of llama.cpp `/slots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotsRaw {
    /// Number of slots.
    pub total: u32,
    /// Slots with `is_processing`.
    pub processing: u32,
    /// Sum of `next_token.n_decoded` over processing slots.
    pub decoded_in_flight: u64,
}

/// The agent's own cost and schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgentRaw {
    /// User + system CPU seconds used by the agent process (cumulative).
    pub cpu_seconds_total: Option<f64>,
    /// Resident set size, bytes.
    pub rss_bytes: Option<u64>,
    /// The interval the agent is sampling at now, milliseconds.
    pub interval_ms: u64,
    /// Wall time this sampling round took, milliseconds.
    pub collect_ms: f64,
}
