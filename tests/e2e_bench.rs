//! End to end: `infermon bench` as a process. Against a real llama-server (SmolLM2-135M) its
//! token total must equal the server's own counter and its TPOT the server's own timings;
//! against an unreachable URL and a failing mock it must say what went wrong, exit non-zero
//! and still write a partial report with nulls where nothing was measured.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::*;

fn bench(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_infermon"))
        .arg("bench")
        .args(args)
        .env_remove("INFERMON_ENGINES")
        .output()
        .expect("run infermon bench")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("report written")).expect("JSON")
}

async fn tokens_predicted(url: &str) -> f64 {
    let text = get_text(&format!("{url}/metrics")).await;
    infermon_promtext::parse(&text)
        .expect("prometheus text")
        .get("llamacpp:tokens_predicted_total")
        .expect("llamacpp:tokens_predicted_total")
}

fn assert_summary(v: &Value, key: &str) {
    for k in ["mean", "p50", "p90", "p99"] {
        assert!(v[key][k].is_f64(), "{key}.{k} missing: {}", v[key]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_agrees_with_the_servers_counters_and_timings() {
    let Some(e) = engine("e2e_bench") else { return };
    let (_server, url) = start_llama_server(&e, &["--metrics", "-np", "2"]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let before = tokens_predicted(&url).await;
    let o = bench(&[
        "--url",
        &url,
        "--requests",
        "20",
        "--concurrency",
        "2",
        "--max-tokens",
        "32",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "infermon bench failed: {stderr}");
    let after = tokens_predicted(&url).await;
    let r = read_json(&out);
    eprintln!(
        "{}",
        String::from_utf8_lossy(&std::fs::read(out.with_extension("md")).unwrap())
    );

    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["status"], "complete");
    assert_eq!(r["requests_completed"], 20);
    assert_eq!(r["requests_failed"], 0);
    for k in ["ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"] {
        assert_summary(&r, k);
    }

    // Every completion token the server counted in the run is in the report (the warm-up
    // request reached the counter too, and is reported apart).
    let measured = r["completion_tokens_total"].as_u64().unwrap();
    let warmup = r["warmup"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(measured, 20 * 32, "ignore_eos makes every answer 32 tokens");
    assert_eq!(
        (measured + warmup) as f64,
        after - before,
        "completion tokens vs llamacpp:tokens_predicted_total delta"
    );
    let hw = &r["configs"][0]["hardware"];
    assert_eq!(
        hw["engine_generation_tokens"].as_f64(),
        Some(measured as f64),
        "the counter delta sampled during the configuration: {hw}"
    );

    // Mean TPOT agrees with the server's own per-token time.
    let tpot = r["tpot_ms"]["mean"].as_f64().unwrap();
    let server = r["server_tpot_ms"]["mean"].as_f64().unwrap();
    let diff = (tpot - server).abs() / server * 100.0;
    eprintln!("TPOT mean: client {tpot:.3} ms, server {server:.3} ms, difference {diff:.2} %");
    assert!(
        diff <= 3.0,
        "client TPOT {tpot} vs server {server}: {diff:.2} %"
    );

    // The node: the engine process was found and its model file sized.
    assert!(
        hw["engine_memory_peak_bytes"].as_u64().unwrap_or(0) > 50 << 20,
        "engine memory: {hw}"
    );
    let size = std::fs::metadata(&e.model).unwrap().len();
    assert_eq!(r["system"]["model_size_bytes"].as_u64(), Some(size));
    let bw = &r["configs"][0]["memory_bandwidth"];
    let achieved = bw["achieved_bytes_per_second"].as_f64().unwrap();
    assert!(
        (achieved - size as f64 * 1000.0 / r["configs"][0]["tpot_ms"]["mean"].as_f64().unwrap())
            .abs()
            < 1.0
    );
    assert!(hw["swap_any"].is_boolean(), "{hw}");

    // Markdown and a self-contained HTML page beside the JSON.
    let md = std::fs::read_to_string(out.with_extension("md")).unwrap();
    assert!(md.contains("concurrency=2") && md.contains("TPOT"));
    let html = std::fs::read_to_string(out.with_extension("html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    for bad in [
        "<script",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(bad), "HTML fetches something: {bad}");
    }
}

#[test]
fn an_unreachable_url_exits_non_zero_with_a_partial_report() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let o = bench(&[
        "--url",
        &url,
        "--requests",
        "20",
        "--concurrency",
        "2",
        "--max-tokens",
        "32",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("cannot connect"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let r = read_json(&out);
    assert_eq!(r["status"], "partial");
    assert!(r["aborted"].as_str().unwrap().contains(&url));
    assert!(r["requests_failed"].as_u64().unwrap() >= 3);
    assert_eq!(r["requests_completed"], 0);
    assert!(r["requests_not_sent"].as_u64().unwrap() > 0);
    // nothing measured: null, never 0
    for k in [
        "completion_tokens_total",
        "ttft_ms",
        "tpot_ms",
        "itl_ms",
        "e2e_ms",
        "output_tokens_per_second",
    ] {
        assert!(r[k].is_null(), "{k} = {}", r[k]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_reported_per_outcome() {
    let mock = infermon_mockllm::spawn(infermon_mockllm::MockConfig::default())
        .await
        .unwrap();
    let url = mock.url();
    let dir = tempfile::tempdir().unwrap();
    for (fault, outcome) in [
        ("status:503", "http_error"),
        ("malformed", "malformed"),
        ("die-after:2", "upstream_failed"),
    ] {
        let out = dir.path().join("run.json");
        let (url, out2) = (url.clone(), out.clone());
        let header = format!("x-mock-fault: {fault}");
        let o = tokio::task::spawn_blocking(move || {
            bench(&[
                "--url",
                &url,
                "--requests",
                "6",
                "--max-tokens",
                "8",
                "--no-hardware",
                "-H",
                &header,
                "--out",
                out2.to_str().unwrap(),
            ])
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{fault}: {stderr}");
        assert!(
            stderr.contains("6 of 6 requests failed") && stderr.contains(outcome),
            "{fault}: {stderr}"
        );
        let r = read_json(&out);
        assert_eq!(r["outcomes"][outcome], 6, "{fault}: {}", r["outcomes"]);
        assert!(r["completion_tokens_total"].is_null());
        assert!(r["errors"][0]["message"].as_str().unwrap().len() > 3);
    }
    mock.shutdown().await;
}

#[test]
fn compare_flags_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, tpot: f64| {
        let p = dir.path().join(name);
        let summary = serde_json::json!({"count": 10, "mean": tpot, "min": tpot, "p50": tpot, "p90": tpot, "p99": tpot, "max": tpot});
        let cfg = serde_json::json!({
            "label": "concurrency=1", "profile": "concurrency", "concurrency": 1,
            "rate_rps": null, "arrivals": null, "started_unix_ms": 0,
            "requests_sent": 10, "requests_completed": 10, "requests_failed": 0,
            "requests_not_sent": 0, "outcomes": {"ok": 10}, "errors": [],
            "requests_without_usage": 0, "completion_tokens_total": 320,
            "prompt_tokens_total": 1000, "duration_s": 1.0, "ttft_ms": null,
            "tpot_ms": summary, "itl_ms": null, "e2e_ms": null, "server_tpot_ms": null,
            "output_tokens_per_second": 320.0, "total_tokens_per_second": null,
            "requests_per_second": 10.0, "goodput_requests_per_second": null,
            "slo_attainment_ratio": null, "hardware": null, "memory_bandwidth": null,
            "requests": []
        });
        let mut v = cfg.clone();
        let o = v.as_object_mut().unwrap();
        for k in [
            "label",
            "profile",
            "concurrency",
            "rate_rps",
            "arrivals",
            "started_unix_ms",
            "hardware",
            "memory_bandwidth",
            "requests",
        ] {
            o.remove(k);
        }
        o.insert("schema_version".into(), 1.into());
        o.insert("infermon_version".into(), "test".into());
        o.insert("status".into(), "complete".into());
        o.insert("aborted".into(), Value::Null);
        o.insert("started_unix_ms".into(), 0.into());
        o.insert("finished_unix_ms".into(), 0.into());
        o.insert(
            "target".into(),
            serde_json::json!({"url": "u", "endpoint": "u", "api": "openai_chat", "model": null}),
        );
        o.insert("settings".into(), serde_json::json!({"profile": "concurrency", "concurrency": [1], "rates": [], "arrivals": null, "max_concurrency": null, "requests": 10, "warmup": 1, "max_tokens": 32, "input_tokens": 128, "prompts": "synthetic", "seed": 0, "ignore_eos": true, "slo": {"ttft_ms": null, "tpot_ms": null, "e2e_ms": null}, "timeout_s": 60.0, "hardware": false}));
        o.insert("system".into(), serde_json::json!({"gpus": [], "cpu_count": null, "memory_total_bytes": null, "engine_pid": null, "model_path": null, "model_size_bytes": null, "peak_bandwidth_gb_s": null, "peak_bandwidth_source": "unknown", "unavailable": []}));
        o.insert(
            "warmup".into(),
            serde_json::json!({"requests": 1, "completed": 1, "completion_tokens": 32}),
        );
        o.insert("configs".into(), Value::Array(vec![cfg]));
        std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
        p
    };
    let a = write("a.json", 10.0);
    let b = write("b.json", 12.0);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args(["bench", "compare"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("tpot_ms.mean") && stdout.contains("REGRESSION"),
        "{stdout}"
    );
    let same = std::process::Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args(["bench", "compare"])
        .arg(&a)
        .arg(&a)
        .output()
        .unwrap();
    assert!(same.status.success());
}
