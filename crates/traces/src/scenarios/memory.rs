//! Memory faults: a swap storm, memory pressure without swap, and an OOM risk while a model
//! loads.

use super::{during, finish, ramp, rows_in, Parts, ONSET};
use crate::labels::expect;
use crate::rng::Rng;
use crate::sim::{run, Tick};
use crate::spec::{
    Node, GIB, LLAMA70_PARTIAL, LLAMA8_Q4, QWEN122_A10B, QWEN30_A3B, RTX4090, STRIX_HALO,
    WORKSTATION,
};
use crate::Trace;

/// Memory other processes must hold for MemAvailable to be `frac` of the total while the
/// engine holds `resident`.
fn other_for(node: &Node, resident: f64, frac: f64) -> f64 {
    node.mem_total * (1.0 - frac) - node.os_bytes - resident
}

/// Llama 3.3 70B with half its layers in host RAM (`--no-mmap`) on a 64 GiB workstation.
/// From 9 min a `python3` job (pid 5120) allocates ≈ 35 GiB; at 10 min MemAvailable is down
/// to ≈ 2.5 % and the engine's CPU-side weights are swapped out and back in on every token:
/// thousands of pages/s swapped in, PSI memory some ≈ 0.45, TPOT ×6, tok/s ÷6.
pub fn swap_storm(seed: u64) -> Trace {
    const HOG_START: f64 = 540.0;
    let node = WORKSTATION;
    let m = LLAMA70_PARTIAL;
    let mut script = Rng::new(seed ^ 0x5C41_7005);
    let normal_frac = (node.mem_total - node.os_bytes - m.resident - 2.0 * GIB) / node.mem_total;
    let rows = run(node, seed, rows_in(30.0), |t| {
        let mut k = Tick::new(&node, m, 1.0);
        k.running = Some(1);
        if during(t, HOG_START, ONSET) {
            let frac = ramp(t, HOG_START, ONSET - 2.0, normal_frac, 0.04);
            k.other_mem = other_for(&node, m.resident, frac);
            k.top = Some(("python3", 5120, 0.35));
        } else if t >= ONSET {
            // Part of the engine's anonymous memory is out on swap at any moment.
            let resident = m.resident - 4.0 * GIB;
            k.resident = Some(resident);
            let frac = (0.025 * (1.0 + 0.15 * script.normal())).clamp(0.012, 0.04);
            k.other_mem = other_for(&node, resident, frac);
            k.top = Some(("python3", 5120, 0.35));
            let phase = std::f64::consts::TAU * (t - ONSET) / 120.0;
            k.swap_in = 3200.0 * (1.0 + 0.35 * phase.sin());
            k.psi = 0.45;
            k.tpot_factor = (6.0 * script.lognormal(0.2)).max(5.0);
            k.ttft_factor = 5.0;
            k.gpu_share = 1.0 / 6.0;
            k.engine_cpu = 0.5;
        }
        k
    });
    let cause = Some("swap_storm");
    finish(Parts {
        name: "swap_storm",
        description:
            "Workstation (16 CPUs, 64 GiB, RTX 4090) running Llama-3.3-70B-Instruct-Q4_K_M \
            with 40 of 80 layers on the GPU and the rest in host RAM (--no-mmap), one request \
            at a time, ~2.6 tok/s. From 540 s a python3 job (pid 5120) allocates ~35 GiB; from \
            600 s MemAvailable is ~2.5 %, the engine's CPU-side weights page in and out on every \
            token: swap-in ~2000-4500 pages/s, PSI some ~0.45, TPOT x6+ (0.38 s -> ~2.3 s), \
            tok/s /6, TTFT x5, GPU util and power fall; to the end."
                .into(),
        seed,
        rows,
        expect: vec![
            expect("swap_storm", ONSET, None, None),
            expect("tpot_regression", ONSET, None, cause),
            expect("throughput_drop", ONSET, None, cause),
        ],
        allowed: &["memory_pressure", "efficiency_drift", "ttft_regression"],
        quiet: false,
    })
}

/// No swap configured. From 9 min a `python3` job (pid 7311) fills RAM; from 10 to 25 min
/// MemAvailable is ≈ 2.3 % of 32 GiB and PSI memory some ≈ 0.3 while the kernel reclaims page
/// cache. The engine's model is in VRAM: inference figures do not change.
pub fn memory_pressure(seed: u64) -> Trace {
    const HOG_START: f64 = 540.0;
    const END: f64 = 1500.0;
    let node = RTX4090;
    let m = LLAMA8_Q4;
    let mut script = Rng::new(seed ^ 0x5C41_7006);
    let normal_frac = (node.mem_total - node.os_bytes - m.resident - 2.0 * GIB) / node.mem_total;
    let rows = run(node, seed, rows_in(40.0), |t| {
        let mut k = Tick::new(&node, m, 4.0);
        if during(t, HOG_START, ONSET) {
            k.other_mem = other_for(
                &node,
                m.resident,
                ramp(t, HOG_START, ONSET - 2.0, normal_frac, 0.032),
            );
            k.psi = ramp(t, ONSET - 30.0, ONSET - 2.0, 0.0, 0.12);
            k.top = Some(("python3", 7311, 0.12));
        } else if during(t, ONSET, END) {
            let frac = (0.023 * (1.0 + 0.1 * script.normal())).clamp(0.015, 0.029);
            k.other_mem = other_for(&node, m.resident, frac);
            k.psi = 0.3;
            k.top = Some(("python3", 7311, 0.12));
        } else if during(t, END, END + 30.0) {
            // PSI avg10 decays after the job exits.
            k.psi = ramp(t, END, END + 30.0, 0.12, 0.0);
        }
        k
    });
    finish(Parts {
        name: "memory_pressure",
        description: "RTX 4090 node (32 GiB RAM, no swap) serving Llama-3.1-8B-Instruct-Q4_K_M \
            at ~4 running requests. From 540 s a python3 job (pid 7311) fills RAM; from 600 s \
            to 1500 s MemAvailable is ~2.3 % (< 3 %) and PSI memory some ~0.3 (>= 0.2) while \
            the kernel reclaims page cache; no swap-in. The model is in VRAM: TTFT, TPOT and \
            tok/s do not change."
            .into(),
        seed,
        rows,
        expect: vec![expect("memory_pressure", ONSET, Some(END), None)],
        allowed: &[],
        quiet: false,
    })
}

/// The product brief's Strix Halo box behind llama-swap: at 10 min the router swaps
/// Qwen3-30B-A3B for qwen3.5-122b-a10b + Qwen3-4B draft, estimated at 73.6 GiB, while an
/// embedding server and another model hold the rest: resident + available is 72.0 GiB, 1.6
/// GiB short (the brief: 97.6 GiB needed vs 96.0). The load completes (the KV cache's pages
/// are not touched yet), so the risk stays open to the end.
pub fn oom_risk(seed: u64) -> Trace {
    const LOAD_END: f64 = ONSET + 60.0;
    let node = STRIX_HALO;
    let other = 48.5 * GIB;
    let start_resident = 0.4 * GIB;
    let rows = run(node, seed, rows_in(30.0), |t| {
        let mut k = if t < ONSET {
            Tick::new(&node, QWEN30_A3B, 2.0)
        } else {
            Tick::new(&node, QWEN122_A10B, 1.5)
        };
        k.other_mem = other;
        k.report_memory = true;
        if t == ONSET {
            k.events = vec![
                format!("unloaded:{}", QWEN30_A3B.name),
                format!("starting:{}", QWEN122_A10B.name),
            ];
        }
        if during(t, ONSET, LOAD_END) {
            k.loading = true;
            k.resident = Some(ramp(
                t,
                ONSET,
                LOAD_END,
                start_resident,
                QWEN122_A10B.resident,
            ));
        } else if t >= LOAD_END {
            if t == LOAD_END {
                k.events = vec![format!("loaded:{}", QWEN122_A10B.name)];
            }
            // KV pages get touched as the slots fill.
            k.resident = Some(ramp(
                t,
                LOAD_END,
                1800.0,
                QWEN122_A10B.resident,
                QWEN122_A10B.resident + 0.7 * GIB,
            ));
        }
        k
    });
    finish(Parts {
        name: "oom_risk",
        description: "Strix Halo mini PC (124 GiB unified memory) behind llama-swap at :8080, \
            with an embedding server and another model holding 48.5 GiB. Until 600 s it serves \
            Qwen3-30B-A3B-Q4_K_M (estimate 19.4 GiB). At 600 s llama-swap swaps in \
            qwen3.5-122b-a10b-Q4_K_M + Qwen3-4B draft, estimated 73.6 GiB (the product brief's \
            figure) while resident + available is 72.0 GiB: 1.6 GiB short, as in the brief \
            (97.6 needed vs 96.0). The load takes 60 s (resident 0.4 -> 66.9 GiB, available \
            70.5 -> 5.1 GiB); it completes because the 16 slots' KV pages are not touched yet, \
            so the risk stays open to the end (available ~4 %, no memory pressure yet)."
            .into(),
        seed,
        rows,
        expect: vec![
            expect("oom_risk", ONSET, None, None),
            expect("model_change", ONSET, None, None),
        ],
        allowed: &["memory_pressure"],
        quiet: false,
    })
}
