//! The estimate as a table for people, and "what if" variants.

use std::fmt::Write;

use crate::estimate::{estimate, Estimate};
use crate::model_info::ModelInfo;
use crate::params::{FlashAttn, ServerParams};
use crate::units::format_bytes;

/// The estimate's parts as JSON fields (`weights_bytes` … `notes`): the one shape `infermon fit
/// --json` and the MCP `fit` tool both print, each adding its own context around it.
pub fn estimate_fields(e: &Estimate) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "weights_bytes": e.weights_bytes,
        "kv_bytes": e.kv_bytes,
        "compute_bytes": e.compute_bytes,
        "output_bytes": e.output_bytes,
        "tokenizer_bytes": e.tokenizer_bytes,
        "sampler_bytes": e.sampler_bytes,
        "overhead_bytes": e.overhead_bytes,
        "total_bytes": e.total_bytes,
        "kv": e.kv,
        "geometry": e.geometry,
        "devices": e.devices,
        "prompt_cache_limit_bytes": e.prompt_cache_limit_bytes,
        "notes": e.notes,
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// One "what if" row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WhatIf {
    /// What changes, as llama-server flags.
    pub change: String,
    /// Total with the change.
    pub total_bytes: u64,
    /// Difference to the current total (negative saves memory).
    pub delta_bytes: i64,
}

/// Variants worth knowing: fewer slots, a quantized KV cache, no draft, half the context,
/// flash attention on.
pub fn what_ifs(
    info: &ModelInfo,
    draft: Option<&ModelInfo>,
    p: &ServerParams,
    has_gpu: bool,
    base: &Estimate,
) -> Vec<WhatIf> {
    let mut v: Vec<(String, ServerParams, bool)> = Vec::new();
    if p.n_slots() > 1 {
        let mut q = p.clone();
        q.parallel = (p.n_slots() / 2) as i64;
        v.push((format!("-np {} → {}", p.n_slots(), q.parallel), q, true));
    }
    if p.cache_type_k == "f16" || p.cache_type_v == "f16" {
        let mut q = p.clone();
        q.cache_type_k = "q8_0".into();
        q.cache_type_v = "q8_0".into();
        q.flash_attn = FlashAttn::On;
        v.push(("-ctk q8_0 -ctv q8_0 -fa on".into(), q, true));
    }
    if p.draft_model.is_some() {
        v.push(("without the draft model (-md)".into(), p.clone(), false));
    }
    let ctx = base.geometry.n_ctx;
    if ctx >= 512 {
        let mut q = p.clone();
        q.ctx = ctx / 2;
        v.push((format!("-c {ctx} → {}", ctx / 2), q, true));
    }
    if matches!(p.flash_attn, FlashAttn::Off) {
        let mut q = p.clone();
        q.flash_attn = FlashAttn::On;
        v.push(("-fa on".into(), q, true));
    }
    v.into_iter()
        .filter_map(|(change, q, keep_draft)| {
            let d = if keep_draft { draft } else { None };
            let e = estimate(info, d, &q, has_gpu).ok()?;
            Some(WhatIf {
                change,
                total_bytes: e.total_bytes,
                delta_bytes: e.total_bytes as i64 - base.total_bytes as i64,
            })
        })
        .collect()
}

/// Renders an estimate as a table.
pub fn table(
    name: &str,
    info: &ModelInfo,
    p: &ServerParams,
    e: &Estimate,
    ifs: &[WhatIf],
) -> String {
    let mut o = String::new();
    let heads = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let _ = writeln!(
        o,
        "model    {name} ({}, {} layers, {} heads / {} KV heads, vocab {})",
        info.arch,
        info.n_layer,
        heads(&info.n_head),
        heads(&info.n_head_kv),
        info.n_vocab
    );
    for n in &e.notes {
        let _ = writeln!(o, "         {n}");
    }
    let _ = write!(o, "\n{:<12}", "");
    for d in &e.devices {
        let _ = write!(o, "{:>14}", d.device);
    }
    let _ = writeln!(o);
    let row = |o: &mut String, label: &str, f: &dyn Fn(&crate::estimate::DeviceEstimate) -> u64| {
        let _ = write!(o, "{label:<12}");
        for d in &e.devices {
            let _ = write!(o, "{:>14}", format_bytes(f(d)));
        }
        let _ = writeln!(o);
    };
    row(&mut o, "weights", &|d| d.weights_bytes);
    row(&mut o, "repacked", &|d| d.repack_bytes);
    row(&mut o, "KV cache", &|d| d.kv_bytes);
    row(&mut o, "compute", &|d| d.compute_bytes);
    row(&mut o, "output", &|d| d.output_bytes);
    row(&mut o, "tokenizer", &|d| d.tokenizer_bytes);
    row(&mut o, "sampler", &|d| d.sampler_bytes);
    row(&mut o, "recurrent", &|d| d.recurrent_bytes);
    row(&mut o, "runtime", &|d| d.overhead_bytes);
    row(&mut o, "total", &|d| d.total_bytes);
    let _ = writeln!(
        o,
        "\nKV cache: K ({}) {}, V ({}) {}; {} full-attention layer(s){}",
        p.cache_type_k,
        format_bytes(e.kv.k),
        p.cache_type_v,
        format_bytes(e.kv.v),
        e.kv.layers_full,
        if e.kv.layers_swa > 0 {
            format!(
                ", {} SWA layer(s) at {} cells per stream",
                e.kv.layers_swa, e.kv.swa_cells_per_stream
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(o, "total    {}", format_bytes(e.total_bytes));
    if !ifs.is_empty() {
        let _ = writeln!(o, "\nwhat if");
        for w in ifs {
            let sign = if w.delta_bytes < 0 { "-" } else { "+" };
            let _ = writeln!(
                o,
                "  {:<36} {:>12}  ({sign}{})",
                w.change,
                format_bytes(w.total_bytes),
                format_bytes(w.delta_bytes.unsigned_abs())
            );
        }
    }
    o
}
