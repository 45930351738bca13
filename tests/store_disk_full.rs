//! The store's disk fills up: the real agent runs with its data directory on a small tmpfs, a
//! filler file takes every byte left, and the agent must go on sampling and serving (snapshot,
//! `/metrics`, the event stream, history) while its `store` source says the disk is full and
//! the samples wait in memory; once the filler is gone the waiting samples are written, and
//! after SIGTERM the file passes `PRAGMA integrity_check`.
//!
//! Needs root (mount). Without it the test prints SKIPPED; with `INFERMON_REQUIRE_E2E=1` it
//! fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use support::*;

const TEST: &str = "store_disk_full";

/// A tmpfs mounted on a fresh directory, unmounted (and the directory removed) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `8m`), or `None` after printing why the test is
    /// skipped; with `INFERMON_REQUIRE_E2E=1` a failed mount fails the test.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => format!(
                "mount -t tmpfs failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("cannot run mount: {e}"),
        };
        let msg = format!(
            "SKIPPED test {TEST}: {why}; it needs root to mount a small tmpfs (CI runs it as root)"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process holds a file): detach it now, freed when released.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Appends to `path` until the filesystem answers ENOSPC; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0xA5_u8; 16 * 1024];
    let mut written = 0_u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => return written,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => return written, // ENOSPC
            Err(e) => panic!("writing the filler \"{}\": {e}", path.display()),
        }
    }
}

async fn snapshot(agent: &str) -> Value {
    get_json(&format!("{agent}/api/v1/snapshot")).await
}

fn store_source(snap: &Value) -> Value {
    snap["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "store")
        .cloned()
        .unwrap_or_else(|| panic!("no store source: {}", snap["sources"]))
}

/// Times of the raw points of one series the agent always exports, from the history API.
async fn history_times(agent: &str, from: i64) -> Vec<i64> {
    let url = format!(
        "{agent}/api/v1/history?metric=infermon_agent_sample_interval_seconds&from={from}\
         &to=now&resolution=raw"
    );
    let r = infermon_tls::client()
        .build()
        .unwrap()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("history answers within 5 s");
    assert!(r.status().is_success(), "history: {}", r.status());
    let v: Value = r.json().await.unwrap();
    v["series"][0]["points"]
        .as_array()
        .map(|ps| ps.iter().map(|p| p["ts_ms"].as_i64().unwrap()).collect())
        .unwrap_or_default()
}

/// A metric's value in a `/metrics` body.
fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn until<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_shown_and_no_sample_is_lost() {
    let started = Instant::now();
    // Declared first so it is dropped last, after the agent.
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let data: PathBuf = fs.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let filler = fs.path().join("filler");
    let args = [
        "--no-discovery",
        "--interval",
        "200ms",
        "--max-interval",
        "200ms",
    ];
    let (mut agent_proc, agent) = start_agent(&args, &data).await;

    // Healthy first: the store source is there and fine.
    until("store ok", Duration::from_secs(5), async || {
        store_source(&snapshot(&agent).await)["ok"]
            .as_bool()
            .unwrap()
            .then_some(())
    })
    .await;
    let before_ms = snapshot(&agent).await["ts_unix_ms"].as_i64().unwrap();

    // Fill the disk, and keep it full (the agent's own WAL truncation may free a little).
    let filled = fill(&filler);
    assert!(filled > 0, "the filler wrote nothing");
    let full = until(
        "store shows disk full",
        Duration::from_secs(20),
        async || {
            fill(&filler);
            let snap = snapshot(&agent).await;
            let s = store_source(&snap);
            (s["ok"] == false).then_some(snap)
        },
    )
    .await;
    let reason = store_source(&full)["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("disk full: ")
            && reason.contains("infermon.db")
            && reason.contains("kept in memory"),
        "{reason}"
    );
    eprintln!("{TEST}: store source while full: {reason}");

    // Sampling and the API go on while the disk is full: the snapshot keeps advancing.
    let mut seen_while_full = vec![full["ts_unix_ms"].as_i64().unwrap()];
    let sse = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{agent}/api/v1/stream"))
        .send()
        .await
        .unwrap();
    let mut events = sse.bytes_stream();
    let mut snapshots_on_stream = 0;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(3) {
        fill(&filler);
        let snap = snapshot(&agent).await;
        let ts = snap["ts_unix_ms"].as_i64().unwrap();
        if ts != *seen_while_full.last().unwrap() {
            assert_eq!(store_source(&snap)["ok"], false, "still full: {snap}");
            seen_while_full.push(ts);
        }
        if let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(Duration::from_millis(300), events.next()).await
        {
            snapshots_on_stream += String::from_utf8_lossy(&chunk)
                .matches("event: snapshot")
                .count();
        }
    }
    assert!(
        seen_while_full.len() >= 5,
        "snapshot advanced only {} times in 3 s while full",
        seen_while_full.len()
    );
    assert!(
        snapshots_on_stream >= 3,
        "event stream: {snapshots_on_stream}"
    );
    let m = get_text(&format!("{agent}/metrics")).await;
    assert!(m.contains("infermon_source_up{source=\"store\"} 0"), "{m}");
    assert!(metric(&m, "infermon_store_write_errors_total").unwrap() >= 5.0);
    let waiting = metric(&m, "infermon_store_backlog_samples").unwrap();
    assert!(waiting >= 5.0, "backlog {waiting}");
    assert_eq!(
        metric(&m, "infermon_store_samples_dropped_total"),
        Some(0.0)
    );
    // History still answers (from what was written before), promptly.
    let during = history_times(&agent, before_ms).await;
    assert!(!during.is_empty());

    // Space returns: the waiting samples are written, the source is fine again.
    std::fs::remove_file(&filler).unwrap();
    let back = until("store ok again", Duration::from_secs(10), async || {
        let snap = snapshot(&agent).await;
        (store_source(&snap)["ok"] == true).then_some(snap)
    })
    .await;
    let figures = &back["store"];
    assert_eq!(figures["backlog_samples"], 0, "{figures}");
    assert_eq!(figures["samples_dropped_total"], 0, "{figures}");
    assert!(
        figures["samples_written_late_total"].as_u64().unwrap() >= seen_while_full.len() as u64,
        "{figures}"
    );
    let back_ms = back["ts_unix_ms"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let times = history_times(&agent, before_ms).await;
    for ts in &seen_while_full {
        assert!(
            times.contains(ts),
            "sample at {ts} taken while the disk was full is not in history"
        );
    }
    assert!(
        times.iter().any(|&t| t > back_ms),
        "no sample written after recovery"
    );

    // Stop, then check the file.
    let pid = agent_proc.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stop = Instant::now();
    while agent_proc.child.try_wait().unwrap().is_none() {
        assert!(
            stop.elapsed() < Duration::from_secs(15),
            "agent still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let store = infermon_store::Store::open(
        &data.join("infermon.db"),
        infermon_store::Retention::default(),
    )
    .unwrap();
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_owned()]);
    let stored: Vec<i64> = store
        .raw_samples(before_ms, i64::MAX, 100_000)
        .unwrap()
        .iter()
        .map(|s| s.ts_unix_ms)
        .collect();
    for ts in &seen_while_full {
        assert!(stored.contains(ts), "raw sample at {ts} missing");
    }
    drop(store);
    drop(agent_proc);
    eprintln!(
        "{TEST}: {} samples seen while full, all stored; took {:?}",
        seen_while_full.len(),
        started.elapsed()
    );
}
