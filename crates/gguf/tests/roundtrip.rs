//! Files built with the writer parse back to what was written, in every GGUF version, from a
//! slice and from a file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::fs::File;

use common::{sample_builder, sample_metadata};
use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::{parse, read_path, GgmlType, GgufError, PerLayer, Value};

#[test]
fn every_version_round_trips() {
    for version in 1..=3 {
        let builder = sample_builder(version);
        let bytes = builder.build();
        let file = parse(&bytes).unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(file.version, version);
        assert_eq!(file.metadata, sample_metadata(), "v{version}");
        assert_eq!(file.tensors, builder.tensor_infos(), "v{version}");
        assert_eq!(file.tensors.len(), 7);
        assert_eq!(file.alignment, 64);
        assert_eq!(file.data_offset % 64, 0);
        assert_eq!(file.file_size, Some(bytes.len() as u64));
        assert_eq!(file.data_offset + builder.data_size(), bytes.len() as u64);
        // The last tensor's data ends within one alignment step of the file's end.
        let end = file.data_end().unwrap();
        assert!(end <= bytes.len() as u64 && bytes.len() as u64 - end < 64);
        file.check_data_in_file().unwrap();
        for t in &file.tensors {
            assert_eq!(t.offset % 64, 0, "{}", t.name);
        }
    }
}

#[test]
fn v1_uses_32_bit_counts_lengths_and_dims() {
    let v1 = sample_builder(1).header_only().build();
    let v2 = sample_builder(2).header_only().build();
    let p1 = parse(&v1).unwrap();
    let p2 = parse(&v2).unwrap();
    // Same content, narrower fields: the v1 header is smaller.
    assert_eq!(p1.metadata, p2.metadata);
    assert_eq!(p1.tensors, p2.tensors);
    assert!(p1.data_offset < p2.data_offset || v1.len() < v2.len());
    // Counts: the tensor count at offset 8 is a u32 in v1, a u64 in v2.
    assert_eq!(&v1[8..12], &7u32.to_le_bytes());
    assert_eq!(&v2[8..16], &7u64.to_le_bytes());
}

#[test]
fn lookups_and_per_layer_values() {
    let file = parse(&sample_builder(3).build()).unwrap();
    assert_eq!(file.architecture(), Some("llama"));
    assert_eq!(file.get_str("general.name"), Some("tiny test model"));
    assert_eq!(file.get_u64("llama.context_length"), Some(8192));
    assert_eq!(file.arch_u64("block_count"), Some(3));
    assert_eq!(
        file.arch_u64("attention.head_count"),
        Some(8),
        "i32 reads as u64"
    );
    assert_eq!(file.get_u64("test.i64"), None, "negative");
    assert_eq!(file.get_f64("llama.rope.freq_base"), Some(10_000.0));
    assert_eq!(file.position("general.alignment"), Some(2));
    assert_eq!(file.get("missing"), None);
    assert_eq!(file.arch_u64("missing"), None);

    let kv = file.arch_u64_or_array("attention.head_count_kv").unwrap();
    assert_eq!(kv, PerLayer::Layers(vec![4, 2, 4]));
    assert_eq!((kv.at(1), kv.at(3), kv.max()), (Some(2), None, Some(4)));
    let heads = file.arch_u64_or_array("attention.head_count").unwrap();
    assert_eq!(heads, PerLayer::All(8));
    assert_eq!(heads.at(1000), Some(8));
    assert_eq!(file.arch_u64_or_array("rope.freq_base"), None, "a float");

    let vocab = file.get("tokenizer.ggml.tokens").and_then(Value::as_array);
    assert_eq!(vocab.map(|a| a.len()), Some(4));
    assert_eq!(vocab.and_then(|a| a.str_at(3)), Some("▁world"));
    let q = file.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(q.ggml_type, GgmlType::Q4_K);
    assert_eq!(q.n_elements(), Ok(65_536));
    assert_eq!(q.n_bytes(), Ok(65_536 / 256 * 144));
    let scalar = file.tensor("blk.0.scalar").unwrap();
    assert_eq!((scalar.n_elements(), scalar.n_bytes()), (Ok(1), Ok(2)));
    let expected: u64 = file.tensors.iter().map(|t| t.n_bytes().unwrap()).sum();
    assert_eq!(file.tensor_bytes().unwrap(), expected);
}

#[test]
fn header_only_files_parse_and_report_missing_data() {
    let builder = sample_builder(3).header_only();
    let bytes = builder.build();
    let file = parse(&bytes).unwrap();
    assert_eq!(file.data_offset, bytes.len() as u64);
    assert_eq!(file.tensors, builder.tensor_infos());
    let err = file.check_data_in_file().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "tensor \"token_embd.weight\" data ends at byte {}, past the end of the {}-byte \
             file (incomplete download?)",
            file.data_offset + 256 * 16 / 32 * 34,
            bytes.len()
        )
    );
}

#[test]
fn empty_file_and_default_alignment() {
    for version in 1..=3 {
        let file = parse(&GgufBuilder::new(version).build()).unwrap();
        assert!(file.metadata.is_empty() && file.tensors.is_empty());
        assert_eq!(file.alignment, 32);
        assert_eq!(file.data_offset, 32, "a {version} header padded to 32");
        assert_eq!(file.data_end().unwrap(), 32);
    }
    let file = parse(
        &GgufBuilder::new(3)
            .kv("general.alignment", 1u32)
            .tensor("a", &[3], GgmlType::F16)
            .tensor("b", &[1], GgmlType::I8)
            .build(),
    )
    .unwrap();
    assert_eq!(file.alignment, 1);
    assert_eq!(file.tensors[1].offset, 6);
}

#[test]
fn read_path_matches_parse_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let builder = sample_builder(2);
    builder.write_to(&path).unwrap();
    let from_file = read_path(&path).unwrap();
    assert_eq!(from_file, parse(&builder.build()).unwrap());

    let missing = dir.path().join("missing.gguf");
    let err = read_path(&missing).unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read \"{}\": ", missing.display())));

    let err = read_path(dir.path()).unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }), "{err:?}");

    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x04\0\0\0").unwrap();
    assert_eq!(
        read_path(&bad).unwrap_err().to_string(),
        format!(
            "\"{}\": offset 4: unsupported GGUF version 4; this reader knows versions 1, 2 and 3",
            bad.display()
        )
    );
}

/// A header-only file extended with `set_len` looks like a 40 GB model without using disk;
/// only the header is read.
#[test]
fn sparse_large_file_reads_only_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.gguf");
    let builder = GgufBuilder::new(3)
        .kv("general.architecture", "llama")
        .tensor("token_embd.weight", &[8192, 128_256], GgmlType::Q8_0)
        .tensor("output.weight", &[8192, 128_256], GgmlType::Q6_K)
        .header_only();
    builder.write_to(&path).unwrap();
    let header_len = builder.build().len() as u64;
    let total = header_len + builder.data_size();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(total)
        .unwrap();
    let file = read_path(&path).unwrap();
    assert_eq!(file.file_size, Some(total));
    assert_eq!(file.data_end().unwrap(), total);
    file.check_data_in_file().unwrap();
}

/// The committed fuzz seeds (written by `examples/write_fuzz_corpus.rs`) are valid files.
#[test]
fn fuzz_seeds_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse");
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        total += bytes.len();
        parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert!(total > 0 && total < 50_000, "{total} bytes of seeds");
}
