//! Shared test helpers: observations, targets, and a local receiver that records what it got
//! and answers as scripted.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use infermon_alert::{AlertTarget, Backoff, Format};
use infermon_detect::{Change, Evidence, Figure, Kind, Observation, Severity};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Wall-clock ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An open observation.
pub fn obs(kind: Kind, subject: &str, severity: Severity, start_s: f64) -> Observation {
    Observation {
        id: Observation::make_id(kind, subject, start_s),
        kind,
        start_s,
        confirmed_s: start_s + 30.0,
        end_s: None,
        severity,
        subject: subject.into(),
        evidence: Evidence {
            figures: vec![Figure {
                name: "gpu_clock_mhz".into(),
                baseline: Some(1980.0),
                now: Some(1410.5),
            }],
            window_s: 60.0,
            context: Some("requests_running=2".into()),
        },
        cause: None,
        action: "Check the GPU's airflow; clocks fell 29% under load.".into(),
    }
}

/// The same observation, resolved `after_s` after its start.
pub fn resolved(o: &Observation, after_s: f64) -> Observation {
    Observation {
        end_s: Some(o.start_s + after_s),
        ..o.clone()
    }
}

pub fn opened(o: &Observation) -> Change {
    Change::Opened(o.clone())
}

pub fn resolve(o: &Observation) -> Change {
    Change::Resolved(resolved(o, 250.0))
}

/// A target with no cooldown, all kinds, `info` and up, a 2 s timeout.
pub fn target(name: &str, url: &str, format: Format) -> AlertTarget {
    AlertTarget {
        name: name.into(),
        url: url.parse().unwrap(),
        format,
        secret: None,
        kinds: vec![],
        min_severity: Severity::Info,
        send_resolved: true,
        cooldown: Duration::ZERO,
        timeout: Duration::from_secs(2),
    }
}

/// Backoff for tests: 20 ms doubling to 100 ms, no jitter.
pub fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        jitter: 0.0,
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Never answers (well, not for a minute).
    Hang,
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered (`None` for a hang).
    pub status: Option<u16>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Default)]
struct Inner {
    got: Vec<Got>,
    script: VecDeque<Reply>,
}

/// A local HTTP receiver on 127.0.0.1: answers with the script, then 200.
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: JoinHandle<()>,
}

impl Receiver {
    /// On a free port.
    pub async fn start(script: &[Reply]) -> Receiver {
        Receiver::start_on(0, script).await
    }

    /// On this port (0: any).
    pub async fn start_on(port: u16, script: &[Reply]) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Receiver::serve(listener, script)
    }

    fn serve(listener: TcpListener, script: &[Reply]) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Mutex::new(Inner {
            got: Vec::new(),
            script: script.iter().copied().collect(),
        }));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            inner,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn got(&self) -> Vec<Got> {
        self.inner.lock().unwrap().got.clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Got> {
        self.got().into_iter().filter(Got::ok).collect()
    }

    /// Replaces what is left of the script.
    pub fn script(&self, script: &[Reply]) {
        self.inner.lock().unwrap().script = script.iter().copied().collect();
    }

    /// Waits until `n` requests were accepted (panics after 10 s).
    pub async fn wait_accepted(&self, n: usize) -> Vec<Got> {
        wait_until("requests accepted", || self.accepted().len() >= n).await;
        self.accepted()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let reply = {
        let mut g = inner.lock().unwrap();
        let reply = g.script.pop_front().unwrap_or(Reply::Status(200));
        g.got.push(Got {
            path: uri.path().to_owned(),
            headers,
            body,
            status: match reply {
                Reply::Status(s) => Some(s),
                Reply::Hang => None,
            },
        });
        reply
    };
    match reply {
        Reply::Status(s) => StatusCode::from_u16(s).unwrap(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
    }
}

/// A port nothing listens on (bound, then released).
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `cond` every 5 ms; panics after 10 s naming `what`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A store, an alerter and its delivery task running.
pub struct Harness {
    pub store: Arc<Mutex<infermon_store::Store>>,
    pub alerter: infermon_alert::Alerter,
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Harness {
    /// In memory, with fast backoff.
    pub fn new(targets: Vec<AlertTarget>) -> Harness {
        let store = infermon_store::Store::open_in_memory(Default::default()).unwrap();
        Harness::with_store(Arc::new(Mutex::new(store)), targets)
    }

    pub fn with_store(
        store: Arc<Mutex<infermon_store::Store>>,
        targets: Vec<AlertTarget>,
    ) -> Harness {
        let alerter = infermon_alert::Alerter::new(targets).unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let delivery = alerter
            .delivery()
            .with_backoff(fast())
            .with_poll_interval(Duration::from_millis(50));
        let task = tokio::spawn(delivery.run(Arc::clone(&store), rx));
        Harness {
            store,
            alerter,
            stop,
            task,
        }
    }

    pub fn enqueue(&mut self, changes: &[Change]) -> infermon_alert::EnqueueSummary {
        let store = self.store.lock().unwrap();
        self.alerter.enqueue(&store, changes, now_ms())
    }

    pub fn stats(&self, target: &str) -> infermon_alert::TargetStats {
        self.alerter
            .stats()
            .snapshot()
            .target(target)
            .unwrap()
            .clone()
    }

    /// Stops delivery and waits for it (in-flight requests finish first).
    pub async fn stop(self) -> Arc<Mutex<infermon_store::Store>> {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("delivery stops within 10 s")
            .unwrap();
        self.store
    }
}
