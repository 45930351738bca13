//! End to end with the official Python clients: `infermon agent --proxy` driven by the OpenAI
//! SDK (PyPI `openai`) in front of a real llama-server (SmolLM2-135M), and by the Ollama
//! client (PyPI `ollama`) in front of `infermon_mockllm`'s Ollama-API stand-in (the router of
//! kind Ollama before a mock that speaks Ollama's native API; no Ollama can run here). The
//! clients run `tests/clients/sdk_clients.py`, which prints what each request gave them.
//!
//! Checked: every request is recorded `ok` (the OpenAI SDK closes its connection as soon as
//! it reads `data: [DONE]`, often before the upstream's end of body: that is no cancel), the
//! recorded tokens equal what the server reported and what the client saw, and a client that
//! did not ask for usage sees exactly what it sees without the proxy (never the usage chunk
//! the proxy asked for on its behalf).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use infermon_mockllm::router::{spawn_router, RoutedModel, RouterKind};
use infermon_mockllm::{spawn, MockConfig};
use serde_json::Value;
use support::*;

/// Requests of each kind per run.
const ROUNDS: usize = 4;
/// Tokens each request asks for.
const TOKENS: u64 = 16;

/// Runs the clients' script (`which` is `openai` or `ollama`) against `target`; one JSON
/// object per request, in the order sent.
async fn clients(py: &Path, which: &str, target: &str, rounds: usize) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_clients.py");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(py)
            .args([script, which, target, &rounds.to_string()])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the clients' script took over 120 s")
    .expect("run the clients' script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{which} clients failed ({}): {}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The newest `n` records of the agent, oldest first; waits for them (10 s at most).
async fn records(agent: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let v = get_json(&format!("{agent}/api/v1/requests?limit=1000")).await;
        let rs = v["requests"].as_array().unwrap();
        if rs.len() >= n {
            return rs[..n].iter().rev().cloned().collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} of {n} records: {v}",
            rs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks each record against what its client saw.
fn check(records: &[Value], seen: &[Value], api_of: impl Fn(&str) -> &'static str) {
    assert_eq!(records.len(), seen.len());
    for (i, (r, c)) in records.iter().zip(seen).enumerate() {
        let kind = c["kind"].as_str().unwrap();
        let what = format!("request {i} ({kind}): record {r}, client saw {c}");
        assert_eq!(r["outcome"], "ok", "{what}");
        assert_eq!(r["status"], 200, "{what}");
        assert_eq!(r["api"], api_of(kind), "{what}");
        let streamed = kind.ends_with("_stream") || kind.ends_with("_stream_usage");
        assert_eq!(r["stream"], streamed, "{what}");
        assert_eq!(c["done"], true, "{what}");
        assert_eq!(r["completion_tokens"].as_u64(), Some(TOKENS), "{what}");
        if let Some(u) = c["usage"].as_object() {
            assert_eq!(u["completion_tokens"].as_u64(), Some(TOKENS), "{what}");
            assert_eq!(u["prompt_tokens"], r["prompt_tokens"], "{what}");
        }
        if streamed {
            assert_eq!(r["token_chunks"], c["chunks"], "{what}");
            assert!(r["tpot_ms"].as_f64().is_some(), "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_through_the_proxy_is_recorded_ok() {
    let test = "the_openai_sdk_through_the_proxy_is_recorded_ok";
    let Some(e) = engine(test) else { return };
    let Some(py) = pyclients(test) else { return };
    let (_srv, server) = start_llama_server(&e, &["-np", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let pport = free_port();
    let proxy_arg = format!("127.0.0.1:{pport}={server}");
    let (_agent, agent) = start_agent(&["--no-discovery", "--proxy", &proxy_arg], dir.path()).await;

    // What the clients see without the proxy: the reference for what they must see with it.
    let direct = clients(&py, "openai", &format!("{server}/v1"), 1).await;
    let seen = clients(
        &py,
        "openai",
        &format!("http://127.0.0.1:{pport}/v1"),
        ROUNDS,
    )
    .await;
    assert_eq!(seen.len(), 5 * ROUNDS);
    let recs = records(&agent, seen.len()).await;
    check(&recs, &seen, |kind| {
        if kind.starts_with("chat") {
            "openai_chat"
        } else {
            "openai_completions"
        }
    });
    for (i, (r, c)) in recs.iter().zip(&seen).enumerate() {
        let kind = c["kind"].as_str().unwrap();
        let plain = direct.iter().find(|d| d["kind"] == kind).unwrap();
        // Usage as the server itself sends it (llama-server puts it on the last completions
        // chunk unasked), and the usage chunk only to the client that asked for it.
        assert_eq!(
            (&c["usage_seen"], &c["usage_chunks"]),
            (&plain["usage_seen"], &plain["usage_chunks"]),
            "request {i} ({kind}): usage differs from the server's own answer: {c} vs {plain}"
        );
        let asked = kind == "chat_stream_usage";
        assert_eq!(c["usage_chunks"].as_u64() == Some(1), asked, "{kind}: {c}");
        let injected = r["usage_injected"].as_bool().unwrap();
        assert_eq!(injected, kind.ends_with("_stream"), "{kind}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ollama_client_through_the_proxy_is_recorded_ok() {
    let test = "the_ollama_client_through_the_proxy_is_recorded_ok";
    let Some(py) = pyclients(test) else { return };
    let mock = spawn(MockConfig {
        itl: Duration::from_millis(1),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let router = spawn_router(
        RouterKind::Ollama,
        vec![RoutedModel::new("mock", &mock.url())],
        &["mock"],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pport = free_port();
    let proxy_arg = format!("127.0.0.1:{pport}={}", router.url());
    let (_agent, agent) = start_agent(&["--no-discovery", "--proxy", &proxy_arg], dir.path()).await;

    let seen = clients(&py, "ollama", &format!("http://127.0.0.1:{pport}"), ROUNDS).await;
    assert_eq!(seen.len(), 4 * ROUNDS);
    let recs = records(&agent, seen.len()).await;
    check(&recs, &seen, |kind| {
        if kind.starts_with("chat") {
            "ollama_chat"
        } else {
            "ollama_generate"
        }
    });
    for (r, c) in recs.iter().zip(&seen) {
        // Ollama's final object, as the client read it, is what the proxy measured.
        assert_eq!(
            c["usage"]["completion_tokens"].as_u64(),
            Some(TOKENS),
            "{c}"
        );
        assert_eq!(r["usage_injected"], false, "{r}");
    }
    let stats = mock.stats();
    assert_eq!(
        (stats.completed, stats.cancelled),
        (seen.len() as u64, 0),
        "{stats:?}"
    );
}
