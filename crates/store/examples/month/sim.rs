//! The simulated node of the month benchmark: its GPUs, engines and models, and the load that
//! moves them, as the collectors would report them each round.

use infermon_model::detail::{Bucket, HistogramRaw, LatencyMetric, ModelRaw, SchedulerRaw};
use infermon_model::raw::*;

/// 2026-11-01T00:00:00Z.
pub(crate) const START_MS: i64 = 1_761_955_200_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// A small deterministic generator (xorshift64*), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }
    /// Roughly normal, mean 0, sd 1 (sum of uniforms).
    fn noise(&mut self) -> f64 {
        (0..4).map(|_| self.unit()).sum::<f64>() * 1.732 - 3.464
    }
}

/// Cumulative state of one served model.
struct ModelSim {
    name: &'static str,
    share: f64,
    prompt_tokens: f64,
    gen_tokens: f64,
    finished: f64,
    prefix_queries: f64,
    prefix_hits: f64,
    preemptions: f64,
    /// Histogram counts per metric, per bucket (cumulative, Prometheus style).
    hist: Vec<(LatencyMetric, Vec<f64>, f64, f64)>,
}

const LE_TTFT: [f64; 14] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
];
const LE_ITL: [f64; 12] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
];
const LE_E2E: [f64; 12] = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
];

impl ModelSim {
    fn new(name: &'static str, share: f64) -> ModelSim {
        let hist = [
            (LatencyMetric::Ttft, LE_TTFT.len()),
            (LatencyMetric::Itl, LE_ITL.len()),
            (LatencyMetric::E2e, LE_E2E.len()),
            (LatencyMetric::Queue, LE_TTFT.len()),
        ]
        .into_iter()
        .map(|(m, n)| (m, vec![0.0; n + 1], 0.0, 0.0))
        .collect();
        ModelSim {
            name,
            share,
            prompt_tokens: 0.0,
            gen_tokens: 0.0,
            finished: 0.0,
            prefix_queries: 0.0,
            prefix_hits: 0.0,
            preemptions: 0.0,
            hist,
        }
    }

    /// Advances by `dt` seconds at `load` (0..1); returns requests running.
    fn step(&mut self, rng: &mut Rng, load: f64, dt: f64) -> f64 {
        let rps = (load * self.share * 6.0 * (1.0 + 0.3 * rng.noise())).max(0.0);
        let reqs = (rps * dt).round();
        self.finished += reqs;
        self.prompt_tokens += (reqs * (600.0 + 200.0 * rng.noise())).max(0.0).round();
        self.gen_tokens += (reqs * (250.0 + 80.0 * rng.noise())).max(0.0).round();
        let q = (reqs * 1.3).round();
        self.prefix_queries += q * 600.0;
        self.prefix_hits += (q * 600.0 * (0.4 + 0.1 * rng.noise()).clamp(0.0, 1.0)).round();
        if load > 0.9 && rng.unit() < 0.05 {
            self.preemptions += 1.0;
        }
        for (metric, counts, sum, count) in &mut self.hist {
            let les: &[f64] = match metric {
                LatencyMetric::Itl => &LE_ITL,
                LatencyMetric::E2e => &LE_E2E,
                _ => &LE_TTFT,
            };
            let scale = match metric {
                LatencyMetric::Itl => 0.03,
                LatencyMetric::E2e => 4.0,
                LatencyMetric::Queue => 0.02 * (1.0 + 5.0 * load * load),
                _ => 0.15 * (1.0 + 2.0 * load),
            };
            let n = if *metric == LatencyMetric::Itl {
                reqs * 240.0
            } else {
                reqs
            };
            // A few observations placed individually, the rest spread by the same shape
            // (whole counts, as an engine's histogram has).
            let whole = n as u64;
            let placed = whole.min(8);
            for k in 0..placed {
                let v = scale * (0.3 + 1.4 * rng.unit()) * (1.0 + 0.5 * rng.noise().abs());
                let each = (whole / placed + u64::from(k < whole % placed)) as f64;
                *sum += v * each;
                *count += each;
                let first = les.iter().position(|le| v <= *le).unwrap_or(les.len());
                for c in counts.iter_mut().skip(first) {
                    *c += each;
                }
            }
        }
        (rps * (1.0 + 2.0 * load)).round()
    }

    fn histograms(&self) -> Vec<HistogramRaw> {
        self.hist
            .iter()
            .map(|(metric, counts, sum, count)| {
                let les: &[f64] = match metric {
                    LatencyMetric::Itl => &LE_ITL,
                    LatencyMetric::E2e => &LE_E2E,
                    _ => &LE_TTFT,
                };
                let mut buckets: Vec<Bucket> = les
                    .iter()
                    .zip(counts)
                    .map(|(le, c)| Bucket { le: *le, count: *c })
                    .collect();
                buckets.push(Bucket {
                    le: f64::MAX,
                    count: counts[les.len()],
                });
                HistogramRaw {
                    metric: *metric,
                    model: self.name.to_string(),
                    buckets,
                    sum: *sum,
                    count: *count,
                }
            })
            .collect()
    }
}

/// The whole simulated node.
pub(crate) struct Node {
    rng: Rng,
    t_ms: i64,
    mono_ms: u64,
    cpu: CpuTimes,
    vmstat: VmstatRaw,
    psi_total: [u64; 3],
    rapl_uj: [u64; 2],
    gpu_energy_mj: [u64; 2],
    proc_cpu: [f64; 5],
    agent_cpu: f64,
    vllm: Vec<ModelSim>,
    llama: Vec<ModelSim>,
    llama_decoded: u64,
    /// Simulated-minutes left of an idle gap or a burst.
    episode: (f64, i64),
}

impl Node {
    pub(crate) fn new() -> Node {
        Node {
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            t_ms: START_MS,
            mono_ms: 3_600_000,
            cpu: CpuTimes {
                user: 5_000_000,
                nice: 1_000,
                system: 800_000,
                idle: 90_000_000,
                iowait: 20_000,
                irq: 0,
                softirq: 9_000,
                steal: 0,
                n_cpus: 32,
            },
            vmstat: VmstatRaw {
                pswpin: 0,
                pswpout: 0,
                pgmajfault: 12_000,
                page_size: 4096,
            },
            psi_total: [1_000_000, 5_000_000, 2_000_000],
            rapl_uj: [1_000_000, 2_000_000],
            gpu_energy_mj: [10_000_000, 12_000_000],
            proc_cpu: [5_000.0, 3_000.0, 200.0, 50.0, 10.0],
            agent_cpu: 30.0,
            vllm: vec![
                ModelSim::new("meta-llama/Llama-3.1-8B-Instruct", 0.6),
                ModelSim::new("Qwen/Qwen2.5-7B-Instruct", 0.4),
            ],
            llama: vec![
                ModelSim::new("gemma-3-12b-it-Q4_K_M", 0.5),
                ModelSim::new("Mistral-Small-3.2-24B-Q4_K_M", 0.3),
                ModelSim::new("Phi-4-mini-Q8_0", 0.2),
            ],
            llama_decoded: 0,
            episode: (1.0, 0),
        }
    }

    /// Load in 0..1 at the current time: diurnal curve, weekends lighter, idle gaps, bursts.
    fn load(&mut self) -> f64 {
        let day_ms = self.t_ms.rem_euclid(DAY_MS);
        let hour = day_ms as f64 / 3_600_000.0;
        let weekday = (self.t_ms.div_euclid(DAY_MS) + 6) % 7 < 5;
        let diurnal = (((hour - 8.0) / 24.0 * std::f64::consts::TAU).sin() * 0.5 + 0.35).max(0.0);
        if self.episode.1 <= 0 {
            // A new episode every so often: idle gap, burst, or normal.
            let r = self.rng.unit();
            self.episode = if r < 0.15 {
                (0.0, 10 + (self.rng.unit() * 90.0) as i64)
            } else if r < 0.25 {
                (1.8, 2 + (self.rng.unit() * 15.0) as i64)
            } else {
                (1.0, 20 + (self.rng.unit() * 60.0) as i64)
            };
            self.episode.1 *= 30; // minutes to 2 s rounds
        }
        self.episode.1 -= 1;
        let week = if weekday { 1.0 } else { 0.4 };
        (diurnal * week * self.episode.0 * (1.0 + 0.1 * self.rng.noise())).clamp(0.0, 1.0)
    }

    pub(crate) fn advance(&mut self, dt_ms: i64) -> RawSample {
        self.t_ms += dt_ms;
        self.mono_ms += dt_ms as u64;
        let dt = dt_ms as f64 / 1000.0;
        let load = self.load();
        let rng = &mut self.rng;
        let jiffies = 100.0 * dt * f64::from(self.cpu.n_cpus);
        let busy = (0.05 + 0.25 * load + 0.02 * rng.noise()).clamp(0.0, 1.0);
        self.cpu.user += (jiffies * busy * 0.8) as u64;
        self.cpu.system += (jiffies * busy * 0.2) as u64;
        self.cpu.idle += (jiffies * (1.0 - busy)) as u64;
        self.cpu.iowait += (rng.unit() * 3.0) as u64;
        self.cpu.softirq += (rng.unit() * 5.0 * (1.0 + load)) as u64;
        self.vmstat.pgmajfault += (rng.unit() * 2.0) as u64;
        for (i, t) in self.psi_total.iter_mut().enumerate() {
            *t += (rng.unit() * 2_000.0 * load * (i + 1) as f64) as u64;
        }
        for (i, e) in self.rapl_uj.iter_mut().enumerate() {
            *e += ((60.0 + 90.0 * busy) * dt * 1e6 / (i + 1) as f64) as u64;
        }
        for (i, p) in self.proc_cpu.iter_mut().enumerate() {
            *p += dt * busy * 4.0 / (i + 1) as f64;
        }
        self.agent_cpu += dt * (0.004 + 0.001 * rng.unit());

        let mut gpus = Vec::new();
        for i in 0..2_u32 {
            let gl = (load * if i == 0 { 1.0 } else { 0.7 } + 0.03 * rng.noise()).clamp(0.0, 1.0);
            let power = 70.0 + 540.0 * gl + 8.0 * rng.noise();
            self.gpu_energy_mj[i as usize] += (power * dt * 1000.0) as u64;
            let mut g = GpuRaw::empty(
                GpuVendor::Nvidia,
                i,
                format!("GPU-5f0c1c1e-7d3a-4b8e-9c1f-00000000000{i}"),
            );
            g.name = Some("NVIDIA H100 80GB HBM3".into());
            g.busy_percent = Some((100.0 * gl).round());
            g.mem_busy_percent = Some((60.0 * gl).round());
            g.vram_used_bytes =
                Some((70_u64 << 30) + (rng.unit() * 2e9) as u64 * (gl > 0.0) as u64);
            g.vram_total_bytes = Some(81_559_289_856);
            g.power_watts = Some((power * 1000.0).round() / 1000.0);
            g.power_limit_watts = Some(700.0);
            g.energy_mj = Some(self.gpu_energy_mj[i as usize]);
            g.temperature_c = Some((34.0 + 40.0 * gl + rng.noise()).round());
            g.clock_mhz = Some(if gl > 0.05 { 1980.0 } else { 345.0 });
            g.clock_max_mhz = Some(1980.0);
            g.mem_clock_mhz = Some(2619.0);
            g.throttle = Some(ThrottleRaw::NvidiaClockEvents {
                mask: if gl < 0.05 { 1 } else { 0 },
            });
            g.processes = vec![GpuProcess {
                pid: 4100 + i,
                used_bytes: Some(69_000_000_000 + i as u64),
            }];
            gpus.push(g);
        }

        let mut vllm_running = 0.0;
        let mut scheduler = Vec::new();
        let mut vllm_hist = Vec::new();
        for m in &mut self.vllm {
            let running = m.step(rng, load, dt);
            vllm_running += running;
            let waiting = if load > 0.8 {
                (rng.unit() * 6.0).round()
            } else {
                0.0
            };
            scheduler.push(SchedulerRaw {
                model: m.name.to_string(),
                prompt_tokens_total: Some(m.prompt_tokens),
                generation_tokens_total: Some(m.gen_tokens),
                requests_running: Some(running),
                requests_waiting: Some(waiting),
                kv_usage_ratio: Some((0.02 + 0.7 * load + 0.02 * rng.noise()).clamp(0.0, 1.0)),
                prefix_cache_queries_total: Some(m.prefix_queries),
                prefix_cache_hits_total: Some(m.prefix_hits),
                cache_hit_ratio: None,
                preemptions_total: Some(m.preemptions),
                spec_draft_tokens_total: None,
                spec_accepted_tokens_total: None,
                spec_accept_ratio: None,
                requests_finished_total: Some(m.finished),
                generation_throughput_gauge: None,
            });
            vllm_hist.extend(m.histograms());
        }
        let sum = |ms: &[ModelSim], f: fn(&ModelSim) -> f64| ms.iter().map(f).sum::<f64>();
        let vllm = EngineRaw {
            kind: EngineKind::Vllm,
            instance: "http://127.0.0.1:8000".into(),
            origin: "config".into(),
            pid: Some(4100),
            health: Reading::ok(EngineHealth {
                http_status: 200,
                status: "ok".into(),
            }),
            props: Reading::ok(EngineProps {
                model: self.vllm[0].name.into(),
                model_path: None,
                n_ctx: Some(32_768),
                total_slots: None,
                build_info: Some("0.11.0".into()),
            }),
            metrics: Reading::ok(EngineCounters {
                prompt_tokens_total: sum(&self.vllm, |m| m.prompt_tokens),
                prompt_seconds_total: None,
                generation_tokens_total: sum(&self.vllm, |m| m.gen_tokens),
                generation_seconds_total: None,
                decode_calls_total: None,
                generation_window_rate: None,
                prompt_window_rate: None,
                requests_running: Some(vllm_running),
                requests_waiting: Some(0.0),
                process_start_unix: Some(1_761_900_000),
            }),
            slots: Reading::unavailable("vllm has no /slots"),
            memory: Some(EngineMemoryRaw {
                rss_bytes: Some(6_000_000_000 + (rng.unit() * 1e7) as u64),
                pss_bytes: Some(5_800_000_000 + (rng.unit() * 1e7) as u64),
                estimate_total_bytes: None,
                estimate_kv_bytes: None,
                estimate_weights_bytes: None,
                unavailable: Vec::new(),
            }),
            histograms: vllm_hist,
            scheduler,
            models: None,
            events: Vec::new(),
            notes: Vec::new(),
        };

        let mut llama_running = 0.0;
        let mut llama_hist = Vec::new();
        let mut models = Vec::new();
        for m in &mut self.llama {
            llama_running += m.step(rng, load * 0.6, dt);
            llama_hist.extend(m.histograms().into_iter().take(2));
            models.push(ModelRaw {
                name: m.name.into(),
                state: "loaded".into(),
                size_bytes: Some(8_000_000_000),
                vram_bytes: Some(9_000_000_000),
                context_length: Some(16_384),
                expires_unix_ms: None,
                quantization: Some("Q4_K_M".into()),
                parameter_size: None,
                upstream: None,
            });
        }
        let gen_tokens = sum(&self.llama, |m| m.gen_tokens);
        self.llama_decoded = (gen_tokens as u64) % 4096;
        let llama = EngineRaw {
            kind: EngineKind::Llamacpp,
            instance: "http://127.0.0.1:8080".into(),
            origin: "discovered".into(),
            pid: Some(5200),
            health: Reading::ok(EngineHealth {
                http_status: 200,
                status: "ok".into(),
            }),
            props: Reading::ok(EngineProps {
                model: self.llama[0].name.into(),
                model_path: Some("/models/gemma-3-12b-it-Q4_K_M.gguf".into()),
                n_ctx: Some(16_384),
                total_slots: Some(4),
                build_info: Some("b6710-3df2244d".into()),
            }),
            metrics: Reading::ok(EngineCounters {
                prompt_tokens_total: sum(&self.llama, |m| m.prompt_tokens),
                prompt_seconds_total: Some(sum(&self.llama, |m| m.prompt_tokens) / 2500.0),
                generation_tokens_total: gen_tokens,
                generation_seconds_total: Some(gen_tokens / 85.0),
                decode_calls_total: Some(gen_tokens * 0.9),
                generation_window_rate: None,
                prompt_window_rate: None,
                requests_running: Some(llama_running.min(4.0)),
                requests_waiting: Some((llama_running - 4.0).max(0.0)),
                process_start_unix: Some(1_761_900_500),
            }),
            slots: Reading::ok(SlotsRaw {
                total: 4,
                processing: llama_running.min(4.0) as u32,
                decoded_in_flight: self.llama_decoded,
            }),
            memory: Some(EngineMemoryRaw {
                rss_bytes: Some(3_000_000_000 + (rng.unit() * 1e7) as u64),
                pss_bytes: Some(2_900_000_000 + (rng.unit() * 1e7) as u64),
                estimate_total_bytes: Some(9_800_000_000),
                estimate_kv_bytes: Some(1_600_000_000),
                estimate_weights_bytes: Some(7_900_000_000),
                unavailable: Vec::new(),
            }),
            histograms: llama_hist,
            scheduler: Vec::new(),
            models: Some(Reading::ok(models)),
            events: Vec::new(),
            notes: Vec::new(),
        };

        let names = ["vllm", "llama-server", "python3", "sshd", "systemd-journal"];
        let psi = |some: f64, total: u64| Psi {
            some_avg10: (some * 100.0).round() / 100.0,
            some_total_us: total,
            full_avg10: Some((some * 50.0).round() / 100.0),
            full_total_us: Some(total / 2),
        };
        RawSample {
            ts_unix_ms: self.t_ms,
            mono_ms: self.mono_ms,
            host: HostRaw {
                cpu: Reading::ok(self.cpu),
                cpu_freq: Reading::ok(CpuFreq {
                    avg_mhz: (2400.0 + 800.0 * busy + 30.0 * rng.noise()).round(),
                    max_cur_mhz: (3500.0 + 100.0 * rng.noise()).round(),
                    hw_max_mhz: Some(3800.0),
                }),
                memory: Reading::ok(MemoryRaw {
                    total_bytes: 540_000_000_000,
                    available_bytes: 400_000_000_000 - (load * 2e10) as u64
                        + (rng.unit() * 1e8) as u64,
                    free_bytes: 300_000_000_000 - (load * 2e10) as u64 + (rng.unit() * 1e8) as u64,
                    swap_total_bytes: 8_589_934_592,
                    swap_free_bytes: 8_589_934_592,
                }),
                vmstat: Reading::ok(self.vmstat),
                pressure: Reading::ok(PressureRaw {
                    memory: Some(psi(0.0, self.psi_total[0])),
                    cpu: Some(psi(load * 3.0 * rng.unit(), self.psi_total[1])),
                    io: Some(psi(rng.unit() * 0.5, self.psi_total[2])),
                }),
                rapl: Reading::ok(vec![
                    RaplZone {
                        zone: "intel-rapl:0".into(),
                        name: "package-0".into(),
                        energy_uj: self.rapl_uj[0] % 262_143_328_850,
                        max_energy_range_uj: 262_143_328_850,
                    },
                    RaplZone {
                        zone: "intel-rapl:1".into(),
                        name: "package-1".into(),
                        energy_uj: self.rapl_uj[1] % 262_143_328_850,
                        max_energy_range_uj: 262_143_328_850,
                    },
                ]),
                temperatures: Reading::ok(
                    ["Package id 0", "Package id 1", "nvme0 Composite"]
                        .iter()
                        .enumerate()
                        .map(|(i, s)| Temperature {
                            sensor: (*s).into(),
                            celsius: (40.0 + 20.0 * busy + i as f64 + rng.noise()).round(),
                        })
                        .collect(),
                ),
                cpu_throttle: Reading::ok(CpuThrottle {
                    package_count: 0,
                    core_count: 0,
                    package_total_ms: Some(0),
                }),
                top_processes: Some(Reading::ok(
                    names
                        .iter()
                        .enumerate()
                        .map(|(i, n)| ProcessCpuRaw {
                            pid: 4100 + i as u32 * 550,
                            name: (*n).into(),
                            cpu_seconds_total: (self.proc_cpu[i] * 100.0).round() / 100.0,
                            window_cpu_seconds: None,
                            window_seconds: None,
                        })
                        .collect(),
                )),
            },
            gpus,
            gpu_sources: vec![SourceStatus {
                source: "nvml".into(),
                unavailable: None,
            }],
            engines: vec![vllm, llama],
            agent: AgentRaw {
                cpu_seconds_total: Some((self.agent_cpu * 100.0).round() / 100.0),
                rss_bytes: Some(24_000_000 + (rng.unit() * 1e6) as u64 * 4096 / 4096),
                interval_ms: dt_ms as u64,
                collect_ms: ((3.0 + rng.unit() * 2.0) * 100.0).round() / 100.0,
            },
        }
    }
}
