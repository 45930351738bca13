//! End to end: diagnosis against a real llama-server (SmolLM2-135M) behind `infermon agent
//! --proxy`. Steady traffic must stay quiet; busy processes on the server's cores must show up
//! as a TTFT/TPOT regression caused by `cpu_contention` that names them; killing the server
//! must open `engine_down`, and starting it again must resolve it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::{engine, free_port, get_json, get_text, start_agent, wait_http_ok, Proc};

async fn observations(agent: &str) -> Vec<Value> {
    let v = get_json(&format!("{agent}/api/v1/observations?since=-30m&limit=500")).await;
    v["observations"].as_array().cloned().unwrap_or_default()
}

fn spawn_server(e: &support::Engine, port: u16) -> Proc {
    let child = Command::new(&e.server)
        .arg("-m")
        .arg(&e.model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", "2048", "--metrics", "-np", "1", "-t", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn llama-server");
    Proc {
        child,
        name: "llama-server",
    }
}

/// One request as the test's own client timed it.
#[derive(Debug, Clone, Copy)]
struct Timed {
    /// Unix time of the request's start, seconds.
    t_s: f64,
    /// Unix time of its last content event, seconds.
    end_s: f64,
    ttft_ms: f64,
    /// Mean gap between content events after the first; `None` with fewer than two.
    tpot_ms: Option<f64>,
}

/// Streams the same short chat through the proxy, one request after another, until `stop`,
/// timing each one from the client's side (an independent clock for what the proxy measures).
fn traffic(
    proxy: String,
    stop: Arc<AtomicBool>,
    timed: Arc<Mutex<Vec<Timed>>>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let http = infermon_tls::client().build().unwrap();
        let body = json!({
            "messages": [{"role": "user", "content": "Name three colours of the rainbow."}],
            "max_tokens": 24, "stream": true, "temperature": 0.0
        });
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let t_s = support::now_ms() as f64 / 1000.0;
            let t0 = Instant::now();
            let Ok(r) = http
                .post(format!("{proxy}/v1/chat/completions"))
                .json(&body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
            else {
                continue;
            };
            let mut chunks = r.bytes_stream();
            let (mut pending, mut at) = (String::new(), Vec::new());
            while let Some(Ok(c)) = chunks.next().await {
                let now = t0.elapsed().as_secs_f64() * 1000.0;
                pending.push_str(&String::from_utf8_lossy(&c));
                while let Some(i) = pending.find("\n\n") {
                    let ev: String = pending.drain(..i + 2).collect();
                    let data = ev.trim().strip_prefix("data: ").unwrap_or("");
                    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    let content = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
                    if !content.is_empty() {
                        at.push(now);
                    }
                }
            }
            if let (Some(first), Some(last)) = (at.first(), at.last()) {
                let tpot_ms = (at.len() > 1).then(|| (last - first) / (at.len() - 1) as f64);
                timed.lock().unwrap().push(Timed {
                    t_s,
                    end_s: t_s + last / 1000.0,
                    ttft_ms: *first,
                    tpot_ms,
                });
            }
            n += 1;
        }
        n
    })
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// Whether the test's own client saw what a latency symptom says: its median of the same
/// figure over the symptom's span (onset to confirmation) at least 5 % above its median before
/// the onset. Half the detector's minimum effect, since the client's clock also counts the
/// network hop and its own scheduling. `None` for a kind it cannot judge.
fn client_saw(o: &Value, timed: &[Timed]) -> Option<(bool, String)> {
    let pick: fn(&Timed) -> Option<f64> = match o["kind"].as_str()? {
        "ttft_regression" => |t| Some(t.ttft_ms),
        "tpot_regression" => |t| t.tpot_ms,
        // tokens per second fall exactly when the gap between tokens grows
        "throughput_drop" => |t| t.tpot_ms,
        _ => return None,
    };
    let start = o["start_s"].as_f64()?;
    let end = o["confirmed_s"].as_f64()?;
    // Before: requests that were over when the symptom's window began. During: every request
    // that was streaming at some point of the window (a slowed request can outlast it).
    let before = median(
        timed
            .iter()
            .filter(|t| t.end_s < start)
            .filter_map(pick)
            .collect(),
    )?;
    let during = median(
        timed
            .iter()
            .filter(|t| t.t_s <= end && t.end_s >= start - 1.0)
            .filter_map(pick)
            .collect(),
    )?;
    Some((
        during >= 1.05 * before,
        format!("the client's own median went from {before:.2} to {during:.2} ms"),
    ))
}

/// The client's requests once the one streaming at `until_s` has finished (the client sends
/// one request at a time, so every request that overlapped an earlier moment is then timed).
async fn timed_through(timed: &Mutex<Vec<Timed>>, until_s: f64) -> Vec<Timed> {
    let start = Instant::now();
    loop {
        let all = timed.lock().unwrap().clone();
        if all.iter().any(|t| t.end_s >= until_s) || start.elapsed() > Duration::from_secs(90) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_for<F: Fn(&[Value]) -> Option<Value>>(
    agent: &str,
    limit: Duration,
    what: &str,
    f: F,
) -> Value {
    let start = Instant::now();
    loop {
        let obs = observations(agent).await;
        if let Some(v) = f(&obs) {
            eprintln!("{what} after {:.0} s", start.elapsed().as_secs_f64());
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "no {what} within {limit:?}; observations: {}",
            serde_json::to_string_pretty(&obs).unwrap()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_and_a_dead_engine_are_named() {
    let Some(e) = engine("contention_and_a_dead_engine_are_named") else {
        return;
    };
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let srv = spawn_server(&e, port);
    wait_http_ok(&format!("{server}/health"), Duration::from_secs(120)).await;
    let dir = tempfile::tempdir().unwrap();
    let pport = free_port();
    let proxy_arg = format!("127.0.0.1:{pport}={server}");
    let engine_arg = format!("llamacpp={server}");
    // Discovery stays on: it ties the engine URL to its process, so the server itself is
    // never taken for the culprit.
    let (_agent, agent) = start_agent(
        &[
            "--interval",
            "1s",
            "--engine",
            &engine_arg,
            "--proxy",
            &proxy_arg,
        ],
        dir.path(),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let timed = Arc::new(Mutex::new(Vec::new()));
    let load = traffic(
        format!("http://127.0.0.1:{pport}"),
        stop.clone(),
        timed.clone(),
    );

    // Steady load: baselines warm up (30 samples per context) and nothing is reported. Real
    // contention from elsewhere on the machine (a compiler, another test) is not a false
    // alarm: `cpu_contention` and what it explains are left out of this check. Nor is a
    // slowdown of the machine itself (a shared CI host, its clock): a latency symptom without
    // a cause passes when the test's own client saw the same figure rise over the same span,
    // and fails as a false alarm when it did not.
    tokio::time::sleep(Duration::from_secs(50)).await;
    let client = timed.lock().unwrap().clone();
    let quiet: Vec<Value> = observations(&agent)
        .await
        .into_iter()
        .filter(|o| o["severity"] != "info")
        .filter(|o| o["kind"] != "cpu_contention" && o["cause"]["kind"] != "cpu_contention")
        // Discovery also watches any other llama-server on this machine; only this test's
        // engine and the node are judged here.
        .filter(|o| {
            let s = o["subject"].as_str().unwrap_or("");
            !s.contains("http://") || s.contains(server.as_str())
        })
        .filter(|o| match client_saw(o, &client) {
            Some((true, why)) if o["cause"].is_null() => {
                eprintln!("the machine itself slowed down: {} ({why})", o["id"]);
                false
            }
            Some((_, why)) => {
                eprintln!("{}: {why}", o["id"]);
                true
            }
            None => true,
        })
        .collect();
    assert!(
        quiet.is_empty(),
        "steady traffic must stay quiet ({} requests timed by the client): {}",
        client.len(),
        serde_json::to_string_pretty(&quiet).unwrap()
    );

    // Two busy loops on a 2-core machine: the server's threads now share their cores.
    let burners: Vec<Proc> = (0..2)
        .map(|_| Proc {
            child: Command::new("python3")
                .args(["-c", "while True: pass"])
                .spawn()
                .expect("spawn python3 busy loop"),
            name: "burner",
        })
        .collect();
    let pids: Vec<u32> = burners.iter().map(|b| b.child.id()).collect();
    let symptom = wait_for(
        &agent,
        Duration::from_secs(120),
        "a regression caused by cpu_contention",
        |obs| {
            obs.iter()
                .find(|o| {
                    (o["kind"] == "ttft_regression" || o["kind"] == "tpot_regression")
                        && o["cause"]["kind"] == "cpu_contention"
                })
                .cloned()
        },
    )
    .await;
    eprintln!(
        "symptom: {}",
        serde_json::to_string_pretty(&symptom).unwrap()
    );
    let action = symptom["action"].as_str().unwrap();
    assert!(
        action.contains("`python3` (pid "),
        "culprit named: {action}"
    );
    assert!(
        pids.iter().any(|p| action.contains(&format!("pid {p})"))),
        "one of {pids:?} named: {action}"
    );
    // The same check that lets a real slowdown of the machine pass above must see this one.
    let confirmed = symptom["confirmed_s"].as_f64().unwrap();
    let client = timed_through(&timed, confirmed).await;
    let (saw, why) = client_saw(&symptom, &client).expect("a latency symptom");
    assert!(saw, "the client saw the contention too: {why}");
    eprintln!("contention as the client saw it: {why}");
    let figure = &symptom["evidence"]["figures"][0];
    assert!(
        figure["now"].as_f64().unwrap() >= 1.1 * figure["baseline"].as_f64().unwrap(),
        "the figure rose by the minimum effect: {figure}"
    );
    drop(burners);
    stop.store(true, Ordering::Relaxed);
    let served = load.await.unwrap();
    eprintln!("{served} requests served through the proxy");

    // The engine dies: engine_down opens, is exported, and resolves when it is back.
    drop(srv);
    let down = wait_for(&agent, Duration::from_secs(60), "engine_down", |obs| {
        obs.iter()
            .find(|o| o["kind"] == "engine_down" && o["end_s"].is_null())
            .cloned()
    })
    .await;
    assert_eq!(down["subject"], format!("engine:{server}"));
    assert_eq!(down["severity"], "critical");
    let metrics = get_text(&format!("{agent}/metrics")).await;
    assert!(
        metrics.contains(&format!(
            "infermon_observation_active{{kind=\"engine_down\",subject=\"engine:{server}\",severity=\"critical\"}} 1"
        )),
        "{metrics}"
    );
    let id = down["id"].as_str().unwrap().to_string();
    let _srv = spawn_server(&e, port);
    wait_http_ok(&format!("{server}/health"), Duration::from_secs(120)).await;
    let ended = wait_for(
        &agent,
        Duration::from_secs(60),
        "engine_down resolved",
        |obs| {
            obs.iter()
                .find(|o| o["id"] == id.as_str() && !o["end_s"].is_null())
                .cloned()
        },
    )
    .await;
    assert!(ended["end_s"].as_f64().unwrap() > ended["start_s"].as_f64().unwrap());
}
