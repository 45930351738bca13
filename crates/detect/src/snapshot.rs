//! A [`Frame`] from the agent's [`Snapshot`]: the only place the detectors meet the model's
//! shapes, so replay and the agent feed the same fields.

use infermon_model::detail::LatencyMetric;
use infermon_model::reqstats::RequestStats;
use infermon_model::{EngineFigures, Snapshot};

use crate::frame::{EngineFrame, Frame, GpuFrame, ModelEvent, NodeFrame, ProcessCpu};

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Builds the frame of one snapshot. `recent` are request figures over a short window (the
/// agent uses the last 20 s, so a change shows within a few samples; the snapshot's own
/// `requests` cover 5 minutes); `agent_pid` marks the agent's own process as not a culprit.
pub fn from_snapshot(s: &Snapshot, recent: &[RequestStats], agent_pid: Option<u32>) -> Frame {
    let h = &s.host;
    let engine_pids: Vec<u32> = s.engines.iter().filter_map(|e| e.pid).collect();
    let node = NodeFrame {
        cpu_util: h.cpu_utilization_ratio,
        cpu_count: h.cpu_count,
        mem_available_bytes: h.memory_available_bytes.map(|b| b as f64),
        mem_total_bytes: h.memory_total_bytes.map(|b| b as f64),
        swap_in_pages_per_s: h.swap_in_bytes_per_second.map(|b| b / 4096.0),
        psi_memory_some: h.pressure_memory_some_ratio,
        thermal_state: h.cpu_thermal.as_ref().map(|t| t.state),
        thermal_reasons: h
            .cpu_thermal
            .as_ref()
            .map(|t| t.reasons.clone())
            .unwrap_or_default(),
        power_w: s.efficiency.power_watts,
        wes_penalized: infermon_model::wes::penalized_unrounded(
            s.efficiency.generation_tokens_per_second,
            s.efficiency.power_watts,
            s.efficiency.pue,
            s.efficiency.thermal_penalty,
        ),
        generation_tokens_per_s: s.efficiency.generation_tokens_per_second,
        // The busiest engine's MBU; an MoE over-estimate above 1 reads as 1 (the frame's range).
        bandwidth_util: s
            .engines
            .iter()
            .filter_map(|e| e.memory_bandwidth_utilization_ratio)
            .reduce(f64::max)
            .map(|b| b.min(1.0)),
        top_processes: h
            .top_processes
            .iter()
            .map(|p| ProcessCpu {
                pid: p.pid,
                name: p.name.clone(),
                cores: p.cpu_cores,
                is_engine: engine_pids.contains(&p.pid) || Some(p.pid) == agent_pid,
            })
            .collect(),
    };
    let gpus = s
        .gpus
        .iter()
        .map(|g| GpuFrame {
            id: g.index.to_string(),
            util_pct: g.utilization_ratio.map(|r| r * 100.0),
            clock_mhz: g.clock_hertz.map(|c| c / 1e6),
            clock_max_mhz: g.clock_max_hertz.map(|c| c / 1e6),
            power_w: g.power_watts,
            power_limit_w: g.power_limit_watts,
            temp_c: g.temperature_celsius,
            thermal_state: g.thermal.as_ref().map(|t| t.state),
            thermal_reasons: g
                .thermal
                .as_ref()
                .map(|t| t.reasons.clone())
                .unwrap_or_default(),
        })
        .collect();
    let mut engines = Vec::new();
    for e in &s.engines {
        engines.extend(engine_frames(e, recent));
    }
    // Proxied upstreams that no collector polls still have request figures.
    for r in recent {
        if !s.engines.iter().any(|e| same_url(&e.instance, &r.upstream)) {
            let mut f = EngineFrame {
                engine: r.upstream.trim_end_matches('/').to_string(),
                model: Some(r.model.clone()),
                ..Default::default()
            };
            overlay(&mut f, r);
            engines.push(f);
        }
    }
    Frame {
        t_s: s.ts_unix_ms as f64 / 1000.0,
        node,
        gpus,
        engines,
    }
}

fn base(e: &EngineFigures) -> EngineFrame {
    // A server found by discovery that no longer answers and whose process memory can no
    // longer be read has exited: llama-swap unloading a model, or someone stopping it.
    let gone = e.origin == "discovered" && !e.up && e.memory_resident_bytes.is_none();
    EngineFrame {
        gone,
        engine: e.instance.trim_end_matches('/').to_string(),
        pid: e.pid,
        up: Some(e.up),
        down_reason: (!e.up).then(|| e.health.clone()),
        model: (e.model != "unknown" && !e.model.is_empty()).then(|| e.model.clone()),
        events: e
            .events
            .iter()
            .map(|ev| ModelEvent {
                model: ev.model.clone(),
                kind: ev.kind.clone(),
            })
            .collect(),
        memory_estimate_bytes: e.memory_estimate.as_ref().map(|c| c.estimated_bytes as f64),
        memory_resident_bytes: e.memory_resident_bytes.map(|b| b as f64),
        ..Default::default()
    }
}

fn engine_frames(e: &EngineFigures, recent: &[RequestStats]) -> Vec<EngineFrame> {
    let mine: Vec<&RequestStats> = recent
        .iter()
        .filter(|r| same_url(&r.upstream, &e.instance))
        .collect();
    if !e.up || e.scheduler.is_empty() {
        let mut f = base(e);
        if e.up {
            f.requests_running = e.requests_running;
            f.requests_waiting = e.requests_waiting;
            f.prompt_tokens_per_s = e.prompt_throughput_tokens_per_second;
            f.generation_tokens_per_s = e.generation_throughput_tokens_per_second;
            // The server's own per-stream decode speed, as time per token.
            f.tpot_p50_ms = e
                .generation_tokens_per_second
                .filter(|t| *t > 0.0)
                .map(|t| 1000.0 / t);
            let model = f.model.clone();
            let r = mine
                .iter()
                .find(|r| model.as_deref() == Some(r.model.as_str()))
                .or_else(|| (mine.len() == 1).then(|| &mine[0]));
            if let Some(r) = r {
                overlay(&mut f, r);
            }
        }
        return vec![f];
    }
    e.scheduler
        .iter()
        .map(|sch| {
            let mut f = base(e);
            f.model = Some(sch.model.clone());
            f.requests_running = sch.requests_running;
            f.requests_waiting = sch.requests_waiting;
            f.kv_usage = sch.kv_usage_ratio;
            f.prompt_tokens_per_s = sch.prompt_throughput_tokens_per_second;
            f.generation_tokens_per_s = sch.generation_throughput_tokens_per_second;
            let p50 = |m: LatencyMetric| {
                e.latency
                    .iter()
                    .find(|l| l.model == sch.model && l.metric == m && l.count > 0.0)
                    .and_then(|l| l.p50_seconds)
                    .map(|s| s * 1000.0)
            };
            f.ttft_p50_ms = p50(LatencyMetric::Ttft);
            f.tpot_p50_ms = p50(LatencyMetric::Tpot).or_else(|| p50(LatencyMetric::Itl));
            if let Some(r) = mine.iter().find(|r| r.model == sch.model) {
                overlay(&mut f, r);
            }
            f
        })
        .collect()
}

/// Request figures measured on the wire take precedence over the engine's own.
fn overlay(f: &mut EngineFrame, r: &RequestStats) {
    if let Some(t) = &r.ttft_ms {
        f.ttft_p50_ms = Some(t.p50);
    }
    if let Some(t) = &r.tpot_ms {
        f.tpot_p50_ms = Some(t.p50);
    }
    if r.completed > 0 {
        f.prompt_tokens_mean = Some(r.prompt_tokens as f64 / r.completed as f64);
    }
    f.error_ratio = Some(r.error_ratio);
    f.requests_ended = Some(r.requests as f64);
}
