//! Engine-side faults: KV saturation with a queue backlog, a model change, model churn, an
//! engine going down, an error burst.

use super::{during, finish, ramp, rows_in, Parts, ONSET};
use crate::labels::expect;
use crate::rng::Rng;
use crate::sim::{run, Tick};
use crate::spec::{Model, GEMMA9_Q5, LLAMA8_Q4, QWEN14_Q4, QWEN7_Q4, RTX4090};
use crate::Trace;

/// A batch of long-document requests (3 900-token prompts) arrives from 8 min: the KV cache
/// (16 384 tokens shared by the running requests) fills to 0.97–1.0 at 10 min, the scheduler
/// admits no more than 4, and requests queue (0 → ~13). TTFT goes from ~0.1 s to seconds of
/// queueing; TPOT +33 % from reading the longer KV each step. The batch ends at 25 min and the
/// queue drains by 25 min 36 s.
pub fn kv_saturation(seed: u64) -> Trace {
    const RISE: f64 = ONSET - 120.0;
    const END: f64 = 1500.0;
    const DRAINED: f64 = END + 36.0;
    let mut script = Rng::new(seed ^ 0x5C41_7003);
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 4.0);
        if during(t, RISE, ONSET) {
            k.prompt_tokens = ramp(t, RISE, ONSET, 600.0, 3900.0);
            k.running = Some(4);
            k.kv =
                Some((ramp(t, RISE, ONSET - 2.0, 0.18, 0.94) + 0.005 * script.normal()).min(0.955));
        } else if during(t, ONSET, END) {
            k.prompt_tokens = 3900.0;
            k.running = Some(if script.chance(0.1) { 3 } else { 4 });
            k.kv = Some(script.range(0.975, 1.0));
            let growing = ((t - ONSET) / 12.0).floor() + 1.0;
            k.waiting = if growing < 11.0 {
                growing
            } else {
                11.0 + script.int(0, 3) as f64
            };
        } else if during(t, END, DRAINED) {
            k.waiting = (12.0 - (t - END) / 3.0).ceil().max(0.0);
        }
        k
    });
    finish(Parts {
        name: "kv_saturation",
        description: "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M at ~4 running requests with \
            a 16384-token KV cache. From 480 s a batch of long-document requests (prompts \
            600 -> 3900 tokens) fills the cache; from 600 s to 1500 s kv_usage is 0.975-1.0, \
            no more than 4 requests are admitted and requests_waiting grows 1 -> ~13; TTFT rises \
            from ~0.1 s to ~10 s (queueing), TPOT +33 % (longer KV read per step). The batch \
            ends at 1500 s; the queue is empty from 1536 s."
            .into(),
        seed,
        rows,
        expect: vec![
            expect("kv_saturation", ONSET, Some(END), None),
            expect("queue_backlog", ONSET, Some(DRAINED), None),
        ],
        allowed: &[
            "ttft_regression",
            "tpot_regression",
            "throughput_drop",
            "efficiency_drift",
        ],
        quiet: false,
    })
}

/// The events llama-swap reports when it replaces `from` by `to`.
pub(crate) fn swap_events(from: &Model, to: &Model) -> Vec<String> {
    vec![
        format!("unloaded:{}", from.name),
        format!("starting:{}", to.name),
    ]
}

/// A single intentional swap at 10 min through llama-swap, Llama 3.1 8B → Qwen2.5 7B (similar
/// speed), a 6 s load; no regression.
pub fn model_change(seed: u64) -> Trace {
    const LOADED: f64 = ONSET + 6.0;
    let rows = run(RTX4090, seed, rows_in(30.0), |t| {
        let model = if t < ONSET { LLAMA8_Q4 } else { QWEN7_Q4 };
        let mut k = Tick::new(&RTX4090, model, 3.0);
        if t == ONSET {
            k.events = swap_events(&LLAMA8_Q4, &QWEN7_Q4);
        }
        if during(t, ONSET, LOADED) {
            k.loading = true;
        }
        if t == LOADED {
            k.events = vec![format!("loaded:{}", QWEN7_Q4.name)];
        }
        k
    });
    finish(Parts {
        name: "model_change",
        description: "RTX 4090 behind llama-swap at :8080, ~3 running requests. At 600 s the \
            operator switches the served model from Llama-3.1-8B-Instruct-Q4_K_M to \
            Qwen2.5-7B-Instruct-Q4_K_M on purpose (events unloaded/starting, then loaded at \
            606 s; nothing runs during the 6 s load). The new model is as fast as the old one: \
            only model_change (info) is expected."
            .into(),
        seed,
        rows,
        expect: vec![expect("model_change", ONSET, None, None)],
        allowed: &[],
        quiet: false,
    })
}

/// Three users ask llama-swap for three different models (only one fits next to the others'
/// KV), so from 10 to 20 min it unloads and loads a model every ~40 s (8–10 s each); requests
/// that arrive during a load wait for it. Then one model stays.
pub fn model_churn(seed: u64) -> Trace {
    const END: f64 = 1200.0;
    let models = [LLAMA8_Q4, QWEN14_Q4, GEMMA9_Q5];
    let mut script = Rng::new(seed ^ 0x5C41_7009);
    // (swap time, load seconds, index of the model loaded)
    let mut swaps: Vec<(f64, f64, usize)> = Vec::new();
    let mut at = ONSET;
    let mut idx = 0;
    while at < END - 20.0 {
        idx = (idx + 1) % models.len();
        let load_s = 2.0 * script.int(4, 5) as f64;
        swaps.push((at, load_s, idx));
        at += 2.0 * script.int(18, 22) as f64;
    }
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        let current = swaps.iter().rev().find(|s| s.0 <= t);
        let (model, prev) = match current {
            Some(&(_, _, i)) => (models[i], models[(i + models.len() - 1) % models.len()]),
            None => (models[0], models[0]),
        };
        let load = if during(t, ONSET, END) { 2.0 } else { 3.0 };
        let mut k = Tick::new(&RTX4090, model, load);
        if let Some(&(s, load_s, _)) = current {
            if t == s {
                k.events = swap_events(&prev, &model);
            }
            if during(t, s, s + load_s) {
                k.loading = true;
            }
            if t == s + load_s {
                k.events = vec![format!("loaded:{}", model.name)];
            }
            if during(t, s + load_s, s + load_s + 4.0) {
                // Requests that queued behind the load.
                k.ttft_extra_ms = 0.5 * load_s * 1000.0;
            }
        }
        k
    });
    finish(Parts {
        name: "model_churn",
        description: format!(
            "RTX 4090 behind llama-swap at :8080. Until 600 s Llama-3.1-8B-Instruct-Q4_K_M serves \
             ~3 running requests. From 600 s to 1200 s three users alternate between \
             Llama-3.1-8B-Instruct-Q4_K_M, Qwen2.5-14B-Instruct-Q4_K_M and gemma-2-9b-it-Q5_K_M \
             and llama-swap thrashes: {} swaps, one every 36-44 s, each an unloaded/starting \
             event pair, an 8-10 s load with nothing running and a loaded event; requests that \
             waited for a load see TTFT +4-5 s. After 1200 s the last model stays.",
            swaps.len()
        ),
        seed,
        rows,
        expect: vec![expect("model_churn", ONSET, Some(END), None)],
        allowed: &[
            "model_change",
            "ttft_regression",
            "throughput_drop",
            "efficiency_drift",
        ],
        quiet: false,
    })
}

/// The engine's process dies at 10 min; systemd restarts it and it answers again at 13 min.
/// While it is down every engine figure is empty (not zero); the GPU idles.
pub fn engine_down(seed: u64) -> Trace {
    const END: f64 = ONSET + 180.0;
    let rows = run(RTX4090, seed, rows_in(30.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 3.0);
        if during(t, ONSET, END) {
            k.engine_up = false;
        }
        k
    });
    finish(Parts {
        name: "engine_down",
        description: "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M from llama-server at :8080, \
            ~3 running requests. At 600 s the server process dies; it answers again at 780 s. \
            While down, engine_up is 0 and every engine figure (model, requests, tok/s, \
            TTFT, TPOT, KV, errors) is empty; the GPU idles (gpu_idle, 210 MHz, ~28 W)."
            .into(),
        seed,
        rows,
        expect: vec![expect("engine_down", ONSET, Some(END), None)],
        allowed: &[],
        quiet: false,
    })
}

/// A short-answer workload (400-token prompts, 32-token answers: ~28 requests end per row).
/// From 10 to 15 min a client release sends requests the engine rejects at once (HTTP 400,
/// prompt larger than the context): one failure for every four successes, error ratio 0.2.
pub fn error_rate(seed: u64) -> Trace {
    const END: f64 = ONSET + 300.0;
    let rows = run(RTX4090, seed, rows_in(30.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 4.0);
        k.prompt_tokens = 400.0;
        k.gen_tokens = 32.0;
        if during(t, ONSET, END) {
            k.error_fraction = 0.2;
        }
        k
    });
    finish(Parts {
        name: "error_rate",
        description: "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M to a classification-style \
            workload (400-token prompts, 32-token answers, ~4 running, ~28 requests ending per \
            2 s row). From 600 s to 900 s a client release sends requests that fail at once \
            (HTTP 400: prompt exceeds the context): error_ratio ~0.2 with requests_ended >= 10 \
            in every row. Throughput, TTFT and TPOT of the other requests do not change."
            .into(),
        seed,
        rows,
        expect: vec![expect("error_rate", ONSET, Some(END), None)],
        allowed: &[],
        quiet: false,
    })
}
