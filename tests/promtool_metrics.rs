//! `promtool check metrics` on the agent's own `/metrics` reports nothing: no gauge named like
//! a counter (`_total`) or a histogram part (`_count`), no `quantile` label outside a summary.
//! The agent runs as a user runs it, with every family that carries percentiles present: a
//! proxy in front of a mock OpenAI engine with streamed requests through it (the request
//! window's percentiles), and a vLLM engine whose `/metrics` is a recorded vLLM fixture that
//! moves between two samples (the engine's latency percentiles), and a remote write receiver
//! (its counters). Skipped without promtool
//! unless `INFERMON_REQUIRE_E2E=1` (`scripts/setup-test-deps.sh` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infermon_mockllm::MockConfig;

const VLLM_T0: &str =
    include_str!("../crates/engines/tests/fixtures/vllm/03_dp2_two_models_t0.prom");
const VLLM_T10: &str =
    include_str!("../crates/engines/tests/fixtures/vllm/04_dp2_two_models_t10.prom");

/// Families that must be in the exposition for the check to mean anything.
const MUST_HAVE: [&str; 5] = [
    "infermon_remote_write_snapshots_dropped_total",
    "infermon_requests_latency_seconds",
    "infermon_engine_latency_seconds",
    "infermon_engine_prompt_tokens_total",
    "infermon_node_cpus",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_nothing_to_lint_on_the_agents_metrics() {
    let Some(promtool) = support::promtool("promtool_finds_nothing_to_lint_on_the_agents_metrics")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vllm_file = dir.path().join("vllm.prom");
    std::fs::write(&vllm_file, VLLM_T0).unwrap();
    let vllm = infermon_mockllm::spawn(MockConfig {
        metrics_file: Some(vllm_file.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let chat = infermon_mockllm::spawn(MockConfig {
        tokens: 8,
        itl: Duration::from_millis(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let proxy = format!("127.0.0.1:{}", support::free_port());
    let (_agent, api) = support::start_agent(
        &[
            "--no-discovery",
            "--interval",
            "1s",
            "--max-interval",
            "1s",
            "--engine",
            &format!("vllm={}", vllm.url()),
            "--proxy",
            &format!("{proxy}={}", chat.url()),
            // A receiver that never answers: the remote write families are exported too.
            "--remote-write",
            "http://127.0.0.1:1/api/v1/write",
        ],
        &dir.path().join("data"),
    )
    .await;
    support::wait_http_ok(
        &format!("http://{proxy}/v1/models"),
        Duration::from_secs(30),
    )
    .await;

    let client = infermon_tls::client().build().unwrap();
    for _ in 0..3 {
        let body = serde_json::json!({
            "model": "mock", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]
        });
        let r = client
            .post(format!("http://{proxy}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    // The vLLM counters move only after the agent has sampled the first text.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    std::fs::write(&vllm_file, VLLM_T10).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = support::get_text(&format!("{api}/metrics")).await;
        let missing: Vec<_> = MUST_HAVE
            .iter()
            .filter(|f| !text.contains(&format!("# TYPE {f} ")))
            .collect();
        if missing.is_empty() {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "families {missing:?} never appeared on /metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics ({}):\n{said}",
        out.status
    );
    let families = text.matches("# TYPE ").count();
    eprintln!("promtool check metrics: nothing to report over {families} families");
}
