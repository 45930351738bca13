//! Writes the fuzz seed corpus, `fuzz/corpus/parse/`, with the crate's writer: small valid
//! files of each GGUF version plus a few edge cases. Run from the workspace root with
//!
//! ```sh
//! cargo run -p infermon-gguf --example write_fuzz_corpus
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::error::Error;
use std::path::Path;

use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::{Array, GgmlType, Value};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse");
    std::fs::create_dir_all(&dir)?;
    let files: Vec<(&str, GgufBuilder)> = vec![
        ("sample_v1.gguf", common::sample_builder(1).header_only()),
        ("sample_v2.gguf", common::sample_builder(2).header_only()),
        ("sample_v3.gguf", common::sample_builder(3).header_only()),
        ("empty_v3.gguf", GgufBuilder::new(3)),
        (
            "nested_arrays.gguf",
            GgufBuilder::new(3).kv(
                "k",
                Value::Array(Array::Array(vec![Array::Array(vec![Array::Bool(vec![
                    true,
                ])])])),
            ),
        ),
        (
            "tensors_only.gguf",
            GgufBuilder::new(3)
                .kv("general.alignment", 16u32)
                .tensor("a", &[32, 2], GgmlType::Q8_0)
                .tensor("b", &[256], GgmlType::IQ2_XXS)
                .tensor("c", &[64], GgmlType::NVFP4),
        ),
    ];
    let mut total = 0;
    for (name, builder) in files {
        let bytes = builder.build();
        total += bytes.len();
        std::fs::write(dir.join(name), &bytes)?;
    }
    println!("wrote {total} bytes to {}", dir.display());
    Ok(())
}
