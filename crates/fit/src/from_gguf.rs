//! GGUF metadata → [`ModelInfo`]: the keys llama.cpp reads, with its defaults.

use std::path::Path;

use infermon_gguf::{Array, GgufFile, PerLayer, Value};

use crate::model_info::{ModelInfo, TensorFacts};

/// Sliding-window layer patterns set in code by llama.cpp per architecture (`models/*.cpp`,
/// `load_swa_pattern(ml, n, dense_first)`), used when the GGUF has no
/// `<arch>.attention.sliding_window_pattern` key.
const SWA_PATTERNS: &[(&str, u32, bool)] = &[
    ("gemma2", 2, false),
    ("gemma3", 6, false),
    ("gemma3n", 5, false),
    ("gemma-embedding", 6, false),
    ("cohere2", 4, false),
    ("cohere2moe", 4, true),
    ("llama4", 4, false),
    ("gpt-oss", 2, false),
    ("exaone4", 4, false),
    ("exaone-moe", 4, false),
    ("olmo2", 4, false),
    ("plamo3", 8, false),
    ("afmoe", 4, false),
    ("smallthinker", 4, true),
];

/// Architectures whose every layer is recurrent (state, no KV cache).
const RECURRENT_ARCHS: &[&str] = &["mamba", "mamba2", "rwkv6", "rwkv7", "rwkv6qwen2", "arwkv7"];

/// glibc malloc's chunk for a request of `n` bytes: 8 bytes of header, 16-byte aligned, at
/// least 32.
fn malloc_chunk(n: u64) -> u64 {
    ((n + 8 + 15) & !15).max(32)
}

/// Heap of a libstdc++ `std::string` of `len` bytes beyond the 32-byte object (none when it fits
/// the 15-byte small-string buffer).
fn string_heap(len: u64) -> u64 {
    if len > 15 {
        malloc_chunk(len + 1)
    } else {
        0
    }
}

/// Heap that llama.cpp's `llama_vocab` keeps for the life of the model (`llama-vocab.cpp`,
/// `llama_vocab::impl`), from the GGUF's `tokenizer.ggml.tokens` and `tokenizer.ggml.merges`:
/// per token `id_to_token` (a 40-byte `token_data` + its text), `token_to_id` (an
/// `unordered_map<string, llama_token>` node of 56 bytes → a 64-byte chunk, its own copy of the
/// text, an 8-byte bucket) and `cache_token_to_piece` (a 32-byte `std::string` + the piece,
/// counted at the token's length); per BPE merge a `bpe_ranks` node (`pair<string, string>` →
/// int, 80 bytes → 96-byte chunk, both halves' text, an 8-byte bucket).
pub fn tokenizer_heap_bytes<'a>(
    tokens: impl Iterator<Item = &'a str>,
    merges: impl Iterator<Item = &'a str>,
) -> u64 {
    let per_token: u64 = tokens
        .map(|t| {
            let len = t.len() as u64;
            40 + malloc_chunk(56) + 8 + 32 + 3 * string_heap(len)
        })
        .sum();
    let per_merge: u64 = merges
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap_or((m, ""));
            malloc_chunk(80) + 8 + string_heap(a.len() as u64) + string_heap(b.len() as u64)
        })
        .sum();
    per_token + per_merge
}

/// llama.cpp's `set_swa_pattern`: with `dense_first`, layer `il` is SWA unless `il % n == 0`;
/// otherwise unless `il % n == n - 1`. A pattern of 0 makes every layer SWA.
pub fn swa_pattern(n_layer: u32, n: u32, dense_first: bool) -> Vec<bool> {
    (0..n_layer)
        .map(|il| {
            if n == 0 {
                true
            } else if dense_first {
                il % n != 0
            } else {
                il % n < n - 1
            }
        })
        .collect()
}

fn per_layer(f: &GgufFile, suffix: &str, n_layer: u32) -> Option<Vec<u64>> {
    let p = f.arch_u64_or_array(suffix)?;
    Some(
        (0..n_layer as usize)
            .map(|il| p.at(il).unwrap_or(0))
            .collect(),
    )
}

/// Reads a GGUF header and extracts what the estimator needs.
pub fn load(path: &Path) -> Result<ModelInfo, String> {
    let f = infermon_gguf::read_path(path).map_err(|e| e.to_string())?;
    from_file(&f)
}

/// Extracts what the estimator needs from a parsed header.
pub fn from_file(f: &GgufFile) -> Result<ModelInfo, String> {
    let arch = f
        .architecture()
        .ok_or("no general.architecture in the GGUF metadata")?
        .to_string();
    let need = |suffix: &str| {
        f.arch_u64(suffix)
            .ok_or_else(|| format!("no \"{arch}.{suffix}\" in the GGUF metadata"))
    };
    let n_layer = u32::try_from(need("block_count")?)
        .map_err(|_| format!("\"{arch}.block_count\" is too large"))?;
    let n_embd = need("embedding_length")?;
    let n_ff = f
        .arch_u64_or_array("feed_forward_length")
        .and_then(|p| p.max())
        .unwrap_or(0);
    let n_head = per_layer(f, "attention.head_count", n_layer).unwrap_or_default();
    let n_head_kv =
        per_layer(f, "attention.head_count_kv", n_layer).unwrap_or_else(|| n_head.clone());
    let head0 = n_head.iter().copied().find(|h| *h > 0).unwrap_or(1);
    let head_dim_k = f
        .arch_u64("attention.key_length")
        .unwrap_or(n_embd / head0.max(1));
    let head_dim_v = f.arch_u64("attention.value_length").unwrap_or(head_dim_k);
    let mla = f.arch_u64("attention.key_length_mla").is_some()
        && f.arch_u64("attention.value_length_mla").is_some();
    let n_vocab = f.arch_u64("vocab_size").or_else(|| {
        f.get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .map(|a| a.len() as u64)
    });
    let n_vocab = n_vocab.ok_or("no vocabulary size (vocab_size or tokenizer.ggml.tokens)")?;
    let strings = |key: &str| match f.get(key).and_then(Value::as_array) {
        Some(Array::String(s)) => Some(s),
        _ => None,
    };
    let tokenizer_bytes = match strings("tokenizer.ggml.tokens") {
        Some(tokens) => tokenizer_heap_bytes(
            tokens.iter(),
            strings("tokenizer.ggml.merges")
                .into_iter()
                .flat_map(|m| m.iter()),
        ),
        // No token texts in the header: count each of n_vocab tokens at its fixed size.
        None => tokenizer_heap_bytes(
            std::iter::repeat_n("", n_vocab as usize),
            std::iter::empty(),
        ),
    };
    let n_ctx_train = f.arch_u64("context_length").unwrap_or(4096);
    let n_swa = f.arch_u64("attention.sliding_window").unwrap_or(0);
    let swa_layers = match f.arch_get("attention.sliding_window_pattern") {
        Some(Value::Array(a)) => (0..n_layer as usize)
            .map(|il| a.get(il).and_then(|v| v.as_bool()).unwrap_or(false))
            .collect(),
        Some(v) => match v.as_u64() {
            Some(n) => swa_pattern(n_layer, n as u32, false),
            None => vec![false; n_layer as usize],
        },
        None if n_swa > 0 => SWA_PATTERNS
            .iter()
            .find(|(a, _, _)| *a == arch)
            .map(|(_, n, dense_first)| swa_pattern(n_layer, *n, *dense_first))
            .unwrap_or_else(|| vec![false; n_layer as usize]),
        None => vec![false; n_layer as usize],
    };
    let all_recurrent = RECURRENT_ARCHS.contains(&arch.as_str());
    let recurrent_layers: Vec<bool> = (0..n_layer as usize)
        .map(|il| {
            all_recurrent
                || (matches!(
                    f.arch_u64_or_array("attention.head_count_kv"),
                    Some(PerLayer::Layers(_))
                ) && n_head_kv[il] == 0)
        })
        .collect();
    let n_recurrent = recurrent_layers.iter().filter(|r| **r).count() as u64;
    // Mamba-style state per layer and sequence: conv state (d_conv − 1) × d_inner plus SSM state
    // d_state × d_inner, f32. An approximation for other recurrent families.
    let d_inner = f.arch_u64("ssm.inner_size").unwrap_or(2 * n_embd);
    let d_conv = f.arch_u64("ssm.conv_kernel").unwrap_or(4);
    let d_state = f.arch_u64("ssm.state_size").unwrap_or(16);
    let recurrent_state_bytes_per_seq =
        n_recurrent * 4 * (d_conv.saturating_sub(1) * d_inner + d_state * d_inner);
    let mut tensors = Vec::with_capacity(f.tensors.len());
    for t in &f.tensors {
        tensors.push(TensorFacts {
            name: t.name.clone(),
            bytes: t
                .n_bytes()
                .map_err(|e| format!("tensor \"{}\": {e}", t.name))?,
            ggml_type: t.ggml_type.name().to_string(),
            n_dims: t.dims.len(),
        });
    }
    Ok(ModelInfo {
        arch,
        n_layer,
        n_embd,
        n_ff,
        n_head,
        n_head_kv,
        head_dim_k,
        head_dim_v,
        mla,
        n_vocab,
        tokenizer_bytes,
        n_ctx_train,
        n_swa,
        swa_layers,
        recurrent_layers,
        recurrent_state_bytes_per_seq,
        tensors,
        file_bytes: f.file_size.unwrap_or(0),
    })
}
