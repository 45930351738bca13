#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A client that closes its connection as soon as it has read the answer's terminal event
//! (the OpenAI Python SDK closes on `data: [DONE]`) has not cancelled anything, even when the
//! upstream's end of body (the chunked `0\r\n\r\n`) is still on its way. Scripted raw-TCP
//! upstreams (constructed, not an engine) hold that last chunk back; a raw client reads up to
//! the terminal event and closes at once, so the race is lost every time, not by chance.

mod support;

use std::sync::Arc;
use std::time::Duration;

use infermon_model::request::{Outcome, RequestRecord};
use infermon_proxy::{Proxy, ProxyConfig, Upstream};
use support::Sink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the scripted upstream holds back the end of the body.
const HOLD: Duration = Duration::from_millis(400);

/// A scripted upstream: answers every request with `head_and_body`, then, `HOLD` later, with
/// `end` (the chunked body's last chunk), and keeps the connection open.
async fn upstream(head_and_body: Vec<u8>, end: &'static [u8]) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let answer = Arc::new(head_and_body);
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                // One request: the head and a Content-Length body.
                loop {
                    if let Some(e) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..e]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if buf.len() >= e + 4 + len {
                            break;
                        }
                    }
                    match s.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                }
                if s.write_all(&answer).await.is_err() {
                    return;
                }
                tokio::time::sleep(HOLD).await;
                let _ = s.write_all(end).await;
                // Keep the connection until the proxy closes it.
                let _ = s.read(&mut tmp).await;
            });
        }
    });
    url
}

async fn proxy(upstream: &str) -> (String, Arc<Sink>, tokio::sync::oneshot::Sender<()>) {
    let mut cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(upstream).unwrap(),
    );
    cfg.workers = 1;
    let sink = Arc::new(Sink::default());
    let p = Proxy::bind(cfg, sink.clone()).await.unwrap();
    let url = format!("{}", p.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(p.run(async move {
        let _ = rx.await;
    }));
    (url, sink, tx)
}

/// A chunked answer head followed by one chunk per piece.
fn chunked(content_type: &str, pieces: &[String]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for p in pieces {
        out.extend_from_slice(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

fn sse_tokens(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i}\"}},\"finish_reason\":null}}]}}\n\n"
            )
        })
        .collect();
    v.push(
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".into(),
    );
    v.push(
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n".into(),
    );
    v.push("data: [DONE]\n\n".into());
    v
}

/// Sends `body` to `path` over a raw connection, reads until `until` has arrived, and closes
/// the connection at once. Returns what was read.
async fn read_until_then_close(proxy: &str, path: &str, body: &str, until: &str) -> String {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {proxy}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    let read = async {
        while !String::from_utf8_lossy(&got).contains(until) {
            let n = s.read(&mut tmp).await.unwrap();
            assert!(
                n > 0,
                "closed before {until:?}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&tmp[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the terminal event never came");
    drop(s);
    String::from_utf8_lossy(&got).into_owned()
}

async fn one(answer: Vec<u8>, path: &str, body: &str, until: &str) -> (String, RequestRecord) {
    let up = upstream(answer, b"0\r\n\r\n").await;
    let (url, sink, _stop) = proxy(&up).await;
    let seen = read_until_then_close(&url, path, body, until).await;
    // Past the upstream's hold, so that a record made only at its end would be there too.
    tokio::time::sleep(HOLD + Duration::from_millis(200)).await;
    let recs = sink.wait(1).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    (seen, recs[0].clone())
}

const CHAT_STREAM: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;

#[tokio::test]
async fn closing_after_done_is_not_a_cancel() {
    let (seen, r) = one(
        chunked("text/event-stream", &sse_tokens(5)),
        "/v1/chat/completions",
        CHAT_STREAM,
        "data: [DONE]",
    )
    .await;
    assert!(seen.contains("t4"), "{seen}");
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!((r.token_chunks, r.completion_tokens), (5, Some(5)), "{r:?}");
    assert!(r.tpot_ms.is_some(), "{r:?}");
    // The request ended with its terminal event, not when the client or upstream closed.
    assert!(r.e2e_ms < HOLD.as_secs_f64() * 1000.0, "{r:?}");
}

#[tokio::test]
async fn closing_after_done_with_usage_stripped_is_not_a_cancel() {
    // The client did not ask for usage: the proxy asked, and removes the usage chunk.
    let body = r#"{"model":"m","prompt":"hi","stream":true}"#;
    let mut pieces: Vec<String> = (0..5)
        .map(|i| format!("data: {{\"choices\":[{{\"index\":0,\"text\":\"t{i}\",\"finish_reason\":null}}]}}\n\n"))
        .collect();
    pieces.push(
        "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n".into(),
    );
    pieces.push(
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n".into(),
    );
    pieces.push("data: [DONE]\n\n".into());
    let (seen, r) = one(
        chunked("text/event-stream", &pieces),
        "/v1/completions",
        body,
        "data: [DONE]",
    )
    .await;
    assert!(!seen.contains("usage"), "{seen}");
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(r.usage_injected, "{r:?}");
    assert_eq!((r.token_chunks, r.completion_tokens), (5, Some(5)), "{r:?}");
}

#[tokio::test]
async fn closing_after_ollamas_final_object_is_not_a_cancel() {
    let mut lines: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "{{\"model\":\"m\",\"message\":{{\"role\":\"assistant\",\"content\":\"t{i}\"}},\"done\":false}}\n"
            )
        })
        .collect();
    lines.push(
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":4,\"eval_duration\":4000000}\n"
            .into(),
    );
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let (_, r) = one(
        chunked("application/x-ndjson", &lines),
        "/api/chat",
        body,
        "\"done\":true",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!((r.token_chunks, r.completion_tokens), (4, Some(4)), "{r:?}");
}

#[tokio::test]
async fn closing_after_a_whole_chunked_body_is_not_a_cancel() {
    let json = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":7}}"#;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let (_, r) = one(
        chunked("application/json", &[json.to_string()]),
        "/v1/chat/completions",
        body,
        "\"completion_tokens\":7}}",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.completion_tokens, Some(7), "{r:?}");
}

#[tokio::test]
async fn closing_before_the_terminal_event_is_still_a_cancel() {
    // Everything but `[DONE]` arrived: the answer is not complete, the client left.
    let mut pieces = sse_tokens(5);
    pieces.pop();
    let (_, r) = one(
        chunked("text/event-stream", &pieces),
        "/v1/chat/completions",
        CHAT_STREAM,
        "\"completion_tokens\":5",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Cancelled, "{r:?}");
    // A whole body that is not complete JSON yet.
    let json = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hel"#;
    let (_, r) = one(
        chunked("application/json", &[json.to_string()]),
        "/v1/chat/completions",
        r#"{"model":"m","messages":[]}"#,
        "\"hel",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Cancelled, "{r:?}");
}
