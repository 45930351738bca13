//! The vLLM collector against fixture texts (pure parsing, then `derive` over two samples) and
//! against a fake server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "prom_support/mod.rs"]
mod support;

use infermon_engines::vllm::{parse_metrics, Vllm};
use infermon_model::detail::{HistogramRaw, LatencyMetric, SchedulerRaw};
use infermon_model::raw::{EngineKind, EngineRaw};
use support::{close, derive_pair, Fake};

const IDLE: &str = include_str!("fixtures/vllm/01_idle_single_engine.prom");
const TTFT: &str = include_str!("fixtures/vllm/02_ttft_histogram.prom");
const T0: &str = include_str!("fixtures/vllm/03_dp2_two_models_t0.prom");
const T10: &str = include_str!("fixtures/vllm/04_dp2_two_models_t10.prom");
const RESTART: &str = include_str!("fixtures/vllm/05_after_restart.prom");
const OLD: &str = include_str!("fixtures/vllm/06_old_names.prom");
const BOTH: &str = include_str!("fixtures/vllm/07_old_and_new_names.prom");

const LLAMA: &str = "meta-llama/Llama-3.1-8B-Instruct";
const QWEN: &str = "Qwen/Qwen3-8B";

fn hist<'a>(hs: &'a [HistogramRaw], m: LatencyMetric, model: &str) -> &'a HistogramRaw {
    hs.iter()
        .find(|h| h.metric == m && h.model == model)
        .unwrap_or_else(|| panic!("no {m:?} histogram for {model}"))
}

fn sched<'a>(s: &'a [SchedulerRaw], model: &str) -> &'a SchedulerRaw {
    s.iter().find(|s| s.model == model).unwrap()
}

/// An engine reading as `read()` makes it, from a metrics text.
fn engine(text: &str) -> EngineRaw {
    let m = parse_metrics(text).unwrap();
    let mut e = EngineRaw::blank(EngineKind::Vllm, "http://127.0.0.1:8000", "test", "n/a");
    e.metrics = infermon_model::raw::Reading::ok(m.counters);
    e.histograms = m.histograms;
    e.scheduler = m.scheduler;
    e
}

#[test]
fn reference_idle_and_ttft() {
    let m = parse_metrics(&format!("{IDLE}{TTFT}")).unwrap();
    assert_eq!(m.counters.prompt_tokens_total, 4096.0);
    assert_eq!(m.counters.generation_tokens_total, 2048.0);
    assert_eq!(m.counters.requests_running, Some(0.0));
    assert_eq!(m.counters.prompt_seconds_total, None);
    let s = sched(&m.scheduler, QWEN);
    assert_eq!(s.prefix_cache_queries_total, Some(4096.0));
    assert_eq!(s.prefix_cache_hits_total, Some(1024.0));
    assert_eq!(s.requests_finished_total, Some(8.0)); // 7 stop + 1 length + 0 abort
    assert_eq!(s.kv_usage_ratio, Some(0.0));
    assert_eq!(s.preemptions_total, None); // not in the text: absent, not 0
    assert_eq!(s.spec_draft_tokens_total, None);
    assert_eq!(m.histograms.len(), 1);
    let h = hist(&m.histograms, LatencyMetric::Ttft, QWEN);
    assert_eq!(h.buckets.len(), 23);
    assert_eq!((h.sum, h.count), (2.54, 8.0));
    assert_eq!(h.buckets.last().unwrap().le, f64::MAX);
    assert!(h.buckets.windows(2).all(|w| w[0].le < w[1].le));
    assert!(m.notes.is_empty(), "{:?}", m.notes);
}

#[test]
fn engines_summed_and_models_kept_apart() {
    let m = parse_metrics(T0).unwrap();
    // 1.234567e+06 + 800000 + 1.5e+03 over every series.
    assert_eq!(m.counters.generation_tokens_total, 2_036_067.0);
    assert_eq!(m.counters.requests_running, Some(47.0));
    assert_eq!(m.counters.process_start_unix, Some(1_756_100_000));
    assert_eq!(m.scheduler.len(), 2);
    let l = sched(&m.scheduler, LLAMA);
    assert_eq!(l.generation_tokens_total, Some(2_034_567.0));
    assert_eq!(l.requests_running, Some(44.0));
    assert!(close(l.kv_usage_ratio, 0.9)); // mean of 0.9731 and 0.8269, not their sum
    assert_eq!(l.preemptions_total, Some(4.0));
    assert_eq!(l.spec_draft_tokens_total, Some(6000.0));
    assert_eq!(l.requests_finished_total, Some(1520.0));
    let q = sched(&m.scheduler, QWEN);
    assert_eq!(q.generation_tokens_total, Some(1500.0));
    assert_eq!(q.spec_draft_tokens_total, None);
    let h = hist(&m.histograms, LatencyMetric::Ttft, LLAMA);
    let counts: Vec<f64> = h.buckets.iter().map(|b| b.count).collect();
    assert_eq!(counts, vec![150.0, 600.0, 1200.0, 1450.0, 1520.0, 1520.0]);
    assert_eq!((h.sum, h.count), (690.0, 1520.0));
    assert_eq!(hist(&m.histograms, LatencyMetric::Ttft, QWEN).count, 30.0);
    assert_eq!(
        hist(&m.histograms, LatencyMetric::Itl, LLAMA).count,
        15000.0
    );
}

#[test]
fn window_figures_by_hand() {
    let snap = derive_pair(engine(T0), engine(T10), 10_000);
    let e = &snap.engines[0];
    assert!(!e.counters_reset);
    assert_eq!(e.generation_throughput_tokens_per_second, Some(400.0));
    let ttft = e
        .latency
        .iter()
        .find(|f| f.metric == LatencyMetric::Ttft && f.model == LLAMA)
        .unwrap();
    // Window buckets (both engines): ≤0.1: 10, ≤0.25: 40, ≤0.5: 80, ≤1: 95, ≤2.5: 100.
    assert_eq!(ttft.count, 100.0);
    assert!(close(ttft.mean_seconds, 0.45)); // 45 s / 100
                                             // p50: rank 50 in (0.25, 0.5], 40 below, 40 inside: 0.25 + 0.25 × 10/40 = 0.3125
    assert!(close(ttft.p50_seconds, 0.3125));
    // p90: rank 90 in (0.5, 1], 80 below, 15 inside: 0.5 + 0.5 × 10/15
    assert!(close(ttft.p90_seconds, 0.5 + 0.5 * 10.0 / 15.0));
    // p99: rank 99 in (1, 2.5], 95 below, 5 inside: 1 + 1.5 × 4/5 = 2.2
    assert!(close(ttft.p99_seconds, 2.2));
    let idle = e
        .latency
        .iter()
        .find(|f| f.metric == LatencyMetric::Ttft && f.model == QWEN)
        .unwrap();
    assert_eq!((idle.count, idle.p50_seconds), (0.0, None));
    let l = e.scheduler.iter().find(|s| s.model == LLAMA).unwrap();
    assert_eq!(l.generation_throughput_tokens_per_second, Some(400.0));
    assert_eq!(l.prompt_throughput_tokens_per_second, Some(300.0));
    assert!(close(l.prefix_cache_hit_ratio, 0.6)); // 1800 / 3000
    assert_eq!(l.preemptions_in_window, Some(3.0));
    assert!(close(l.spec_accept_ratio, 0.7)); // 700 / 1000
    let q = e.scheduler.iter().find(|s| s.model == QWEN).unwrap();
    assert_eq!(q.generation_throughput_tokens_per_second, Some(0.0));
    assert_eq!(q.prefix_cache_hit_ratio, None); // no lookups in the window
    assert_eq!(q.spec_accept_ratio, None);
    let series = snap.series();
    let p50 = series
        .iter()
        .find(|p| {
            p.name == "infermon_engine_latency_seconds"
                && p.labels.contains(&("model", LLAMA.to_string()))
                && p.labels.contains(&("metric", "ttft".to_string()))
                && p.labels.contains(&("percentile", "50".to_string()))
        })
        .unwrap();
    assert_eq!(p50.value, 0.3125);
    // Qwen had no requests: its count is exported, its quantiles are not.
    let qwen_quantiles = series.iter().filter(|p| {
        p.name == "infermon_engine_latency_seconds" && p.labels.contains(&("model", QWEN.into()))
    });
    assert_eq!(qwen_quantiles.count(), 0);
}

#[test]
fn counter_reset_gives_no_window_figures() {
    let snap = derive_pair(engine(T10), engine(RESTART), 2_000);
    let e = &snap.engines[0];
    assert!(e.counters_reset);
    assert!(e.latency.is_empty(), "{:?}", e.latency);
    assert_eq!(e.scheduler.len(), 1);
    let l = &e.scheduler[0];
    assert_eq!(l.generation_throughput_tokens_per_second, None);
    assert_eq!(l.prompt_throughput_tokens_per_second, None);
    assert_eq!(l.prefix_cache_hit_ratio, None);
    assert_eq!(l.preemptions_in_window, None);
    assert_eq!(l.kv_usage_ratio, Some(0.02)); // a gauge, still true now
}

#[test]
fn old_names_are_read() {
    let m = parse_metrics(OLD).unwrap();
    let q = sched(&m.scheduler, QWEN);
    assert_eq!(q.kv_usage_ratio, Some(0.4));
    assert_eq!(q.prefix_cache_queries_total, Some(5000.0));
    assert_eq!(q.prefix_cache_hits_total, Some(1000.0));
    let itl = hist(&m.histograms, LatencyMetric::Itl, QWEN);
    assert_eq!(itl.count, 2500.0);
}

#[test]
fn old_and_new_names_never_double_count() {
    let m = parse_metrics(BOTH).unwrap();
    let q = sched(&m.scheduler, QWEN);
    assert_eq!(q.kv_usage_ratio, Some(0.4));
    assert_eq!(q.prefix_cache_queries_total, Some(5000.0));
    let itl: Vec<_> = m
        .histograms
        .iter()
        .filter(|h| h.metric == LatencyMetric::Itl)
        .collect();
    assert_eq!(itl.len(), 1);
    assert_eq!(itl[0].count, 2500.0);
    assert_eq!(hist(&m.histograms, LatencyMetric::Tpot, QWEN).count, 40.0);
}

const MODELS: &str = r#"{"object":"list","data":[{"id":"meta-llama/Llama-3.1-8B-Instruct","object":"model","root":"/models/llama","parent":null,"max_model_len":8192}]}"#;

#[tokio::test]
async fn read_from_a_fake_server() {
    let fake = Fake::start(vec![
        ("/health", 200, ""),
        ("/v1/models", 200, MODELS),
        ("/version", 200, r#"{"version":"0.11.0"}"#),
        ("/metrics", 200, T0),
    ])
    .await;
    let raw = Vllm::new(&fake.base, "flag", support::TIMEOUT).read().await;
    assert_eq!(raw.kind, EngineKind::Vllm);
    assert_eq!(raw.health.value().unwrap().status, "ok");
    let p = raw.props.value().unwrap();
    assert_eq!(p.model, LLAMA);
    assert_eq!(p.n_ctx, Some(8192));
    assert_eq!(p.build_info.as_deref(), Some("vllm 0.11.0"));
    assert!(raw.metrics.value().is_some());
    assert_eq!(raw.scheduler.len(), 2);
    assert!(!raw.histograms.is_empty());
    let snap = derive_pair(raw.clone(), raw, 1000);
    assert!(snap.engines[0].up);
}

#[tokio::test]
async fn hanging_and_html_endpoints_are_unavailable_alone() {
    let fake = Fake::start(vec![
        ("/health", 200, ""),
        ("/v1/models", support::HANG, ""),
        (
            "/metrics",
            200,
            "<!DOCTYPE html>\n<html><body>Sign in</body></html>",
        ),
    ])
    .await;
    let raw = Vllm::new(&fake.base, "flag", support::TIMEOUT).read().await;
    assert_eq!(raw.health.value().unwrap().status, "ok");
    let why = raw.props.reason().unwrap();
    assert!(why.contains(&format!("{}/v1/models", fake.base)), "{why}");
    assert!(why.contains("timed out"), "{why}");
    let why = raw.metrics.reason().unwrap();
    assert!(why.contains(&format!("{}/metrics", fake.base)), "{why}");
    assert!(why.contains("html"), "{why}");
    assert!(raw.histograms.is_empty() && raw.scheduler.is_empty());

    let fake = Fake::start(vec![
        ("/health", 200, ""),
        ("/v1/models", 200, "<html>proxy login</html>"),
        ("/metrics", support::HANG, ""),
    ])
    .await;
    let raw = Vllm::new(&fake.base, "flag", support::TIMEOUT).read().await;
    assert!(raw.health.value().is_some());
    let why = raw.props.reason().unwrap();
    assert!(
        why.contains("/v1/models") && why.contains("not JSON"),
        "{why}"
    );
    let why = raw.metrics.reason().unwrap();
    assert!(why.contains(&format!("{}/metrics", fake.base)) && why.contains("timed out"));
}
