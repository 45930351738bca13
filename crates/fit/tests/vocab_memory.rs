//! Memory that scales with the vocabulary: llama.cpp's tokenizer tables (from the GGUF's token
//! texts and BPE merges) and llama-server's per-slot sampler candidates, on hand-computed cases.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use infermon_fit::estimate::{estimate, sampler_bytes};
use infermon_fit::from_gguf::{from_file, tokenizer_heap_bytes};
use infermon_fit::params::parse_args;
use infermon_fit::ModelInfo;
use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::{GgmlType, Value};

/// A small llama model; `tokens` (and `merges`) become the tokenizer arrays when given,
/// otherwise only `vocab_size` says how many tokens there are.
fn model(n_vocab: u32, tokens: Option<Vec<&str>>, merges: Option<Vec<&str>>) -> ModelInfo {
    let mut b = GgufBuilder::new(3)
        .kv("general.architecture", "llama")
        .kv("llama.block_count", 2u32)
        .kv("llama.embedding_length", 256u32)
        .kv("llama.feed_forward_length", 512u32)
        .kv("llama.context_length", 4096u32)
        .kv("llama.attention.head_count", 4u32)
        .kv("llama.vocab_size", n_vocab);
    if let Some(t) = tokens {
        b = b.kv("tokenizer.ggml.tokens", Value::from(t));
    }
    if let Some(m) = merges {
        b = b.kv("tokenizer.ggml.merges", Value::from(m));
    }
    let b = b.tensor("token_embd.weight", &[256, 1000], GgmlType::F16);
    from_file(&infermon_gguf::parse(&b.build()).unwrap()).unwrap()
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn tokenizer_tables_by_hand() {
    // Per token: token_data 40 + map node chunk 64 + bucket 8 + piece string 32 = 144 B; a text
    // over 15 bytes adds a heap chunk (22 bytes + NUL + 8 header → 32) three times.
    // Per merge: node chunk 96 + bucket 8; a half over 15 bytes adds its chunk (17 + 1 → 32).
    let tokens = vec!["a", "hello", "a_token_longer_than_15"];
    let merges = vec!["a b", "abcdefghijklmnopq r"];
    let want = 3 * 144 + 3 * 32 + 2 * (96 + 8) + 32;
    assert_eq!(
        tokenizer_heap_bytes(tokens.iter().copied(), merges.iter().copied()),
        want
    );
    let m = model(3, Some(tokens), Some(merges));
    assert_eq!(m.tokenizer_bytes, want);
}

#[test]
fn tokenizer_without_token_texts_counts_fixed_size_per_token() {
    let m = model(1000, None, None);
    assert_eq!(m.n_vocab, 1000);
    assert_eq!(m.tokenizer_bytes, 1000 * 144);
}

#[test]
fn sampler_candidates_per_slot() {
    let m = model(262_144, None, None);
    // 262,144 × 12 B = 3 MiB per slot.
    assert_eq!(sampler_bytes(&m, 1), 3 * 1024 * 1024);
    assert_eq!(sampler_bytes(&m, 4), 12 * 1024 * 1024);
    assert_eq!(sampler_bytes(&m, 0), 3 * 1024 * 1024);
}

#[test]
fn estimate_grows_with_the_vocabulary_by_the_new_terms() {
    let (p, e) = parse_args(&args("-m M.gguf -c 2048 -np 2"));
    assert!(e.is_empty(), "{e:?}");
    let small = model(1000, None, None);
    let big = model(3000, None, None);
    let es = estimate(&small, None, &p, false).unwrap();
    let eb = estimate(&big, None, &p, false).unwrap();
    assert_eq!(eb.tokenizer_bytes - es.tokenizer_bytes, 2000 * 144);
    assert_eq!(eb.sampler_bytes - es.sampler_bytes, 2000 * 12 * 2);
    // Output buffer: n_vocab × 4 B per sequence.
    assert_eq!(eb.output_bytes - es.output_bytes, 2000 * 4 * 2);
    assert_eq!(
        eb.total_bytes - es.total_bytes,
        2000 * (144 + 12 * 2 + 4 * 2)
    );
    let host = &eb.devices[0];
    assert_eq!(host.tokenizer_bytes, eb.tokenizer_bytes);
    assert_eq!(host.sampler_bytes, eb.sampler_bytes);
    assert_eq!(host.total_bytes, eb.total_bytes);
}

#[test]
fn draft_model_adds_its_tokenizer() {
    let (p, e) = parse_args(&args("-m M.gguf -c 2048 -np 1 -md D.gguf"));
    assert!(e.is_empty(), "{e:?}");
    let main = model(3000, None, None);
    let draft = model(1000, None, None);
    let without = estimate(&main, None, &p, false).unwrap();
    let with = estimate(&main, Some(&draft), &p, false).unwrap();
    assert_eq!(with.tokenizer_bytes - without.tokenizer_bytes, 1000 * 144);
    assert_eq!(with.devices[0].tokenizer_bytes, with.tokenizer_bytes);
}
