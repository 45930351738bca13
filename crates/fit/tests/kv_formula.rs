//! KV cache size on hand-computed cases for GQA, SWA and MLA metadata, with small GGUF headers
//! built by the writer in `infermon-gguf` and read back through the same path as real files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use infermon_fit::from_gguf::from_file;
use infermon_fit::kv::{geometry, kv_bytes};
use infermon_fit::ModelInfo;
use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::{GgmlType, Value};

fn model(arch: &str, n_layer: u32, extra: Vec<(&str, Value)>) -> ModelInfo {
    let mut b = GgufBuilder::new(3)
        .kv("general.architecture", arch)
        .kv(format!("{arch}.block_count"), n_layer)
        .kv(format!("{arch}.embedding_length"), 256u32)
        .kv(format!("{arch}.feed_forward_length"), 512u32)
        .kv(format!("{arch}.context_length"), 32768u32)
        .kv(format!("{arch}.vocab_size"), 1000u32);
    for (k, v) in extra {
        b = b.kv(format!("{arch}.{k}"), v);
    }
    let b = b.tensor("token_embd.weight", &[256, 1000], GgmlType::F16);
    from_file(&infermon_gguf::parse(&b.build()).unwrap()).unwrap()
}

fn kv(info: &ModelInfo, ctx: u64, n_seq: u64, unified: bool, t: &str, swa_full: bool) -> u64 {
    let g = geometry(info, ctx, n_seq, unified);
    kv_bytes(info, &g, t, t, 512, swa_full, unified)
        .unwrap()
        .total()
}

#[test]
fn gqa_two_kv_heads() {
    // 4 layers × 2 KV heads × (32 K + 32 V) × 2 B = 256 B per layer and cell.
    let m = model(
        "llama",
        4,
        vec![
            ("attention.head_count", Value::from(8u32)),
            ("attention.head_count_kv", Value::from(2u32)),
        ],
    );
    assert_eq!(m.head_dim_k, 32); // n_embd / n_head
    assert_eq!(kv(&m, 1000, 1, false, "f16", false), 4 * 1024 * 256); // 1000 → 1024 cells
                                                                      // 3 slots, split: pad(1024 / 3, 256) = 512 cells per stream × 3 streams.
    assert_eq!(kv(&m, 1000, 3, false, "f16", false), 4 * 1536 * 256);
    // q8_0: 64 values = 2 blocks × 34 B, for K and for V.
    assert_eq!(kv(&m, 1024, 1, false, "q8_0", false), 4 * 1024 * 136);
}

#[test]
fn gqa_per_layer_kv_heads() {
    let m = model(
        "llama",
        4,
        vec![
            ("attention.head_count", Value::from(8u32)),
            ("attention.head_count_kv", Value::from(vec![2u32, 4, 2, 4])),
        ],
    );
    // 256 + 512 + 256 + 512 B per cell.
    assert_eq!(kv(&m, 1024, 1, true, "f16", false), 1536 * 1024);
}

#[test]
fn swa_gemma3_pattern() {
    // gemma3: pattern 6 → layers 5 and 11 full, 10 SWA; 1 KV head × (256 + 256) × 2 B = 1 KiB.
    let m = model(
        "gemma3",
        12,
        vec![
            ("attention.head_count", Value::from(4u32)),
            ("attention.head_count_kv", Value::from(1u32)),
            ("attention.key_length", Value::from(256u32)),
            ("attention.value_length", Value::from(256u32)),
            ("attention.sliding_window", Value::from(512u32)),
        ],
    );
    let full: Vec<usize> = (0..12).filter(|il| !m.swa_layers[*il]).collect();
    assert_eq!(full, vec![5, 11]);
    // one slot: SWA cells = pad(min(32768, 512 + 512), 256) = 1024
    assert_eq!(
        kv(&m, 32768, 1, false, "f16", false),
        2 * 32768 * 1024 + 10 * 1024 * 1024
    );
    // 4 unified slots: SWA cells = pad(512 × 4 + 512, 256) = 2560
    assert_eq!(
        kv(&m, 32768, 4, true, "f16", false),
        2 * 32768 * 1024 + 10 * 2560 * 1024
    );
    // --swa-full: every layer at full size
    assert_eq!(kv(&m, 32768, 1, false, "f16", true), 12 * 32768 * 1024);
}

#[test]
fn mla_keeps_only_the_latent() {
    let base = vec![
        ("attention.head_count", Value::from(16u32)),
        ("attention.head_count_kv", Value::from(1u32)),
        ("attention.key_length", Value::from(576u32)),
        ("attention.value_length", Value::from(512u32)),
    ];
    let mut with_mla = base.clone();
    with_mla.push(("attention.key_length_mla", Value::from(192u32)));
    with_mla.push(("attention.value_length_mla", Value::from(128u32)));
    let m = model("deepseek2", 3, with_mla);
    assert!(m.mla);
    // V-less: 576 K values × 2 B per layer and cell.
    assert_eq!(kv(&m, 4096, 1, false, "f16", false), 3 * 4096 * 1152);
    // Without the MLA keys llama.cpp keeps K and V: (576 + 512) × 2 B.
    let m = model("deepseek2", 3, base);
    assert!(!m.mla);
    assert_eq!(kv(&m, 4096, 1, false, "f16", false), 3 * 4096 * 2176);
}

#[test]
fn reference_smollm2_numbers() {
    // SmolLM2-135M: 30 layers × 3 KV heads × (64 + 64) × 2 B = 23,040 B per cell → 180 MiB at 8192.
    let m = model(
        "llama",
        30,
        vec![
            ("attention.head_count", Value::from(9u32)),
            ("attention.head_count_kv", Value::from(3u32)),
            ("attention.key_length", Value::from(64u32)),
            ("attention.value_length", Value::from(64u32)),
        ],
    );
    assert_eq!(kv(&m, 8192, 1, false, "f16", false), 180 * 1024 * 1024);
    assert_eq!(kv(&m, 8192, 4, false, "f16", false), 180 * 1024 * 1024); // split, not × 4
    assert_eq!(kv(&m, 8000, 1, false, "f16", false), 180 * 1024 * 1024); // padded to 8192
}
