//! End to end: `infermon top` in tmux, watching a real agent that watches a real llama-server
//! (SmolLM2-135M) with requests going through the agent's measuring proxy all along. The
//! screen must name the model and show the tok/s the API's snapshot gives for the sample the
//! header names; `?`, `s`, `p`, `/` and `q` must do what the help says; when the agent is
//! killed the screen must say it is unreachable and retrying, and when an agent comes back on
//! the same port the figures must come back. `--once` prints one plain screen (exit 0), or
//! exits 1 naming the URL when nothing answers; `NO_COLOR` leaves no colour on screen.
//! Screens are saved under `target/test-artifacts/top-*.txt`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TEST: &str = "top_in_tmux_shows_the_agents_figures_and_survives_it_going_away";
const BIN: &str = env!("CARGO_BIN_EXE_infermon");

/// tmux, or `None` after saying why the test is skipped (a failure with
/// `INFERMON_REQUIRE_E2E=1`).
fn tmux() -> Option<()> {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = format!(
            "SKIPPED end-to-end test {TEST}: no tmux on PATH; run \
             `bash scripts/setup-test-deps.sh` (it installs the Debian package)"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        return None;
    }
    Some(())
}

/// A tmux server of the test's own (its socket in a temporary directory), killed on drop.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-u")
            .arg("-S")
            .arg(self.dir.path().join("tmux.sock"))
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// Starts `infermon top` with `args` and `env` in a detached 100×30 session `top`.
    fn start(&self, args: &[&str], env: &[(&str, &str)]) {
        let mut cmd = vec!["new-session", "-d", "-x", "100", "-y", "30", "-s", "top"];
        let env_args: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for e in &env_args {
            cmd.extend(["-e", e.as_str()]);
        }
        cmd.extend(["--", BIN, "top"]);
        cmd.extend(args);
        let out = self.cmd(&cmd);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend(keys);
        assert!(self.cmd(&args).status.success());
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    fn capture_escapes(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-e", "-t", "top"]).stdout)
            .into_owned()
    }

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "top"]).status.success()
    }

    /// Waits until the screen satisfies `ok`; panics with the last screen after `limit`.
    fn wait(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if ok(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn artifact(name: &str, text: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

/// `infermon agent` on `port` (the same port again after a restart), watching `server` with a
/// proxy on `pport`; waits for its first snapshot.
async fn agent_on(port: u16, pport: u16, server: &str, dir: &Path) -> Proc {
    let child = Command::new(BIN)
        .args([
            "agent",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .args(["--no-discovery", "--engine", &format!("llamacpp={server}")])
        .args(["--proxy", &format!("127.0.0.1:{pport}={server}")])
        .args(["--interval", "1s", "--max-interval", "1s"])
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
    let url = format!("http://127.0.0.1:{port}/api/v1/snapshot");
    wait_http_ok(&url, Duration::from_secs(30)).await;
    p
}

/// Streams short chat requests through the proxy until `stop`, so the engine keeps
/// generating. llama-server adds to its token counters when a request ends, so short
/// requests are what gives most of the agent's 1 s windows a non-zero tok/s, even on a
/// loaded box.
fn traffic(proxy: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = infermon_tls::client().build().unwrap();
        while !stop.load(Ordering::Relaxed) {
            let body = json!({
                "messages": [{"role": "user", "content": "Tell me about rivers."}],
                "max_tokens": 12, "stream": true, "seed": 3
            });
            match http
                .post(format!("{proxy}/v1/chat/completions"))
                .json(&body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
            {
                Ok(r) => {
                    let _ = r.bytes().await;
                }
                // The proxy belongs to the agent: while the agent is down, wait.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
}

/// The `HH:MM:SSZ` the header shows.
fn header_clock(screen: &str) -> Option<String> {
    let head = screen.lines().next()?;
    let at = head.split("  at ").nth(1)?;
    Some(at.get(..9)?.to_string())
}

fn clock(ts_ms: i64) -> String {
    let s = ts_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// The model row: the line that starts with the first 12 characters of `model`.
fn row<'a>(screen: &'a str, model: &str) -> Option<&'a str> {
    let prefix: String = model.chars().take(12).collect();
    screen.lines().find(|l| l.starts_with(&prefix))
}

/// The tok/s cell of the model row (third column: model, engine, tok/s).
fn row_tok_s(screen: &str, model: &str) -> Option<f64> {
    row(screen, model)?.split_whitespace().nth(2)?.parse().ok()
}

/// Whether an SGR sequence on the screen sets a colour (30–37, 38, 40–47, 48, 90–107).
fn has_colour(escaped: &str) -> bool {
    escaped.split("\x1b[").skip(1).any(|seq| {
        let Some(end) = seq.find('m') else {
            return false;
        };
        let params = &seq[..end];
        !params.contains(|c: char| !c.is_ascii_digit() && c != ';')
            && params.split(';').any(|p| {
                matches!(
                    p.parse::<u32>(),
                    Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
                )
            })
    })
}

/// Checks, for up to `limit`, until the screen's tok/s for the model equals (within the
/// one-decimal rounding) the API's for the very sample the header names.
async fn tok_s_matches_api(t: &Tmux, agent: &str, model: &str, limit: Duration) -> (String, f64) {
    let start = Instant::now();
    loop {
        let screen = t.capture();
        let snap: Value = get_json(&format!("{agent}/api/v1/snapshot")).await;
        let api = snap["engines"][0]["generation_throughput_tokens_per_second"].as_f64();
        let same_sample =
            header_clock(&screen) == Some(clock(snap["ts_unix_ms"].as_i64().unwrap()));
        if let (true, Some(api), Some(shown)) = (same_sample, api, row_tok_s(&screen, model)) {
            if api > 0.0 {
                assert!(
                    (shown - api).abs() <= 0.05 + 1e-9,
                    "screen says {shown} tok/s, the API {api} for the same sample:\n{screen}"
                );
                return (screen, api);
            }
        }
        let last = format!(
            "{screen}\nAPI: {api:?} at {}",
            clock(snap["ts_unix_ms"].as_i64().unwrap_or(0))
        );
        assert!(
            start.elapsed() < limit,
            "no matching non-zero tok/s within {limit:?}:\n{last}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn run_once(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("top")
        .args(args)
        .env_remove("INFERMON_URL")
        .env_remove("INFERMON_TOKEN")
        .output()
        .expect("run infermon top --once")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_in_tmux_shows_the_agents_figures_and_survives_it_going_away() {
    let Some(e) = engine(TEST) else { return };
    let Some(()) = tmux() else { return };
    let (_srv, server) = start_llama_server(&e, &["--metrics", "-np", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (port, pport) = (free_port(), free_port());
    let agent = format!("http://127.0.0.1:{port}");
    let mut agent_proc = Some(agent_on(port, pport, &server, dir.path()).await);
    let stop = Arc::new(AtomicBool::new(false));
    // Two clients, so the next request is already queued when one ends.
    let load = [
        traffic(format!("http://127.0.0.1:{pport}"), stop.clone()),
        traffic(format!("http://127.0.0.1:{pport}"), stop.clone()),
    ];

    let snap = get_json(&format!("{agent}/api/v1/snapshot")).await;
    let model = snap["engines"][0]["model"].as_str().unwrap().to_string();
    assert_ne!(model, "unknown");

    let t = Tmux::new();
    t.start(&["--url", &agent, "--interval", "1s"], &[]);
    t.wait("the model row", Duration::from_secs(20), |s| {
        row(s, &model).is_some()
    });
    let (screen, api) = tok_s_matches_api(&t, &agent, &model, Duration::from_secs(120)).await;
    artifact("top-main.txt", &screen);
    eprintln!("top shows {api:.1} tok/s for {model}, as the API does:\n{screen}");
    assert!(screen.contains("CPU  ["), "{screen}");
    assert!(screen.contains("Mem  ["), "{screen}");
    assert!(screen.contains(" tok/s "), "{screen}");
    // The proxy measured the requests: TTFT/TPOT figures and the recent list.
    t.wait("proxy latency figures", Duration::from_secs(60), |s| {
        row(s, &model).is_some_and(|r| r.split_whitespace().nth(4).is_some_and(|c| c.contains('/')))
            && s.contains("Recent requests\n")
            && s.lines().any(|l| l.contains(" ok ") && l.contains("TTFT"))
    });

    // Keys.
    t.keys(&["?"]);
    let help = t.wait("the help", Duration::from_secs(10), |s| {
        s.contains("infermon top: keys")
    });
    artifact("top-help.txt", &help);
    t.keys(&["Escape"]);
    t.wait("the help to close", Duration::from_secs(10), |s| {
        !s.contains("infermon top: keys")
    });
    assert!(t.alive(), "Esc over the help must not quit");
    t.keys(&["s"]);
    t.wait("sort by model", Duration::from_secs(10), |s| {
        s.contains("sorted by model")
    });
    t.keys(&["S"]);
    t.wait("reversed", Duration::from_secs(10), |s| {
        s.contains("(reversed)")
    });
    t.keys(&["/", "z", "z", "q", "Enter"]);
    t.wait("the filter", Duration::from_secs(10), |s| {
        s.contains("no model matches \"zzq\"")
    });
    assert!(t.alive(), "typing q into the filter must not quit");
    t.keys(&["Escape"]);
    t.wait("the filter cleared", Duration::from_secs(10), |s| {
        row(s, &model).is_some()
    });
    t.keys(&["p"]);
    let paused = t.wait("pause", Duration::from_secs(10), |s| s.contains("PAUSED"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        header_clock(&t.capture()),
        header_clock(&paused),
        "paused, the screen must keep its sample"
    );
    t.keys(&["p"]);
    t.wait("resume", Duration::from_secs(10), |s| !s.contains("PAUSED"));

    // The agent goes away ...
    drop(agent_proc.take());
    let gone = t.wait("the unreachable message", Duration::from_secs(15), |s| {
        s.contains("agent unreachable, retrying every 1s") && s.contains("refused")
    });
    artifact("top-unreachable.txt", &gone);
    assert!(
        row(&gone, &model).is_some(),
        "the last data stays on screen:\n{gone}"
    );
    let failed = |s: &str| -> u32 {
        s.split(" failed)")
            .next()
            .and_then(|a| a.rsplit('(').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = failed(&gone);
    let later = t.wait("more retries", Duration::from_secs(10), |s| {
        failed(s) >= before + 2
    });
    assert!(failed(&later) > before);

    // ... and comes back on the same port.
    agent_proc = Some(agent_on(port, pport, &server, dir.path()).await);
    t.wait("the figures back", Duration::from_secs(60), |s| {
        !s.contains("unreachable") && row(s, &model).is_some()
    });
    let (back, _) = tok_s_matches_api(&t, &agent, &model, Duration::from_secs(120)).await;
    artifact("top-back.txt", &back);

    // `q` quits.
    t.keys(&["q"]);
    let start = Instant::now();
    while t.alive() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "q did not quit:\n{}",
            t.capture()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Colours, and NO_COLOR.
    let coloured = Tmux::new();
    coloured.start(&["--url", &agent], &[]);
    coloured.wait("the model row", Duration::from_secs(20), |s| {
        row(s, &model).is_some()
    });
    assert!(
        has_colour(&coloured.capture_escapes()),
        "expected colours without NO_COLOR"
    );
    drop(coloured);
    let plain = Tmux::new();
    plain.start(&["--url", &agent], &[("NO_COLOR", "1")]);
    plain.wait("the model row", Duration::from_secs(20), |s| {
        row(s, &model).is_some()
    });
    let escaped = plain.capture_escapes();
    assert!(
        !has_colour(&escaped),
        "NO_COLOR set, yet colours:\n{escaped:?}"
    );
    drop(plain);

    // --once: one plain 80×24 screen.
    let out = run_once(&["--once", "--url", &agent]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    artifact("top-once.txt", &text);
    assert!(text.lines().count() <= 24, "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    assert!(row(&text, &model).is_some(), "{text}");
    assert!(!text.contains('\x1b'), "--once must be plain text");
    let wide = run_once(&[
        "--once", "--url", &agent, "--width", "140", "--height", "40",
    ]);
    assert!(String::from_utf8(wide.stdout).unwrap().contains("RSS"));

    stop.store(true, Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    drop(agent_proc.take());

    // Nothing answers: exit 1, naming the URL.
    let out = run_once(&["--once", "--url", &agent]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("cannot reach"),
        "{err}"
    );
    // Bad flags name the value and what was expected.
    let out = run_once(&["--once", "--interval", "soon"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("\"soon\"") && err.contains("e.g. 1s"), "{err}");
    let out = run_once(&["--once", "--url", "localhost:7411"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid --url \"localhost:7411\""), "{err}");
}
