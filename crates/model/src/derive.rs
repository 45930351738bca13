//! The one pure derivation: `(previous sample, current sample, settings) -> Snapshot`.
//!
//! Every rate, ratio and efficiency figure infermon shows is computed here, from raw counters.
//! The agent, the API, history replay and (later) bench and the hub all call [`derive`].

use crate::detail_derive;
use crate::rate::{counter_delta, counter_delta_u64, per_second, wrapping_delta};
use crate::raw::{EngineRaw, GpuRaw, HostRaw, ProcessCpuRaw, RawSample, Reading};
use crate::snapshot::{
    AgentFigures, Efficiency, EngineFigures, GpuFigures, HostFigures, ProcessCpuFigures, Snapshot,
    SourceState, SpeedBasis,
};
use crate::thermal::{classify_cpu, classify_gpu, Thermal};
use crate::wes::wes;

/// Settings that change derived figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeriveSettings {
    /// Power usage effectiveness of the site (≥ 1.0; 1.0 when unknown).
    pub pue: f64,
}

impl Default for DeriveSettings {
    fn default() -> Self {
        DeriveSettings { pue: 1.0 }
    }
}

/// Derives every figure of `cur`, using `prev` (the sample before it) for rates.
pub fn derive(prev: Option<&RawSample>, cur: &RawSample, settings: &DeriveSettings) -> Snapshot {
    let window = prev
        .filter(|p| cur.mono_ms > p.mono_ms)
        .map(|p| (cur.mono_ms - p.mono_ms) as f64 / 1000.0);
    let prev_ok = window.and(prev);
    let host = host_figures(prev_ok.map(|p| &p.host), &cur.host, window);
    let gpus: Vec<GpuFigures> = cur
        .gpus
        .iter()
        .map(|g| {
            let pg = prev_ok.and_then(|p| p.gpus.iter().find(|x| x.id == g.id));
            gpu_figures(pg, g, window)
        })
        .collect();
    let peak = crate::bandwidth::first_known(cur.gpus.iter().filter_map(|g| g.name.as_deref()))
        .map(|(_, gbs, _)| gbs * 1e9);
    let engines: Vec<EngineFigures> = cur
        .engines
        .iter()
        .map(|e| {
            let pe = prev_ok.and_then(|p| {
                p.engines
                    .iter()
                    .find(|x| x.instance == e.instance && x.kind == e.kind)
            });
            let mut f = engine_figures(pe, e, window);
            f.memory_bandwidth_utilization_ratio = bandwidth_utilization(&f, e, peak);
            f
        })
        .collect();
    let efficiency = efficiency(&host, &gpus, &engines, settings);
    let sources = sources(cur);
    let agent = agent_figures(prev_ok, cur, window);
    Snapshot {
        ts_unix_ms: cur.ts_unix_ms,
        window_seconds: window,
        host,
        gpus,
        engines,
        efficiency,
        sources,
        agent,
        requests: Vec::new(),
        store: None,
    }
}

fn host_figures(prev: Option<&HostRaw>, cur: &HostRaw, window: Option<f64>) -> HostFigures {
    let mut h = HostFigures::default();
    if let Some(c) = cur.cpu.value() {
        h.cpu_count = Some(c.n_cpus);
        if let Some(p) = prev.and_then(|p| p.cpu.value()) {
            let busy =
                |t: &crate::raw::CpuTimes| t.user + t.nice + t.system + t.irq + t.softirq + t.steal;
            let total = |t: &crate::raw::CpuTimes| busy(t) + t.idle + t.iowait;
            if let (Some(db), Some(dt)) = (
                counter_delta_u64(busy(p), busy(c)),
                counter_delta_u64(total(p), total(c)),
            ) {
                if dt > 0 {
                    h.cpu_utilization_ratio = Some(db as f64 / dt as f64);
                }
            }
        }
    }
    if let Some(f) = cur.cpu_freq.value() {
        h.cpu_frequency_hertz = Some(f.avg_mhz * 1e6);
        h.cpu_frequency_max_hertz = f.hw_max_mhz.map(|m| m * 1e6);
    }
    if let Some(m) = cur.memory.value() {
        h.memory_total_bytes = Some(m.total_bytes);
        h.memory_available_bytes = Some(m.available_bytes);
        h.swap_total_bytes = Some(m.swap_total_bytes);
        h.swap_used_bytes = Some(m.swap_total_bytes.saturating_sub(m.swap_free_bytes));
    }
    if let Some(v) = cur.vmstat.value() {
        h.swap_in_bytes_total = Some(v.pswpin * v.page_size);
        h.swap_out_bytes_total = Some(v.pswpout * v.page_size);
        h.major_page_faults_total = Some(v.pgmajfault);
        if let (Some(p), Some(w)) = (prev.and_then(|p| p.vmstat.value()), window) {
            h.swap_in_bytes_per_second = counter_delta_u64(p.pswpin, v.pswpin)
                .and_then(|d| per_second((d * v.page_size) as f64, w));
            h.swap_out_bytes_per_second = counter_delta_u64(p.pswpout, v.pswpout)
                .and_then(|d| per_second((d * v.page_size) as f64, w));
        }
    }
    if let Some(psi) = cur.pressure.value() {
        h.pressure_memory_some_ratio = psi.memory.map(|m| m.some_avg10 / 100.0);
        h.pressure_memory_full_ratio = psi.memory.and_then(|m| m.full_avg10).map(|x| x / 100.0);
        h.pressure_cpu_some_ratio = psi.cpu.map(|m| m.some_avg10 / 100.0);
        h.pressure_io_some_ratio = psi.io.map(|m| m.some_avg10 / 100.0);
    }
    if let Some(zones) = cur.rapl.value() {
        let packages: Vec<_> = zones.iter().filter(|z| is_package_zone(&z.zone)).collect();
        if !packages.is_empty() {
            h.cpu_energy_joules_total =
                Some(packages.iter().map(|z| z.energy_uj as f64 / 1e6).sum());
        }
        if let (Some(pz), Some(w)) = (prev.and_then(|p| p.rapl.value()), window) {
            let mut joules = 0.0;
            let mut complete = !packages.is_empty();
            for z in &packages {
                match pz
                    .iter()
                    .find(|x| x.zone == z.zone)
                    .and_then(|x| wrapping_delta(x.energy_uj, z.energy_uj, z.max_energy_range_uj))
                {
                    Some(d) => joules += d as f64 / 1e6,
                    None => complete = false,
                }
            }
            if complete {
                h.cpu_power_watts = per_second(joules, w);
            }
        }
    }
    if let Some(t) = cur.temperatures.value() {
        h.temperatures = t.clone();
    }
    if let Some(t) = cur.cpu_throttle.value() {
        h.cpu_thermal = Some(classify_cpu(prev.and_then(|p| p.cpu_throttle.value()), t));
    }
    if let Some(procs) = cur.top_processes.as_ref().and_then(Reading::value) {
        h.top_processes = process_figures(procs, h.cpu_count);
    }
    h
}

/// CPU cores and node share of each process with a window (the reader measured the window on
/// its own clock, so no previous sample is needed); most CPU first, then lowest pid.
fn process_figures(procs: &[ProcessCpuRaw], cpu_count: Option<u32>) -> Vec<ProcessCpuFigures> {
    let mut out: Vec<ProcessCpuFigures> = procs
        .iter()
        .filter_map(|p| {
            let used = p
                .window_cpu_seconds
                .filter(|s| s.is_finite() && *s >= 0.0)?;
            let cpu_cores = per_second(used, p.window_seconds?)?;
            Some(ProcessCpuFigures {
                pid: p.pid,
                name: p.name.clone(),
                cpu_cores,
                cpu_ratio: cpu_count
                    .filter(|n| *n > 0)
                    .map(|n| cpu_cores / f64::from(n)),
                cpu_seconds_total: p.cpu_seconds_total,
            })
        })
        .collect();
    out.sort_by(|a, b| b.cpu_cores.total_cmp(&a.cpu_cores).then(a.pid.cmp(&b.pid)));
    out
}

/// Top-level RAPL package zones (`intel-rapl:N`), not subzones (`intel-rapl:N:M`), which are
/// already included in their package.
fn is_package_zone(zone: &str) -> bool {
    zone.matches(':').count() == 1
}

fn gpu_figures(prev: Option<&GpuRaw>, g: &GpuRaw, window: Option<f64>) -> GpuFigures {
    let energy_power = match (prev.and_then(|p| p.energy_mj), g.energy_mj, window) {
        (Some(a), Some(b), Some(w)) => {
            counter_delta_u64(a, b).and_then(|d| per_second(d as f64 / 1000.0, w))
        }
        _ => None,
    };
    let thermal = g
        .throttle
        .as_ref()
        .map(|t| classify_gpu(prev.and_then(|p| p.throttle.as_ref()), t));
    GpuFigures {
        vendor: g.vendor,
        index: g.index,
        id: g.id.clone(),
        name: g.name.clone(),
        utilization_ratio: g.busy_percent.map(|x| x / 100.0),
        memory_busy_ratio: g.mem_busy_percent.map(|x| x / 100.0),
        vram_used_bytes: g.vram_used_bytes,
        vram_total_bytes: g.vram_total_bytes,
        gtt_used_bytes: g.gtt_used_bytes,
        gtt_total_bytes: g.gtt_total_bytes,
        power_watts: energy_power.or(g.power_watts),
        power_limit_watts: g.power_limit_watts,
        energy_joules_total: g.energy_mj.map(|e| e as f64 / 1000.0),
        temperature_celsius: g.temperature_c,
        clock_hertz: g.clock_mhz.map(|x| x * 1e6),
        clock_max_hertz: g.clock_max_mhz.map(|x| x * 1e6),
        memory_clock_hertz: g.mem_clock_mhz.map(|x| x * 1e6),
        thermal,
        processes: g.processes.clone(),
        unavailable: g.unavailable.clone(),
    }
}

fn engine_figures(prev: Option<&EngineRaw>, e: &EngineRaw, window: Option<f64>) -> EngineFigures {
    let props = e.props.value();
    let m = e.metrics.value();
    let slots = e.slots.value();
    let (up, health) = match &e.health {
        Reading::Ok { value } => (
            value.http_status == 200 && value.status == "ok",
            value.status.clone(),
        ),
        Reading::Unavailable { reason } => (false, reason.clone()),
    };
    let (models, models_reason) = detail_derive::model_figures(e.models.as_ref());
    let mut f = EngineFigures {
        kind: e.kind,
        instance: e.instance.clone(),
        origin: e.origin.clone(),
        model: props
            .map(|p| p.model.clone())
            .unwrap_or_else(|| "unknown".to_string()),
        pid: e.pid,
        up,
        health,
        metrics_available: m.is_some(),
        metrics_reason: e.metrics.reason().map(str::to_string),
        prompt_tokens_total: m.map(|m| m.prompt_tokens_total),
        generation_tokens_total: m.map(|m| m.generation_tokens_total),
        generation_tokens_per_second: None,
        speed_basis: None,
        generation_throughput_tokens_per_second: None,
        prompt_tokens_per_second: None,
        prompt_throughput_tokens_per_second: None,
        generation_tokens_in_window: None,
        requests_running: m.and_then(|m| m.requests_running),
        requests_waiting: m.and_then(|m| m.requests_waiting),
        slots_processing: slots.map(|s| s.processing),
        slots_total: slots.map(|s| s.total),
        n_ctx: props.and_then(|p| p.n_ctx),
        counters_reset: false,
        memory_resident_bytes: e.memory.as_ref().and_then(|m| m.rss_bytes),
        memory_proportional_bytes: e.memory.as_ref().and_then(|m| m.pss_bytes),
        memory_estimate: e
            .memory
            .as_ref()
            .and_then(|m| crate::compare::compare(m.estimate_total_bytes?, m.rss_bytes?)),
        memory_unavailable: e
            .memory
            .as_ref()
            .map(|m| m.unavailable.clone())
            .unwrap_or_default(),
        memory_bandwidth_utilization_ratio: None,
        latency: Vec::new(),
        scheduler: Vec::new(),
        models,
        models_reason,
        events: e.events.clone(),
        notes: e.notes.clone(),
    };
    let pm = prev.and_then(|p| p.metrics.value());
    let restarted = matches!(
        (pm.and_then(|p| p.process_start_unix), m.and_then(|m| m.process_start_unix)),
        (Some(a), Some(b)) if a != b
    );
    let prev_detail = prev.filter(|_| window.is_some() && !restarted);
    f.latency =
        detail_derive::latency_figures(prev_detail.map(|p| p.histograms.as_slice()), &e.histograms);
    f.scheduler = detail_derive::scheduler_figures(
        prev_detail.map(|p| p.scheduler.as_slice()),
        &e.scheduler,
        window,
        restarted,
    );
    let (Some(m), Some(pm), Some(w)) = (m, pm, window) else {
        return f;
    };
    let d_gen = counter_delta(pm.generation_tokens_total, m.generation_tokens_total);
    let d_prompt = counter_delta(pm.prompt_tokens_total, m.prompt_tokens_total);
    if restarted || d_gen.is_none() || d_prompt.is_none() {
        f.counters_reset = true;
        return f;
    }
    let (d_gen, d_prompt) = (d_gen.unwrap_or(0.0), d_prompt.unwrap_or(0.0));
    f.generation_tokens_in_window = Some(d_gen);
    f.generation_throughput_tokens_per_second = per_second(d_gen, w);
    f.prompt_throughput_tokens_per_second = per_second(d_prompt, w);
    let window_rate = |rate: Option<f64>, d: f64| rate.filter(|r| *r > 0.0 && d > 0.0);
    let (gen_rate, prompt_rate) = (
        window_rate(m.generation_window_rate, d_gen),
        window_rate(m.prompt_window_rate, d_prompt),
    );
    f.speed_basis = Some(if gen_rate.is_some() {
        SpeedBasis::ServerWindow
    } else {
        SpeedBasis::Counters
    });
    f.generation_tokens_per_second = gen_rate.or_else(|| {
        busy_rate(
            d_gen,
            pm.generation_seconds_total,
            m.generation_seconds_total,
        )
    });
    f.prompt_tokens_per_second = prompt_rate
        .or_else(|| busy_rate(d_prompt, pm.prompt_seconds_total, m.prompt_seconds_total));
    f
}

/// Decode MBU: weight bytes × steps per second ÷ peak bytes per second (see
/// [`EngineFigures::memory_bandwidth_utilization_ratio`] for what it leaves out).
fn bandwidth_utilization(f: &EngineFigures, e: &EngineRaw, peak: Option<f64>) -> Option<f64> {
    let weights = e.memory.as_ref()?.estimate_weights_bytes? as f64;
    let steps = f.generation_tokens_per_second?;
    let peak = peak.filter(|p| *p > 0.0)?;
    Some(weights * steps / peak)
}

/// Tokens per busy second; 0 tokens in 0 busy seconds is an idle window (0 tok/s), while
/// tokens without busy time cannot be turned into a speed.
fn busy_rate(d_tokens: f64, prev_s: Option<f64>, cur_s: Option<f64>) -> Option<f64> {
    let d_s = counter_delta(prev_s?, cur_s?)?;
    if d_s > 0.0 {
        Some(d_tokens / d_s)
    } else if d_tokens == 0.0 {
        Some(0.0)
    } else {
        None
    }
}

fn efficiency(
    host: &HostFigures,
    gpus: &[GpuFigures],
    engines: &[EngineFigures],
    settings: &DeriveSettings,
) -> Efficiency {
    let rates: Vec<f64> = engines
        .iter()
        .filter_map(|e| e.generation_throughput_tokens_per_second)
        .collect();
    let tps = if rates.is_empty() {
        None
    } else {
        Some(rates.iter().sum())
    };
    let mut power_sources = Vec::new();
    let mut watts = 0.0;
    for g in gpus {
        if let Some(p) = g.power_watts {
            watts += p;
            power_sources.push(format!("gpu:{}:{}", vendor_str(g), g.index));
        }
    }
    if let Some(p) = host.cpu_power_watts {
        watts += p;
        power_sources.push("cpu:rapl".to_string());
    }
    let power = if power_sources.is_empty() {
        None
    } else {
        Some(watts)
    };
    let mut thermal = host.cpu_thermal.clone().unwrap_or_else(Thermal::normal);
    for g in gpus {
        if let Some(t) = &g.thermal {
            thermal = thermal.worst(t.clone());
        }
    }
    let penalty = thermal.state.penalty();
    let tokens_per_joule = match (tps, power) {
        (Some(t), Some(p)) if p > 0.0 => Some(t / p),
        _ => None,
    };
    Efficiency {
        generation_tokens_per_second: tps,
        power_watts: power,
        power_sources,
        tokens_per_joule,
        wes: wes(tps, power, settings.pue, penalty),
        thermal,
        thermal_penalty: penalty,
        pue: settings.pue,
    }
}

fn vendor_str(g: &GpuFigures) -> &'static str {
    match g.vendor {
        crate::raw::GpuVendor::Nvidia => "nvidia",
        crate::raw::GpuVendor::Amd => "amd",
    }
}

fn sources(cur: &RawSample) -> Vec<SourceState> {
    fn push<T>(out: &mut Vec<SourceState>, name: String, r: &Reading<T>) {
        out.push(SourceState {
            source: name,
            ok: r.value().is_some(),
            reason: r.reason().map(str::to_string),
        });
    }
    let mut out = Vec::new();
    let h = &cur.host;
    push(&mut out, "host.cpu".into(), &h.cpu);
    push(&mut out, "host.cpu_freq".into(), &h.cpu_freq);
    push(&mut out, "host.memory".into(), &h.memory);
    push(&mut out, "host.vmstat".into(), &h.vmstat);
    push(&mut out, "host.pressure".into(), &h.pressure);
    push(&mut out, "host.rapl".into(), &h.rapl);
    push(&mut out, "host.temperatures".into(), &h.temperatures);
    push(&mut out, "host.cpu_throttle".into(), &h.cpu_throttle);
    if let Some(p) = &h.top_processes {
        push(&mut out, "host.processes".into(), p);
    }
    for s in &cur.gpu_sources {
        out.push(SourceState {
            source: format!("gpu.{}", s.source),
            ok: s.unavailable.is_none(),
            reason: s.unavailable.clone(),
        });
    }
    for e in &cur.engines {
        let base = format!("engine.{}[{}]", e.kind.as_str(), e.instance);
        push(&mut out, format!("{base}.health"), &e.health);
        push(&mut out, format!("{base}.props"), &e.props);
        if e.kind.has_counters() {
            push(&mut out, format!("{base}.metrics"), &e.metrics);
        }
        if e.kind.has_slots() {
            push(&mut out, format!("{base}.slots"), &e.slots);
        }
        if let Some(m) = &e.models {
            push(&mut out, format!("{base}.models"), m);
        }
    }
    out
}

fn agent_figures(prev: Option<&RawSample>, cur: &RawSample, window: Option<f64>) -> AgentFigures {
    let cpu_ratio = match (
        prev.and_then(|p| p.agent.cpu_seconds_total),
        cur.agent.cpu_seconds_total,
        window,
    ) {
        (Some(a), Some(b), Some(w)) => counter_delta(a, b).and_then(|d| per_second(d, w)),
        _ => None,
    };
    AgentFigures {
        cpu_seconds_total: cur.agent.cpu_seconds_total,
        cpu_ratio,
        resident_memory_bytes: cur.agent.rss_bytes,
        interval_seconds: cur.agent.interval_ms as f64 / 1000.0,
        collect_seconds: cur.agent.collect_ms / 1000.0,
    }
}
