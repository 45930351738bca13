//! Fuzz target: `parse` must never panic on any UTF-8 input. Run with
//! `cargo +nightly fuzz run parse` from `crates/promtext`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = infermon_promtext::parse(text);
    }
});
