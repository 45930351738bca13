//! Hardware faults: thermal throttling, power capping, CPU contention; and the
//! bandwidth-bound (informational) trace.

use super::{during, finish, rows_in, Parts, ONSET};
use crate::labels::expect;
use crate::rng::Rng;
use crate::row::Thermal;
use crate::sim::{run, Tick};
use crate::spec::{LLAMA8_Q4, LLAMA8_Q8, RTX4090};
use crate::Trace;

/// The GPU's fan fails at 5 min; the temperature climbs to the 83 °C slowdown threshold at
/// 10 min, where the driver cuts the clock by 33 % (NVML `sw_thermal_slowdown`, Serious) and
/// holds the temperature at 83–90 °C to the end. Util stays ≈ 96 %, TPOT +40 %, tok/s −29 %,
/// power −40 %, penalized WES −30 %.
pub fn thermal_throttling(seed: u64) -> Trace {
    const FAN_FAIL: f64 = 300.0;
    let mut script = Rng::new(seed ^ 0x5C41_7000);
    // Steady temperature before the failure: ambient + R × P at 6 running (≈ 298 W).
    let t0 = 28.0 + 0.14 * 298.0;
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 6.0);
        if during(t, FAN_FAIL, ONSET) {
            let s = (t - FAN_FAIL) / (ONSET - FAN_FAIL);
            let shape = (1.0 - (-2.5 * s).exp()) / (1.0 - (-2.5f64).exp());
            let temp = t0 + (82.6 - t0) * shape + 0.2 * script.normal();
            k.temp_c = Some(temp.min(82.8));
        } else if t >= ONSET {
            k.clock_factor = (0.67 * (1.0 + 0.012 * script.normal())).clamp(0.645, 0.695);
            k.thermal = Some((Thermal::Serious, "sw_thermal_slowdown"));
            let phase = std::f64::consts::TAU * (t - ONSET) / 90.0;
            let temp = 86.0 + 1.8 * phase.sin() + 0.4 * script.normal();
            k.temp_c = Some(temp.clamp(83.3, 89.7));
        }
        k
    });
    let cause = Some("thermal_throttling");
    finish(Parts {
        name: "thermal_throttling",
        description: "RTX 4090 (2520 MHz, 350 W limit) serving Llama-3.1-8B-Instruct-Q4_K_M at \
            ~6 running requests. The GPU fan fails at 300 s and the temperature climbs from ~70 °C \
            to 83 °C; at 600 s the driver's thermal slowdown (sw_thermal_slowdown, Serious) cuts \
            the clock 33 % (2520 -> ~1690 MHz) at ~96 % util and holds 83-90 °C to the end. \
            TPOT +40 %, tok/s -29 %, TTFT +40 %, power -40 %, penalized WES -30 %."
            .into(),
        seed,
        rows,
        expect: vec![
            expect("thermal_throttling", ONSET, None, None),
            expect("tpot_regression", ONSET, None, cause),
            expect("throughput_drop", ONSET, None, cause),
            expect("efficiency_drift", ONSET, None, cause),
        ],
        allowed: &["ttft_regression"],
        quiet: false,
    })
}

/// At 10 min the board power limit is lowered from 350 W to 240 W (an operator's
/// `nvidia-smi -pl 240`, or a site power policy); at ~6 running requests the GPU wants
/// ≈ 295 W, so power is pinned at the limit and the clock falls ≈ 15 % (`sw_power_cap`,
/// Fair). TPOT +15 %, tok/s −13 %.
pub fn power_capping(seed: u64) -> Trace {
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 6.0);
        if t >= ONSET {
            k.power_limit_w = 240.0;
        }
        k
    });
    finish(Parts {
        name: "power_capping",
        description: "RTX 4090 serving Llama-3.1-8B-Instruct-Q4_K_M at ~6 running requests \
            (~295 W). At 600 s the power limit is lowered from 350 W to 240 W \
            (nvidia-smi -pl 240 / a site power policy): power is pinned at the limit, the \
            clock falls ~15 % (sw_power_cap, Fair) to the end. TPOT +15 %, tok/s -13 %, \
            TTFT +15 %, penalized WES -13 %: the symptoms are real but small, so they are \
            allowed, not required."
            .into(),
        seed,
        rows,
        expect: vec![expect("power_capping", ONSET, None, None)],
        allowed: &[
            "tpot_regression",
            "throughput_drop",
            "efficiency_drift",
            "ttft_regression",
        ],
        quiet: false,
    })
}

/// An `ffmpeg` transcode (pid 4242) takes 1.8 of the node's 2 vCPUs from 10 to 25 min:
/// CPU 0.98 busy, the engine's HTTP, tokenizer, scheduler and sampling threads wait for CPU:
/// TTFT ×3 (+200 %, the product brief's figure), TPOT +20 %, the GPU idles between launches.
pub fn cpu_contention(seed: u64) -> Trace {
    const END: f64 = 1500.0;
    let rows = run(RTX4090, seed, rows_in(40.0), |t| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 4.0);
        if during(t, ONSET, END) {
            k.top = Some(("ffmpeg", 4242, 1.8));
            k.ttft_factor = 3.0;
            k.tpot_factor = 1.2;
            k.gpu_share = 0.85;
        }
        k
    });
    let cause = Some("cpu_contention");
    finish(Parts {
        name: "cpu_contention",
        description: "RTX 4090 node with 2 vCPUs serving Llama-3.1-8B-Instruct-Q4_K_M at ~4 \
            running requests. From 600 s to 1500 s an ffmpeg transcode (pid 4242) takes 1.8 \
            cores: cpu_util ~0.98, TTFT x3 (+200 %, as in the product brief), TPOT +20 %, \
            tok/s -17 %, GPU util and power dip as the GPU waits for kernel launches."
            .into(),
        seed,
        rows,
        expect: vec![
            expect("cpu_contention", ONSET, Some(END), None),
            expect("ttft_regression", ONSET, Some(END), cause),
            expect("tpot_regression", ONSET, Some(END), cause),
        ],
        allowed: &["throughput_drop", "efficiency_drift"],
        quiet: false,
    })
}

/// One user drives Llama-3.1-8B Q8_0 (8.54 GB) on the RTX 4090 without pause: every decode
/// step reads the weights, ≈ 91 % of the card's 1008 GB/s for the whole trace (the product
/// brief's quantization study calls Q8_0 memory-bandwidth bound). Informational only.
pub fn bandwidth_bound(seed: u64) -> Trace {
    let rows = run(RTX4090, seed, rows_in(30.0), |_| {
        let mut k = Tick::new(&RTX4090, LLAMA8_Q8, 1.0);
        k.running = Some(1);
        k
    });
    finish(Parts {
        name: "bandwidth_bound",
        description: "RTX 4090 (1008 GB/s) serving Llama-3.1-8B-Instruct-Q8_0 (8.54 GB) to one \
            agent that keeps exactly one request running: each token reads the whole model, \
            9.4 ms per token, bandwidth_util ~0.91 (>= 0.85) in every row of the trace. \
            Informational; nothing else is wrong."
            .into(),
        seed,
        rows,
        expect: vec![expect("bandwidth_bound", 0.0, None, None)],
        allowed: &[],
        quiet: false,
    })
}
