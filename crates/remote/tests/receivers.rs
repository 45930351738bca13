//! Remote write against the real receivers from Debian packages: Prometheus 2.42 with
//! `--web.enable-remote-write-receiver` and VictoriaMetrics 1.79. Snapshots are queued through
//! the store's outbox as the agent queues them; the receiver is stopped for an outage while
//! more are queued, then started again on the same data; a PromQL query over the whole span
//! must count every sample exactly once, with the values sent. A stand-in receiver checks the
//! status handling (5xx retried, other 4xx dropped and counted). Skipped without the receivers
//! unless `INFERMON_REQUIRE_E2E=1` (`scripts/setup-test-deps.sh` installs both).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infermon_model::{derive, testing, DeriveSettings, Snapshot};
use infermon_remote::{enqueue, run_sender, Stats, Target};
use infermon_store::{Retention, Store};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(bin: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!(
            "SKIPPED test {test}: `{bin}` not on PATH; run `bash scripts/setup-test-deps.sh`"
        );
        if std::env::var("INFERMON_REQUIRE_E2E").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    found
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Prometheus,
    Victoria,
}

/// A receiver process over a data directory that outlives it.
struct Receiver {
    kind: Kind,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Receiver {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base())
    }

    async fn start(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut cmd = Command::new(&self.bin);
        match self.kind {
            Kind::Prometheus => {
                let cfg = self.data.join("prometheus.yml");
                std::fs::write(&cfg, "global: {}\n").unwrap();
                cmd.arg(format!("--config.file={}", cfg.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        self.data.join("tsdb").display()
                    ))
                    .arg(format!("--web.listen-address={listen}"))
                    .arg("--web.enable-remote-write-receiver");
            }
            Kind::Victoria => {
                cmd.arg(format!("-httpListenAddr={listen}")).arg(format!(
                    "-storageDataPath={}",
                    self.data.join("vm").display()
                ));
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("receiver.log"))
            .unwrap();
        self.child = Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap(),
        );
        let ready = match self.kind {
            Kind::Prometheus => format!("{}/-/ready", self.base()),
            Kind::Victoria => format!("{}/health", self.base()),
        };
        let t0 = Instant::now();
        loop {
            if let Ok(r) = infermon_tls::client()
                .build()
                .unwrap()
                .get(&ready)
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{:?} did not start: {}",
                self.kind,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops it the way a service manager does (SIGTERM), and waits for the exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("receiver.log")).unwrap_or_default()
    }

    async fn query(&self, q: &str, at_s: f64) -> Value {
        let url = format!(
            "{}/api/v1/query?query={}&time={at_s}",
            self.base(),
            encode(q)
        );
        let v: Value = infermon_tls::client()
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["status"], "success", "{q}: {v}");
        v
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A snapshot at `ts_ms` whose sample-interval figure is `v` (so values can be checked).
fn snapshot(ts_ms: i64, v: f64) -> Snapshot {
    let mut s = derive(
        None,
        &testing::sample_with_engine(0, 0.0, 0.0),
        &DeriveSettings::default(),
    );
    s.ts_unix_ms = ts_ms;
    s.agent.interval_seconds = v;
    s
}

fn open_store(dir: &Path) -> Arc<Mutex<Store>> {
    Arc::new(Mutex::new(
        Store::open(&dir.join("history.db"), Retention::default()).unwrap(),
    ))
}

fn queue(store: &Arc<Mutex<Store>>, t: &Target, stats: &Stats, ts: &[i64], first: usize) {
    let s = store.lock().unwrap();
    for (i, ts) in ts.iter().enumerate() {
        enqueue(&s, t, &snapshot(*ts, (first + i) as f64), stats, *ts).unwrap();
    }
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn outage_loses_nothing(kind: Kind, bin: PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver {
        kind,
        bin,
        data: dir.path().to_path_buf(),
        port: free_port(),
        child: None,
    };
    rx.start().await;
    let store = open_store(dir.path());
    let mut target = Target::new(&rx.write_url(), "node-a");
    target.batch = 20;
    target.max_samples_per_second = 200;
    target.timeout = Duration::from_secs(5);
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let sender = tokio::spawn(run_sender(
        target.clone(),
        store.clone(),
        stats.clone(),
        stop_rx,
    ));

    // 90 samples 2 s apart, ending a minute ago (older than VictoriaMetrics' 30 s query
    // latency offset, well inside Prometheus' appendable window).
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let base_ms = (now_s - 240) * 1000;
    let ts: Vec<i64> = (0..90).map(|i| base_ms + i * 2000).collect();
    queue(&store, &target, &stats, &ts[..30], 0);
    wait_for("the first 30 sent", Duration::from_secs(30), || {
        stats.sent.load(Ordering::Relaxed) == 30
    })
    .await;

    // Outage: the receiver stops; 60 more are queued and kept while it is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rx.stop();
    queue(&store, &target, &stats, &ts[30..], 30);
    wait_for("a failed attempt", Duration::from_secs(20), || {
        stats.failed_requests.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert_eq!(stats.sent.load(Ordering::Relaxed), 30);
    tokio::time::sleep(Duration::from_secs(3)).await;
    rx.start().await;
    wait_for(
        "all 90 sent after the outage",
        Duration::from_secs(90),
        || stats.sent.load(Ordering::Relaxed) == 90,
    )
    .await;
    let _ = stop_tx.send(true);
    sender.await.unwrap();
    assert_eq!(
        store
            .lock()
            .unwrap()
            .outbox()
            .len(&target.channel())
            .unwrap(),
        0
    );
    assert_eq!(stats.dropped_rejected.load(Ordering::Relaxed), 0);
    assert_eq!(stats.dropped_full.load(Ordering::Relaxed), 0);

    // Every sample once, with its value: 0 + 1 + … + 89 = 4005.
    let at = (base_ms + 89 * 2000) as f64 / 1000.0 + 0.5;
    let sel = r#"infermon_agent_sample_interval_seconds{job="infermon",instance="node-a"}"#;
    let t0 = Instant::now();
    let (count, sum) = loop {
        let c = rx.query(&format!("count_over_time({sel}[200s])"), at).await;
        let s = rx.query(&format!("sum_over_time({sel}[200s])"), at).await;
        let val = |v: &Value| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|x| x.parse::<f64>().ok())
        };
        let (c, s) = (val(&c), val(&s));
        // VictoriaMetrics makes new data searchable after a second or so.
        if c == Some(90.0) || t0.elapsed() > Duration::from_secs(30) {
            break (c, s);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        count,
        Some(90.0),
        "{kind:?}: samples over the span\n{}",
        rx.log()
    );
    assert_eq!(sum, Some(4005.0), "{kind:?}: sum of the values");
    eprintln!(
        "{kind:?}: 90 of 90 samples after a {}-sample outage; {} failed attempts",
        60,
        stats.failed_requests.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_gets_every_sample_across_an_outage() {
    let Some(bin) = find(
        "prometheus",
        "prometheus_gets_every_sample_across_an_outage",
    ) else {
        return;
    };
    outage_loses_nothing(Kind::Prometheus, bin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_gets_every_sample_across_an_outage() {
    let Some(bin) = find(
        "victoria-metrics",
        "victoria_metrics_gets_every_sample_across_an_outage",
    ) else {
        return;
    };
    outage_loses_nothing(Kind::Victoria, bin).await;
}

/// A receiver that answers each request with the next status of `script` (then 204), and
/// counts requests.
async fn scripted(script: Vec<u16>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/write", l.local_addr().unwrap());
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut got = Vec::new();
            // Read the head and the body (Content-Length).
            loop {
                let k = s.read(&mut buf).await.unwrap_or(0);
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&got);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let i = count.fetch_add(1, Ordering::SeqCst);
            let status = script.get(i).copied().unwrap_or(204);
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope"
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (url, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_refusals_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // 503, 429, 500: kept and retried; then 400: dropped; then accepted.
    let (url, requests) = scripted(vec![503, 429, 500, 400]).await;
    let mut target = Target::new(&url, "node-a");
    target.batch = 5;
    let stats = Arc::new(Stats::default());
    queue(
        &store,
        &target,
        &stats,
        &[1_000, 2_000, 3_000, 4_000, 5_000],
        0,
    );
    queue(&store, &target, &stats, &[6_000, 7_000], 5);
    let (stop_tx, stop_rx) = watch::channel(false);
    let sender = tokio::spawn(run_sender(
        target.clone(),
        store.clone(),
        stats.clone(),
        stop_rx,
    ));
    wait_for("the queue drained", Duration::from_secs(30), || {
        stats.sent.load(Ordering::Relaxed) + stats.dropped_rejected.load(Ordering::Relaxed) == 7
    })
    .await;
    let _ = stop_tx.send(true);
    sender.await.unwrap();
    // The first batch of 5 failed three times, was refused once (dropped, counted), the
    // remaining 2 went through: 5 requests.
    assert_eq!(stats.failed_requests.load(Ordering::Relaxed), 3);
    assert_eq!(stats.dropped_rejected.load(Ordering::Relaxed), 5);
    assert_eq!(stats.sent.load(Ordering::Relaxed), 2);
    assert_eq!(requests.load(Ordering::SeqCst), 5);
    assert_eq!(stats.enqueued.load(Ordering::Relaxed), 7);
}

#[test]
fn the_queue_is_capped_oldest_first_and_counts_drops() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut target = Target::new("http://127.0.0.1:9/api/v1/write", "node-a");
    target.max_pending = 10;
    let stats = Stats::default();
    let ts: Vec<i64> = (1..=25).map(|i| i * 1000).collect();
    queue(&store, &target, &stats, &ts, 0);
    // The same sample again is not queued twice.
    queue(&store, &target, &stats, &ts[24..], 24);
    let s = store.lock().unwrap();
    let kept = s.outbox().oldest(&target.channel(), 100).unwrap();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[0].dedup_key.as_deref(), Some("16000"));
    assert_eq!(stats.dropped_full.load(Ordering::Relaxed), 15);
    assert_eq!(stats.enqueued.load(Ordering::Relaxed), 25);
}
