//! `infermon fit` against real llama-server processes: the estimated total is within 5 % or
//! 32 MiB of the measured RSS after a warm-up request, and the KV bytes equal the size the
//! server prints (`llama_kv_cache: size = … MiB`), over context sizes, slot counts, KV types
//! and quantizations made with llama-quantize, on SmolLM2-135M and on Gemma-3-270M (262k
//! vocabulary, sliding-window attention).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const MIB: f64 = 1024.0 * 1024.0;

/// Requantizes the test model with llama-quantize. The error names llama-quantize's own last
/// lines and the free space of the output's file system (a full disk is the usual cause).
fn quantize(e: &Engine, dir: &Path, q: &str) -> PathBuf {
    let out = dir.join(format!("smollm2-{q}.gguf"));
    let run = Command::new(&e.quantize)
        .arg("--allow-requantize")
        .arg(&e.model)
        .arg(&out)
        .arg(q)
        .arg("2")
        .output()
        .expect("run llama-quantize");
    if !run.status.success() {
        let log = String::from_utf8_lossy(&run.stderr);
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let df = Command::new("df")
            .arg("-h")
            .arg(dir)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "llama-quantize {q} failed ({}); its last lines, newest first:\n{}\nfree space:\n{df}",
            run.status,
            tail.join("\n")
        );
    }
    out
}

/// The weights a configuration is served with: a file as it is, or the test model requantized
/// just before its run and deleted after it, so that at most one extra GGUF is on disk.
enum Weights<'a> {
    File(&'a PathBuf),
    Quantized(&'static str),
}

fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// Sum of the `llama_kv_cache: size = X MiB` lines of the real contexts (main model, and the
/// draft model's when there is one). The lines before the first real model load belong to
/// llama-server's own fit dry run and are skipped.
fn logged_kv_mib(log: &str) -> f64 {
    let real = log
        .find("CPU_Mapped model buffer size")
        .expect("no model load in the server log");
    let sizes: Vec<f64> = log[real..]
        .lines()
        .filter_map(|l| l.split("llama_kv_cache: size =").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .filter_map(|v| v.parse::<f64>().ok())
        .collect();
    assert!(
        !sizes.is_empty(),
        "no llama_kv_cache size line in the server log"
    );
    sizes.iter().sum()
}

async fn warm_up(url: &str) {
    let body = json!({
        "messages": [{"role": "user", "content": "Describe a lighthouse in three sentences."}],
        "max_tokens": 32
    });
    let r = infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_matches_real_llama_server_memory() {
    let Some(engine) = engine("estimate_matches_real_llama_server_memory") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = engine.model.clone();
    let draft_path = engine.model.to_str().unwrap();
    let configs: Vec<(&str, Weights, Vec<&str>)> = vec![
        ("Q4_1", Weights::File(&base), vec!["-c", "1024", "-np", "1"]),
        ("Q4_1", Weights::File(&base), vec!["-c", "2048", "-np", "2"]),
        (
            "Q4_1",
            Weights::File(&base),
            vec![
                "-c", "4096", "-np", "1", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on",
            ],
        ),
        ("Q4_1", Weights::File(&base), vec!["-c", "4096", "-np", "2"]),
        (
            "Q8_0",
            Weights::Quantized("Q8_0"),
            vec!["-c", "2048", "-np", "1"],
        ),
        (
            "Q5_1",
            Weights::Quantized("Q5_1"),
            vec![
                "-c", "2048", "-np", "2", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on",
            ],
        ),
        // Speculative decoding with a draft model (the same small model): two sets of weights,
        // two contexts. Without --spec-type this build loads the draft but never runs it.
        (
            "Q4_1",
            Weights::File(&base),
            vec![
                "-c",
                "2048",
                "-np",
                "1",
                "-md",
                draft_path,
                "--spec-type",
                "draft-simple",
            ],
        ),
    ];
    check_configs(&engine, dir.path(), &configs).await;
}

/// Starts the server once per config, warms it up and compares `infermon fit --against` with
/// its RSS (within 5 % or 32 MiB) and the KV bytes with its log; prints the table to stderr.
async fn check_configs(engine: &Engine, dir: &Path, configs: &[(&str, Weights<'_>, Vec<&str>)]) {
    let mut rows: Vec<String> = Vec::new();
    for (quant, weights, args) in configs {
        let made;
        let model = match weights {
            Weights::File(p) => *p,
            Weights::Quantized(q) => {
                made = quantize(engine, dir, q);
                &made
            }
        };
        let log_path = dir.join(format!("server-{}-{}.log", quant, rows.len()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut server_args = vec!["-lv", "4"];
        server_args.extend_from_slice(args);
        let (server, url) =
            start_llama_server_with(engine, model, &server_args, Stdio::from(log)).await;
        warm_up(&url).await;

        let out = Command::new(env!("CARGO_BIN_EXE_infermon"))
            .args(["fit", "--json", "--against", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["measured"]["pid"].as_u64(),
            Some(server.child.id() as u64)
        );

        let measured = rss_bytes(server.child.id()) as f64;
        let total = v["total_bytes"].as_f64().unwrap();
        let kv = v["kv_bytes"].as_f64().unwrap();
        let logged_kv = logged_kv_mib(&std::fs::read_to_string(&log_path).unwrap());
        let err = total - measured;
        let row = format!(
            "| {quant} | `{}` | {:.2} | {:.2} | {:.2} | {:+.2} ({:+.1} %) | {:.2} | {:.2} |",
            args.join(" "),
            total / MIB,
            measured / MIB,
            v["measured"]["rss_bytes"].as_f64().unwrap() / MIB,
            err / MIB,
            err / measured * 100.0,
            kv / MIB,
            logged_kv
        );
        eprintln!("{row}");
        rows.push(row);
        assert!(
            (kv / MIB - logged_kv).abs() < 0.006,
            "KV estimate {:.3} MiB vs server {logged_kv} MiB for {args:?}",
            kv / MIB
        );
        assert!(
            err.abs() <= (0.05 * measured).max(32.0 * MIB),
            "estimate {:.1} MiB vs RSS {:.1} MiB for {quant} {args:?}",
            total / MIB,
            measured / MIB
        );
        drop(server);
        if let Weights::Quantized(_) = weights {
            std::fs::remove_file(model).unwrap();
        }
    }
    eprintln!("| quant | llama-server flags | estimated MiB | RSS MiB | RSS seen by fit MiB | error MiB | KV est MiB | KV server MiB |");
    for r in rows {
        eprintln!("{r}");
    }
}

/// Gemma-3-270M Q4_K_M: a 262,144-token vocabulary (tokenizer tables and sampler arrays that
/// scale with it) and sliding-window attention (two KV caches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_matches_real_llama_server_memory_gemma() {
    let Some((engine, gemma)) = engine_gemma("estimate_matches_real_llama_server_memory_gemma")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let configs: Vec<(&str, Weights, Vec<&str>)> = vec![
        (
            "Q4_K_M",
            Weights::File(&gemma),
            vec!["-c", "1024", "-np", "1"],
        ),
        (
            "Q4_K_M",
            Weights::File(&gemma),
            vec!["-c", "4096", "-np", "4"],
        ),
        (
            "Q4_K_M",
            Weights::File(&gemma),
            vec![
                "-c", "8192", "-np", "4", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on",
            ],
        ),
        (
            "Q4_K_M",
            Weights::File(&gemma),
            vec!["-c", "16384", "-np", "1"],
        ),
        (
            "Q4_K_M",
            Weights::File(&gemma),
            vec!["-c", "8192", "-np", "1", "--swa-full"],
        ),
    ];
    check_configs(&engine, dir.path(), &configs).await;
}

#[test]
fn fit_reports_unknown_server_flags() {
    let Some(engine) = engine("fit_reports_unknown_server_flags") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .arg("fit")
        .arg("-m")
        .arg(&engine.model)
        .args(["-c", "2048", "--parallel-slots", "4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown llama-server flag \"--parallel-slots\""),
        "{err}"
    );
}
