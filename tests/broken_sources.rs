//! Broken sources keep the agent running: an engine whose endpoints hang, one that answers
//! HTML, one that refuses connections, and a `/proc`/`/sys` root with missing and garbage
//! files. Each is marked unavailable with a reason in the snapshot; the rest is still read.
//! The fake engines are tiny in-test HTTP servers (no real engine can hang on demand).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Serves `body` with `status` to every request, or never answers when `hang`.
fn fake_server(status: u16, body: &'static str, hang: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            if hang {
                held.push(s); // keep the socket open, say nothing
                continue;
            }
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    url
}

fn fake_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("proc/pressure")).unwrap();
    std::fs::write(p.join("proc/stat"), "cpu  garbage here\n").unwrap();
    std::fs::write(p.join("proc/meminfo"), "MemTotal: abc kB\n").unwrap();
    // vmstat missing entirely; pressure present but malformed
    std::fs::write(p.join("proc/pressure/memory"), "some avg10=x\n").unwrap();
    d
}

fn source<'a>(snap: &'a Value, name: &str) -> &'a Value {
    snap["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"].as_str().unwrap_or("").starts_with(name))
        .unwrap_or_else(|| panic!("source {name} missing: {snap}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_engines_and_host_files_are_marked_not_fatal() {
    let hang = fake_server(200, "", true);
    let html = fake_server(
        200,
        "<!DOCTYPE html><html><body>proxy login</body></html>",
        false,
    );
    let refused = format!("http://127.0.0.1:{}", free_port());
    let root = fake_root();
    let data = tempfile::tempdir().unwrap();
    let flags: Vec<String> = [&hang, &html, &refused]
        .iter()
        .map(|u| format!("llamacpp={u}"))
        .collect();
    let mut args = vec!["--no-discovery", "--interval", "500ms", "--root"];
    args.push(root.path().to_str().unwrap());
    for f in &flags {
        args.push("--engine");
        args.push(f);
    }
    let started = Instant::now();
    let (mut agent_proc, agent) = start_agent(&args, data.path()).await;
    // A hanging engine costs at most its timeout (1.5 s), not the agent's life.
    assert!(started.elapsed() < Duration::from_secs(15));

    // Several samples later the agent is still alive and serving.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        agent_proc.child.try_wait().unwrap().is_none(),
        "agent exited"
    );
    let snap = get_json(&format!("{agent}/api/v1/snapshot")).await;

    let engines = snap["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 3);
    for e in engines {
        assert_eq!(e["up"], Value::Bool(false), "{e}");
        assert_eq!(e["metrics_available"], Value::Bool(false), "{e}");
        assert_eq!(
            e["generation_tokens_total"],
            Value::Null,
            "absent, not zero: {e}"
        );
    }
    let reason = |url: &str| {
        engines
            .iter()
            .find(|e| e["instance"].as_str() == Some(url))
            .unwrap()["metrics_reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason(&hang).contains("timed out"), "{}", reason(&hang));
    assert!(
        reason(&html).to_lowercase().contains("html"),
        "{}",
        reason(&html)
    );
    assert!(
        reason(&refused).contains("connection failed"),
        "{}",
        reason(&refused)
    );

    // Host files: garbage and missing files are unavailable with the path in the reason.
    let cpu = source(&snap, "host.cpu");
    assert_eq!(cpu["ok"], Value::Bool(false));
    assert!(
        cpu["reason"].as_str().unwrap().contains("proc/stat"),
        "{cpu}"
    );
    let mem = source(&snap, "host.memory");
    assert!(
        mem["reason"].as_str().unwrap().contains("MemTotal"),
        "{mem}"
    );
    let vm = source(&snap, "host.vmstat");
    assert!(vm["reason"].as_str().unwrap().contains("vmstat"), "{vm}");
    assert_eq!(snap["host"]["memory_total_bytes"], Value::Null);

    // /metrics still renders, with sources marked down.
    let m = get_text(&format!("{agent}/metrics")).await;
    assert!(
        m.contains("infermon_source_up{source=\"host.cpu\"} 0"),
        "{m}"
    );
    assert!(m.contains("infermon_engine_up{engine=\"llamacpp\""), "{m}");
    assert!(
        !m.contains("infermon_engine_generation_tokens_total"),
        "absent, not zero"
    );
}
