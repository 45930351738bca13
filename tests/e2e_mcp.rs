//! End to end with the official MCP Python SDK (PyPI `mcp`): a real llama-server (SmolLM2-135M)
//! watched by `infermon agent` with a measuring proxy, two chat requests through it, then
//! `tests/clients/mcp_client.py` starts `infermon mcp --url AGENT` over stdio, lists the tools
//! and calls each. The answers are checked against the agent's REST API read around the same
//! time (what can move between the two reads is bounded by a read before and one after), and
//! the `fit` tool against `infermon fit --json` for the same model and flags. Bad arguments
//! must give error results (unknown or mistyped ones too) and leave the server answering.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TEST: &str = "mcp_tools_answer_what_the_rest_api_says";
const BIN: &str = env!("CARGO_BIN_EXE_infermon");

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The pyclients venv's Python, when it has the `mcp` SDK; else skip (or fail when required).
async fn mcp_python() -> Option<std::path::PathBuf> {
    let py = pyclients(TEST)?;
    let ok = tokio::process::Command::new(&py)
        .args(["-c", "import mcp.client.stdio"])
        .output()
        .await
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = format!(
            "SKIPPED end-to-end test {TEST}: {} has no `mcp` package; run \
             `bash scripts/setup-pyclients.sh` (it pins mcp) or `bash scripts/test.sh`",
            py.display()
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        return None;
    }
    Some(py)
}

async fn chat(proxy: &str, prompt: &str) {
    let r = infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{proxy}/v1/chat/completions"))
        .json(&json!({
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 8,
            "seed": 7
        }))
        .send()
        .await
        .expect("chat request");
    assert!(r.status().is_success(), "chat: HTTP {}", r.status());
}

async fn run_client(py: &Path, agent: &str, calls: &Value) -> Value {
    run_client_with(py, agent, calls, &[]).await
}

async fn run_client_with(py: &Path, agent: &str, calls: &Value, extra: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mcp_client.py");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(py)
            .args([script, BIN, agent, &calls.to_string()])
            .args(extra)
            .env_remove("INFERMON_TOKEN")
            .env_remove("INFERMON_URL")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the MCP client took over 120 s")
    .expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "MCP client failed ({}): {}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn fit_cli(model: &Path, args: &[&str]) -> Value {
    let out = std::process::Command::new(BIN)
        .args(["fit", "--json", "-m"])
        .arg(model)
        .args(args)
        .output()
        .expect("run infermon fit");
    assert!(
        out.status.success(),
        "infermon fit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The call `label`'s successful structured answer.
fn answer<'a>(r: &'a Value, label: &str) -> &'a Value {
    let c = &r["calls"][label];
    assert_eq!(c["is_error"], false, "{label}: {c}");
    // The text block carries the same JSON as the structured content.
    let text: Value = serde_json::from_str(c["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, c["structured"], "{label}");
    &c["structured"]
}

/// The call `label`'s error text (an error result, not a protocol error).
fn error_text<'a>(r: &'a Value, label: &str) -> &'a str {
    let c = &r["calls"][label];
    assert_eq!(
        c["is_error"], true,
        "{label} should be an error result: {c}"
    );
    c["text"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tools_answer_what_the_rest_api_says() {
    let Some(e) = engine(TEST) else { return };
    let Some(py) = mcp_python().await else { return };
    let (_srv, server) = start_llama_server(&e, &["--metrics", "-np", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let pport = free_port();
    let proxy_arg = format!("127.0.0.1:{pport}={server}");
    let engine_arg = format!("llamacpp={server}");
    let (_agent, agent) = start_agent(
        &[
            "--no-discovery",
            "--engine",
            &engine_arg,
            "--proxy",
            &proxy_arg,
            "--interval",
            "1s",
            "--max-interval",
            "2s",
        ],
        dir.path(),
    )
    .await;
    let t0 = now_ms();
    let proxy = format!("http://127.0.0.1:{pport}");
    chat(&proxy, "Name a colour.").await;
    chat(&proxy, "Name a fruit.").await;

    // Wait until the agent has recorded both requests and sampled the engine's counter since.
    let start = Instant::now();
    loop {
        let reqs = get_json(&format!("{agent}/api/v1/requests?limit=50")).await;
        let snap = get_json(&format!("{agent}/api/v1/snapshot")).await;
        let sampled = snap["ts_unix_ms"].as_i64().unwrap_or(0) > now_ms() - 60_000
            && snap["engines"][0]["generation_tokens_total"]
                .as_f64()
                .unwrap_or(0.0)
                > 0.0;
        if reqs["requests"].as_array().map_or(0, Vec::len) == 2 && sampled {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "agent never saw the requests: {reqs} / {snap}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A closed history window: every sample up to `to` is written by the time the tool runs.
    let to = now_ms();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metric = "infermon_engine_generation_tokens_total";
    let fit_args = ["-c", "2048", "-np", "1", "-ctk", "q8_0"];
    let model = e.model.to_str().unwrap();
    let calls = json!([
        ["unknown_field", "history", {"metrc": metric}],
        ["wrong_type", "requests", {"limit": "many"}],
        ["snapshot", "snapshot", {}],
        ["observations", "observations", {"since": "-24h", "limit": 50}],
        ["history", "history", {"metric": metric, "from": t0 - 60_000, "to": to.to_string(), "resolution": "raw"}],
        ["requests", "requests", {"limit": 50}],
        ["fit", "fit", {"model": model, "args": fit_args}],
        ["bad_time", "history", {"metric": metric, "from": "yesterday"}],
        ["unknown_metric", "history", {"metric": "infermon_no_such_metric"}],
        ["bad_metric", "history", {"metric": "gpu power"}],
        ["bad_limit", "requests", {"limit": 0}],
        ["bad_fit_model", "fit", {"model": "model.gguf"}],
        ["bad_fit_flag", "fit", {"model": model, "args": ["--no-such-flag"]}],
    ]);

    let snap_before = get_json(&format!("{agent}/api/v1/snapshot")).await;
    let obs_before = get_json(&format!("{agent}/api/v1/observations?since=-24h&limit=50")).await;
    let r = run_client(&py, &agent, &calls).await;
    let snap_after = get_json(&format!("{agent}/api/v1/snapshot")).await;
    let obs_after = get_json(&format!("{agent}/api/v1/observations?since=-24h&limit=50")).await;

    // The server and its tools.
    assert_eq!(r["server"]["name"], "infermon", "{}", r["server"]);
    let mut names: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["fit", "history", "observations", "requests", "snapshot"]
    );
    for t in r["tools"].as_array().unwrap() {
        assert!(
            t["description"].as_str().unwrap().len() > 100,
            "{} needs a description of what it returns: {t}",
            t["name"]
        );
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    let history_tool = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "history")
        .unwrap();
    assert_eq!(
        history_tool["inputSchema"]["required"],
        json!(["metric"]),
        "{history_tool}"
    );

    // An unknown argument, or one of the wrong type, is an error result naming it and what
    // was expected; the server goes on answering.
    let t = error_text(&r, "unknown_field");
    assert!(
        t.contains("unknown field `metrc`, expected one of `metric`"),
        "{t}"
    );
    let t = error_text(&r, "wrong_type");
    assert!(t.contains("\"many\"") && t.contains("expected"), "{t}");

    // snapshot: the same engine and model; the token counter between the two REST reads.
    let s = answer(&r, "snapshot");
    let eng = &s["engines"][0];
    for field in ["kind", "instance", "model"] {
        assert_eq!(eng[field], snap_before["engines"][0][field], "{field}");
        assert_eq!(eng[field], snap_after["engines"][0][field], "{field}");
    }
    let gen = |v: &Value| v["engines"][0]["generation_tokens_total"].as_f64().unwrap();
    assert!(gen(s) > 0.0);
    assert!(
        gen(&snap_before) <= gen(s) && gen(s) <= gen(&snap_after),
        "{} <= {} <= {}",
        gen(&snap_before),
        gen(s),
        gen(&snap_after)
    );
    let ts = |v: &Value| v["ts_unix_ms"].as_i64().unwrap();
    assert!(ts(&snap_before) <= ts(s) && ts(s) <= ts(&snap_after));

    // observations: what the API answered just before or just after.
    let o = answer(&r, "observations");
    assert!(o["observations"].is_array(), "{o}");
    assert!(
        *o == obs_before || *o == obs_after,
        "{o} vs {obs_before} / {obs_after}"
    );

    // history: the same points as the API for the same closed window.
    let h = answer(&r, "history");
    let rest = get_json(&format!(
        "{agent}/api/v1/history?metric={metric}&from={}&to={to}&resolution=raw",
        t0 - 60_000
    ))
    .await;
    assert_eq!(*h, rest);
    let points = h["series"][0]["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{h}");
    assert!(points.iter().all(|p| p["ts_ms"].as_i64().unwrap() <= to));

    // requests: records do not change once written.
    let q = answer(&r, "requests");
    let rest = get_json(&format!("{agent}/api/v1/requests?limit=50")).await;
    assert_eq!(*q, rest);
    assert_eq!(q["requests"].as_array().unwrap().len(), 2, "{q}");

    // fit: the same estimate as the CLI.
    let f = answer(&r, "fit");
    let cli = fit_cli(&e.model, &fit_args);
    for k in [
        "weights_bytes",
        "kv_bytes",
        "compute_bytes",
        "overhead_bytes",
        "total_bytes",
        "kv",
        "params",
    ] {
        assert_eq!(f[k], cli[k], "{k}");
    }
    assert!(f["total_bytes"].as_u64().unwrap() > 0);
    let avail = f["node_available_bytes"]
        .as_u64()
        .expect("the agent's MemAvailable");
    assert_eq!(
        f["fits_now"].as_bool(),
        Some(f["total_bytes"].as_u64().unwrap() <= avail)
    );

    // Bad arguments: error results naming the value and what was expected.
    let t = error_text(&r, "bad_time");
    assert!(
        t.contains("invalid from \"yesterday\"") && t.contains("expected"),
        "{t}"
    );
    let t = error_text(&r, "unknown_metric");
    assert!(
        t.contains("unknown metric \"infermon_no_such_metric\"") && t.contains(metric),
        "{t}"
    );
    let t = error_text(&r, "bad_metric");
    assert!(t.contains("invalid metric \"gpu power\": expected"), "{t}");
    let t = error_text(&r, "bad_limit");
    assert!(t.contains("invalid limit \"0\""), "{t}");
    let t = error_text(&r, "bad_fit_model");
    assert!(t.contains("invalid model \"model.gguf\""), "{t}");
    let t = error_text(&r, "bad_fit_flag");
    assert!(t.contains("--no-such-flag"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_without_an_agent_answers_error_results() {
    let test = "mcp_without_an_agent_answers_error_results";
    let Some(py) = pyclients(test) else { return };
    if !std::process::Command::new(&py)
        .args(["-c", "import mcp"])
        .status()
        .is_ok_and(|s| s.success())
    {
        let msg = format!("SKIPPED {test}: no `mcp` in {}", py.display());
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        return;
    }
    // Nothing listens on this port.
    let url = format!("http://127.0.0.1:{}", free_port());
    let calls = json!([["snapshot", "snapshot", {}], ["requests", "requests", {}]]);
    let r = run_client(&py, &url, &calls).await;
    for label in ["snapshot", "requests"] {
        let t = error_text(&r, label);
        assert!(
            t.contains("cannot reach the infermon agent at") && t.contains(&url),
            "{t}"
        );
    }
}

/// With `--hub`, the hub's tools: `fleet`, `leaderboard` and `route` answer what the hub's own
/// REST API says (a real hub with a real agent pushing to it; no engine is needed), and a model
/// no node serves is an error result carrying the hub's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_hub_tools_answer_what_the_hub_says() {
    let Some(py) = mcp_python().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let join = "join-token-for-the-mcp-test-0123456789";
    let listen = format!("127.0.0.1:{}", free_port());
    let hub = format!("http://{listen}");
    let _hub = start_hub(&dir.path().join("hub"), &listen, join).await;
    let (_agent, agent) = start_agent(
        &["--no-discovery", "--interval", "1s", "--max-interval", "1s"],
        &dir.path().join("agent"),
    )
    .await;
    // The agent above only serves the agent tools; this one pushes to the hub.
    let (_node, _) = start_hub_node(dir.path(), "mcp-node", &hub, join, &[]).await;
    let start = Instant::now();
    loop {
        let n = get_json(&format!("{hub}/api/v1/fleet/nodes")).await;
        if n["nodes"][0]["liveness"] == "up" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no node came up: {n}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let calls = json!([
        ["fleet", "fleet", {}],
        ["leaderboard", "leaderboard", {}],
        ["route", "route", {"model": "no-such-model"}],
        ["route_empty", "route", {"model": ""}],
    ]);
    let r = run_client_with(&py, &agent, &calls, &["--hub", &hub]).await;
    let tools: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in ["fleet", "leaderboard", "route", "snapshot"] {
        assert!(tools.contains(&t), "{tools:?}");
    }
    let rest = get_json(&format!("{hub}/api/v1/fleet/nodes")).await;
    let fleet = answer(&r, "fleet");
    let names = |v: &Value| -> Vec<(String, String)> {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["name"].to_string(), n["liveness"].to_string()))
            .collect()
    };
    assert_eq!(names(fleet), names(&rest), "{fleet}");
    assert_eq!(
        fleet["nodes"][0]["cpu_count"],
        rest["nodes"][0]["cpu_count"]
    );
    let board = answer(&r, "leaderboard");
    let rest_board = get_json(&format!("{hub}/api/v1/fleet/leaderboard")).await;
    assert_eq!(board["ranked"], rest_board["ranked"], "{board}");
    assert_eq!(board["unranked"], rest_board["unranked"], "{board}");
    let none = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{hub}/api/v1/route?model=no-such-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 503);
    let why: Value = none.json().await.unwrap();
    let t = error_text(&r, "route");
    assert!(t.contains(why["reason"].as_str().unwrap()), "{t} vs {why}");
    let t = error_text(&r, "route_empty");
    assert!(t.contains("empty model"), "{t}");
}
