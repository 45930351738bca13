//! Times `read_path` on a large synthetic GGUF: 1,000 metadata keys (among them a
//! 150,000-entry token vocabulary, its scores and types, and 150,000 merges) and 20,000 tensor
//! infos, written header-only and extended with `set_len` to the size of a ~47 GB model, so it
//! takes no disk space. Run with
//!
//! ```sh
//! cargo run --release -p infermon-gguf --example header_bench
//! ```

use std::error::Error;
use std::fs::File;
use std::time::{Duration, Instant};

use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::{read_path, GgmlType, Value};

const VOCAB: usize = 150_000;
const TENSORS: usize = 20_000;
const KEYS: usize = 1_000;
const RUNS: usize = 20;

fn build() -> GgufBuilder {
    let tokens: Vec<String> = (0..VOCAB).map(|i| format!("tok{i}")).collect();
    let merges: Vec<String> = (0..VOCAB).map(|i| format!("t{} k{}", i % 977, i)).collect();
    let scores: Vec<f32> = (0..VOCAB).map(|i| -(i as f32)).collect();
    let types: Vec<i32> = (0..VOCAB).map(|i| i32::from(i < 256) + 1).collect();
    let mut b = GgufBuilder::new(3)
        .kv("general.architecture", "llama")
        .kv("general.name", "synthetic 70B")
        .kv("llama.block_count", 80u32)
        .kv("llama.context_length", 131_072u32)
        .kv("llama.embedding_length", 8192u32)
        .kv("llama.attention.head_count", 64u32)
        .kv("llama.attention.head_count_kv", 8u32)
        .kv("tokenizer.ggml.model", "gpt2")
        .kv("tokenizer.ggml.tokens", tokens)
        .kv("tokenizer.ggml.scores", scores)
        .kv("tokenizer.ggml.token_type", types)
        .kv("tokenizer.ggml.merges", merges);
    for i in 12..KEYS {
        let value = match i % 3 {
            0 => Value::U32(i as u32),
            1 => Value::F32(i as f32 / 7.0),
            _ => Value::String(format!("value of key {i}")),
        };
        b = b.kv(format!("synthetic.key_{i:04}"), value);
    }
    for i in 0..TENSORS {
        let layer = i / 250;
        b = b.tensor(
            format!("blk.{layer}.ffn_part_{}.weight", i % 250),
            &[8192, 512],
            GgmlType::Q4_K,
        );
    }
    b.header_only()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn Error>> {
    let builder = build();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("synthetic-70b.gguf");
    builder.write_to(&path)?;
    let header_len = std::fs::metadata(&path)?.len();
    let file_len = header_len + builder.data_size();
    File::options().write(true).open(&path)?.set_len(file_len)?;

    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let file = read_path(&path)?;
        times.push(start.elapsed());
        last = Some(file);
    }
    let file = last.ok_or("no run")?;
    file.check_data_in_file()?;
    times.sort();
    println!(
        "file {:.1} GB (sparse), header {:.2} MB ({} bytes), {} metadata keys, {} tensors",
        file_len as f64 / 1e9,
        header_len as f64 / 1e6,
        file.data_offset,
        file.metadata.len(),
        file.tensors.len(),
    );
    println!(
        "read_path over {RUNS} runs: min {:.2} ms, median {:.2} ms, max {:.2} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1]),
    );
    Ok(())
}
