//! Quiet traces: load changes, days, bursts and intentional model switches, where nothing is
//! wrong and nothing may be reported (an intentional model change excepted, as info).

use super::engine::swap_events;
use super::{during, finish, ramp, rows_in, Parts};
use crate::rng::Rng;
use crate::sim::{run, Tick, STEP_S};
use crate::spec::{Model, GEMMA9_Q5, LLAMA8_Q4, QWEN14_Q4, RTX4090};
use crate::Trace;

/// Running requests go from 2 to 4 between 15 and 20 min: tok/s, util and power rise
/// together, TPOT only as batching says (8.1 → 8.85 ms), TTFT a little (prefill shares the
/// GPU).
pub fn quiet_workload_doubling(seed: u64) -> Trace {
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        Tick::new(&RTX4090, LLAMA8_Q4, ramp(t, 900.0, 1200.0, 2.0, 4.0))
    });
    finish(Parts {
        name: "quiet_workload_doubling",
        description: "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M. Mean running requests go \
            from 2 to 4 between 900 s and 1200 s and stay there: tok/s (~235 -> ~450), GPU util, \
            power and temperature rise together; TPOT rises only as batched decode does \
            (7.95 -> 8.85 ms, tpot = 7.5 x (1 + 0.06 (r - 1))), TTFT a little. Nothing is wrong."
            .into(),
        seed,
        rows,
        expect: Vec::new(),
        allowed: &[],
        quiet: true,
    })
}

/// The load of a day, 0:00 → 24:00: a half-cosine rise from the 04:00 low (≈ 0.2 running,
/// mostly idle) to the 13:00 peak (≈ 6), a slower fall through the evening, a slow ±10 %
/// wander on top; the room warms from 20 °C at 03:00 to 28 °C at 15:00.
pub fn quiet_diurnal_24h(seed: u64) -> Trace {
    let mut script = Rng::new(seed ^ 0x5C41_7102);
    let rho = (-STEP_S / 600.0).exp();
    let mut wander = 0.0f64;
    let rows = run(RTX4090, seed, rows_in(24.0 * 60.0), |t| {
        let h = t / 3600.0;
        let d = (h - 4.0).rem_euclid(24.0);
        let shape = if d < 9.0 {
            (1.0 - (std::f64::consts::PI * d / 9.0).cos()) / 2.0
        } else {
            (1.0 + (std::f64::consts::PI * (d - 9.0) / 15.0).cos()) / 2.0
        };
        wander = rho * wander + (1.0 - rho * rho).sqrt() * 0.1 * script.normal();
        let load = (0.2 + 5.8 * shape) * wander.exp();
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, load);
        k.ambient_c = 24.0 + 4.0 * (std::f64::consts::TAU * (h - 9.0) / 24.0).sin();
        k
    });
    finish(Parts {
        name: "quiet_diurnal_24h",
        description: "24 hours (43200 rows) of an RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M \
            to office traffic: mean running requests rise from ~0.2 at 04:00 (mostly idle rows: \
            tok/s 0, TTFT/TPOT empty, gpu_idle) to ~6 at 13:00 and fall slowly through the \
            evening, with a slow +-10 % wander and per-row noise; the room warms from 20 °C at \
            03:00 to 28 °C at 15:00, the GPU from ~45 °C idle to ~70 °C at the peak. Every figure \
            follows the load. Nothing is wrong."
            .into(),
        seed,
        rows,
        expect: Vec::new(),
        allowed: &[],
        quiet: true,
    })
}

/// A user switches models on purpose three times in an hour through llama-swap, one of them
/// to a slower model (Qwen2.5 14B, TPOT 12.8 ms against 7.5): a correct diagnosis baselines
/// per model and reports only the changes, as info.
pub fn quiet_model_switching(seed: u64) -> Trace {
    let plan: [(f64, Model); 4] = [
        (0.0, LLAMA8_Q4),
        (900.0, QWEN14_Q4),
        (2100.0, LLAMA8_Q4),
        (3000.0, GEMMA9_Q5),
    ];
    let rows = run(RTX4090, seed, rows_in(60.0), |t| {
        let i = plan.iter().rposition(|p| p.0 <= t).unwrap_or(0);
        let (at, model) = plan[i];
        let mut k = Tick::new(&RTX4090, model, 3.0);
        if i > 0 {
            if t == at {
                k.events = swap_events(&plan[i - 1].1, &model);
            }
            if during(t, at, at + 8.0) {
                k.loading = true;
            }
            if t == at + 8.0 {
                k.events = vec![format!("loaded:{}", model.name)];
            }
        }
        k
    });
    finish(Parts {
        name: "quiet_model_switching",
        description: "RTX 4090 behind llama-swap at :8080, ~3 running requests. The user switches \
            on purpose: Llama-3.1-8B-Instruct-Q4_K_M until 900 s, Qwen2.5-14B-Instruct-Q4_K_M \
            (slower: TPOT ~13.6 vs ~8.3 ms) until 2100 s, Llama-3.1-8B again until 3000 s, then \
            gemma-2-9b-it-Q5_K_M; each switch is an unloaded/starting pair, an 8 s load and a \
            loaded event. Three changes in an hour are not churn, and a slower model is not a \
            regression: only model_change may be reported (info)."
            .into(),
        seed,
        rows,
        expect: Vec::new(),
        allowed: &["model_change"],
        quiet: true,
    })
}

/// On/off traffic: bursts of 10–60 s with 1–6 requests running, separated by 10–120 s of
/// idle where tok/s is 0 and TTFT/TPOT are empty and the GPU drops to its idle clock.
pub fn quiet_bursty(seed: u64) -> Trace {
    let total = rows_in(40.0);
    let mut script = Rng::new(seed ^ 0x5C41_7104);
    // (start, end, running) of each burst.
    let mut bursts: Vec<(f64, f64, u32)> = Vec::new();
    let mut at = 2.0 * script.int(5, 30) as f64;
    let horizon = total as f64 * STEP_S;
    while at < horizon {
        let len = 2.0 * script.int(5, 30) as f64;
        bursts.push((at, at + len, script.int(1, 6) as u32));
        at += len + 2.0 * script.int(5, 60) as f64;
    }
    let rows = run(RTX4090, seed, total, |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 0.0);
        if let Some(b) = bursts.iter().find(|b| during(t, b.0, b.1)) {
            k.running = Some(b.2);
            k.load = f64::from(b.2);
        }
        k
    });
    finish(Parts {
        name: "quiet_bursty",
        description: format!(
            "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M to on/off traffic: {} bursts of \
             10-60 s with 1-6 requests running, separated by 10-120 s idle gaps where tok/s is \
             0, TTFT/TPOT are empty, the GPU reports gpu_idle at 210 MHz and ~28 W. Within a \
             burst every figure follows the batching model. Nothing is wrong.",
            bursts.len()
        ),
        seed,
        rows,
        expect: Vec::new(),
        allowed: &[],
        quiet: true,
    })
}
