//! Fuzz target: the proxy's upstream answer reader (status line, headers, interim heads,
//! length / chunked / until-close framing, trailers) over input delivered in reads of
//! fuzzer-chosen sizes. `infermon_proxy::fuzzing::check` documents the input layout and
//! panics when an invariant fails. Run with `cargo +nightly fuzz run upstream_answer` from
//! `crates/proxy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    infermon_proxy::fuzzing::check(data);
});
