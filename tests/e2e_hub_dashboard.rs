//! The hub's page in a real headless Chromium, as a person would use it: a hub with two real
//! agents pushing to it, one watching a real llama-server (SmolLM2-135M) under chat traffic,
//! one with no engine. The page lists both nodes; the tok/s it shows for the busy node equals
//! the hub's API for the same sample, and that equals what the node's own agent stored for
//! that sample time (its `/api/v1/history`, a separate store and code path); the sparkline
//! and the node view's charts draw stored points; the node without an engine is listed with
//! why it has no WES, never ranked; no console error, no request to another host, no
//! sideways scrolling on a phone. Screenshots go to `target/test-artifacts/hub-dashboard/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;

const TEST: &str = "hub_page_in_a_real_browser";
const JOIN: &str = "join-token-of-the-hub-page-test";
const TOKS: &str = "infermon_node_generation_tokens_per_second";

async fn chat(client: &reqwest::Client, server: &str) {
    let r = client
        .post(format!("{server}/v1/chat/completions"))
        .json(&json!({
            "messages": [{"role": "user", "content": "Count to ten."}],
            "max_tokens": 32,
        }))
        .send()
        .await
        .expect("chat request");
    assert!(r.status().is_success(), "chat: HTTP {}", r.status());
    r.bytes().await.expect("chat answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_page_in_a_real_browser() {
    let Some(e) = engine(TEST) else { return };
    let Some(browser) = chromium(TEST) else {
        return;
    };
    let (_srv, server) = start_llama_server(&e, &["--metrics"]).await;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let hub = format!("http://{listen}");
    let _hub = start_hub(&dir.path().join("hub"), &listen, JOIN).await;
    let engine_arg = format!("llamacpp={server}");
    let (_busy, busy_api) = start_hub_node(
        dir.path(),
        "gpu-box",
        &hub,
        JOIN,
        &["--engine", &engine_arg],
    )
    .await;
    let (_idle, _) = start_hub_node(dir.path(), "edge-1", &hub, JOIN, &[]).await;

    let client = infermon_tls::client().build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, client, server) = (stop.clone(), client.clone(), server.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                chat(&client, &server).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(6)).await;

    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/hub-dashboard");
    let found = drive_browser(&[
        std::ffi::OsStr::new("--hub"),
        browser.as_os_str(),
        hub.as_ref(),
        "gpu-box".as_ref(),
        out.as_os_str(),
    ])
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = traffic.await;
    eprintln!("hub page: {found}");

    assert_eq!(found["loaded"], true, "{found}");
    assert_eq!(found["title"], "infermon hub");
    let errors = found["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "the page reported errors: {errors:?}");
    let foreign: Vec<&str> = found["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u.as_str())
        .filter(|u| !u.starts_with(&hub) && !u.starts_with("data:"))
        .collect();
    assert!(foreign.is_empty(), "requests to other hosts: {foreign:?}");

    // The figure shown is the hub's for the same sample, and the node's own for that time.
    let m = &found["tok_s_match"];
    assert!(
        m.is_object(),
        "the page never showed gpu-box's tok/s for the API's sample: {found}"
    );
    let (ts, page, api) = (
        m["ts"].as_i64().unwrap(),
        m["page"].as_f64().unwrap(),
        m["api"].as_f64().unwrap(),
    );
    assert!(
        (page - api).abs() < 1e-9,
        "page {page} vs hub API {api}: {m}"
    );
    let own = get_json(&format!(
        "{busy_api}/api/v1/history?metric={TOKS}&from={}&to={ts}&resolution=raw",
        ts - 1
    ))
    .await;
    let stored = own["series"][0]["points"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["ts_ms"].as_i64() == Some(ts)))
        .and_then(|p| p["value"].as_f64())
        .unwrap_or_else(|| panic!("the agent has no {TOKS} at {ts}: {own}"));
    assert!(
        (stored - api).abs() < 1e-9,
        "agent stored {stored}, hub shows {api}"
    );
    assert!(api > 0.0, "gpu-box generated nothing under traffic: {m}");

    let rows = found["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["node"].as_str()).collect();
    assert_eq!(names, ["edge-1", "gpu-box"], "{found}");
    let busy = rows.iter().find(|r| r["node"] == "gpu-box").unwrap();
    assert_eq!(busy["liveness"], "up");
    assert_eq!(
        busy["spark"], true,
        "no tok/s sparkline for gpu-box: {busy}"
    );
    let idle = rows.iter().find(|r| r["node"] == "edge-1").unwrap();
    assert!(
        idle["wes"]
            .as_str()
            .unwrap()
            .contains("no engine with token counters"),
        "{idle}"
    );
    let board = found["board"].as_str().unwrap();
    assert!(
        board.contains("edge-1") && board.contains("WES unavailable"),
        "{board}"
    );
    assert!(
        found["node_chart_points"][TOKS].as_u64().unwrap_or(0) >= 3,
        "{found}"
    );
    assert_eq!(
        found["hub-fleet-light-phone_overflow_px"], 0,
        "sideways scrolling on a phone"
    );
}
