//! The steady-state physics of one GPU node serving one model: what a scenario sets for a
//! tick ([`Tick`]) becomes one row ([`Row`]) with measurement noise. The model, and why each
//! relation is chosen, is described in the crate's README; the constants are here.

use crate::rng::Rng;
use crate::row::{Row, Thermal};
use crate::spec::{Model, Node, GEN_TOKENS, PROMPT_TOKENS, REF_CONTEXT};

/// Seconds between rows.
pub(crate) const STEP_S: f64 = 2.0;
/// The engine every trace serves from.
pub(crate) const ENGINE: &str = "http://127.0.0.1:8080";
/// TPOT rise per extra running request (batched decode): `tpot = base × (1 + 0.06 (r − 1))`.
pub(crate) const BATCH_SLOPE: f64 = 0.06;
/// Prefill slowdown per extra running request (prefill shares the GPU with decode).
pub(crate) const PREFILL_SLOPE: f64 = 0.12;
/// Decode time scales with `clock^-0.85`: most of a decode step follows the core clock
/// (kernels, launches, sampling; the memory clock drops too under thermal slowdown).
pub(crate) const CLOCK_EXP: f64 = 0.85;
/// Utilisation `u = x / (x + 0.25)` of the decode work `x = running × slowdown`.
const UTIL_K: f64 = 0.25;
/// Share of failed requests when nothing is wrong.
const BASE_ERROR: f64 = 0.001;

/// What a scenario sets for one tick; [`Tick::new`] is a healthy, steady node.
#[derive(Debug, Clone)]
pub(crate) struct Tick {
    /// The model served (or being loaded).
    pub model: Model,
    /// Mean requests running; `running` fixes the count instead.
    pub load: f64,
    pub running: Option<u32>,
    /// Requests waiting (scripted: the queue is a scenario's story, not noise).
    pub waiting: f64,
    pub prompt_tokens: f64,
    pub gen_tokens: f64,
    /// The engine answers.
    pub engine_up: bool,
    /// The engine answers but is loading its model: nothing runs.
    pub loading: bool,
    /// Clock cut forced by the GPU (thermal slowdown), 1 = none.
    pub clock_factor: f64,
    pub power_limit_w: f64,
    /// The GPU's own throttle state and reason, when a scenario sets one.
    pub thermal: Option<(Thermal, &'static str)>,
    /// Scripted GPU temperature.
    pub temp_c: Option<f64>,
    pub ambient_c: f64,
    pub thermal_r: f64,
    /// Slowdowns the hardware figures do not show (CPU starvation, swap, software).
    pub tpot_factor: f64,
    pub ttft_factor: f64,
    /// Time added to TTFT (requests that waited for a model to load), ms.
    pub ttft_extra_ms: f64,
    /// Multiplier of the GPU's busy share (the GPU waiting for something else).
    pub gpu_share: f64,
    /// Scripted KV use.
    pub kv: Option<f64>,
    pub swap_in: f64,
    pub psi: f64,
    /// Memory other processes hold, bytes.
    pub other_mem: f64,
    /// The engine's resident memory when a scenario scripts it, bytes.
    pub resident: Option<f64>,
    /// Write `memory_estimate_bytes` / `memory_resident_bytes` (meaningful only where the
    /// model lives in host memory: unified memory).
    pub report_memory: bool,
    /// The busiest non-engine process (name, pid, cores) when it is not the node's usual one.
    pub top: Option<(&'static str, u32, f64)>,
    /// Multiplier of the engine's own CPU use.
    pub engine_cpu: f64,
    /// Share of requests that fail at once (on top of the normal ones).
    pub error_fraction: f64,
    pub events: Vec<String>,
}

impl Tick {
    /// A healthy tick: `model` serving the default chat workload at mean `load` requests.
    pub(crate) fn new(node: &Node, model: Model, load: f64) -> Tick {
        Tick {
            model,
            load,
            running: None,
            waiting: 0.0,
            prompt_tokens: PROMPT_TOKENS,
            gen_tokens: GEN_TOKENS,
            engine_up: true,
            loading: false,
            clock_factor: 1.0,
            power_limit_w: node.power_limit_w,
            thermal: None,
            temp_c: None,
            ambient_c: node.ambient_c,
            thermal_r: node.thermal_r,
            tpot_factor: 1.0,
            ttft_factor: 1.0,
            ttft_extra_ms: 0.0,
            gpu_share: 1.0,
            kv: None,
            swap_in: 0.0,
            psi: 0.0,
            other_mem: 2.0 * crate::spec::GIB,
            resident: None,
            report_memory: false,
            top: None,
            engine_cpu: 1.0,
            error_fraction: 0.0,
            events: Vec::new(),
        }
    }
}

/// GPU utilisation, percent, of `r` running requests slowed down by `slow`.
fn util(r: f64, slow: f64, share: f64) -> f64 {
    let x = r * slow;
    100.0 * share * x / (x + UTIL_K)
}

/// Board power the GPU would draw at clock factor `c` with `r` requests running.
fn demand(node: &Node, r: f64, c: f64, share: f64) -> f64 {
    let slow = c.powf(-CLOCK_EXP);
    let intensity = 0.75 + 0.25 * (r / 8.0).min(1.0);
    node.idle_power_w + node.dyn_power_w * util(r, slow, share) / 100.0 * c.powf(1.5) * intensity
}

/// The simulator: the node, its noise, and the state carried between rows (temperature,
/// how long the GPU has been idle).
pub(crate) struct Sim {
    node: Node,
    rng: Rng,
    temp: Option<f64>,
    idle_rows: u32,
    last_clock: f64,
}

impl Sim {
    pub(crate) fn new(node: Node, seed: u64) -> Sim {
        Sim {
            node,
            rng: Rng::new(seed),
            temp: None,
            idle_rows: 0,
            last_clock: node.clock_max_mhz,
        }
    }

    fn sample_running(&mut self, load: f64) -> u32 {
        if load <= 0.0 {
            0
        } else if load < 1.5 {
            self.rng.poisson(load) as u32
        } else {
            (load + 0.35 * load.sqrt() * self.rng.normal())
                .round()
                .max(0.0) as u32
        }
    }

    /// The row at time `t` under `k`.
    pub(crate) fn row(&mut self, t: f64, k: &Tick) -> Row {
        let n = self.node;
        let m = k.model;
        let serving = k.engine_up && !k.loading;
        let running = match (serving, k.running) {
            (false, _) => 0,
            (true, Some(r)) => r,
            (true, None) => self.sample_running(k.load),
        };
        let r = f64::from(running);
        let busy = running > 0;
        let share = m.gpu_share * k.gpu_share;

        // Clock: the GPU's own cut, then the power limit (solved so demand meets the limit).
        let mut c = k.clock_factor;
        let capped = busy && demand(&n, r, c, share) > k.power_limit_w;
        if capped {
            let (mut lo, mut hi) = (0.2, c);
            for _ in 0..50 {
                let mid = 0.5 * (lo + hi);
                if demand(&n, r, mid, share) > k.power_limit_w {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            c = lo;
        }
        let slow = c.powf(-CLOCK_EXP);
        let slow_decode = 1.0 + m.gpu_share * (slow - 1.0);
        let slow_prefill = 1.0 + m.gpu_share * (1.0 / c - 1.0);

        // Decode: batched, longer contexts read more KV per step.
        let ctx = k.prompt_tokens + k.gen_tokens / 2.0;
        let kvb = m.kv_bytes_per_token;
        let rr = r.max(1.0);
        let ctx_factor = (m.step_bytes + rr * ctx * kvb) / (m.step_bytes + rr * REF_CONTEXT * kvb);
        let tpot = m.tpot_base_ms
            * (1.0 + BATCH_SLOPE * (rr - 1.0))
            * ctx_factor
            * slow_decode
            * k.tpot_factor;
        let rate = if busy {
            r * 1000.0 / tpot / k.gen_tokens
        } else {
            0.0
        };

        let rng = &mut self.rng;
        let ok = rng.poisson(rate * STEP_S);
        let extra_failed = if k.error_fraction > 0.0 {
            rng.poisson(rate * STEP_S * k.error_fraction / (1.0 - k.error_fraction))
        } else {
            0
        };
        let failed = rng.binomial(ok, BASE_ERROR) + extra_failed;
        let ended = ok + extra_failed;

        let gen_tok_s = if busy {
            r * 1000.0 / tpot * rng.lognormal(0.03)
        } else {
            0.0
        };
        let tpot_p50 = busy.then(|| tpot * rng.lognormal(0.03));
        let queue_ms = if k.waiting > 0.0 && rate > 0.0 {
            k.waiting / rate * 1000.0
        } else {
            0.0
        };
        let prefill_ms = k.prompt_tokens / m.prefill_tok_s
            * 1000.0
            * (1.0 + PREFILL_SLOPE * (rr - 1.0))
            * slow_prefill;
        let ttft_p50 = busy.then(|| {
            ((m.ttft_overhead_ms + prefill_ms) * k.ttft_factor + queue_ms + k.ttft_extra_ms)
                * rng.lognormal(0.06)
        });
        let prompt_tok_s = if busy {
            rate * k.prompt_tokens * rng.lognormal(0.05)
        } else {
            0.0
        };
        let prompt_mean = (ended > 0).then(|| k.prompt_tokens * rng.lognormal(0.04));

        // GPU.
        let gpu_util = if busy {
            (util(r, slow, share) + 0.8 * rng.normal()).clamp(0.0, 100.0)
        } else if k.loading {
            rng.range(4.0, 12.0)
        } else {
            rng.range(0.0, 1.5)
        };
        let power = if busy && capped {
            k.power_limit_w * (1.0 - 0.004 * rng.normal().abs())
        } else if busy {
            (demand(&n, r, c, share) * rng.lognormal(0.015)).min(k.power_limit_w * 0.995)
        } else if k.loading {
            n.idle_power_w + 20.0 * rng.lognormal(0.1)
        } else {
            n.idle_power_w * rng.lognormal(0.03)
        };
        self.idle_rows = if busy || k.loading {
            0
        } else {
            self.idle_rows + 1
        };
        let clock = if busy || k.loading {
            let raw = n.clock_max_mhz * c * (1.0 - rng.range(0.0, 0.012));
            let q = ((raw / 15.0).round() * 15.0).min(n.clock_max_mhz);
            self.last_clock = q;
            q
        } else if self.idle_rows >= 2 {
            n.clock_idle_mhz
        } else {
            self.last_clock
        };
        let ss = k.ambient_c + k.thermal_r * power;
        let alpha = 1.0 - (-STEP_S / n.thermal_tau_s).exp();
        let temp = match (k.temp_c, self.temp) {
            (Some(tc), _) => tc,
            (None, Some(prev)) => prev + (ss - prev) * alpha,
            (None, None) => ss,
        };
        self.temp = Some(temp);
        let temp_out = if k.temp_c.is_some() {
            temp
        } else {
            temp + 0.3 * rng.normal()
        };
        let (thermal, reasons) = match k.thermal {
            Some((s, reason)) => (s, vec![reason.to_string()]),
            None if capped => (Thermal::Fair, vec!["sw_power_cap".to_string()]),
            None if !busy && !k.loading => (Thermal::Normal, vec!["gpu_idle".to_string()]),
            None => (Thermal::Normal, Vec::new()),
        };
        let bw = if busy {
            ((m.step_bytes + r * ctx * kvb) / (tpot / 1000.0) / n.peak_bw * rng.lognormal(0.01))
                .min(1.0)
        } else {
            0.0
        };

        // Host.
        let engine_cores = if serving {
            (m.engine_cores.0 + m.engine_cores.1 * r) * k.engine_cpu
        } else if k.loading {
            0.9
        } else {
            0.0
        };
        let top = k.top.unwrap_or(n.background);
        let top_cores = top.2 * rng.lognormal(0.05);
        let want = engine_cores + top_cores + 0.05;
        let cpus = f64::from(n.cpu_count);
        let cpu_util = if want >= cpus {
            rng.range(0.975, 0.99)
        } else {
            (want / cpus * rng.lognormal(0.04)).min(0.99)
        };
        let resident = k
            .resident
            .unwrap_or(if k.engine_up { m.resident } else { 0.0 });
        let avail = ((n.mem_total - n.os_bytes - resident - k.other_mem) * rng.lognormal(0.002))
            .clamp(0.004 * n.mem_total, n.mem_total);
        let swap = if k.swap_in > 0.0 {
            k.swap_in * rng.lognormal(0.25)
        } else {
            0.0
        };
        let psi = if k.psi > 0.0 {
            (k.psi * rng.lognormal(0.12)).min(1.0)
        } else {
            rng.range(0.0, 0.004)
        };
        let kv = if busy {
            Some(
                k.kv.unwrap_or_else(|| r * ctx / m.kv_capacity_tokens * rng.lognormal(0.03))
                    .min(1.0),
            )
        } else {
            Some(k.kv.unwrap_or(0.0))
        };

        let mut row = Row {
            t_s: t,
            gpu_util: Some(gpu_util),
            gpu_clock_mhz: Some(clock),
            power_w: Some(power),
            gpu_temp_c: Some(temp_out),
            thermal_state: Some(thermal),
            swap_in_pages_per_s: Some(swap),
            mem_available_bytes: Some(avail),
            engine: Some(ENGINE.to_string()),
            engine_up: Some(k.engine_up),
            cpu_util: Some(cpu_util),
            cpu_count: Some(n.cpu_count),
            top_process: Some(format!("{}:{}:{:.2}", top.0, top.1, top_cores)),
            gpu_clock_max_mhz: Some(n.clock_max_mhz),
            power_limit_w: Some(k.power_limit_w),
            thermal_reasons: reasons,
            mem_total_bytes: Some(n.mem_total),
            psi_memory_some: Some(psi),
            bandwidth_util: Some(bw),
            events: k.events.clone(),
            ..Row::default()
        };
        if k.engine_up {
            row.model = Some(m.name.to_string());
            row.requests_running = Some(r);
            row.requests_waiting = Some(k.waiting.round());
            row.prompt_tokens_per_s = Some(prompt_tok_s);
            row.generation_tokens_per_s = Some(gen_tok_s);
            row.ttft_p50_ms = ttft_p50;
            row.tpot_p50_ms = tpot_p50;
            row.kv_usage = kv;
            row.requests_ended = Some(ended as f64);
            row.error_ratio = (ended > 0).then(|| failed as f64 / ended as f64);
            row.prompt_tokens_mean = prompt_mean;
            if k.report_memory {
                row.memory_estimate_bytes = Some(m.estimate);
                row.memory_resident_bytes = Some(resident);
            }
        } else {
            row.bandwidth_util = None;
        }
        row
    }
}

/// Runs `rows` ticks of `tick(t)` on `node`.
pub(crate) fn run(
    node: Node,
    seed: u64,
    rows: usize,
    mut tick: impl FnMut(f64) -> Tick,
) -> Vec<Row> {
    let mut sim = Sim::new(node, seed);
    (0..rows)
        .map(|i| {
            let t = i as f64 * STEP_S;
            let k = tick(t);
            sim.row(t, &k)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{LLAMA8_Q4, RTX4090};

    fn mean(rows: &[Row], f: impl Fn(&Row) -> Option<f64>) -> f64 {
        let v: Vec<f64> = rows.iter().filter_map(f).collect();
        v.iter().sum::<f64>() / v.len() as f64
    }

    #[test]
    fn batching_model_holds() {
        let rows = run(RTX4090, 1, 600, |_| {
            let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 4.0);
            k.running = Some(4);
            k
        });
        let tpot = mean(&rows, |r| r.tpot_p50_ms);
        let tok = mean(&rows, |r| r.generation_tokens_per_s);
        // 7.5 × (1 + 0.06 × 3) = 8.85 ms; 4 × 1000 / 8.85 = 452 tok/s.
        assert!((tpot - 8.85).abs() < 0.1, "{tpot}");
        assert!((tok - 452.0).abs() < 6.0, "{tok}");
        let power = mean(&rows, |r| r.power_w);
        assert!(power > 200.0 && power < 330.0, "{power}");
        assert!(rows
            .iter()
            .all(|r| r.thermal_state == Some(Thermal::Normal)));
    }

    #[test]
    fn power_limit_pins_power_and_cuts_the_clock() {
        let rows = run(RTX4090, 2, 300, |_| {
            let mut k = Tick::new(&RTX4090, LLAMA8_Q4, 6.0);
            k.running = Some(6);
            k.power_limit_w = 240.0;
            k
        });
        let clock = mean(&rows, |r| r.gpu_clock_mhz);
        assert!(clock > 0.8 * 2520.0 && clock < 0.9 * 2520.0, "{clock}");
        assert!(rows.iter().all(|r| r.power_w.unwrap_or(0.0) > 0.97 * 240.0));
        assert!(rows.iter().all(|r| r.thermal_reasons == ["sw_power_cap"]));
    }
}
