//! End to end against a real llama-server (SmolLM2-135M): the agent's counters equal the
//! server's, and its generation speed matches the server's own per-request timings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

async fn chat(url: &str, prompt: &str, max_tokens: u32) -> Value {
    let body = json!({
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.8,
        "seed": 7,
        "stream": false
    });
    infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .expect("chat request")
        .json()
        .await
        .expect("chat JSON")
}

/// The discovery test's agent polls every llama-server on the machine; two scrapers of one
/// server share its per-scrape rate window, so these tests must not overlap.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn engine_of(snap: &Value) -> Value {
    snap["engines"][0].clone()
}

/// Waits for a snapshot taken after `after_ms` whose window saw generated tokens.
async fn window_with_tokens(agent: &str, after_ms: i64) -> Value {
    let start = Instant::now();
    loop {
        let s = get_json(&format!("{agent}/api/v1/snapshot")).await;
        let e = engine_of(&s);
        if s["ts_unix_ms"].as_i64().unwrap_or(0) > after_ms
            && e["generation_tokens_in_window"].as_f64().unwrap_or(0.0) > 0.0
        {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no window with tokens: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn prom_value(text: &str, name: &str) -> f64 {
    let exp = infermon_promtext::parse(text).expect("prometheus text");
    exp.samples
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_matches_llama_server_counters_and_timings() {
    let _serial = SERIAL.lock().await;
    let Some(engine) = engine("agent_matches_llama_server_counters_and_timings") else {
        return;
    };
    let (server, llama) = start_llama_server(&engine, &["--metrics", "-np", "1"]).await;
    let data = tempfile::tempdir().unwrap();
    let engine_flag = format!("llamacpp={llama}");
    let (_agent, agent) = start_agent(
        &[
            "--engine",
            &engine_flag,
            "--no-discovery",
            "--interval",
            "1s",
            "--max-interval",
            "4s",
        ],
        data.path(),
    )
    .await;

    let prompts = [
        "Write a short poem about the sea.",
        "List three facts about the moon.",
        "Explain what a CPU does in two sentences.",
    ];
    let mut completion_total = 0u64;
    for (i, p) in prompts.iter().enumerate() {
        // Counters move only when a request completes, so the window holding this request's
        // completion holds exactly its tokens if we wait for that window before the next one.
        let before = now_ms();
        let r = chat(&llama, p, 48 + 16 * i as u32).await;
        let t = &r["timings"];
        let predicted_n = t["predicted_n"].as_f64().expect("timings.predicted_n");
        let server_tps = t["predicted_per_second"]
            .as_f64()
            .expect("predicted_per_second");
        assert_eq!(r["usage"]["completion_tokens"].as_f64(), Some(predicted_n));
        completion_total += predicted_n as u64;
        let snap = window_with_tokens(&agent, before).await;
        let e = engine_of(&snap);
        assert_eq!(
            e["generation_tokens_in_window"].as_f64(),
            Some(predicted_n),
            "{e}"
        );
        let agent_tps = e["generation_tokens_per_second"]
            .as_f64()
            .expect("agent tok/s");
        let err = (agent_tps - server_tps).abs() / server_tps;
        eprintln!(
            "request {i}: {predicted_n} tokens, server {server_tps:.2} tok/s, agent {agent_tps:.2} tok/s, error {:.3} %",
            err * 100.0
        );
        assert!(
            err <= 0.02,
            "agent {agent_tps} vs server {server_tps}: {:.2} % off",
            err * 100.0
        );
    }

    // Counter equality: the server's own /metrics against the agent's /metrics.
    let server_metrics = get_text(&format!("{llama}/metrics")).await;
    let server_total = prom_value(&server_metrics, "llamacpp:tokens_predicted_total");
    assert_eq!(server_total, completion_total as f64);
    let start = Instant::now();
    loop {
        let agent_metrics = get_text(&format!("{agent}/metrics")).await;
        let ours = prom_value(&agent_metrics, "infermon_engine_generation_tokens_total");
        if ours == server_total {
            let prompt_ours = prom_value(&agent_metrics, "infermon_engine_prompt_tokens_total");
            let prompt_server = prom_value(&server_metrics, "llamacpp:prompt_tokens_total");
            assert_eq!(prompt_ours, prompt_server);
            for name in [
                "infermon_engine_up",
                "infermon_engine_requests_running",
                "infermon_engine_requests_waiting",
                "infermon_thermal_penalty",
                "infermon_agent_cpu_seconds_total",
                "infermon_agent_resident_memory_bytes",
                "infermon_node_memory_available_bytes",
            ] {
                assert!(agent_metrics.contains(name), "{name} missing from /metrics");
            }
            assert!(agent_metrics.contains("model=\"SmolLM2-135M-Instruct.Q4_1\""));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "agent total {ours} != server {server_total}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // History holds the engine's token counter.
    let h = get_json(&format!(
        "{agent}/api/v1/history?metric=infermon_engine_generation_tokens_total&from=-10m&to=now"
    ))
    .await;
    let points = h["series"][0]["points"].as_array().expect("history points");
    assert!(!points.is_empty());
    let last = points.last().unwrap()["value"].as_f64().unwrap();
    assert_eq!(last, server_total);

    // With discovery off, the configured engine still gets its local process: its pid and
    // resident memory (read from /proc, so the CPU contention pattern knows it is the engine).
    let snap = get_json(&format!("{agent}/api/v1/snapshot")).await;
    let e = &snap["engines"][0];
    assert_eq!(e["pid"].as_u64(), Some(u64::from(server.child.id())), "{e}");
    assert!(
        e["memory_resident_bytes"].as_f64().is_some_and(|b| b > 0.0),
        "{e}"
    );

    // `infermon status` reads the same agent.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args(["status", "--url", &agent])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SmolLM2-135M-Instruct.Q4_1"), "{text}");
    assert!(text.contains("ENGINE llamacpp"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_metrics_flag_is_reported() {
    let _serial = SERIAL.lock().await;
    let Some(engine) = engine("server_without_metrics_flag_is_reported") else {
        return;
    };
    let (_server, llama) = start_llama_server(&engine, &[]).await;
    let data = tempfile::tempdir().unwrap();
    let engine_flag = format!("llamacpp={llama}");
    let (_agent, agent) = start_agent(
        &[
            "--engine",
            &engine_flag,
            "--no-discovery",
            "--interval",
            "500ms",
        ],
        data.path(),
    )
    .await;
    let snap = get_json(&format!("{agent}/api/v1/snapshot")).await;
    let e = engine_of(&snap);
    assert_eq!(e["up"], json!(true), "{e}");
    assert_eq!(e["metrics_available"], json!(false));
    let reason = e["metrics_reason"].as_str().unwrap();
    assert!(reason.contains("--metrics"), "{reason}");
    assert_eq!(e["model"], json!("SmolLM2-135M-Instruct.Q4_1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_local_llama_server_without_flags() {
    let _serial = SERIAL.lock().await;
    let Some(engine) = engine("discovers_local_llama_server_without_flags") else {
        return;
    };
    let (server, llama) = start_llama_server(&engine, &["--metrics"]).await;
    let data = tempfile::tempdir().unwrap();
    let (_agent, agent) = start_agent(&["--interval", "500ms"], data.path()).await;
    let start = Instant::now();
    loop {
        let snap = get_json(&format!("{agent}/api/v1/snapshot")).await;
        let found = snap["engines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["instance"] == json!(llama));
        if let Some(e) = found {
            assert_eq!(e["origin"], json!("discovered"));
            assert_eq!(e["pid"].as_u64(), Some(server.child.id() as u64));
            assert_eq!(e["metrics_available"], json!(true));
            // The agent measures the process and estimates it from the model and argv.
            let rss = e["memory_resident_bytes"].as_f64().expect("rss measured");
            let est = &e["memory_estimate"];
            assert_eq!(est["measured_bytes"].as_f64(), Some(rss), "{e}");
            let error = est["error_bytes"].as_f64().expect("estimate present");
            assert!(error.abs() <= (0.05 * rss).max(32.0 * 1048576.0), "{e}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not discovered: {snap}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
