//! llama-swap collector: `/running` and event-stream fixtures, the state tracker, and full
//! reads against a fake llama-swap that records every path it is asked for (no `/upstream/`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use infermon_engines::llamaswap::{
    parse_health, parse_model_status, parse_running, EventsSource, LlamaSwap, ModelState,
    SseParser, StateTracker, Via,
};
use infermon_model::detail::EngineEvent;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

const RUNNING: &str = include_str!("fixtures/llamaswap/running.json");
const EVENTS: &str = include_str!("fixtures/llamaswap/events.sse");

#[test]
fn running_fixture() {
    let m = parse_running(RUNNING).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0].name.as_str(), m[0].state.as_str()),
        ("gemma-3-12b", "starting")
    );
    assert_eq!(m[0].upstream.as_deref(), Some("http://127.0.0.1:10002"));
    assert_eq!(
        (m[1].name.as_str(), m[1].state.as_str()),
        ("qwen-7b", "ready")
    );
    assert!(!format!("{m:?}").contains("SECRET"), "cmd is not kept");
    assert!(parse_running(r#"{"running":null}"#).unwrap().is_empty());
    assert!(parse_running("<html>").unwrap_err().contains("not JSON"));
}

#[test]
fn health_words() {
    assert_eq!(parse_health(200, "OK").status, "ok");
    assert!(parse_health(200, "<html>").status.contains("instead of OK"));
    assert_eq!(parse_health(503, "down").status, "http 503: \"down\"");
}

/// Every `modelStatus` snapshot in the fixture, in order.
fn fixture_snapshots(chunk: usize) -> Vec<Vec<ModelState>> {
    let mut p = SseParser::default();
    let mut msgs = Vec::new();
    for c in EVENTS.as_bytes().chunks(chunk) {
        msgs.extend(p.push(c).unwrap());
    }
    assert_eq!(msgs.len(), 13, "comment block skipped, 13 events");
    assert!(msgs.iter().all(|m| m.event == "message"));
    msgs.iter()
        .filter_map(|m| parse_model_status(&m.data).unwrap())
        .collect()
}

#[test]
fn events_fixture_parses_in_any_chunking() {
    let whole = fixture_snapshots(usize::MAX);
    assert_eq!(whole.len(), 5);
    for size in [1, 7, 64] {
        assert_eq!(fixture_snapshots(size), whole, "chunks of {size}");
    }
    // peers' models (peerID set, no state) are not this llama-swap's processes
    assert_eq!(whole[0].len(), 3);
    assert!(whole[0].contains(&ModelState {
        model: "qwen-7b".into(),
        state: "ready".into()
    }));
}

fn kinds(events: &[EngineEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.model.clone(), e.kind.clone()))
        .collect()
}

#[test]
fn events_fixture_swap_and_load_time() {
    let mut t = StateTracker::new();
    let mut out = Vec::new();
    // the snapshots arrive 0.5 s apart
    for (i, s) in fixture_snapshots(usize::MAX).iter().enumerate() {
        out.extend(t.observe(s, 1_000_000 + 500 * i as i64, Via::Stream));
    }
    assert_eq!(
        kinds(&out),
        [
            ("qwen-7b".into(), "stopping".into()),
            ("qwen-7b".into(), "stopped".into()),
            ("llama-8b".into(), "starting".into()),
            ("llama-8b".into(), "ready".into()),
        ]
    );
    assert_eq!(out[0].ts_unix_ms, 1_000_500);
    assert_eq!(out[0].detail, None);
    assert_eq!(out[2].detail.as_deref(), Some("swap: replaces qwen-7b"));
    let ready = &out[3];
    assert_eq!(
        ready.duration_ms,
        Some(500.0),
        "starting at 1 001 500, ready at 1 002 000"
    );
    assert_eq!(ready.detail, None);
}

#[test]
fn tracker_failed_load_and_poll_detail() {
    let st = |m: &str, s: &str| ModelState {
        model: m.into(),
        state: s.into(),
    };
    let mut t = StateTracker::new();
    assert!(
        t.observe(&[], 0, Via::Poll).is_empty(),
        "first snapshot is the baseline"
    );
    let e = t.observe(&[st("a", "starting")], 2_000, Via::Poll);
    assert_eq!(kinds(&e), [("a".into(), "starting".into())]);
    assert!(e[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("within one sample interval"));
    // gone from /running while starting: stopped, the load failed
    let e = t.observe(&[], 4_000, Via::Poll);
    assert_eq!(kinds(&e), [("a".into(), "stopped".into())]);
    assert!(e[0].detail.as_deref().unwrap().contains("while starting"));
    // straight to ready between two polls: no load time
    let e = t.observe(&[st("a", "ready")], 6_000, Via::Poll);
    assert_eq!(e[0].duration_ms, None);
    assert!(e[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("start was not seen"));
}

/// A fake llama-swap. `events`: whether `/api/events` exists. Records every path asked.
#[derive(Default)]
struct Fake {
    asked: Vec<String>,
    running: String,
    stream: Option<UnboundedSender<String>>,
}

type Shared = Arc<Mutex<Fake>>;

fn model_status(qwen: &str, llama: &str) -> String {
    let list = format!(
        r#"[{{"id":"llama-8b","state":"{llama}","peerID":""}},{{"id":"qwen-7b","state":"{qwen}","peerID":""}}]"#
    );
    let env = serde_json::json!({"type": "modelStatus", "data": list});
    format!("event:message\ndata:{env}\n\n")
}

fn running(entries: &[(&str, &str)]) -> String {
    let list: Vec<_> = entries
        .iter()
        .map(|(m, s)| serde_json::json!({"model": m, "state": s, "cmd": "x", "proxy": "http://127.0.0.1:10001", "ttl": 0}))
        .collect();
    serde_json::json!({ "running": list }).to_string()
}

async fn serve(events: bool, running_html: bool) -> (String, Shared) {
    let fake: Shared = Arc::new(Mutex::new(Fake {
        running: running(&[("qwen-7b", "ready")]),
        ..Fake::default()
    }));
    let f = Arc::clone(&fake);
    let app = Router::new().fallback(move |uri: Uri| {
        let f = Arc::clone(&f);
        async move {
            let mut g = f.lock().unwrap();
            g.asked.push(uri.path().to_string());
            match uri.path() {
                "/health" => (StatusCode::OK, "OK").into_response(),
                "/running" if running_html => {
                    (StatusCode::OK, "<!DOCTYPE html><html>login</html>").into_response()
                }
                "/running" => (StatusCode::OK, g.running.clone()).into_response(),
                "/api/version" => (
                    StatusCode::OK,
                    r#"{"version":"v250","commit":"0bdb372","build_date":"2026-08-14"}"#,
                )
                    .into_response(),
                "/api/events" if events => {
                    let (tx, rx) = unbounded_channel::<String>();
                    tx.send(": initial payload\n\n".into()).unwrap();
                    tx.send(model_status("ready", "stopped")).unwrap();
                    g.stream = Some(tx);
                    let body = futures_util::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|s| (Ok::<_, Infallible>(s), rx))
                    });
                    Response::builder()
                        .header(header::CONTENT_TYPE, "text/event-stream")
                        .body(Body::from_stream(body))
                        .unwrap()
                }
                _ => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
            }
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, fake)
}

fn assert_send<T: Send>(_: &T) {}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn push(fake: &Shared, msg: String) {
    let g = fake.lock().unwrap();
    g.stream.as_ref().unwrap().send(msg).unwrap();
}

fn assert_no_upstream(fake: &Shared) {
    let asked = fake.lock().unwrap().asked.clone();
    assert!(!asked.is_empty());
    for p in &asked {
        assert!(
            matches!(
                p.as_str(),
                "/health" | "/running" | "/api/version" | "/api/events"
            ),
            "asked for {p}: {asked:?}"
        );
        assert!(!p.starts_with("/upstream"), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_read_with_event_stream() {
    let (url, fake) = serve(true, false).await;
    // a polling timeout shorter than the stream lives: the stream must not be bound by it
    let c = LlamaSwap::new(&url, "config", Duration::from_millis(250));
    assert_eq!(c.events_source(), EventsSource::NotStarted);
    let fut = c.read();
    assert_send(&fut);
    let r = fut.await;
    assert_eq!(r.health.value().unwrap().status, "ok");
    let p = r.props.value().unwrap();
    assert_eq!(p.model, "qwen-7b");
    assert_eq!(p.build_info.as_deref(), Some("v250 (0bdb372)"));
    let models = r.models.as_ref().unwrap().value().unwrap();
    assert_eq!(
        models[0].upstream.as_deref(),
        Some("http://127.0.0.1:10001")
    );
    assert!(r.events.is_empty());
    assert!(r.metrics.reason().unwrap().contains("no token counters"));

    wait_for("the stream", || {
        c.events_source() == EventsSource::Streaming
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // a request for llama-8b: qwen-7b is swapped out, llama-8b loads for ~300 ms
    push(&fake, model_status("stopping", "stopped"));
    push(&fake, model_status("stopped", "stopped"));
    push(&fake, model_status("stopped", "starting"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    push(&fake, model_status("stopped", "ready"));
    fake.lock().unwrap().running = running(&[("llama-8b", "ready")]);
    tokio::time::sleep(Duration::from_millis(150)).await;

    let r = c.read().await;
    assert_eq!(
        kinds(&r.events),
        [
            ("qwen-7b".into(), "stopping".into()),
            ("qwen-7b".into(), "stopped".into()),
            ("llama-8b".into(), "starting".into()),
            ("llama-8b".into(), "ready".into()),
        ]
    );
    assert_eq!(
        r.events[2].detail.as_deref(),
        Some("swap: replaces qwen-7b")
    );
    let load = r.events[3].duration_ms.unwrap();
    assert!((280.0..3_000.0).contains(&load), "{load}");
    assert_eq!(
        r.events[3].detail, None,
        "from the stream: no interval caveat"
    );
    assert_eq!(r.props.value().unwrap().model, "llama-8b");
    assert!(c.read().await.events.is_empty(), "drained");
    assert_no_upstream(&fake);
    let subscriptions = fake
        .lock()
        .unwrap()
        .asked
        .iter()
        .filter(|p| *p == "/api/events")
        .count();
    assert_eq!(
        subscriptions, 1,
        "one subscription, never cut by the polling timeout"
    );

    // dropping the collector ends the subscription
    drop(c);
    wait_for("the stream to close", || {
        let g = fake.lock().unwrap();
        let tx = g.stream.as_ref().unwrap();
        let _ = tx.send(": ping\n\n".into());
        tx.is_closed()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_event_stream_running_is_diffed() {
    let (url, fake) = serve(false, false).await;
    let c = LlamaSwap::new(&url, "config", Duration::from_secs(2));
    assert!(c.read().await.events.is_empty());
    wait_for("the 404", || {
        matches!(c.events_source(), EventsSource::Missing { .. })
    })
    .await;

    fake.lock().unwrap().running = running(&[("llama-8b", "starting")]);
    let r = c.read().await;
    assert_eq!(
        kinds(&r.events),
        [
            ("qwen-7b".into(), "stopped".into()),
            ("llama-8b".into(), "starting".into()),
        ]
    );
    let d = r.events[1].detail.as_deref().unwrap();
    assert!(
        d.contains("swap: replaces qwen-7b") && d.contains("within one sample interval"),
        "{d}"
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("answered 404") && n.contains("/running")),
        "{:?}",
        r.notes
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    fake.lock().unwrap().running = running(&[("llama-8b", "ready")]);
    let r = c.read().await;
    assert_eq!(kinds(&r.events), [("llama-8b".into(), "ready".into())]);
    assert!(r.events[0].duration_ms.unwrap() >= 200.0);
    assert!(r.events[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("within one sample interval"));
    assert_no_upstream(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_running_is_only_that_reading() {
    let (url, fake) = serve(false, true).await;
    let r = LlamaSwap::new(&url, "config", Duration::from_secs(2))
        .read()
        .await;
    assert_eq!(r.health.value().unwrap().status, "ok");
    let reason = r.models.as_ref().unwrap().reason().unwrap();
    assert!(reason.contains(&format!("{url}/running")), "{reason}");
    assert!(reason.contains("not JSON"), "{reason}");
    assert_eq!(r.props.reason(), Some(reason));
    assert!(r.events.is_empty());
    assert_no_upstream(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_running_is_only_that_reading() {
    // answers /health, never /running
    let app = Router::new().fallback(|uri: Uri| async move {
        if uri.path() == "/running" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        (StatusCode::OK, "OK")
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let c = LlamaSwap::new(&url, "config", Duration::from_millis(300));
    let started = Instant::now();
    let r = c.read().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.health.value().unwrap().status, "ok");
    let reason = r.models.as_ref().unwrap().reason().unwrap();
    assert!(
        reason.contains(&format!("{url}/running")) && reason.contains("timed out"),
        "{reason}"
    );
}
