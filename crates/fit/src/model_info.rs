//! What the estimator needs to know about a model, independent of the file format.

use serde::Serialize;

/// One tensor's placement-relevant facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorFacts {
    /// Tensor name (`blk.3.attn_q.weight`, `token_embd.weight`, `output.weight`).
    pub name: String,
    /// Bytes of its data.
    pub bytes: u64,
    /// ggml type name (`q4_0`, `f32`, …).
    pub ggml_type: String,
    /// Number of dimensions.
    pub n_dims: usize,
}

impl TensorFacts {
    /// Block (layer) index for `blk.N.*` tensors.
    pub fn layer(&self) -> Option<u32> {
        self.name
            .strip_prefix("blk.")?
            .split('.')
            .next()?
            .parse()
            .ok()
    }
}

/// Hyper-parameters of one model (from GGUF metadata).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// `general.architecture`
    pub arch: String,
    /// `<arch>.block_count`
    pub n_layer: u32,
    /// `<arch>.embedding_length`
    pub n_embd: u64,
    /// `<arch>.feed_forward_length` (first layer's when per-layer)
    pub n_ff: u64,
    /// Attention heads per layer.
    pub n_head: Vec<u64>,
    /// KV heads per layer (GQA/MQA; 0 = no attention in that layer, e.g. recurrent).
    pub n_head_kv: Vec<u64>,
    /// Key head dimension (`attention.key_length`, default n_embd / n_head).
    pub head_dim_k: u64,
    /// Value head dimension.
    pub head_dim_v: u64,
    /// MLA latent cache: K width per layer when the model stores only a latent (V-less) cache.
    pub mla: bool,
    /// Vocabulary size.
    pub n_vocab: u64,
    /// Heap of llama.cpp's tokenizer tables built from the GGUF vocabulary (and BPE merges),
    /// see [`crate::from_gguf::tokenizer_heap_bytes`].
    pub tokenizer_bytes: u64,
    /// Training context (`<arch>.context_length`).
    pub n_ctx_train: u64,
    /// Sliding window, when the model has SWA layers.
    pub n_swa: u64,
    /// Per layer: whether it uses sliding-window attention.
    pub swa_layers: Vec<bool>,
    /// Per layer: recurrent (Mamba/RWKV/DeltaNet-like) layers hold a fixed state, no KV.
    pub recurrent_layers: Vec<bool>,
    /// Recurrent state bytes per sequence (all recurrent layers together, F32).
    pub recurrent_state_bytes_per_seq: u64,
    /// Tensors.
    pub tensors: Vec<TensorFacts>,
    /// File size.
    pub file_bytes: u64,
}

impl ModelInfo {
    /// Sum of tensor bytes.
    pub fn weight_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Whether layer `il` has an attention KV cache.
    pub fn has_kv(&self, il: usize) -> bool {
        !self.recurrent_layers.get(il).copied().unwrap_or(false)
            && self.n_head_kv.get(il).copied().unwrap_or(0) > 0
    }
}
