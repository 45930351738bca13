//! The agent's diagnosis wiring without a real engine (a refused port, then a tiny in-test HTTP
//! server that answers `/health` like llama-server): an engine that does not answer opens
//! `engine_down` on the API, the SSE stream, `/metrics` and `infermon status`; its alert reaches
//! a local webhook receiver once, even across an agent restart (the observation is adopted,
//! not opened again); when the engine answers, it resolves and the resolve alert arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use support::*;

/// A webhook receiver: records every POST body.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            if let Ok(v) = serde_json::from_slice(&body) {
                g.lock().unwrap().push(v);
            }
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

/// Answers every request like a healthy llama-server's `/health`.
fn healthy_engine(l: TcpListener) {
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"status":"ok"}"#;
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
}

async fn engine_down(agent: &str) -> Vec<Value> {
    let v = get_json(&format!("{agent}/api/v1/observations?since=-1h")).await;
    v["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "engine_down")
        .cloned()
        .collect()
}

async fn until<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "no {what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn alerts(got: &Arc<Mutex<Vec<Value>>>, event: &str) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|a| a["event"] == event && a["observation"]["kind"] == "engine_down")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_down_is_observed_alerted_once_and_resolved_across_a_restart() {
    let (hook, got) = receiver();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let engine_addr = dead.local_addr().unwrap();
    drop(dead); // refused from now on
    let engine = format!("http://{engine_addr}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[alert]]\nname = \"test\"\nurl = \"{hook}\"\nformat = \"json\"\nmin_severity = \"warning\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let engine_arg = format!("llamacpp={engine}");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--no-discovery",
        "--interval",
        "1s",
        "--engine",
        &engine_arg,
    ];
    let (agent_proc, agent) = start_agent(&args, &data).await;

    // SSE: an `observation` event carries the opening.
    let sse = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{agent}/api/v1/stream"))
        .send()
        .await
        .unwrap();
    let mut body = sse.bytes_stream();
    let opened_event = tokio::time::timeout(Duration::from_secs(30), async {
        let mut text = String::new();
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if let Some(i) = text.find("event: observation\ndata: ") {
                let rest = &text[i + 25..];
                if let Some(end) = rest.find('\n') {
                    return serde_json::from_str::<Value>(&rest[..end]).unwrap();
                }
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("an observation event within 30 s");
    assert_eq!(opened_event["change"], "opened");
    assert_eq!(opened_event["observation"]["kind"], "engine_down");

    let open = until(
        "engine_down on the API",
        Duration::from_secs(10),
        async || {
            engine_down(&agent)
                .await
                .into_iter()
                .find(|o| o["end_s"].is_null())
        },
    )
    .await;
    assert_eq!(open["subject"], format!("engine:{engine}"));
    assert!(
        open["action"].as_str().unwrap().contains("does not answer"),
        "{open}"
    );
    let metrics = get_text(&format!("{agent}/metrics")).await;
    assert!(metrics.contains(&format!(
        "infermon_observation_active{{kind=\"engine_down\",subject=\"engine:{engine}\",severity=\"critical\"}} 1"
    )));
    until("the opened alert", Duration::from_secs(20), async || {
        (alerts(&got, "opened").len() == 1).then_some(())
    })
    .await;
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args(["status", "--url", &agent])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        out.contains("OBSERVATIONS 1 open") && out.contains("engine_down"),
        "{out}"
    );

    // Restart: the open observation is adopted, not opened (or alerted) again.
    drop(agent_proc);
    let (agent_proc, agent) = start_agent(&args, &data).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let all = engine_down(&agent).await;
    assert_eq!(
        all.len(),
        1,
        "one engine_down, adopted across the restart: {all:?}"
    );
    assert_eq!(all[0]["id"], open["id"]);
    assert!(all[0]["end_s"].is_null());
    assert_eq!(
        alerts(&got, "opened").len(),
        1,
        "no second alert after the restart"
    );

    // The engine answers again: resolved, and the resolve alert arrives.
    healthy_engine(TcpListener::bind(engine_addr).unwrap());
    let ended = until(
        "engine_down resolved",
        Duration::from_secs(30),
        async || {
            engine_down(&agent)
                .await
                .into_iter()
                .find(|o| !o["end_s"].is_null())
        },
    )
    .await;
    assert_eq!(ended["id"], open["id"]);
    until("the resolved alert", Duration::from_secs(20), async || {
        (alerts(&got, "resolved").len() == 1).then_some(())
    })
    .await;
    assert_eq!(alerts(&got, "opened").len(), 1);
    let metrics = get_text(&format!("{agent}/metrics")).await;
    assert!(!metrics.contains("infermon_observation_active{kind=\"engine_down\""));
    assert!(
        metrics.contains("infermon_alerts_delivered_total{target=\"test\"}"),
        "{metrics}"
    );
    drop(agent_proc);
}
