#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The proxy in front of infermon-mockllm (a wire-faithful fake engine with fault injection:
//! a constructed upstream, not a real engine — the real-engine checks are in the workspace's
//! `tests/e2e_proxy.rs`). Every fault ends with the client told and the request recorded with
//! its outcome; nothing panics.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use infermon_mockllm::{spawn, MockConfig, MockServer};
use infermon_model::request::Outcome;
use infermon_proxy::{Proxy, ProxyConfig, Upstream};
use serde_json::{json, Value};
use support::Sink;

struct Rig {
    mock: MockServer,
    sink: Arc<Sink>,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn rig_with(mock_cfg: MockConfig, tune: impl FnOnce(&mut ProxyConfig)) -> Rig {
    let mock = spawn(mock_cfg).await.unwrap();
    let mut cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(&mock.url()).unwrap(),
    );
    tune(&mut cfg);
    let sink = Arc::new(Sink::default());
    let proxy = Proxy::bind(cfg, sink.clone()).await.unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(proxy.run(async move {
        let _ = rx.await;
    }));
    Rig {
        mock,
        sink,
        url,
        _stop: tx,
    }
}

async fn rig() -> Rig {
    rig_with(MockConfig::default(), |c| {
        c.header_timeout = Duration::from_millis(500);
        c.idle_timeout = Duration::from_millis(500);
    })
    .await
}

fn chat(stream: bool, tokens: u32) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
           "max_tokens": tokens, "stream": stream})
}

async fn post(url: &str, body: &Value, fault: Option<&str>) -> reqwest::Response {
    let mut r = infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{url}/v1/chat/completions"))
        .json(body);
    if let Some(f) = fault {
        r = r.header("x-mock-fault", f);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn streams_pass_through_and_are_measured() {
    let rig = rig().await;
    let direct = post(&rig.mock.url(), &chat(true, 20), None)
        .await
        .text()
        .await
        .unwrap();
    let proxied = post(&rig.url, &chat(true, 20), None)
        .await
        .text()
        .await
        .unwrap();
    let events = |s: &str| s.matches("data: ").count();
    assert_eq!(
        events(&direct),
        events(&proxied),
        "same events as a direct request"
    );
    assert!(
        !proxied.contains("\"usage\""),
        "usage asked by infermon is not forwarded"
    );
    let r = &rig.sink.wait(1).await[0];
    assert_eq!((r.outcome, r.status, r.stream), (Outcome::Ok, 200, true));
    assert_eq!(r.completion_tokens, Some(20));
    assert_eq!(r.token_chunks, 20);
    assert!(r.usage_injected);
    assert_eq!(r.model, "m");
    assert!(
        r.request_body.is_none() && r.response_body.is_none(),
        "no text kept by default"
    );

    // Other paths pass through and are not recorded.
    let models = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!("{}/v1/models", rig.url))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rig.sink.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn upstream_dying_mid_stream() {
    let rig = rig().await;
    let resp = post(&rig.url, &chat(true, 20), Some("die-after:3")).await;
    assert_eq!(resp.status(), 200);
    let mut s = resp.bytes_stream();
    let mut failed = false;
    while let Some(c) = s.next().await {
        if c.is_err() {
            failed = true;
        }
    }
    assert!(failed, "the client sees the body break");
    let r = &rig.sink.wait(1).await[0];
    assert_eq!(r.outcome, Outcome::UpstreamFailed);
    assert_eq!(r.token_chunks, 3);
    assert!(r.ttft_ms.is_some() && r.tpot_ms.is_none());
}

#[tokio::test]
async fn upstream_hanging_before_and_during_the_answer() {
    let rig = rig().await;
    let resp = post(&rig.url, &chat(true, 5), Some("hang")).await;
    assert_eq!(resp.status(), 504);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sent no answer within 0.5 s"));
    let resp = post(&rig.url, &chat(true, 5), Some("hang-after:2")).await;
    let mut s = resp.bytes_stream();
    let mut failed = false;
    while let Some(c) = s.next().await {
        failed |= c.is_err();
    }
    assert!(failed);
    let rs = rig.sink.wait(2).await;
    assert_eq!((rs[0].outcome, rs[0].status), (Outcome::Timeout, 504));
    assert_eq!(rs[1].outcome, Outcome::Timeout);
    assert_eq!(rs[1].token_chunks, 2);
    assert!(rs[1].error.as_deref().unwrap().contains("mid-answer"));
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let rig = rig_with(MockConfig::default(), |_| {}).await;
    let body = chat(true, 200);
    let resp = infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{}/v1/chat/completions", rig.url))
        .header("x-mock-itl-ms", "20")
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut s = resp.bytes_stream();
    let _ = s.next().await.unwrap().unwrap();
    drop(s);
    let r = &rig.sink.wait(1).await[0];
    assert_eq!(r.outcome, Outcome::Cancelled);
    let t = Instant::now();
    while rig.mock.stats().cancelled < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "upstream never saw the cancel: {:?}",
            rig.mock.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.mock.stats().completed, 0);
}

#[tokio::test]
async fn unreachable_upstream_is_a_json_502() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
    );
    let sink = Arc::new(Sink::default());
    let proxy = Proxy::bind(cfg, sink.clone()).await.unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    tokio::spawn(proxy.run(std::future::pending()));
    let resp = post(&url, &chat(false, 3), None).await;
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{v}"
    );
    let r = &sink.wait(1).await[0];
    assert_eq!((r.outcome, r.status), (Outcome::Unreachable, 502));
}

#[tokio::test]
async fn error_statuses_and_malformed_streams_are_recorded() {
    let rig = rig().await;
    let resp = post(&rig.url, &chat(true, 5), Some("status:503")).await;
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"].is_object(),
        "the engine's own error body reaches the client"
    );
    let text = post(&rig.url, &chat(true, 6), Some("malformed"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("[DONE]"));
    let rs = rig.sink.wait(2).await;
    assert_eq!((rs[0].outcome, rs[0].status), (Outcome::HttpError, 503));
    assert_eq!(rs[1].outcome, Outcome::Malformed);
}

#[tokio::test]
async fn a_token_is_required_when_set_and_bodies_kept_only_when_asked() {
    let rig = rig_with(MockConfig::default(), |c| {
        c.token = Some("0123456789abcdef".into());
        c.capture_bodies = true;
    })
    .await;
    let resp = post(&rig.url, &chat(false, 2), None).await;
    assert_eq!(resp.status(), 401);
    let resp = infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{}/v1/chat/completions", rig.url))
        .bearer_auth("0123456789abcdef")
        .json(&chat(false, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = &rig.sink.wait(1).await[0];
    assert!(r.request_body.as_deref().unwrap().contains("\"hi\""));
    assert!(r.response_body.as_deref().unwrap().contains("tok"));
    assert_eq!(r.completion_tokens, Some(2));
    assert!(r.tpot_ms.is_none() && r.ttft_ms.is_some());
}

#[tokio::test]
async fn big_uploads_are_not_truncated() {
    let rig = rig().await;
    let big = "x".repeat(24 << 20);
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": big}], "max_tokens": 2});
    let resp = post(&rig.url, &body, None).await;
    assert_eq!(resp.status(), 200);
    let r = &rig.sink.wait(1).await[0];
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(
        r.prompt_tokens,
        Some((24 << 20) / 4 + 1),
        "the mock saw every byte"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_streams() {
    let rig = rig_with(MockConfig::default(), |_| {}).await;
    let client = infermon_tls::client().build().unwrap();
    let mut tasks = Vec::new();
    for i in 0..256 {
        let (c, url) = (client.clone(), rig.url.clone());
        tasks.push(tokio::spawn(async move {
            let text = c
                .post(format!("{url}/v1/chat/completions"))
                .header("x-mock-itl-ms", "5")
                .json(&chat(true, 16 + (i % 8)))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.matches(" tok").count()
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), 16 + (i % 8));
    }
    let rs = rig.sink.wait(256).await;
    assert!(
        rs.iter().all(|r| r.outcome == Outcome::Ok),
        "{:?}",
        rs.iter().find(|r| r.outcome != Outcome::Ok)
    );
    let tokens: u64 = rs.iter().map(|r| r.completion_tokens.unwrap()).sum();
    assert_eq!(tokens, (0..256).map(|i| 16 + (i % 8) as u64).sum::<u64>());
}

#[tokio::test]
async fn ollama_native_streams_are_measured_from_the_final_object() {
    let rig = rig_with(
        MockConfig {
            itl: Duration::from_millis(2),
            ..MockConfig::default()
        },
        |_| {},
    )
    .await;
    let client = infermon_tls::client().build().unwrap();
    for path in ["/api/chat", "/api/generate"] {
        let body = if path == "/api/chat" {
            json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 12}})
        } else {
            json!({"model": "llama3", "prompt": "hi", "options": {"num_predict": 12}})
        };
        let text = client
            .post(format!("{}{path}", rig.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["done"], true);
        assert_eq!(
            last["eval_count"], 12,
            "the client gets the final object unchanged"
        );
    }
    let rs = rig.sink.wait(2).await;
    for r in &rs {
        assert_eq!((r.outcome, r.stream), (Outcome::Ok, true));
        assert_eq!(r.completion_tokens, Some(12));
        assert_eq!(r.token_chunks, 12);
        assert!(!r.usage_injected);
        let t = r.server_timings.unwrap();
        assert_eq!(t.predicted_n, Some(12));
        // The engine's eval time covers the 11 gaps the proxy saw, give or take scheduling.
        let gaps: f64 = r.itl_gaps_ms.iter().sum();
        assert!(
            (t.predicted_ms.unwrap() - gaps).abs() < 15.0,
            "{t:?} vs {gaps}"
        );
        // TPOT spans first token to the end, so it covers at least the 11 gaps; the mock's
        // 2 ms grid can be compressed when the first token leaves late on a busy machine, so
        // only a floor well under it is asserted.
        let tpot = r.tpot_ms.unwrap();
        assert!(
            tpot * 11.0 >= gaps - 0.5 && tpot >= 1.0,
            "tpot {tpot} vs gaps {gaps}"
        );
    }
    assert_eq!(rs[0].api.as_str(), "ollama_chat");
    assert_eq!(rs[1].api.as_str(), "ollama_generate");
}
