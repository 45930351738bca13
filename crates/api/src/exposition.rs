//! Prometheus text format 0.0.4 of a snapshot's series. Formatting only: names and values come
//! from [`infermon_model::Snapshot::series`].

use std::fmt::Write;

use infermon_model::series::{MetricKind, SeriesPoint};

fn help(name: &str) -> &'static str {
    match name {
        "infermon_engine_up" => "Engine health endpoint answered OK (1) or not (0).",
        "infermon_engine_metrics_available" => "Engine metrics endpoint could be read.",
        "infermon_engine_prompt_tokens_total" => "Prompt tokens processed, the engine's counter.",
        "infermon_engine_generation_tokens_total" => "Generated tokens, the engine's counter.",
        "infermon_engine_generation_tokens_per_second" => {
            "Generation speed while generating: tokens over busy generation seconds in the window."
        }
        "infermon_engine_generation_throughput_tokens_per_second" => {
            "Generated tokens per wall-clock second over the window."
        }
        "infermon_engine_prompt_tokens_per_second" => {
            "Prompt processing speed: prompt tokens over busy prompt seconds in the window."
        }
        "infermon_engine_prompt_throughput_tokens_per_second" => {
            "Prompt tokens per wall-clock second over the window."
        }
        "infermon_engine_requests_running" => "Requests being processed.",
        "infermon_engine_requests_waiting" => "Requests queued.",
        "infermon_engine_slots_processing" => "Busy slots.",
        "infermon_engine_slots" => "Slots (parallel sequences).",
        "infermon_engine_latency_seconds" => {
            "Engine latency percentile (label percentile) over the window, from its histograms."
        }
        "infermon_requests_latency_seconds" => {
            "Proxied request latency percentile (label percentile) over the request window."
        }
        "infermon_node_cpus" => "Logical CPUs online.",
        "infermon_engine_context_size_tokens" => "Context size the server was started with.",
        "infermon_engine_memory_bandwidth_utilization_ratio" => {
            "Decode memory-bandwidth use against the GPU's peak: weight bytes x decode steps/s \
             / peak (KV reads left out: a lower bound; an upper bound for MoE)."
        }
        "infermon_node_generation_tokens_per_second" => {
            "Generated tokens per wall-clock second, all engines."
        }
        "infermon_node_power_watts" => "Power of GPUs and CPU packages where readable.",
        "infermon_node_tokens_per_joule" => "Generated tokens per joule over the window.",
        "infermon_wes" => "WES = tok/s / (W x PUE x thermal penalty); raw uses penalty 1.",
        "infermon_thermal_penalty" => "Thermal penalty of the worst device state (1 to 2).",
        "infermon_thermal_state" => "Worst thermal state: 0 normal, 1 fair, 2 serious, 3 critical.",
        "infermon_thermal_cost_ratio" => "(raw WES - penalized WES) / raw WES.",
        "infermon_source_up" => "Source could be read (1) or is unavailable (0); see the snapshot.",
        "infermon_agent_cpu_seconds_total" => "CPU time used by the agent.",
        "infermon_observation_active" => {
            "1 while a diagnosis observation is open; see /api/v1/observations."
        }
        "infermon_agent_resident_memory_bytes" => "Resident memory of the agent.",
        "infermon_agent_sample_interval_seconds" => "Current sampling interval.",
        "infermon_agent_collect_duration_seconds" => "Time the last sampling round took.",
        "infermon_store_write_errors_total" => "Failed attempts to write a sample to the store.",
        "infermon_store_backlog_samples" => "Samples kept in memory until the store takes writes.",
        "infermon_store_samples_written_late_total" => "Samples written late, from the backlog.",
        "infermon_store_samples_dropped_total" => "Samples never written to the store.",
        n if n.starts_with("infermon_node_pressure") => "PSI avg10 share of time stalled.",
        n if n.starts_with("infermon_node_") => {
            "Node figure; see the snapshot field of the same name."
        }
        n if n.starts_with("infermon_gpu_") => {
            "GPU figure; see the snapshot field of the same name."
        }
        _ => "infermon figure.",
    }
}

/// Renders series, grouped by name with one `# HELP` and `# TYPE` per family.
pub fn render(points: &[SeriesPoint]) -> String {
    let mut order: Vec<&'static str> = Vec::new();
    for p in points {
        if !order.contains(&p.name) {
            order.push(p.name);
        }
    }
    let mut out = String::with_capacity(points.len() * 96);
    for name in order {
        let mut first = true;
        for p in points.iter().filter(|p| p.name == name) {
            if first {
                let kind = match p.kind {
                    MetricKind::Counter => "counter",
                    MetricKind::Gauge => "gauge",
                };
                let _ = writeln!(out, "# HELP {name} {}", help(name));
                let _ = writeln!(out, "# TYPE {name} {kind}");
                first = false;
            }
            out.push_str(name);
            if !p.labels.is_empty() {
                out.push('{');
                out.push_str(&p.label_key());
                out.push('}');
            }
            let _ = writeln!(out, " {}", fmt_value(p.value));
        }
    }
    out
}

/// Shortest exact representation (Rust's `{}` for f64 round-trips).
fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}
