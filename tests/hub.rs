//! `infermon hub` with three real agents pushing to it (`agent --hub`), as a user runs them:
//! the hub is killed with SIGKILL for 60 s and started again on the same data, one agent is
//! restarted in between with a full outbox, and every sample each agent stored itself in that
//! span is at the hub exactly once (compared with the agent's own `/api/v1/history`, an
//! independent reference); the restarted agent pushes with the node token it kept; a revoked node is refused while its agent keeps
//! what it could not send; bad joins are refused with a reason. No engine is needed: the
//! samples are the hosts' own (CPU, memory), which every agent measures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Proc;

const SERIES: &str = "infermon_agent_sample_interval_seconds";
const JOIN: &str = "join-token-for-the-hub-test-0123456789";

async fn start_hub(dir: &Path, listen: &str) -> Proc {
    support::start_hub(dir, listen, JOIN).await
}

async fn start_node(dir: &Path, node: &str, hub: &str) -> (Proc, String) {
    support::start_hub_node(dir, node, hub, JOIN, &[]).await
}

fn times(v: &Value, from: i64, to: i64) -> Vec<i64> {
    v["series"][0]["points"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["ts_ms"].as_i64().unwrap())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|t| *t > from && *t <= to)
        .collect()
}

/// Sample times of [`SERIES`] in `(from, to]` in the agent's own store.
async fn at_agent(api: &str, from: i64, to: i64) -> Vec<i64> {
    let v = support::get_json(&format!(
        "{api}/api/v1/history?metric={SERIES}&from={from}&to={to}&resolution=raw"
    ))
    .await;
    times(&v, from, to)
}

/// The same at the hub, for `node`.
async fn at_hub(hub: &str, node: &str, from: i64, to: i64) -> Vec<i64> {
    let v = support::get_json(&format!(
        "{hub}/api/v1/fleet/history?node={node}&metric={SERIES}&from={from}&to={to}&resolution=raw"
    ))
    .await;
    times(&v, from, to)
}

async fn node_view(hub: &str, node: &str) -> Value {
    let v = support::get_json(&format!("{hub}/api/v1/fleet/nodes")).await;
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == node)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until the hub lists `node` as up (30 s at most).
async fn wait_up(hub: &str, node: &str) {
    let start = Instant::now();
    while node_view(hub, node).await["liveness"] != "up" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{node} never came up at the hub"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until the hub has exactly the agent's samples of `(from, to]`; panics with the
/// difference after `limit`.
async fn wait_same(hub: &str, api: &str, node: &str, from: i64, to: i64, limit: Duration) {
    let start = Instant::now();
    loop {
        let (a, h) = (
            at_agent(api, from, to).await,
            at_hub(hub, node, from, to).await,
        );
        let unique: BTreeSet<i64> = h.iter().copied().collect();
        assert_eq!(
            unique.len(),
            h.len(),
            "{node}: a sample is twice at the hub: {h:?}"
        );
        if a == h && !a.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{node}: the hub does not have the agent's samples of ({from}, {to}] after \
             {limit:?}\n  agent {} {a:?}\n  hub   {} {h:?}",
            a.len(),
            h.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn post(url: &str, bearer: &str, body: Value) -> (u16, String) {
    let r = infermon_tls::client()
        .build()
        .unwrap()
        .post(url)
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_lose_nothing_across_a_hub_crash_and_revoked_nodes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", support::free_port());
    let hub = format!("http://{listen}");
    let hub_dir = dir.path().join("hub");
    let mut hub_proc = start_hub(&hub_dir, &listen).await;
    let names = ["edge-1", "edge-2", "edge-3"];
    let mut nodes = Vec::new();
    for n in names {
        nodes.push(start_node(dir.path(), n, &hub).await);
    }
    let start = Instant::now();
    for n in names {
        while node_view(&hub, n).await["liveness"] != "up" {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{n} never came up at the hub"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // The hub dies without a chance to flush and stays away for 60 s; meanwhile edge-1's
    // agent is restarted on its data with a full outbox.
    let from = support::now_ms() - 3_000;
    hub_proc.child.kill().unwrap();
    hub_proc.child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (old, _) = nodes.remove(0);
    drop(old);
    let restarted = start_node(dir.path(), "edge-1", &hub).await;
    nodes.insert(0, restarted);
    tokio::time::sleep(Duration::from_secs(33)).await;
    let _hub_proc = start_hub(&hub_dir, &listen).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = support::now_ms() - 1_500;
    assert!(
        to - from >= 60_000,
        "the compared span must cover the outage"
    );
    for (n, (_, api)) in names.iter().zip(&nodes) {
        // Backoff is at most 30 s, then catch-up at 500 samples/s.
        wait_same(&hub, api, n, from, to, Duration::from_secs(60)).await;
    }

    // The restarted agent pushed with the token it kept: a new join of the same name would
    // have been refused (409), as this one is.
    let (code, why) = post(
        &format!("{hub}/api/v1/hub/join"),
        JOIN,
        json!({"node": "edge-1"}),
    )
    .await;
    assert_eq!(code, 409, "a second join of a taken name: {why}");

    // Revoked: refused at once, the agent keeps every sample it could not send.
    let out = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args(["hub", "revoke", "edge-2", "--data-dir"])
        .arg(&hub_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked_at = support::now_ms();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let api2 = &nodes[1].1;
    assert!(
        at_hub(&hub, "edge-2", revoked_at + 1_000, support::now_ms())
            .await
            .is_empty(),
        "the hub stored samples of a revoked node"
    );
    assert_eq!(node_view(&hub, "edge-2").await["revoked"], true);
    let metrics = support::get_text(&format!("{api2}/metrics")).await;
    let pending: f64 = metrics
        .lines()
        .find(|l| l.starts_with("infermon_remote_write_snapshots_pending{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pending gauge in the agent's /metrics:\n{metrics}"));
    assert!(
        pending >= 3.0,
        "the revoked node's agent kept {pending} samples, expected ≥ 3"
    );

    // Bad joins name what is wrong.
    let join = format!("{hub}/api/v1/hub/join");
    let (code, why) = post(&join, "not-the-token", json!({"node": "edge-9"})).await;
    assert_eq!(code, 401, "{why}");
    let (code, why) = post(&join, JOIN, json!({"node": "Edge_9"})).await;
    assert_eq!(code, 400, "{why}");
    assert!(why.contains("Edge_9") && why.contains("DNS label"), "{why}");
    let (code, why) = post(
        &format!("{hub}/api/v1/hub/push"),
        "no-such-node-token",
        json!([]),
    )
    .await;
    assert_eq!(code, 401, "{why}");

    // The fleet views: three nodes, none ranked (no engine), each with the reason.
    let board = support::get_json(&format!("{hub}/api/v1/fleet/leaderboard")).await;
    assert_eq!(board["ranked"].as_array().map(Vec::len), Some(0), "{board}");
    let unranked = board["unranked"].as_array().unwrap();
    assert_eq!(unranked.len(), 3, "{board}");
    let m = support::get_text(&format!("{hub}/metrics")).await;
    if let Some(promtool) = support::promtool("hub /metrics lint") {
        let file = dir.path().join("hub.prom");
        std::fs::write(&file, &m).unwrap();
        let out = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "promtool on the hub's /metrics:\n{said}\n{m}"
        );
    }
    for n in ["edge-1", "edge-3"] {
        assert!(
            m.contains(&format!("infermon_fleet_node_up{{node=\"{n}\"}} 1")),
            "{n} not up in the hub's /metrics:\n{m}"
        );
    }
}

#[test]
fn a_hub_off_loopback_needs_insecure_and_a_read_token() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_infermon"))
            .args([
                "hub",
                "--listen",
                "0.0.0.0:1",
                "--join-token",
                JOIN,
                "--data-dir",
            ])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let why = run(&[]);
    assert!(
        why.contains("0.0.0.0:1") && why.contains("--insecure"),
        "{why}"
    );
    let why = run(&["--insecure"]);
    assert!(why.contains("read token"), "{why}");
}

/// `infermon top` pointed at a hub: without `--node` it shows the fleet table; with `--node`
/// it shows that node's sample as the hub holds it (the CPU count equals the node's own `/api/v1/snapshot`; the sparklines come from the hub's history of the node) and
/// says that a hub keeps no requests; an unknown node is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_reads_a_node_through_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", support::free_port());
    let hub = format!("http://{listen}");
    let _hub_proc = start_hub(&dir.path().join("hub"), &listen).await;
    let (_node, api) = start_node(dir.path(), "edge-1", &hub).await;
    wait_up(&hub, "edge-1").await;
    tokio::time::sleep(Duration::from_secs(3)).await; // a few points for the sparklines
    let top = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_infermon"))
            .args([
                "top", "--once", "--width", "100", "--height", "30", "--url", &hub,
            ])
            .args(extra)
            .env_remove("INFERMON_URL")
            .env_remove("INFERMON_TOKEN")
            .output()
            .unwrap()
    };
    // Without --node: the fleet table, each row as the hub's own /api/v1/fleet/nodes has it.
    let fleet = top(&[]);
    let screen = String::from_utf8_lossy(&fleet.stdout);
    assert!(
        fleet.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&fleet.stderr)
    );
    assert!(screen.contains("Fleet · 1 node, 1 up"), "{screen}");
    let row: Vec<&str> = screen
        .lines()
        .find(|l| l.starts_with("edge-1 "))
        .unwrap_or_else(|| panic!("no edge-1 row: {screen}"))
        .split_whitespace()
        .collect();
    let at_hub = node_view(&hub, "edge-1").await;
    assert_eq!(row[1], at_hub["liveness"], "{screen}");
    let thermal = at_hub["thermal"]["state"].as_str().unwrap();
    assert!(row.contains(&thermal), "{screen} vs {thermal}");

    let shown = top(&["--node", "edge-1"]);
    let screen = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(screen.contains(&format!("{hub} node edge-1")), "{screen}");
    assert!(screen.contains("not kept by the hub"), "{screen}");
    let own = support::get_json(&format!("{api}/api/v1/snapshot")).await;
    let cpus = own["host"]["cpu_count"].as_u64().unwrap();
    let cpu_line = screen.lines().find(|l| l.starts_with("CPU")).unwrap();
    assert!(
        cpu_line.contains(&format!("{cpus} cpus")),
        "{cpu_line} vs {cpus}"
    );
    let spark = screen
        .lines()
        .find(|l| l.trim_start().starts_with("CPU") && !l.starts_with("CPU"))
        .unwrap();
    // One point is the snapshot itself; more are the hub's stored history of the node.
    let points = spark.chars().filter(|c| ('▁'..='█').contains(c)).count();
    assert!(points >= 2, "no sparkline from the hub's history: {screen}");

    let unknown = top(&["--node", "nope"]);
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{err}");
    assert!(err.contains("node \"nope\" is not registered"), "{err}");
}

/// A batch with one sample from a clock an hour ahead: the hub stores the others, refuses
/// that one by name and counts it; the node's sender (the agent's own, on a real store) drops
/// and counts only that one. The refused sample never becomes the node's current state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_sample_is_refused_alone_and_the_rest_of_its_batch_is_stored() {
    use infermon_fleet::push::PushedSample;
    use infermon_model::{derive, testing, DeriveSettings};
    use infermon_remote::{enqueue_push, run_sender, Stats, Target};
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", support::free_port());
    let hub = format!("http://{listen}");
    let _hub_proc = start_hub(&dir.path().join("hub"), &listen).await;
    let store = infermon_store::Store::open(
        &dir.path().join("node.db"),
        infermon_store::Retention::default(),
    )
    .unwrap();
    let target = Target::hub(&hub, "skewed", JOIN);
    let stats = Arc::new(Stats::default());
    let now = support::now_ms();
    let times = [now - 4_000, now + 3_600_000, now - 2_000];
    for (i, ts) in times.iter().enumerate() {
        let mut raw = testing::sample_with_engine(i as u64 * 2000, 0.0, 0.0);
        raw.ts_unix_ms = *ts;
        let snapshot = derive(None, &raw, &DeriveSettings::default()).into();
        let s = PushedSample {
            raw,
            snapshot,
            observations: Vec::new(),
            endpoint: None,
        };
        enqueue_push(&store, &target, &s, &stats, now).unwrap();
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sender = tokio::spawn(run_sender(
        target,
        Arc::new(Mutex::new(store)),
        stats.clone(),
        stop_rx,
    ));
    let start = Instant::now();
    while stats.sent.load(Ordering::Relaxed) + stats.dropped_rejected.load(Ordering::Relaxed) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the batch was never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    sender.await.unwrap();
    assert_eq!(stats.sent.load(Ordering::Relaxed), 2);
    assert_eq!(stats.dropped_rejected.load(Ordering::Relaxed), 1);

    let view = node_view(&hub, "skewed").await;
    assert_eq!(view["sample_ts_unix_ms"], now - 2_000, "{view}");
    let metrics = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{hub}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("infermon_hub_samples_refused_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("infermon_hub_samples_accepted_total 2\n"),
        "{metrics}"
    );
}

/// A webhook receiver on loopback: every POST body, in order; answers 204.
async fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(k) = s.read(&mut chunk).await else {
                        return;
                    };
                    if k == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = &buf[end + 4..end + 4 + len];
                    keep.lock()
                        .unwrap()
                        .push(serde_json::from_slice(body).unwrap());
                    let _ = s
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
            });
        }
    });
    (url, got)
}

/// `infermon hub --alert URL`: a node whose agent stops is alerted `node_down` (critical, once)
/// after the hub's minute of silence, through the same JSON webhook an agent uses; when the
/// agent comes back the alert resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_alerts_a_node_down_and_its_return() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, got) = webhook().await;
    let listen = format!("127.0.0.1:{}", support::free_port());
    let hub = format!("http://{listen}");
    let _hub_proc =
        support::start_hub_with(&dir.path().join("hub"), &listen, JOIN, &["--alert", &hook]).await;
    let node = start_node(dir.path(), "edge-a", &hub).await;
    wait_up(&hub, "edge-a").await;
    drop(node);
    let events = |kind: &str, event: &str| -> Vec<Value> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|b| b["event"] == event && b["observation"]["kind"] == kind)
            .cloned()
            .collect()
    };
    let stopped = Instant::now();
    while events("node_down", "opened").is_empty() {
        assert!(
            stopped.elapsed() < Duration::from_secs(120),
            "no node_down alert: {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = stopped.elapsed().as_secs_f64();
    assert!(
        took >= 55.0,
        "alerted after {took:.0} s: the hub waits a minute of silence"
    );
    let down = &events("node_down", "opened")[0]["observation"];
    assert_eq!(down["subject"], "edge-a/node", "{down}");
    assert_eq!(down["severity"], "critical", "{down}");
    assert!(
        down["action"].as_str().unwrap().contains("edge-a"),
        "{down}"
    );
    // The hub's own view says the same.
    let fleet = support::get_json(&format!("{hub}/api/v1/fleet/observations")).await;
    assert!(
        fleet["observations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "node_down" && o["node"] == "edge-a"),
        "{fleet}"
    );

    let _back = start_node(dir.path(), "edge-a", &hub).await;
    let again = Instant::now();
    while events("node_down", "resolved").is_empty() {
        assert!(
            again.elapsed() < Duration::from_secs(60),
            "no resolution: {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(events("node_down", "opened").len(), 1, "alerted once");
    let resolved = &events("node_down", "resolved")[0]["observation"];
    assert_eq!(resolved["id"], down["id"]);
    assert!(resolved["end_s"].is_number(), "{resolved}");
    // The hub's /metrics counts what its target delivered (at least the two seen here).
    let metrics = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{hub}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let delivered: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("infermon_alerts_delivered_total{target=\"hub-1\"} "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(delivered >= 2.0, "{metrics}");
}
