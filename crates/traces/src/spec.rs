//! The machines and models the traces run on. Figures are public specifications where one
//! exists (clocks, bandwidth, file sizes, KV bytes per token from the model's shape) and
//! stated assumptions otherwise; the crate's README explains each.

/// One GiB.
pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Prompt and output length of the default chat workload, tokens.
pub(crate) const PROMPT_TOKENS: f64 = 600.0;
/// Output length of the default chat workload, tokens.
pub(crate) const GEN_TOKENS: f64 = 256.0;
/// The context a running request holds on average in the default workload (prompt plus half
/// its output): the context the models' `tpot_base_ms` is quoted at.
pub(crate) const REF_CONTEXT: f64 = PROMPT_TOKENS + GEN_TOKENS / 2.0;

/// A node: one GPU, its host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    /// Max graphics clock, MHz.
    pub clock_max_mhz: f64,
    /// Graphics clock when idle, MHz.
    pub clock_idle_mhz: f64,
    /// Power limit, W.
    pub power_limit_w: f64,
    /// Board power when idle, W.
    pub idle_power_w: f64,
    /// Board power above idle at full utilisation and full clock, W.
    pub dyn_power_w: f64,
    /// Peak memory bandwidth, bytes/s.
    pub peak_bw: f64,
    /// MemTotal, bytes.
    pub mem_total: f64,
    /// Memory held by the kernel and services that is never available, bytes.
    pub os_bytes: f64,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// The busiest non-engine process when nothing else runs: name, pid, cores.
    pub background: (&'static str, u32, f64),
    /// Air temperature at the GPU's intake, °C.
    pub ambient_c: f64,
    /// Steady-state temperature rise per watt, °C/W.
    pub thermal_r: f64,
    /// Thermal time constant, s.
    pub thermal_tau_s: f64,
}

/// A rented RTX 4090 container (2 vCPUs, 32 GiB): AD102, 2520 MHz boost clock, 24 GiB GDDR6X
/// at 1008 GB/s; power limit lowered from the stock 450 W to 350 W with `nvidia-smi -pl`.
pub(crate) const RTX4090: Node = Node {
    clock_max_mhz: 2520.0,
    clock_idle_mhz: 210.0,
    power_limit_w: 350.0,
    idle_power_w: 28.0,
    dyn_power_w: 300.0,
    peak_bw: 1008e9,
    mem_total: 32.0 * GIB,
    os_bytes: 1.6 * GIB,
    cpu_count: 2,
    background: ("dockerd", 913, 0.04),
    ambient_c: 28.0,
    thermal_r: 0.14,
    thermal_tau_s: 45.0,
};

/// A workstation with the same RTX 4090, 16 logical CPUs and 64 GiB of DDR5.
pub(crate) const WORKSTATION: Node = Node {
    mem_total: 64.0 * GIB,
    os_bytes: 2.5 * GIB,
    cpu_count: 16,
    background: ("gnome-shell", 2211, 0.06),
    ..RTX4090
};

/// An AMD Strix Halo mini PC (Ryzen AI Max+ 395, Radeon 8060S up to 2900 MHz, 128 GB
/// LPDDR5X-8000 at 256 GB/s shared by CPU and GPU, 120 W package limit), as in the product
/// brief's llama-swap boxes; MemTotal 124 GiB with a 512 MiB carve-out.
pub(crate) const STRIX_HALO: Node = Node {
    clock_max_mhz: 2900.0,
    clock_idle_mhz: 600.0,
    power_limit_w: 120.0,
    idle_power_w: 12.0,
    dyn_power_w: 95.0,
    peak_bw: 256e9,
    mem_total: 124.0 * GIB,
    os_bytes: 3.5 * GIB,
    cpu_count: 32,
    background: ("node_exporter", 1377, 0.02),
    ambient_c: 27.0,
    thermal_r: 0.40,
    thermal_tau_s: 30.0,
};

/// A model as one engine serves it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Model {
    /// The name the engine reports.
    pub name: &'static str,
    /// Bytes read from GPU memory per decode step (weights on the GPU; active experts for a
    /// MoE).
    pub step_bytes: f64,
    /// KV cache bytes per token of context (layers × KV heads × head dim × 2 × 2 bytes).
    pub kv_bytes_per_token: f64,
    /// Time per output token of one stream at [`REF_CONTEXT`], full clock, ms.
    pub tpot_base_ms: f64,
    /// Prefill speed of one request alone, tokens/s.
    pub prefill_tok_s: f64,
    /// Fixed part of TTFT (HTTP, tokenization, scheduling, first sampling), ms.
    pub ttft_overhead_ms: f64,
    /// KV cache size, tokens (shared by the running requests).
    pub kv_capacity_tokens: f64,
    /// Share of a decode step the GPU is busy (1 when every layer is on the GPU).
    pub gpu_share: f64,
    /// CPU cores the engine uses while serving, plus per running request.
    pub engine_cores: (f64, f64),
    /// The engine process's resident host memory when loaded, bytes.
    pub resident: f64,
    /// `infermon fit`'s estimate of the model as configured, bytes.
    pub estimate: f64,
}

/// Llama 3.1 8B Instruct Q4_K_M (4.92 GB; 32 layers, 8 KV heads of 128: 128 KiB of KV per
/// token) on the RTX 4090: 7.5 ms per token alone (≈ 133 tok/s).
pub(crate) const LLAMA8_Q4: Model = Model {
    name: "Llama-3.1-8B-Instruct-Q4_K_M",
    step_bytes: 4.92e9,
    kv_bytes_per_token: 131_072.0,
    tpot_base_ms: 7.5,
    prefill_tok_s: 9000.0,
    ttft_overhead_ms: 25.0,
    kv_capacity_tokens: 16_384.0,
    gpu_share: 1.0,
    engine_cores: (0.15, 0.12),
    resident: 1.3 * GIB,
    estimate: 6.1 * GIB,
};

/// Llama 3.1 8B Instruct Q8_0 (8.54 GB): 9.4 ms per token alone, at ≈ 90 % of the 4090's
/// bandwidth — the bandwidth-bound trace.
pub(crate) const LLAMA8_Q8: Model = Model {
    name: "Llama-3.1-8B-Instruct-Q8_0",
    step_bytes: 8.54e9,
    tpot_base_ms: 9.4,
    prefill_tok_s: 8500.0,
    resident: 1.4 * GIB,
    estimate: 9.7 * GIB,
    ..LLAMA8_Q4
};

/// Qwen2.5 7B Instruct Q4_K_M (4.68 GB; 28 layers, 4 KV heads of 128).
pub(crate) const QWEN7_Q4: Model = Model {
    name: "Qwen2.5-7B-Instruct-Q4_K_M",
    step_bytes: 4.68e9,
    kv_bytes_per_token: 57_344.0,
    tpot_base_ms: 7.2,
    prefill_tok_s: 9500.0,
    ..LLAMA8_Q4
};

/// Qwen2.5 14B Instruct Q4_K_M (8.99 GB; 48 layers, 8 KV heads of 128).
pub(crate) const QWEN14_Q4: Model = Model {
    name: "Qwen2.5-14B-Instruct-Q4_K_M",
    step_bytes: 8.99e9,
    kv_bytes_per_token: 196_608.0,
    tpot_base_ms: 12.8,
    prefill_tok_s: 5000.0,
    resident: 1.6 * GIB,
    estimate: 10.8 * GIB,
    ..LLAMA8_Q4
};

/// Gemma 2 9B IT Q5_K_M (6.65 GB; 42 layers, 8 KV heads of 256).
pub(crate) const GEMMA9_Q5: Model = Model {
    name: "gemma-2-9b-it-Q5_K_M",
    step_bytes: 6.65e9,
    kv_bytes_per_token: 344_064.0,
    tpot_base_ms: 10.2,
    prefill_tok_s: 6500.0,
    resident: 1.5 * GIB,
    estimate: 9.1 * GIB,
    ..LLAMA8_Q4
};

/// Llama 3.3 70B Instruct Q4_K_M (42.5 GB) on the workstation with 40 of its 80 layers on the
/// GPU and the rest in host RAM (`--no-mmap`): ≈ 2.6 tok/s, the CPU half reading ≈ 21 GB of
/// DDR5 per token.
pub(crate) const LLAMA70_PARTIAL: Model = Model {
    name: "Llama-3.3-70B-Instruct-Q4_K_M",
    step_bytes: 20.5e9,
    kv_bytes_per_token: 327_680.0,
    tpot_base_ms: 380.0,
    prefill_tok_s: 180.0,
    ttft_overhead_ms: 60.0,
    kv_capacity_tokens: 8192.0,
    gpu_share: 0.12,
    engine_cores: (0.3, 6.5),
    resident: 22.4 * GIB,
    estimate: 44.0 * GIB,
};

/// Qwen3 30B-A3B Q4_K_M on the Strix Halo (≈ 2 GB of active weights read per token).
pub(crate) const QWEN30_A3B: Model = Model {
    name: "Qwen3-30B-A3B-Q4_K_M",
    step_bytes: 2.0e9,
    kv_bytes_per_token: 98_304.0,
    tpot_base_ms: 14.0,
    prefill_tok_s: 1000.0,
    ttft_overhead_ms: 40.0,
    kv_capacity_tokens: 32_768.0,
    gpu_share: 1.0,
    engine_cores: (0.2, 0.1),
    resident: 18.9 * GIB,
    estimate: 19.4 * GIB,
};

/// qwen3.5-122b-a10b Q4_K_M with a Qwen3-4B draft on the Strix Halo: the product brief's
/// 71 GiB + draft = 73.6 GiB estimate (16 parallel slots).
pub(crate) const QWEN122_A10B: Model = Model {
    name: "qwen3.5-122b-a10b-Q4_K_M",
    step_bytes: 6.2e9,
    kv_bytes_per_token: 196_608.0,
    tpot_base_ms: 40.0,
    prefill_tok_s: 320.0,
    ttft_overhead_ms: 60.0,
    kv_capacity_tokens: 131_072.0,
    gpu_share: 1.0,
    engine_cores: (0.3, 0.15),
    resident: 66.9 * GIB,
    estimate: 73.6 * GIB,
};
