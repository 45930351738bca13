//! Constructed snapshots for the unit tests, derived by `infermon-model` from its own test
//! samples so that every figure is one `derive` could produce.

use std::collections::BTreeMap;

use infermon_model::detail::SchedulerFigures;
use infermon_model::raw::{GpuProcess, GpuVendor};
use infermon_model::reqstats::RequestStats;
use infermon_model::stats::Summary;
use infermon_model::testing::sample_with_engine;
use infermon_model::{derive, DeriveSettings, GpuFigures, ProcessCpuFigures, Snapshot};

/// Two llama.cpp samples 2 s apart: 200 tokens in 1 busy second (speed 200 tok/s,
/// throughput 100 tok/s); host figures filled in, no GPU.
pub fn snapshot() -> Snapshot {
    let a = sample_with_engine(0, 100.0, 1.0);
    let b = sample_with_engine(2000, 300.0, 2.0);
    let mut s = derive(Some(&a), &b, &DeriveSettings::default());
    let h = &mut s.host;
    h.cpu_utilization_ratio = Some(0.42);
    h.cpu_count = Some(16);
    h.memory_total_bytes = Some(64 << 30);
    h.memory_available_bytes = Some(48 << 30);
    h.swap_total_bytes = Some(8 << 30);
    h.swap_used_bytes = Some(1 << 30);
    h.top_processes = vec![ProcessCpuFigures {
        pid: 4242,
        name: "llama-server".to_string(),
        cpu_cores: 1.93,
        cpu_ratio: Some(0.12),
        cpu_seconds_total: 100.0,
    }];
    s.engines[0].pid = Some(4242);
    s.engines[0].memory_resident_bytes = Some(3 << 30);
    s
}

/// [`snapshot`] with one NVIDIA GPU that runs the engine's process.
pub fn snapshot_with_gpu() -> Snapshot {
    let mut s = snapshot();
    s.gpus.push(GpuFigures {
        vendor: GpuVendor::Nvidia,
        index: 0,
        id: "GPU-0000".to_string(),
        name: Some("NVIDIA H100 80GB HBM3".to_string()),
        utilization_ratio: Some(0.87),
        memory_busy_ratio: Some(0.4),
        vram_used_bytes: Some(40 << 30),
        vram_total_bytes: Some(80 << 30),
        gtt_used_bytes: None,
        gtt_total_bytes: None,
        power_watts: Some(350.0),
        power_limit_watts: Some(700.0),
        energy_joules_total: None,
        temperature_celsius: Some(61.0),
        clock_hertz: Some(1.98e9),
        clock_max_hertz: Some(1.98e9),
        memory_clock_hertz: None,
        thermal: None,
        processes: vec![
            GpuProcess {
                pid: 4242,
                used_bytes: Some(38 << 30),
            },
            GpuProcess {
                pid: 777,
                used_bytes: None,
            },
        ],
        unavailable: Vec::new(),
    });
    s
}

/// Proxy figures for `model` sent to `upstream`: TTFT p50/p99 40/90 ms, TPOT 8/12 ms,
/// 55.5 output tok/s.
pub fn request_stats(upstream: &str, model: &str) -> RequestStats {
    let summary = |p50: f64, p99: f64| Summary {
        count: 10,
        mean: p50,
        min: p50,
        p50,
        p90: p99,
        p99,
        max: p99,
    };
    RequestStats {
        upstream: upstream.to_string(),
        model: model.to_string(),
        window_seconds: 60.0,
        requests: 10,
        completed: 10,
        errors: 0,
        cancelled: 0,
        error_ratio: 0.0,
        outcomes: BTreeMap::new(),
        ttft_ms: Some(summary(40.0, 90.0)),
        tpot_ms: Some(summary(8.0, 12.0)),
        itl_ms: None,
        e2e_ms: None,
        prompt_tokens: 100,
        completion_tokens: 3330,
        output_tokens_per_second: 55.5,
        requests_per_second: 0.2,
        goodput_requests_per_second: None,
        slo_attainment_ratio: None,
    }
}

/// A scheduler entry (vLLM/SGLang style) for `model`.
pub fn scheduler(model: &str, tok_s: Option<f64>, kv: Option<f64>) -> SchedulerFigures {
    SchedulerFigures {
        model: model.to_string(),
        generation_throughput_tokens_per_second: tok_s,
        kv_usage_ratio: kv,
        requests_running: Some(1.0),
        requests_waiting: Some(0.0),
        ..SchedulerFigures::default()
    }
}
