//! Fuzz target: `parse` must never panic, and neither may the size helpers on what it returns
//! or the rendering of its errors. Run with `cargo +nightly fuzz run parse` from `crates/gguf`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match infermon_gguf::parse(data) {
        Ok(file) => {
            let _ = file.tensor_bytes();
            let _ = file.data_end();
            let _ = file.check_data_in_file();
            let _ = file.arch_u64_or_array("attention.head_count_kv");
            for t in &file.tensors {
                let _ = t.n_bytes();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
