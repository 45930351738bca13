//! Shared fixtures: a small GGUF file using every value type, nested arrays and several tensor
//! types, built with the crate's writer.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test code

use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::{Array, GgmlType, Value};

/// The metadata of [`sample`], in order.
pub fn sample_metadata() -> Vec<(String, Value)> {
    let kv: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("general.name", "tiny test model".into()),
        ("general.alignment", Value::U32(64)),
        ("llama.block_count", Value::U32(3)),
        ("llama.context_length", Value::U64(8192)),
        ("llama.embedding_length", Value::U32(256)),
        ("llama.attention.head_count", Value::I32(8)),
        ("llama.attention.head_count_kv", vec![4u32, 2, 4].into()),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F64(1e-5)),
        ("test.u8", Value::U8(200)),
        ("test.i8", Value::I8(-5)),
        ("test.u16", Value::U16(65_000)),
        ("test.i16", Value::I16(-30_000)),
        ("test.i64", Value::I64(-1)),
        ("test.bool", Value::Bool(true)),
        ("test.empty_string", "".into()),
        ("test.empty_array", Value::Array(Array::F64(vec![]))),
        ("test.bools", vec![true, false, true].into()),
        (
            "test.nested",
            Value::Array(Array::Array(vec![
                Array::U8(vec![1, 2]),
                Array::from(vec!["x", "yz"]),
                Array::Array(vec![Array::I16(vec![-1])]),
            ])),
        ),
        (
            "tokenizer.ggml.tokens",
            vec!["<s>", "</s>", "hello", "▁world"].into(),
        ),
        (
            "tokenizer.ggml.scores",
            vec![0.0f32, -1.5, -2.25, 3.0].into(),
        ),
        ("tokenizer.ggml.token_type", vec![3i32, 3, 1, 1].into()),
    ];
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A small valid file of GGUF `version`: [`sample_metadata`] plus seven tensors.
pub fn sample_builder(version: u32) -> GgufBuilder {
    let mut b = GgufBuilder::new(version);
    for (k, v) in sample_metadata() {
        b = b.kv(k, v);
    }
    b.tensor("token_embd.weight", &[256, 16], GgmlType::Q8_0)
        .tensor("blk.0.attn_norm.weight", &[256], GgmlType::F32)
        .tensor("blk.0.attn_q.weight", &[256, 256], GgmlType::Q4_K)
        .tensor("blk.0.attn_k.weight", &[256, 128], GgmlType::Q4_1)
        .tensor("blk.0.ffn_up.weight", &[32, 2, 3], GgmlType::BF16)
        .tensor("blk.0.scalar", &[], GgmlType::F16)
        .tensor("output.weight", &[256, 16], GgmlType::IQ4_NL)
}

/// The bytes of `sample_builder(3)`, with tensor data.
pub fn sample() -> Vec<u8> {
    sample_builder(3).build()
}

/// Deterministic xorshift64* generator, so the mutation test needs no dependency.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
