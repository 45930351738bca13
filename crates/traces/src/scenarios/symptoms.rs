//! Symptoms with no visible cause: a correct diagnosis reports them with `cause: null`.

use super::{finish, rows_in, Parts, ONSET};
use crate::labels::expect;
use crate::sim::{run, Tick};
use crate::spec::{LLAMA8_Q4, RTX4090};
use crate::Trace;

/// TPOT +25 % from 10 min at the same load, with clocks, power, temperature, CPU, memory and
/// KV unchanged (say, an engine upgrade with a slower kernel): nothing visible explains it.
pub fn tpot_regression_unexplained(seed: u64) -> Trace {
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 4.0);
        if t >= ONSET {
            k.tpot_factor = 1.25;
        }
        k
    });
    finish(Parts {
        name: "tpot_regression_unexplained",
        description: "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M at ~4 running requests. From \
            600 s TPOT is 25 % higher at the same load (8.85 -> 11.1 ms) and tok/s 20 % lower, \
            while GPU util, clock, power, temperature, thermal state, KV, CPU, memory, queue and \
            prompt sizes stay as they were (an engine upgrade with a slower decode kernel, say): \
            the symptom must be reported with no cause."
            .into(),
        seed,
        rows,
        expect: vec![expect("tpot_regression", ONSET, None, None)],
        allowed: &["throughput_drop", "efficiency_drift"],
        quiet: false,
    })
}

/// TTFT ×1.8 from 10 min at the same load and prompt size, everything else unchanged (say,
/// prefix caching switched off by a configuration change): reported with no cause.
pub fn ttft_regression_unexplained(seed: u64) -> Trace {
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 4.0);
        if t >= ONSET {
            k.ttft_factor = 1.8;
        }
        k
    });
    finish(Parts {
        name: "ttft_regression_unexplained",
        description: "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M at ~4 running requests, \
            600-token prompts. From 600 s TTFT is 80 % higher (~110 -> ~200 ms) at the same \
            load and prompt size, while TPOT, tok/s and every hardware, host and queue figure \
            stay as they were (prefix caching switched off by a config change, say): the \
            symptom must be reported with no cause."
            .into(),
        seed,
        rows,
        expect: vec![expect("ttft_regression", ONSET, None, None)],
        allowed: &[],
        quiet: false,
    })
}
