//! Helpers for end-to-end tests: find the real engine, start processes on free loopback ports,
//! and stop them when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Paths of the real llama.cpp build and model, from the environment that
/// `scripts/setup-engine.sh` prints (or its cached `env.sh`).
pub struct Engine {
    pub server: PathBuf,
    pub quantize: PathBuf,
    pub model: PathBuf,
}

fn cached_env() -> Vec<(String, String)> {
    let cache = std::env::var("INFERMON_ENGINE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/infermon-engine")
        });
    let Ok(text) = std::fs::read_to_string(cache.join("env.sh")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

fn var(name: &str, cached: &[(String, String)]) -> Option<PathBuf> {
    std::env::var(name)
        .ok()
        .or_else(|| {
            cached
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// The engine, or `None` after printing why the test is skipped. With
/// `INFERMON_REQUIRE_E2E=1` (set by `scripts/test.sh` and CI) a missing engine fails instead.
pub fn engine(test: &str) -> Option<Engine> {
    let cached = cached_env();
    let found = (|| {
        Some(Engine {
            server: var("INFERMON_LLAMA_SERVER", &cached)?,
            quantize: var("INFERMON_LLAMA_QUANTIZE", &cached)?,
            model: var("INFERMON_TEST_MODEL", &cached)?,
        })
    })();
    if found.is_none() {
        let msg = format!(
            "SKIPPED end-to-end test {test}: no llama-server/model found (INFERMON_LLAMA_SERVER, \
             INFERMON_TEST_MODEL unset and no ~/.cache/infermon-engine/env.sh); run \
             `bash scripts/test.sh` to build them and run every test"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    found
}

/// The second test model, Gemma-3-270M Q4_K_M (`INFERMON_TEST_MODEL_GEMMA`, fetched by
/// `scripts/setup-engine.sh`), with the engine; `None` after printing why the test is skipped,
/// and with `INFERMON_REQUIRE_E2E=1` a missing one fails instead, as [`engine`] does.
pub fn engine_gemma(test: &str) -> Option<(Engine, PathBuf)> {
    let e = engine(test)?;
    let found = var("INFERMON_TEST_MODEL_GEMMA", &cached_env());
    if found.is_none() {
        let msg = format!(
            "SKIPPED end-to-end test {test}: no Gemma test model (INFERMON_TEST_MODEL_GEMMA unset \
             and not in ~/.cache/infermon-engine/env.sh); run `bash scripts/setup-engine.sh` or \
             `bash scripts/test.sh`"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    Some((e, found?))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts llama-server on SmolLM2 with `-c 2048` and extra args; waits until `/health` is 200.
pub async fn start_llama_server(e: &Engine, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["-c", "2048"];
    args.extend_from_slice(extra);
    start_llama_server_with(e, &e.model, &args, Stdio::null()).await
}

/// Starts llama-server on `model` with `args`, its log going to `stderr`; waits until
/// `/health` is 200.
pub async fn start_llama_server_with(
    e: &Engine,
    model: &std::path::Path,
    args: &[&str],
    stderr: Stdio,
) -> (Proc, String) {
    let port = free_port();
    let child = Command::new(&e.server)
        .arg("-m")
        .arg(model)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "-t",
            "2",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn llama-server");
    let p = Proc {
        child,
        name: "llama-server",
    };
    let url = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{url}/health"), Duration::from_secs(120)).await;
    (p, url)
}

/// Starts `infermon agent` with these args on a free port; waits for its first snapshot.
pub async fn start_agent(args: &[&str], data_dir: &std::path::Path) -> (Proc, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .arg("agent")
        .args(["--listen", &listen, "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("INFERMON_LOG", "warn")
        .env_remove("INFERMON_ENGINES")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn infermon agent");
    let p = Proc {
        child,
        name: "infermon",
    };
    let url = format!("http://{listen}");
    wait_http_ok(&format!("{url}/api/v1/snapshot"), Duration::from_secs(30)).await;
    (p, url)
}

pub async fn wait_http_ok(url: &str, limit: Duration) {
    let client = infermon_tls::client().build().unwrap();
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            start.elapsed() < limit,
            "{url} did not answer 200 within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get_json(url: &str) -> serde_json::Value {
    infermon_tls::client()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON body")
}

pub async fn get_text(url: &str) -> String {
    infermon_tls::client()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body")
}

/// `promtool` (from the `prometheus` package; `scripts/setup-test-deps.sh` installs it): the
/// path in `INFERMON_PROMTOOL`, else the first on `PATH`. `None` after printing why the test
/// is skipped; with `INFERMON_REQUIRE_E2E=1` a missing promtool fails instead.
pub fn promtool(test: &str) -> Option<PathBuf> {
    let is_file = |p: &PathBuf| p.is_file();
    let found = match std::env::var_os("INFERMON_PROMTOOL") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)).filter(is_file),
        _ => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("promtool"))
                .find(is_file)
        }),
    };
    if found.is_none() {
        let msg = format!(
            "SKIPPED test {test}: promtool not found (INFERMON_PROMTOOL unset or not a file, none \
             on PATH); run `bash scripts/setup-test-deps.sh` (installs the Debian package \
             `prometheus`) or `bash scripts/test.sh`"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    found
}

/// Python with the official `openai` and `ollama` clients (`scripts/setup-pyclients.sh`
/// installs them): `INFERMON_PYCLIENTS_PYTHON`, else the one named in
/// `~/.cache/infermon-pyclients/env.sh`. `None` after printing why the test is skipped; with
/// `INFERMON_REQUIRE_E2E=1` a missing one fails instead.
pub fn pyclients(test: &str) -> Option<PathBuf> {
    let from_cache = || {
        let cache = std::env::var("INFERMON_PYCLIENTS_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default())
                    .join(".cache/infermon-pyclients")
            });
        let text = std::fs::read_to_string(cache.join("env.sh")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("export INFERMON_PYCLIENTS_PYTHON="))
            .map(|v| PathBuf::from(v.trim_matches('"')))
    };
    let found = match std::env::var_os("INFERMON_PYCLIENTS_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => from_cache(),
    }
    .filter(|p| p.is_file());
    if found.is_none() {
        let msg = format!(
            "SKIPPED end-to-end test {test}: no Python with the openai and ollama clients \
             (INFERMON_PYCLIENTS_PYTHON unset or not a file, no ~/.cache/infermon-pyclients/env.sh); \
             run `bash scripts/setup-pyclients.sh` or `bash scripts/test.sh`"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    found
}

/// The Chromium to drive: `INFERMON_CHROMIUM`, else `chromium` on PATH; else skip (or fail
/// when end-to-end tests are required).
pub fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("INFERMON_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("chromium"))
                    .find(|c| c.is_file())
            })
        })
        .filter(|p| p.is_file());
    if found.is_none() {
        let msg = format!(
            "SKIPPED end-to-end test {test}: no chromium (INFERMON_CHROMIUM unset, none on \
             PATH); run `bash scripts/setup-test-deps.sh` (Debian package `chromium`)"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    found
}

/// Runs `tests/clients/dashboard_cdp.py` with `args` (at most 180 s) and returns the JSON of
/// its last line.
pub async fn drive_browser(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/dashboard_cdp.py"
    );
    let run = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("python3")
            .arg(script)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser driver took over 180 s")
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "browser driver failed: {}\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

/// Now, ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Starts `infermon hub` on `listen` with `join_token` and its data in `dir`; waits until
/// its fleet API answers.
pub async fn start_hub(dir: &std::path::Path, listen: &str, join_token: &str) -> Proc {
    start_hub_with(dir, listen, join_token, &[]).await
}

/// [`start_hub`] with more flags.
pub async fn start_hub_with(
    dir: &std::path::Path,
    listen: &str,
    join_token: &str,
    extra: &[&str],
) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args([
            "hub",
            "--listen",
            listen,
            "--join-token",
            join_token,
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .env("INFERMON_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn infermon hub");
    let p = Proc {
        child,
        name: "infermon hub",
    };
    wait_http_ok(
        &format!("http://{listen}/api/v1/fleet/nodes"),
        Duration::from_secs(30),
    )
    .await;
    p
}

/// Starts an agent that pushes to the hub at `hub` as node `name` with `join_token` (1 s
/// sampling, no discovery) and `extra` flags; its data in `dir/name`.
pub async fn start_hub_node(
    dir: &std::path::Path,
    name: &str,
    hub: &str,
    join_token: &str,
    extra: &[&str],
) -> (Proc, String) {
    let mut args = vec![
        "--no-discovery",
        "--interval",
        "1s",
        "--max-interval",
        "1s",
        "--node-name",
        name,
        "--hub",
        hub,
        "--hub-token",
        join_token,
    ];
    args.extend_from_slice(extra);
    start_agent(&args, &dir.join(name)).await
}

/// Percent-encodes a query-string component (RFC 3986 unreserved characters kept).
pub fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
