//! KV cache size, following llama.cpp's allocation rules (`llama-context.cpp`,
//! `llama-kv-cache.cpp`, `llama-kv-cache-iswa.cpp` of the build the tests run):
//! - `n_ctx` is padded to 256; without a unified cache each of the `n_seq` streams gets
//!   `pad(n_ctx / n_seq, 256)` cells, so the total is `n_ctx` split, not multiplied;
//! - per attention layer and cell: `n_head_kv × head_dim_k` K values and `n_head_kv × head_dim_v`
//!   V values, at the cache type's row size; MLA models keep only the latent K (no V);
//! - SWA layers hold `pad(min(cells, n_swa × (unified ? n_seq : 1) + n_ubatch), 256)` cells per
//!   stream unless `--swa-full`;
//! - recurrent layers hold no KV (their fixed state is counted separately).

use serde::Serialize;

use crate::model_info::ModelInfo;

/// Rounds `x` up to a multiple of `n`.
pub fn pad(x: u64, n: u64) -> u64 {
    x.div_ceil(n) * n
}

/// Bytes of `n` elements of a KV cache type (ggml block sizes).
pub fn row_bytes(cache_type: &str, n: u64) -> Option<u64> {
    let (block, size) = match cache_type {
        "f32" => (1, 4),
        "f16" | "bf16" => (1, 2),
        "q8_0" => (32, 34),
        "q4_0" | "iq4_nl" => (32, 18),
        "q4_1" => (32, 20),
        "q5_0" => (32, 22),
        "q5_1" => (32, 24),
        _ => return None,
    };
    if !n.is_multiple_of(block) {
        return None;
    }
    Some(n / block * size)
}

/// Context geometry of one llama context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    /// `n_ctx` after padding (total cells of a full-attention layer).
    pub n_ctx: u64,
    /// Cells per stream (`n_ctx_seq`).
    pub cells_per_stream: u64,
    /// Streams (1 when unified, else `n_seq`).
    pub n_stream: u64,
    /// Sequences (slots).
    pub n_seq: u64,
}

/// Works out the geometry of a context of `n_ctx_req` (0 = training context) for `n_seq`
/// sequences.
pub fn geometry(info: &ModelInfo, n_ctx_req: u64, n_seq: u64, unified: bool) -> Geometry {
    let asked = if n_ctx_req == 0 {
        info.n_ctx_train
    } else {
        n_ctx_req
    };
    let n_seq = n_seq.max(1);
    let mut n_ctx = pad(asked.max(1), 256);
    let (cells_per_stream, n_stream) = if unified {
        (n_ctx, 1)
    } else {
        let per = pad(n_ctx / n_seq, 256);
        n_ctx = per * n_seq;
        (per, n_seq)
    };
    Geometry {
        n_ctx,
        cells_per_stream,
        n_stream,
        n_seq,
    }
}

/// KV bytes split into K and V.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct KvBytes {
    /// K cache bytes.
    pub k: u64,
    /// V cache bytes.
    pub v: u64,
    /// Full-attention layers.
    pub layers_full: u32,
    /// SWA layers.
    pub layers_swa: u32,
    /// Cells per stream of SWA layers (0 without SWA).
    pub swa_cells_per_stream: u64,
}

impl KvBytes {
    /// K + V.
    pub fn total(&self) -> u64 {
        self.k + self.v
    }
}

/// KV cache bytes for a geometry and cache types. `None` when a row does not fit the cache
/// type's block size (llama.cpp refuses such a cache).
pub fn kv_bytes(
    info: &ModelInfo,
    g: &Geometry,
    type_k: &str,
    type_v: &str,
    n_ubatch: u64,
    swa_full: bool,
    unified: bool,
) -> Option<KvBytes> {
    let swa_cells = if swa_full {
        g.cells_per_stream
    } else {
        let window = info.n_swa * if unified { g.n_seq } else { 1 } + n_ubatch;
        pad(g.cells_per_stream.min(window), 256)
    };
    let mut out = KvBytes::default();
    for il in 0..info.n_layer as usize {
        if !info.has_kv(il) {
            continue;
        }
        let heads = info.n_head_kv[il];
        let swa = info.swa_layers.get(il).copied().unwrap_or(false) && info.n_swa > 0;
        let cells = if swa { swa_cells } else { g.cells_per_stream } * g.n_stream;
        if swa {
            out.layers_swa += 1;
            out.swa_cells_per_stream = swa_cells;
        } else {
            out.layers_full += 1;
        }
        out.k += row_bytes(type_k, heads * info.head_dim_k)? * cells;
        if !info.mla {
            out.v += row_bytes(type_v, heads * info.head_dim_v)? * cells;
        }
    }
    Some(out)
}
