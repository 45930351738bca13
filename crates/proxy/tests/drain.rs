#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Stopping a proxy: no new connection is accepted, a stream in flight that ends within the
//! drain time reaches its client whole, and one that would outlast it is cut and recorded as
//! cancelled; `run` returns only after that.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use infermon_mockllm::{spawn, MockConfig};
use infermon_model::request::Outcome;
use infermon_proxy::{Proxy, ProxyConfig, Upstream};
use support::Sink;

/// Starts a streamed chat of `tokens` tokens with the mock's 50 ms gaps; returns the body
/// stream once the first content chunk arrived.
async fn start_stream(
    url: &str,
    tokens: usize,
) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin {
    let r = infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-mock-tokens", tokens.to_string())
        .json(&serde_json::json!({
            "model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut s = Box::pin(r.bytes_stream());
    let first = s.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    s
}

/// The rest of a body, and whether it ended cleanly.
async fn read_all(
    mut s: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
) -> (String, bool) {
    let mut text = String::new();
    while let Some(c) = s.next().await {
        match c {
            Ok(c) => text.push_str(std::str::from_utf8(&c).unwrap()),
            Err(_) => return (text, false),
        }
    }
    (text, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_drains_short_streams_and_cuts_long_ones_at_the_drain_timeout() {
    let mock = spawn(MockConfig {
        itl: Duration::from_millis(50),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(&mock.url()).unwrap(),
    );
    cfg.workers = 2;
    cfg.drain_timeout = Duration::from_millis(1500);
    let sink = Arc::new(Sink::default());
    let proxy = Proxy::bind(cfg, sink.clone()).await.unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(proxy.run(async move {
        let _ = stop_rx.await;
    }));
    // 20 tokens: 1 s, within the drain; 200 tokens: 10 s, cut at 1.5 s.
    let short = start_stream(&url, 20).await;
    let long = start_stream(&url, 200).await;
    let stopped = Instant::now();
    stop_tx.send(()).unwrap();
    let (short, long) = tokio::join!(read_all(short), read_all(long));
    assert!(
        short.1 && short.0.trim_end().ends_with("data: [DONE]"),
        "{short:?}"
    );
    assert!(
        !long.0.contains("[DONE]"),
        "the long stream was cut: {long:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run returns after the drain")
        .unwrap();
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "run returned {took:?} after stop"
    );
    // No new connection once stopped.
    let refused = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{url}/v1/models"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let mut recs = sink.wait(2).await;
    recs.sort_by_key(|r| r.token_chunks);
    assert_eq!(recs[0].outcome, Outcome::Ok, "{:?}", recs[0]);
    assert_eq!(recs[0].completion_tokens, Some(20));
    assert_eq!(recs[1].outcome, Outcome::Cancelled, "{:?}", recs[1]);
}
