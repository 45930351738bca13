//! Builders of raw samples for tests and examples (used by this crate's doc examples and by
//! other crates' tests); nothing here reads the system.

use crate::raw::*;

/// A sample where every host source is unavailable and there are no GPUs or engines.
pub fn empty_sample(mono_ms: u64) -> RawSample {
    let na = || "not read in this test";
    RawSample {
        ts_unix_ms: 1_700_000_000_000 + mono_ms as i64,
        mono_ms,
        host: HostRaw {
            cpu: Reading::unavailable(na()),
            cpu_freq: Reading::unavailable(na()),
            memory: Reading::unavailable(na()),
            vmstat: Reading::unavailable(na()),
            pressure: Reading::unavailable(na()),
            rapl: Reading::unavailable(na()),
            temperatures: Reading::unavailable(na()),
            cpu_throttle: Reading::unavailable(na()),
            top_processes: None,
        },
        gpus: Vec::new(),
        gpu_sources: Vec::new(),
        engines: Vec::new(),
        agent: AgentRaw {
            cpu_seconds_total: None,
            rss_bytes: None,
            interval_ms: 2000,
            collect_ms: 1.0,
        },
    }
}

/// A healthy llama.cpp engine with the given cumulative generation counters.
pub fn llamacpp_engine(tokens: f64, gen_seconds: f64) -> EngineRaw {
    EngineRaw {
        kind: EngineKind::Llamacpp,
        instance: "http://127.0.0.1:8080".to_string(),
        origin: "flag".to_string(),
        pid: None,
        health: Reading::ok(EngineHealth {
            http_status: 200,
            status: "ok".to_string(),
        }),
        props: Reading::ok(EngineProps {
            model: "test-model".to_string(),
            model_path: None,
            n_ctx: Some(4096),
            total_slots: Some(1),
            build_info: None,
        }),
        metrics: Reading::ok(EngineCounters {
            prompt_tokens_total: 0.0,
            prompt_seconds_total: Some(0.0),
            generation_tokens_total: tokens,
            generation_seconds_total: Some(gen_seconds),
            decode_calls_total: None,
            generation_window_rate: None,
            prompt_window_rate: None,
            requests_running: Some(0.0),
            requests_waiting: Some(0.0),
            process_start_unix: Some(1_700_000_000),
        }),
        slots: Reading::unavailable("not read in this test"),
        memory: None,
        histograms: Vec::new(),
        scheduler: Vec::new(),
        models: None,
        events: Vec::new(),
        notes: Vec::new(),
    }
}

/// [`empty_sample`] with one [`llamacpp_engine`].
pub fn sample_with_engine(mono_ms: u64, tokens: f64, gen_seconds: f64) -> RawSample {
    let mut s = empty_sample(mono_ms);
    s.engines.push(llamacpp_engine(tokens, gen_seconds));
    s
}
