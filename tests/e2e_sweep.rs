//! End-to-end: `infermon bench sweep` over three quantizations of SmolLM2 made with
//! llama-quantize, each served by a real llama-server and scored by llama-perplexity on the
//! shipped text. Checks perplexity per quant, that it rises as bits fall, the three report
//! files, and exactly one knee on the Pareto front.
//!
//! The three types (measured on this text, `-c 128`, from the shipped Q4_1; see
//! `crates/bench/data/README.md`): Q8_0 ≈ 24.0, Q4_0 ≈ 28.6, Q3_K_S ≈ 30.7 over 8 chunks.
//! Requantizing the Q4_1 to Q8_0 keeps its values (≈ Q4_1's perplexity); Q5_1 from a Q4_1 is
//! *worse* than the Q4_1, and Q3_K_S and Q2_K give the same file on this model (576-wide
//! tensors fall back from K-quants), so those are not used.
//!
//! A second test sweeps models by name through a router in front of running servers
//! (`--url ROUTER --models 'smol-*'`): two real llama-servers behind
//! `infermon_mockllm::router`, a constructed stand-in for llama-swap. The files and their
//! perplexity are found through the servers themselves (llama-swap's `/running` gives each
//! model's own llama-server, whose `/props` names its file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The two sweeps take both cores; they run one after the other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// llama-perplexity from the environment, else from the cached `env.sh` that
/// `scripts/setup-engine.sh` writes (the support `Engine` has no field for it).
fn perplexity_binary() -> Option<PathBuf> {
    let from_env = std::env::var_os("INFERMON_LLAMA_PERPLEXITY").map(PathBuf::from);
    let from_cache = || {
        let cache = std::env::var_os("INFERMON_ENGINE_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/infermon-engine")
            });
        let text = std::fs::read_to_string(cache.join("env.sh")).ok()?;
        text.lines()
            .filter_map(|l| l.strip_prefix("export INFERMON_LLAMA_PERPLEXITY="))
            .map(|v| PathBuf::from(v.trim_matches('"')))
            .next()
    };
    from_env.or_else(from_cache).filter(|p| p.is_file())
}

fn quantize(tool: &Path, input: &Path, out: &Path, kind: &str) {
    let o = Command::new(tool)
        .arg("--allow-requantize")
        .arg(input)
        .arg(out)
        .arg(kind)
        .output()
        .expect("run llama-quantize");
    assert!(
        o.status.success(),
        "llama-quantize {kind} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn sweep_of_three_quants_ranks_perplexity_by_bits() {
    let Some(e) = support::engine("e2e_sweep") else {
        return;
    };
    let Some(ppl) = perplexity_binary() else {
        let msg = "SKIPPED end-to-end test e2e_sweep: no llama-perplexity \
                   (INFERMON_LLAMA_PERPLEXITY unset and not in ~/.cache/infermon-engine/env.sh)";
        assert!(
            std::env::var("INFERMON_REQUIRE_E2E").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("{msg}");
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let kinds = ["Q8_0", "Q4_0", "Q3_K_S"];
    let files: Vec<PathBuf> = kinds
        .iter()
        .map(|k| {
            let out = dir.path().join(format!("SmolLM2-135M-{k}.gguf"));
            quantize(&e.quantize, &e.model, &out, k);
            out
        })
        .collect();
    let text = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/bench/data/pride-and-prejudice-ch1-2.txt");
    let out = dir.path().join("sweep.json");
    let started = std::time::Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args(["bench", "sweep"])
        .args(&files)
        .args(["--requests", "4", "--max-tokens", "16", "--warmup", "1"])
        .args(["--text"])
        .arg(&text)
        .args(["--ctx", "128", "--chunks", "8", "--threads", "2"])
        .args(["--server-ctx", "2048", "--quiet", "--out"])
        .arg(&out)
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .env("INFERMON_LLAMA_SERVER", &e.server)
        .env("INFERMON_LLAMA_PERPLEXITY", &ppl)
        .env("INFERMON_LOG", "warn")
        .output()
        .expect("run infermon bench sweep");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!(
        "sweep took {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        started.elapsed()
    );
    // Exit status 2 means a request failed (the report is still written); every file must
    // still have been measured, which the checks below see. Anything else is a failure.
    assert!(
        matches!(o.status.code(), Some(0 | 2)),
        "infermon bench sweep: {}",
        o.status
    );

    for ext in ["json", "md", "html"] {
        let p = out.with_extension(ext);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "report {} missing or empty", p.display());
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let points = report["sweep"]["points"]
        .as_array()
        .expect("sweep.points in the JSON report");
    assert_eq!(points.len(), 3, "{points:#?}");

    let mut rows: Vec<(String, f64, f64, f64)> = points
        .iter()
        .map(|p| {
            (
                p["quant"].as_str().unwrap().to_string(),
                p["bits_per_weight"].as_f64().unwrap(),
                p["perplexity"].as_f64().expect("perplexity per quant"),
                p["tokens_per_second"].as_f64().unwrap(),
            )
        })
        .collect();
    let quants: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(quants, kinds, "quant names from general.file_type");
    for r in &rows {
        eprintln!("{:7} {:.3} bpw  PPL {:.4}  {:.2} tok/s", r.0, r.1, r.2, r.3);
        assert!(r.3 > 0.0, "{} has no speed", r.0);
    }
    // Perplexity rises as bits fall.
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    for w in rows.windows(2) {
        assert!(w[0].1 > w[1].1, "bits per weight differ: {rows:?}");
        assert!(
            w[1].2 > w[0].2,
            "perplexity of {} ({:.4}, {:.2} bpw) is not above {} ({:.4}, {:.2} bpw)",
            w[1].0,
            w[1].2,
            w[1].1,
            w[0].0,
            w[0].2,
            w[0].1
        );
    }

    let knees: Vec<&serde_json::Value> = points.iter().filter(|p| p["knee"] == true).collect();
    assert_eq!(knees.len(), 1, "exactly one knee: {points:#?}");
    assert_eq!(knees[0]["on_front"], true, "the knee is on the front");
    assert!(
        points.iter().any(|p| p["on_front"] == true),
        "a non-empty front"
    );

    let md = std::fs::read_to_string(out.with_extension("md")).unwrap();
    let html = std::fs::read_to_string(out.with_extension("html")).unwrap();
    for k in kinds {
        assert!(md.contains(k), "Markdown report lists {k}");
        assert!(html.contains(k), "HTML report lists {k}");
    }
    assert!(html.contains("knee"), "HTML report marks the knee");
}

/// `llamacpp:tokens_predicted_total` of a server.
async fn tokens_predicted(url: &str) -> f64 {
    let text = support::get_text(&format!("{url}/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix("llamacpp:tokens_predicted_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no llamacpp:tokens_predicted_total in {url}/metrics"))
}

#[test]
fn sweep_of_models_behind_a_router_finds_their_files() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(router_sweep());
}

async fn router_sweep() {
    let Some(e) = support::engine("e2e_sweep (router)") else {
        return;
    };
    let Some(ppl) = perplexity_binary() else {
        let msg = "SKIPPED end-to-end test e2e_sweep (router): no llama-perplexity";
        assert!(
            std::env::var("INFERMON_REQUIRE_E2E").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("{msg}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    let mut models = Vec::new();
    let mut files = Vec::new();
    for k in ["Q8_0", "Q4_0"] {
        let file = dir.path().join(format!("SmolLM2-135M-{k}.gguf"));
        quantize(&e.quantize, &e.model, &file, k);
        let (p, url) = support::start_llama_server_with(
            &e,
            &file,
            &["-c", "2048", "--metrics"],
            Stdio::null(),
        )
        .await;
        let name = format!("smol-{}", k.to_ascii_lowercase());
        models.push(infermon_mockllm::router::RoutedModel::new(&name, &url));
        servers.push((p, url, name));
        files.push(file);
    }
    let router = infermon_mockllm::router::spawn_router(
        infermon_mockllm::router::RouterKind::LlamaSwap,
        models,
        &[],
    )
    .await
    .unwrap();
    let text = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/bench/data/pride-and-prejudice-ch1-2.txt");
    let out = dir.path().join("served.json");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_infermon"));
    cmd.args([
        "bench",
        "sweep",
        "--url",
        router.url(),
        "--models",
        "smol-*",
    ])
    .args(["--requests", "4", "--max-tokens", "16", "--warmup", "1"])
    .arg("--text")
    .arg(&text)
    .args([
        "--ctx",
        "128",
        "--chunks",
        "8",
        "--threads",
        "2",
        "--quiet",
        "--out",
    ])
    .arg(&out)
    .env("INFERMON_LLAMA_PERPLEXITY", &ppl)
    .env("INFERMON_LOG", "warn");
    let o = cmd
        .output()
        .await
        .expect("run infermon bench sweep --models");
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("--- stderr\n{stderr}");
    assert!(matches!(o.status.code(), Some(0 | 2)), "exit {}", o.status);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let points = report["sweep"]["points"].as_array().expect("sweep.points");
    assert_eq!(points.len(), 2, "{points:#?}");
    for (p, (file, (_, _, name))) in points.iter().zip(files.iter().zip(&servers)) {
        assert_eq!(p["model"], name.as_str());
        // The file came from the server (/running → its llama-server → /props), and with it
        // the header's facts and the perplexity.
        assert_eq!(p["file"], file.display().to_string(), "{p:#}");
        assert_eq!(p["facts_source"], "GGUF header");
        assert!(p["perplexity"].as_f64().is_some(), "{p:#}");
        assert!(p["tokens_per_second"].as_f64().unwrap() > 0.0);
    }
    let q = |i: usize, k: &str| points[i][k].as_f64().unwrap();
    assert_eq!(points[0]["quant"], "Q8_0");
    assert_eq!(points[1]["quant"], "Q4_0");
    assert!(q(0, "bits_per_weight") > q(1, "bits_per_weight"));
    assert!(
        q(1, "perplexity") > q(0, "perplexity"),
        "Q4_0 perplexity {} is not above Q8_0's {}",
        q(1, "perplexity"),
        q(0, "perplexity")
    );
    // Every model ran 1 warm-up + 4 requests of 16 tokens on its own server, and each
    // model the sweep loaded was unloaded after its turn.
    for (_, url, name) in &servers {
        assert_eq!(tokens_predicted(url).await, 80.0, "{name}");
    }
    assert_eq!(router.unloaded(), ["smol-q8_0", "smol-q4_0"]);
    assert!(router.log().iter().all(|l| !l.contains("/upstream")));
    // The top-level run is the knee's, polled at its own llama-server.
    let knee = points
        .iter()
        .position(|p| p["knee"] == true)
        .expect("a knee");
    assert_eq!(report["system"]["engine_url"], servers[knee].1.as_str());
    assert_eq!(report["completion_tokens_total"], 64);
}
