//! `infermon bench sweep --url URL --models …` through model-routing servers.
//!
//! The routers are `infermon_mockllm::router`, a constructed stand-in for llama-swap and
//! Ollama (neither can run in this test), forwarding each inference request to the
//! `infermon-mockllm` serving the model it names. The mocks differ in speed, so the sweep's
//! ranking is checked against speeds set here, and every call the router got is checked:
//! which models were unloaded, and that no llama-swap `/upstream` route was asked for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use infermon_bench::served::parse_specs;
use infermon_bench::sweep::{run_sweep, SweepConfig};
use infermon_bench::{RunConfig, Silent};
use infermon_mockllm::router::{spawn_router, RoutedModel, RouterKind};
use infermon_mockllm::{spawn, MockConfig, MockServer};

async fn mock(itl_ms: u64) -> MockServer {
    spawn(MockConfig {
        itl: Duration::from_millis(itl_ms),
        tokens: 16,
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

fn run_cfg(url: &str) -> RunConfig {
    let mut run = RunConfig::new(url);
    run.requests = 4;
    run.max_tokens = 16;
    run.prompts = infermon_bench::PromptSource::Synthetic { input_tokens: 16 };
    run.hardware.discovery = false;
    run.hardware.interval = Duration::from_millis(200);
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_swap_models_are_swept_and_the_ones_it_loaded_unloaded() {
    let (slow, fast, other) = (mock(6).await, mock(1).await, mock(1).await);
    let models = vec![
        RoutedModel::new("smol-q8_0", &slow.url()),
        RoutedModel::new("smol-q4_0", &fast.url()),
        RoutedModel::new("other-model", &other.url()),
    ];
    // other-model was loaded before the sweep; it is not swept and must stay untouched.
    let r = spawn_router(RouterKind::LlamaSwap, models, &["other-model"])
        .await
        .unwrap();
    let mut cfg = SweepConfig::new(Vec::new(), run_cfg(r.url()));
    cfg.models = parse_specs(&["smol-*".to_string()]).unwrap();
    let report = run_sweep(&cfg, &Silent).await.unwrap();
    let sw = report.sweep.as_ref().unwrap();
    let names: Vec<&str> = sw
        .points
        .iter()
        .map(|p| p.model.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["smol-q8_0", "smol-q4_0"], "in the server's order");
    // Quant from the names (no file on this machine), marked as such.
    assert_eq!(sw.points[0].quant, "Q8_0 (from name)");
    assert_eq!(sw.points[0].facts_source, "model name");
    assert_eq!(sw.points[0].size_bytes, None);
    let tps: Vec<f64> = sw
        .points
        .iter()
        .map(|p| p.tokens_per_second.unwrap())
        .collect();
    assert!(
        tps[1] > 2.0 * tps[0],
        "1 ms vs 6 ms inter-token latency: {tps:?}"
    );
    // No perplexity, no sizes: speed alone, the fast one is the knee.
    assert!(sw.points[1].knee && !sw.points[0].knee, "{:?}", sw.points);
    // Each model ran its 1 warm-up + 4 requests on its own mock.
    assert_eq!(slow.stats().completed, 5);
    assert_eq!(fast.stats().completed, 5);
    assert_eq!(other.stats().requests, 0);
    assert_eq!(r.unloaded(), ["smol-q8_0", "smol-q4_0"]);
    // The hardware collectors polled the model's own llama-server address, read from
    // /running, never an /upstream route of llama-swap.
    assert_eq!(
        report.run.system.engine_url.as_deref(),
        Some(format!("http://{}", fast.addr()).as_str()),
        "{:?}",
        report.run.system
    );
    let log = r.log();
    assert!(log.iter().all(|l| !l.contains("/upstream")), "{log:?}");
    assert!(log.iter().any(|l| l == "GET /running"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_models_get_their_quant_from_api_show_and_are_unloaded() {
    let (a, b) = (mock(4).await, mock(1).await);
    let model = |name: &str, upstream: &MockServer, quant: &str| RoutedModel {
        quant: Some(quant.into()),
        parameters: Some(1_000_000_000),
        size_bytes: Some(100_000_000 * name.len() as u64),
        ..RoutedModel::new(name, &upstream.url())
    };
    let models = vec![
        model("llama3.1:8b-instruct-q8_0", &a, "Q8_0"),
        model("llama3.1:8b-instruct-q4_K_M", &b, "Q4_K_M"),
    ];
    let r = spawn_router(RouterKind::Ollama, models, &["llama3.1:8b-instruct-q4_K_M"])
        .await
        .unwrap();
    let mut run = run_cfg(r.url());
    run.api = Some(infermon_model::request::Api::OllamaChat);
    let mut cfg = SweepConfig::new(Vec::new(), run);
    cfg.models = parse_specs(&[
        "llama3.1:8b-instruct-q4_K_M".to_string(),
        "llama3.1:8b-instruct-q8_0".to_string(),
    ])
    .unwrap();
    let report = run_sweep(&cfg, &Silent).await.unwrap();
    let sw = report.sweep.as_ref().unwrap();
    let by_name: BTreeMap<&str, &infermon_bench::SweepPoint> = sw
        .points
        .iter()
        .map(|p| (p.model.as_deref().unwrap(), p))
        .collect();
    let q8 = by_name["llama3.1:8b-instruct-q8_0"];
    let q4 = by_name["llama3.1:8b-instruct-q4_K_M"];
    assert_eq!((q8.quant.as_str(), q4.quant.as_str()), ("Q8_0", "Q4_K_M"));
    assert_eq!(q8.facts_source, "Ollama /api/show");
    // Size from /api/tags (set above: 10⁸ × name length), bits = 8 × size ÷ parameters.
    let size = 100_000_000u64 * "llama3.1:8b-instruct-q8_0".len() as u64;
    assert_eq!(q8.size_bytes, Some(size));
    assert!((q8.bits_per_weight.unwrap() - 8.0 * size as f64 / 1e9).abs() < 1e-9);
    assert!(q4.tokens_per_second.unwrap() > q8.tokens_per_second.unwrap());
    // The q4 model was loaded before: only q8 is unloaded.
    assert_eq!(r.unloaded(), ["llama3.1:8b-instruct-q8_0"]);
    assert_eq!(a.stats().completed, 5);
    assert_eq!(b.stats().completed, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_models_and_empty_patterns_stop_before_anything_runs() {
    let m = mock(1).await;
    let r = spawn_router(
        RouterKind::LlamaSwap,
        vec![RoutedModel::new("a", &m.url())],
        &[],
    )
    .await
    .unwrap();
    for (spec, want) in [("b", "has no model \"b\""), ("x*", "matches no model")] {
        let mut cfg = SweepConfig::new(Vec::new(), run_cfg(r.url()));
        cfg.models = parse_specs(&[spec.to_string()]).unwrap();
        let e = run_sweep(&cfg, &Silent).await.unwrap_err();
        assert!(e.contains(want) && e.contains("it offers: a"), "{e}");
    }
    assert_eq!(m.stats().requests, 0);
    assert!(r.unloaded().is_empty());
}
