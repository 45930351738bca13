//! The SGLang collector against fixture texts (pure parsing, then `derive` over two samples)
//! and against a fake server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "prom_support/mod.rs"]
mod support;

use infermon_engines::sglang::{parse_metrics, Sglang};
use infermon_model::detail::{HistogramRaw, LatencyMetric};
use infermon_model::raw::{EngineKind, EngineRaw, Reading};
use support::{close, derive_pair, Fake};

const T0: &str = include_str!("fixtures/sglang/01_t0.prom");
const T5: &str = include_str!("fixtures/sglang/02_t5.prom");
const IDLE: &str = include_str!("fixtures/sglang/03_idle.prom");
const OLD: &str = include_str!("fixtures/sglang/04_old_names.prom");

const MODEL: &str = "Qwen/Qwen2.5-7B-Instruct";

fn hist(hs: &[HistogramRaw], m: LatencyMetric) -> Option<&HistogramRaw> {
    hs.iter().find(|h| h.metric == m && h.model == MODEL)
}

fn engine(text: &str) -> EngineRaw {
    let m = parse_metrics(text).unwrap();
    let mut e = EngineRaw::blank(EngineKind::Sglang, "http://127.0.0.1:30000", "test", "n/a");
    e.metrics = Reading::ok(m.counters);
    e.histograms = m.histograms;
    e.scheduler = m.scheduler;
    e
}

#[test]
fn parse_counters_gauges_and_histograms() {
    let m = parse_metrics(T0).unwrap();
    assert_eq!(m.counters.prompt_tokens_total, 1_200_000.0); // written 1.2e+06
    assert_eq!(m.counters.generation_tokens_total, 480_000.0);
    // Two tensor-parallel ranks report the same scheduler: read once, not doubled.
    assert_eq!(m.counters.requests_running, Some(12.0));
    assert_eq!(m.counters.requests_waiting, Some(3.0));
    assert_eq!(m.counters.process_start_unix, Some(1_756_200_000));
    assert_eq!(m.scheduler.len(), 1);
    let s = &m.scheduler[0];
    assert_eq!(s.model, MODEL);
    assert_eq!(s.kv_usage_ratio, Some(0.62));
    assert_eq!(s.cache_hit_ratio, Some(0.35));
    assert_eq!(s.generation_throughput_gauge, Some(850.5));
    assert_eq!(s.preemptions_total, Some(2.0));
    assert_eq!(s.requests_finished_total, Some(1500.0));
    assert_eq!(s.prefix_cache_queries_total, Some(1_200_000.0));
    assert_eq!(s.prefix_cache_hits_total, Some(300_000.0));
    assert_eq!(s.spec_accept_ratio, None); // speculative decoding off (length 0)
    let q = hist(&m.histograms, LatencyMetric::Queue).unwrap();
    assert_eq!(q.buckets[0].le, 0.0);
    assert_eq!(q.count, 1500.0);
    assert_eq!(
        hist(&m.histograms, LatencyMetric::Ttft).unwrap().count,
        1500.0
    );
    assert_eq!(hist(&m.histograms, LatencyMetric::Itl).unwrap().sum, 180.0);
    assert!(hist(&m.histograms, LatencyMetric::E2e).is_some());
    assert!(hist(&m.histograms, LatencyMetric::Tpot).is_none());
    assert!(m.notes.is_empty(), "{:?}", m.notes);
}

#[test]
fn window_figures_by_hand() {
    let snap = derive_pair(engine(T0), engine(T5), 5_000);
    let e = &snap.engines[0];
    assert_eq!(e.generation_throughput_tokens_per_second, Some(800.0)); // 4000 / 5 s
    let t = e
        .latency
        .iter()
        .find(|f| f.metric == LatencyMetric::Ttft)
        .unwrap();
    // Window buckets: ≤0.1: 5, ≤0.2: 15, ≤0.4: 30, ≤0.6: 40, ≤0.8: 45, ≤1: 48, ≤2: 50.
    assert_eq!(t.count, 50.0);
    assert!(close(t.mean_seconds, 0.4)); // 20 s / 50
                                         // p50: rank 25 in (0.2, 0.4], 15 below, 15 inside: 0.2 + 0.2 × 10/15
    assert!(close(t.p50_seconds, 0.2 + 0.2 * 10.0 / 15.0));
    // p90: rank 45 in (0.6, 0.8], 40 below, 5 inside: 0.6 + 0.2 × 5/5 = 0.8
    assert!(close(t.p90_seconds, 0.8));
    // p99: rank 49.5 in (1, 2], 48 below, 2 inside: 1 + 1 × 1.5/2 = 1.75
    assert!(close(t.p99_seconds, 1.75));
    let q = e
        .latency
        .iter()
        .find(|f| f.metric == LatencyMetric::Queue)
        .unwrap();
    // 30 of 50 waited 0 s (le="0.0"): the median is 0.
    assert_eq!((q.count, q.p50_seconds), (50.0, Some(0.0)));
    let s = &e.scheduler[0];
    assert_eq!(s.prompt_throughput_tokens_per_second, Some(2000.0));
    assert!(close(s.prefix_cache_hit_ratio, 0.6)); // 6000 cached of 10000, not the 0.58 gauge
    assert_eq!(s.preemptions_in_window, Some(1.0));
    assert_eq!(s.kv_usage_ratio, Some(0.66));
    let names: Vec<&str> = snap.series().iter().map(|p| p.name).collect();
    assert!(names.contains(&"infermon_engine_kv_cache_usage_ratio"));
    assert!(names.contains(&"infermon_engine_prefix_cache_hit_ratio"));
    assert!(!names.contains(&"infermon_engine_spec_accept_ratio"));
}

#[test]
fn counter_reset_gives_no_window_figures() {
    let snap = derive_pair(engine(T5), engine(T0), 5_000);
    let e = &snap.engines[0];
    assert!(e.counters_reset);
    assert!(e.latency.is_empty(), "{:?}", e.latency);
    let s = &e.scheduler[0];
    assert_eq!(s.generation_throughput_tokens_per_second, None);
    assert_eq!(s.prefix_cache_hit_ratio, None);
    assert_eq!(s.preemptions_in_window, None);
}

#[test]
fn idle_server_has_zero_tokens_and_no_histograms() {
    let m = parse_metrics(IDLE).unwrap();
    assert_eq!(m.counters.generation_tokens_total, 0.0);
    assert!(m.histograms.is_empty());
    let s = &m.scheduler[0];
    assert_eq!(s.generation_tokens_total, None);
    assert_eq!(s.kv_usage_ratio, Some(0.0));
    assert_eq!(s.preemptions_total, None);
}

#[test]
fn older_release_names() {
    let m = parse_metrics(OLD).unwrap();
    let tpot = hist(&m.histograms, LatencyMetric::Tpot).unwrap();
    assert_eq!(tpot.count, 10_000.0);
    assert!(hist(&m.histograms, LatencyMetric::Itl).is_none());
    let s = &m.scheduler[0];
    assert_eq!(s.spec_accept_ratio, Some(0.7));
    assert_eq!(s.prefix_cache_queries_total, None); // no cached_tokens counter
    let snap = derive_pair(engine(OLD), engine(OLD), 2_000);
    let f = &snap.engines[0].scheduler[0];
    assert_eq!(f.prefix_cache_hit_ratio, Some(0.35)); // the engine's gauge
    assert_eq!(f.spec_accept_ratio, Some(0.7));
}

#[tokio::test]
async fn read_from_a_fake_server() {
    let fake = Fake::start(vec![
        ("/health", 200, ""),
        (
            "/v1/models",
            200,
            r#"{"object":"list","data":[{"id":"Qwen/Qwen2.5-7B-Instruct","max_model_len":32768}]}"#,
        ),
        (
            "/get_model_info",
            200,
            r#"{"model_path":"/models/qwen2.5-7b","is_generation":true}"#,
        ),
        ("/metrics", 200, T0),
    ])
    .await;
    let raw = Sglang::new(&fake.base, "config", support::TIMEOUT)
        .read()
        .await;
    assert_eq!(raw.kind, EngineKind::Sglang);
    let p = raw.props.value().unwrap();
    assert_eq!((p.model.as_str(), p.n_ctx), (MODEL, Some(32768)));
    assert_eq!(p.model_path.as_deref(), Some("/models/qwen2.5-7b"));
    assert_eq!(raw.metrics.value().unwrap().requests_running, Some(12.0));
    assert_eq!(raw.histograms.len(), 4);
    assert!(derive_pair(raw.clone(), raw, 1000).engines[0].up);
}

#[tokio::test]
async fn hanging_and_html_endpoints_are_unavailable_alone() {
    let fake = Fake::start(vec![
        ("/health", support::HANG, ""),
        (
            "/get_model_info",
            200,
            r#"{"model_path":"/models/qwen2.5-7b"}"#,
        ),
        (
            "/metrics",
            200,
            "<html><head><title>502 Bad Gateway</title></head></html>",
        ),
    ])
    .await;
    let raw = Sglang::new(&fake.base, "config", support::TIMEOUT)
        .read()
        .await;
    let why = raw.health.reason().unwrap();
    assert!(why.contains(&format!("{}/health", fake.base)) && why.contains("timed out"));
    // /v1/models is missing (404), /get_model_info still names the model.
    assert_eq!(raw.props.value().unwrap().model, "/models/qwen2.5-7b");
    let why = raw.metrics.reason().unwrap();
    assert!(why.contains(&format!("{}/metrics", fake.base)), "{why}");
    assert!(why.contains("html"), "{why}");
}
