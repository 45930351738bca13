//! Memory estimate of one llama-server: weights, KV cache, compute and output buffers and the
//! process's own baseline, per device.

use serde::Serialize;

use crate::kv::{geometry, kv_bytes, Geometry, KvBytes};
use crate::model_info::ModelInfo;
use crate::params::{FlashAttn, GpuLayers, ServerParams};

const MIB: u64 = 1024 * 1024;

/// Resident memory of a llama-server process beyond what llama.cpp itself accounts for and
/// beyond the tokenizer tables and sampler arrays counted from the vocabulary (binary, C++
/// runtime, OpenMP threads, HTTP server, chat template). Measured on the CPU build the tests
/// use: RSS after a warm-up request minus llama.cpp's buffers, [`ModelInfo::tokenizer_bytes`]
/// and one slot's [`sampler_bytes`] was 4.5 MiB on Gemma-3-270M and 6.4 MiB on SmolLM2-135M
/// (`-c 2048 -np 1`, `docs/PERFORMANCE.md`). GPU backends add their driver context on top
/// (not modelled).
pub const RUNTIME_BASE_BYTES: u64 = 6 * MIB;

/// ggml types that llama.cpp's CPU backend repacks into an extra buffer on x86 with AVX2
/// (seen as `CPU_REPACK model buffer` in its log), unless `--no-repack`.
pub const REPACKED_TYPES: &[&str] = &["q4_0", "iq4_nl", "q4_K"];

/// One device's share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceEstimate {
    /// `host` or `gpu`.
    pub device: String,
    /// Weights placed there.
    pub weights_bytes: u64,
    /// Extra repacked copy of weights (CPU).
    pub repack_bytes: u64,
    /// KV cache there.
    pub kv_bytes: u64,
    /// Recurrent state there.
    pub recurrent_bytes: u64,
    /// Compute buffer there.
    pub compute_bytes: u64,
    /// Output (logits) buffer — always host.
    pub output_bytes: u64,
    /// Tokenizer tables (`llama_vocab`) — host.
    pub tokenizer_bytes: u64,
    /// Per-slot sampler candidates — host.
    pub sampler_bytes: u64,
    /// Process / driver baseline.
    pub overhead_bytes: u64,
    /// Sum.
    pub total_bytes: u64,
}

/// The estimate for one server (main model, plus draft when given).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Weight bytes (main + draft + mmproj).
    pub weights_bytes: u64,
    /// KV cache bytes (main + draft).
    pub kv_bytes: u64,
    /// Compute buffer bytes.
    pub compute_bytes: u64,
    /// Output buffer bytes.
    pub output_bytes: u64,
    /// Tokenizer tables of the main (and draft) model: [`ModelInfo::tokenizer_bytes`].
    pub tokenizer_bytes: u64,
    /// Sampler candidate arrays: [`sampler_bytes`].
    pub sampler_bytes: u64,
    /// Repacked weight copies, recurrent state and process baseline.
    pub overhead_bytes: u64,
    /// Everything.
    pub total_bytes: u64,
    /// KV detail of the main model.
    pub kv: KvBytes,
    /// Geometry of the main context.
    pub geometry: Geometry,
    /// Per device.
    pub devices: Vec<DeviceEstimate>,
    /// Host prompt cache limit (`--cache-ram`): saved prompt states grow towards it with use,
    /// on top of `total_bytes` (`None`: no limit).
    pub prompt_cache_limit_bytes: Option<u64>,
    /// Assumptions made, in words.
    pub notes: Vec<String>,
}

/// Why there is no estimate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    /// The KV cache type cannot hold this model's rows.
    #[error(
        "cache type \"{0}\" cannot store rows of {1} values (not a multiple of its block size)"
    )]
    KvType(String, u64),
    /// Quantized V cache needs flash attention.
    #[error("a quantized V cache (-ctv {0}) needs flash attention; llama-server refuses -fa off with it")]
    QuantizedVWithoutFa(String),
}

fn flash_attn_on(p: &ServerParams) -> bool {
    // -fa auto turns flash attention on wherever the backend supports it (all CPU builds).
    !matches!(p.flash_attn, FlashAttn::Off)
}

/// Compute buffer of the largest graph the server reserves: n_ubatch tokens at n_kv cells.
/// With flash attention: activations `n_ubatch × 4 B × (5·n_embd + 3·n_ff + 8)` plus the f16
/// KQ mask `n_kv × n_ubatch × 2 B`. Without: the f32 KQ scores `n_kv × n_ubatch × n_head × 4 B`
/// plus the f32 mask and the attention activations, when larger than the FFN activations.
pub fn compute_bytes(info: &ModelInfo, n_kv: u64, n_ubatch: u64, fa: bool) -> u64 {
    let t = n_ubatch;
    let e = info.n_embd;
    let f = info.n_ff;
    let ffn = t * 4 * (5 * e + 3 * f + 8);
    if fa {
        ffn + n_kv * t * 2
    } else {
        let n_head = info.n_head.iter().copied().max().unwrap_or(1);
        let e_kv = info.n_head_kv.iter().copied().max().unwrap_or(0) * info.head_dim_k;
        let attn = t * 4 * (n_kv * (n_head + 1) + 5 * e + 2 * e_kv);
        ffn.max(attn)
    }
}

/// Bytes of one `llama_token_data` (id i32, logit f32, p f32).
pub const TOKEN_DATA_BYTES: u64 = 12;

/// Sampler candidates of llama-server's slots: each slot's `common_sampler` keeps a
/// `std::vector<llama_token_data>` of `n_vocab` entries (`common/sampling.cpp`, `set_logits`)
/// from its first request on, for the life of the slot: `n_slots × n_vocab × 12 B`. Counted for
/// every slot (a server whose slots have all served a request).
pub fn sampler_bytes(info: &ModelInfo, n_slots: u64) -> u64 {
    n_slots.max(1) * info.n_vocab * TOKEN_DATA_BYTES
}

fn repack_bytes(info: &ModelInfo, on_cpu: impl Fn(Option<u32>) -> bool) -> u64 {
    info.tensors
        .iter()
        .filter(|t| t.name.starts_with("blk.") && t.n_dims == 2)
        .filter(|t| REPACKED_TYPES.contains(&t.ggml_type.as_str()))
        .filter(|t| on_cpu(t.layer()))
        .map(|t| t.bytes)
        .sum()
}

/// Layers (counting the output layer as one more, as llama.cpp does) placed on the GPU.
fn gpu_layer_start(info: &ModelInfo, ngl: &GpuLayers, has_gpu: bool) -> u32 {
    let n_all = info.n_layer + 1;
    match (has_gpu, ngl) {
        (false, _) => n_all,
        (true, GpuLayers::All) | (true, GpuLayers::Auto) => 0,
        (true, GpuLayers::Count(n)) => n_all.saturating_sub(*n),
    }
}

/// Estimates one server. `draft` is the draft model's info when `-md` is given. `has_gpu`
/// says whether a GPU device exists to offload to.
pub fn estimate(
    info: &ModelInfo,
    draft: Option<&ModelInfo>,
    p: &ServerParams,
    has_gpu: bool,
) -> Result<Estimate, EstimateError> {
    let unified = p.unified();
    let fa = flash_attn_on(p);
    if !fa && p.cache_type_v != "f16" && p.cache_type_v != "f32" && p.cache_type_v != "bf16" {
        return Err(EstimateError::QuantizedVWithoutFa(p.cache_type_v.clone()));
    }
    let mut notes = Vec::new();
    let g = geometry(info, p.ctx, p.n_slots(), unified);
    let kv = kv_bytes(
        info,
        &g,
        &p.cache_type_k,
        &p.cache_type_v,
        p.ubatch,
        p.swa_full,
        unified,
    )
    .ok_or_else(|| EstimateError::KvType(p.cache_type_k.clone(), info.head_dim_k))?;
    let n_kv = if unified { g.n_ctx } else { g.cells_per_stream };
    let compute = compute_bytes(info, n_kv, p.ubatch.min(p.batch), fa);
    let output = info.n_vocab * 4 * g.n_seq;
    let recurrent = info.recurrent_state_bytes_per_seq * g.n_seq;
    let sampler = sampler_bytes(info, p.n_slots());
    let mut tokenizer = info.tokenizer_bytes;

    let start = gpu_layer_start(info, &p.gpu_layers, has_gpu);
    let on_gpu = |layer: Option<u32>| match layer {
        Some(l) => l >= start,
        None => start == 0, // output/embedding tensors go with the output layer
    };
    let mut host = DeviceEstimate {
        device: "host".into(),
        weights_bytes: 0,
        repack_bytes: 0,
        kv_bytes: 0,
        recurrent_bytes: recurrent,
        compute_bytes: 0,
        output_bytes: output,
        tokenizer_bytes: tokenizer,
        sampler_bytes: sampler,
        overhead_bytes: RUNTIME_BASE_BYTES,
        total_bytes: 0,
    };
    let mut gpu = DeviceEstimate {
        device: "gpu".into(),
        weights_bytes: 0,
        repack_bytes: 0,
        kv_bytes: 0,
        recurrent_bytes: 0,
        compute_bytes: 0,
        output_bytes: 0,
        tokenizer_bytes: 0,
        sampler_bytes: 0,
        overhead_bytes: 0,
        total_bytes: 0,
    };
    for t in &info.tensors {
        if on_gpu(t.layer()) && !t.name.starts_with("token_embd") {
            gpu.weights_bytes += t.bytes;
        } else {
            host.weights_bytes += t.bytes;
        }
    }
    host.repack_bytes = if p
        .other_flags
        .iter()
        .any(|f| f == "-nr" || f == "--no-repack")
    {
        0
    } else {
        repack_bytes(info, |l| !on_gpu(l))
    };
    let gpu_layers = info.n_layer.saturating_sub(start.min(info.n_layer));
    let kv_gpu = if p.no_kv_offload || info.n_layer == 0 {
        0
    } else {
        kv.total() * u64::from(gpu_layers) / u64::from(info.n_layer)
    };
    gpu.kv_bytes = kv_gpu;
    host.kv_bytes = kv.total() - kv_gpu;
    if has_gpu && gpu_layers > 0 {
        gpu.compute_bytes = compute;
        notes.push("GPU driver/context memory is not modelled".into());
    } else {
        host.compute_bytes = compute;
    }
    if !has_gpu {
        notes.push("no GPU: everything on the host (pass --gpu to model offload)".into());
    }
    notes.push(format!(
        "context {} cells ({} per stream × {} stream(s), {} slot(s), {})",
        g.n_ctx,
        g.cells_per_stream,
        g.n_stream,
        g.n_seq,
        if unified {
            "unified KV"
        } else {
            "KV split across slots"
        }
    ));
    let mut weights = info.weight_bytes();
    let mut kv_total = kv.total();
    let mut compute_total = compute;
    if let Some(d) = draft {
        // One draft context of the same size and slots, f16 KV unless -ctkd/-ctvd.
        let tk = p.draft_cache_type_k.as_deref().unwrap_or("f16");
        let tv = p.draft_cache_type_v.as_deref().unwrap_or("f16");
        let gd = geometry(d, g.n_ctx, p.n_slots(), unified);
        let kvd = kv_bytes(d, &gd, tk, tv, p.ubatch, p.swa_full, unified)
            .ok_or_else(|| EstimateError::KvType(tk.to_string(), d.head_dim_k))?;
        let n_kv_d = if unified {
            gd.n_ctx
        } else {
            gd.cells_per_stream
        };
        let cd = compute_bytes(d, n_kv_d, p.ubatch.min(p.batch), fa);
        let dw = d.weight_bytes();
        let target = if has_gpu && gpu_layers > 0 {
            &mut gpu
        } else {
            &mut host
        };
        target.weights_bytes += dw;
        target.kv_bytes += kvd.total();
        target.compute_bytes += cd;
        // The draft model's vocabulary is loaded too: its tokenizer tables stay on the host.
        host.tokenizer_bytes += d.tokenizer_bytes;
        tokenizer += d.tokenizer_bytes;
        weights += dw;
        kv_total += kvd.total();
        compute_total += cd;
        notes.push(format!(
            "draft model: weights + one context of {} cells ({} KV)",
            gd.n_ctx, tk
        ));
    }
    for d in [&mut host, &mut gpu] {
        d.total_bytes = d.weights_bytes
            + d.repack_bytes
            + d.kv_bytes
            + d.recurrent_bytes
            + d.compute_bytes
            + d.output_bytes
            + d.tokenizer_bytes
            + d.sampler_bytes
            + d.overhead_bytes;
    }
    let overhead = host.repack_bytes + recurrent + RUNTIME_BASE_BYTES;
    let mut devices = vec![host];
    if has_gpu {
        devices.push(gpu);
    }
    let prompt_cache_limit_bytes = u64::try_from(p.cache_ram_mib).ok().map(|m| m * MIB);
    if p.cache_ram_mib != 0 {
        notes.push(format!(
            "the host prompt cache grows with use on top of the total, up to {} (--cache-ram)",
            prompt_cache_limit_bytes
                .map(crate::units::format_bytes)
                .unwrap_or_else(|| "no limit".into())
        ));
    }
    if !fa {
        notes.push(
            "without flash attention the KQ scores in the compute buffer are touched only as the \
             context fills: resident memory reaches this total when the context is full"
                .into(),
        );
    }
    Ok(Estimate {
        weights_bytes: weights,
        kv_bytes: kv_total,
        compute_bytes: compute_total,
        output_bytes: output,
        tokenizer_bytes: tokenizer,
        sampler_bytes: sampler,
        overhead_bytes: overhead,
        total_bytes: weights + kv_total + compute_total + output + tokenizer + sampler + overhead,
        kv,
        geometry: g,
        devices,
        prompt_cache_limit_bytes,
        notes,
    })
}

/// The largest context (a multiple of 256) whose estimate fits `budget` bytes, up to the
/// training context × 4; `None` when not even 256 cells fit.
pub fn largest_context(
    info: &ModelInfo,
    draft: Option<&ModelInfo>,
    p: &ServerParams,
    has_gpu: bool,
    budget: u64,
) -> Option<u64> {
    let fits = |ctx: u64| {
        let mut q = p.clone();
        q.ctx = ctx;
        estimate(info, draft, &q, has_gpu).is_ok_and(|e| e.total_bytes <= budget)
    };
    let per = 256 * p.n_slots().max(1);
    if !fits(per) {
        return None;
    }
    let (mut lo, mut hi) = (1u64, (info.n_ctx_train.max(256) * 4).div_ceil(per));
    if fits(hi * per) {
        return Some(hi * per);
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(mid * per) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo * per)
}
