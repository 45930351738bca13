//! Bad input gives an error that names the offset and the field — checked against the exact
//! text — and never a panic: every truncation, and a few thousand pseudo-random mutations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::{sample, XorShift};
use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::{parse, read_path, Array, GgmlType, GgufError, Value, MAX_HEADER_LEN};

fn err(bytes: &[u8]) -> String {
    match parse(bytes) {
        Ok(f) => panic!("parsed: {f:?}"),
        Err(e) => e.to_string(),
    }
}

/// A v3 header: magic, version, tensor count, metadata count (24 bytes).
fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b
}

#[test]
fn corrupt_string_length() {
    let mut b = header(0, 1);
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    b.extend_from_slice(&[b'x'; 72]);
    assert_eq!(
        err(&b),
        "offset 24: metadata key 0: string length 18446744073709551615 exceeds the 72 bytes \
         left in the file"
    );
}

#[test]
fn not_gguf() {
    assert_eq!(
        err(b"PK\x03\x04\x14\0\0\0"),
        "not a GGUF file: magic is \"PK\\x03\\x04\" at offset 0, expected \"GGUF\""
    );
    assert_eq!(
        err(b""),
        "truncated at offset 0 while reading header (magic)"
    );
    assert_eq!(
        err(b"GGUF\x03\0"),
        "truncated at offset 6 while reading header (version)"
    );
}

#[test]
fn unknown_and_removed_ggml_types() {
    // 24-byte header, name (8 + 19), n_dims (4), one dim (8): the type id is at 63.
    let b = GgufBuilder::new(3)
        .raw_tensor("blk.0.attn_q.weight", &[32], 99, 0)
        .build();
    assert_eq!(
        err(&b),
        "offset 63: tensor \"blk.0.attn_q.weight\" has unknown ggml type 99"
    );
    let b = GgufBuilder::new(3)
        .raw_tensor("blk.0.attn_q.weight", &[32], 31, 0)
        .build();
    assert_eq!(
        err(&b),
        "offset 63: tensor \"blk.0.attn_q.weight\" has ggml type 31 (q4_0_4_4), which llama.cpp \
         no longer supports"
    );
}

#[test]
fn truncated_inside_tensor_dims() {
    let b = GgufBuilder::new(3)
        .tensor("blk.0.attn_q.weight", &[32, 4], GgmlType::F32)
        .build();
    assert_eq!(
        err(&b[..59]),
        "truncated at offset 59 while reading tensor info 0 \"blk.0.attn_q.weight\" (dims)"
    );
}

#[test]
fn corrupt_counts() {
    let mut b = header(u64::MAX, 0);
    b.extend_from_slice(&[0; 40]);
    assert_eq!(
        err(&b),
        "offset 8: header (tensor count): 18446744073709551615 tensor infos need at least \
         442721857769029238760 bytes, but only 40 are left in the file"
    );
    // An array of 1,000,000 u32 in a small file.
    let mut b = header(0, 1);
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&9u32.to_le_bytes()); // array
    b.extend_from_slice(&4u32.to_le_bytes()); // of u32
    b.extend_from_slice(&1_000_000u64.to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    assert_eq!(
        err(&b),
        "offset 41: metadata key 0 \"k\" (array length): 1000000 u32 elements need at least \
         4000000 bytes, but only 16 are left in the file"
    );
}

#[test]
fn version_and_endianness() {
    let mut b = header(0, 0);
    b[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        err(&b),
        "offset 4: big-endian GGUF file (version reads 0x03000000, 3 byte-swapped); only \
         little-endian files are supported"
    );
    assert_eq!(
        err(b"FUGG\0\0\0\x03"),
        "offset 0: big-endian GGUF file (magic reads \"FUGG\"); only little-endian files are \
         supported"
    );
    for v in [0, 4, 0xFFFF_FFFF] {
        assert_eq!(
            err(&GgufBuilder::new(v).build()),
            format!(
                "offset 4: unsupported GGUF version {v}; this reader knows versions 1, 2 and 3"
            )
        );
    }
}

#[test]
fn metadata_errors() {
    let e = err(&GgufBuilder::new(3).kv("a", 1u8).kv("a", 2u8).build());
    assert_eq!(e, "offset 38: metadata key 1: duplicate key \"a\"");
    assert_eq!(
        err(&GgufBuilder::new(3).kv("", 1u8).build()),
        "offset 24: metadata key 0 is empty"
    );
    assert_eq!(
        err(&GgufBuilder::new(3).kv("general.alignment", 64u64).build()),
        "offset 53: general.alignment has type u64, expected u32"
    );
    assert_eq!(
        err(&GgufBuilder::new(3).kv("general.alignment", 48u32).build()),
        "offset 53: general.alignment 48 is not a power of two"
    );
    // Bool byte 2: header, key (8 + 1), type (4), value at 37.
    let mut b = GgufBuilder::new(3).kv("k", true).build();
    b[37] = 2;
    assert_eq!(
        err(&b),
        "offset 37: metadata key 0 \"k\" (value): bool byte 2, expected 0 or 1"
    );
    // Type id 13 at offset 33.
    let mut b = GgufBuilder::new(3).kv("k", 1u8).build();
    b[33] = 13;
    assert_eq!(
        err(&b),
        "offset 33: metadata key 0 \"k\" (type): unknown metadata value type 13"
    );
    // A key that is not UTF-8 is an error; a value that is not is read lossily.
    let mut b = GgufBuilder::new(3).kv("k", "v").build();
    b[32] = 0xFF;
    assert_eq!(err(&b), "offset 32: metadata key 0 is not valid UTF-8");
    let mut b = GgufBuilder::new(3).kv("k", "v").build();
    b[45] = 0xFF;
    assert_eq!(parse(&b).unwrap().get_str("k"), Some("\u{FFFD}"));
}

#[test]
fn nested_arrays_deeper_than_8_are_refused() {
    let nest = |levels: usize| {
        let mut a = Array::U8(vec![7]);
        for _ in 1..levels {
            a = Array::Array(vec![a]);
        }
        GgufBuilder::new(3).kv("k", Value::Array(a)).build()
    };
    let ok = parse(&nest(8)).unwrap();
    let mut a = ok.get("k").and_then(Value::as_array).unwrap();
    for _ in 1..8 {
        a = a.array_at(0).unwrap();
    }
    assert_eq!(a.u64_at(0), Some(7));
    // The ninth array's header starts at 37 + 8 * 12.
    assert_eq!(
        err(&nest(9)),
        "offset 133: metadata key 0 \"k\" (value[0][0][0][0][0][0][0][0]): arrays nested more \
         than 8 deep"
    );
}

#[test]
fn tensor_errors() {
    let b = GgufBuilder::new(3).raw_tensor("t", &[1; 9], 0, 0).build();
    assert_eq!(
        err(&b),
        "offset 33: tensor \"t\" has 9 dimensions; at most 8 are supported"
    );
    let eight = parse(
        &GgufBuilder::new(3)
            .tensor("t", &[1; 8], GgmlType::F32)
            .build(),
    )
    .unwrap();
    assert_eq!(eight.tensors[0].dims.len(), 8);

    let b = GgufBuilder::new(3).raw_tensor("t", &[32], 0, 16).build();
    assert_eq!(
        err(&b),
        "offset 49: tensor \"t\" has data offset 16, not a multiple of the alignment 32"
    );
    let b = GgufBuilder::new(3)
        .tensor("t", &[100, 2], GgmlType::Q4_K)
        .build();
    assert_eq!(
        err(&b),
        "offset 24: tensor \"t\": rows of 100 elements are not a multiple of the q4_K block \
         size 256"
    );
    let b = GgufBuilder::new(3)
        .raw_tensor("t", &[u64::MAX, 2], 0, 0)
        .build();
    assert_eq!(
        err(&b),
        "offset 24: tensor \"t\": element count overflows 64 bits"
    );
    let b = GgufBuilder::new(3)
        .tensor("t", &[32], GgmlType::F32)
        .tensor("t", &[32], GgmlType::F32)
        .build();
    assert_eq!(
        err(&b),
        "offset 57: tensor info 1: duplicate tensor name \"t\""
    );
}

/// Every prefix of a valid file is an error (the file is cut inside some field), never a
/// panic, and the message says the file ends or a length does not fit.
#[test]
fn every_truncation_is_an_error() {
    let full = common::sample_builder(3).header_only().build();
    let header_end = parse(&full).unwrap().data_offset as usize;
    // The header proper ends before its padding; cuts inside the padding still parse.
    let infos_end = (0..=header_end)
        .find(|&n| parse(&full[..n]).is_ok())
        .unwrap();
    for n in 0..infos_end {
        let e = err(&full[..n]);
        assert!(
            e.starts_with(&format!("truncated at offset {n} while reading "))
                || e.contains("left in the file"),
            "prefix {n}: {e}"
        );
    }
    for version in [1, 2] {
        let full = common::sample_builder(version).header_only().build();
        for n in 0..full.len() {
            let _ = parse(&full[..n]);
        }
    }
}

/// A few thousand mutated copies of a valid file: flipped bytes, overwritten lengths and
/// counts, cuts. None may panic; errors must render.
#[test]
fn mutations_never_panic() {
    let base = sample();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for round in 0..4000 {
        let mut b = base.clone();
        let edits = 1 + rng.below(4);
        for _ in 0..edits {
            let at = rng.below(b.len());
            match rng.below(4) {
                0 => b[at] = rng.next() as u8,
                1 => b[at] ^= 1 << rng.below(8),
                2 => {
                    // An extreme 64-bit value where a count or length may be.
                    let v = [u64::MAX, 1 << 63, u32::MAX as u64, 0, 1 << 40][rng.below(5)];
                    let end = (at + 8).min(b.len());
                    b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                }
                _ => b.truncate(at),
            }
            if b.is_empty() {
                break;
            }
        }
        match parse(&b) {
            Ok(f) => {
                parsed += 1;
                let _ = (f.tensor_bytes(), f.data_end(), f.check_data_in_file());
            }
            Err(e) => assert!(!e.to_string().is_empty(), "round {round}"),
        }
    }
    // Some mutations land in values and still parse; most do not.
    assert!(parsed > 0 && parsed < 4000, "{parsed}");
}

/// A length that fits in a large (sparse) file but would take the header past
/// `MAX_HEADER_LEN` is refused before anything is read or allocated.
#[test]
fn header_limit_in_a_large_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.gguf");
    let mut b = header(0, 1);
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&8u32.to_le_bytes()); // string
    b.extend_from_slice(&(300u64 << 20).to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let e = read_path(&path).unwrap_err();
    let GgufError::InFile { cause, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        cause.to_string(),
        format!(
            "offset 45: metadata key 0 \"k\" (value): 314572800 bytes would take the header \
             past {MAX_HEADER_LEN} bytes, more than any real GGUF header; the length or count \
             is likely corrupt"
        )
    );
}
