#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The proxy's own upstream HTTP/1.1 client, against scripted upstreams: raw TCP servers
//! written here that answer with exactly the bytes each test gives (constructed, not an
//! engine), so framing, keep-alive and the reuse race can be checked byte for byte.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use infermon_model::request::Outcome;
use infermon_proxy::{Proxy, ProxyConfig, Upstream};
use serde_json::json;
use support::Sink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted upstream does with each request on a connection.
#[derive(Clone, Copy)]
enum After {
    /// Keep the connection open for the next request.
    KeepAlive,
    /// Close it after answering.
    Close,
    /// Answer, then close it while idle 50 ms later (the keep-alive race).
    CloseIdle,
    /// Answer the first request; read the second and close without a word (the race lost:
    /// the upstream closed just as the request went out).
    DropSecond,
}

struct Script {
    answer: Vec<u8>,
    after: After,
}

/// Reads one request (head + Content-Length body) off `s`; `None` at EOF.
async fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Some(buf);
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// A scripted upstream; counts connections and requests, keeps the request heads.
struct Upstream0 {
    url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn scripted(script: Script) -> Upstream0 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let (script, r) = (script.clone(), r.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while let Some(req) = read_request(&mut s).await {
                    n += 1;
                    if n == 2 && matches!(script.after, After::DropSecond) {
                        return;
                    }
                    r.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&req).into_owned());
                    s.write_all(&script.answer).await.unwrap();
                    match script.after {
                        After::KeepAlive | After::DropSecond => {}
                        After::Close => return,
                        After::CloseIdle => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    Upstream0 {
        url,
        connections,
        requests,
    }
}

async fn proxy(upstream: &str) -> (String, Arc<Sink>, tokio::sync::oneshot::Sender<()>) {
    let mut cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Upstream::parse(upstream).unwrap(),
    );
    // One worker, so that connection counts do not depend on which worker accepted
    // (each keeps its own upstream connections).
    cfg.workers = 1;
    let sink = Arc::new(Sink::default());
    let p = Proxy::bind(cfg, sink.clone()).await.unwrap();
    let url = format!("http://{}", p.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(p.run(async move {
        let _ = rx.await;
    }));
    (url, sink, tx)
}

fn sse_chunked(tokens: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunk = |s: &str| {
        body.extend_from_slice(format!("{:x}\r\n{s}\r\n", s.len()).as_bytes());
    };
    for i in 0..tokens {
        chunk(&format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i}\"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    chunk("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n");
    chunk("data: [DONE]\n\n");
    let mut out =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(b"0\r\nx-trailer: yes\r\n\r\n");
    out
}

fn chat(stream: bool) -> serde_json::Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream,
           "stream_options": {"include_usage": true}})
}

async fn post(url: &str, stream: bool) -> (u16, String) {
    let r = infermon_tls::client()
        .build()
        .unwrap()
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat(stream))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn chunked_streams_with_trailers_pass_and_connections_are_reused() {
    let up = scripted(Script {
        answer: sse_chunked(5),
        after: After::KeepAlive,
    })
    .await;
    let (url, sink, _stop) = proxy(&up.url).await;
    for _ in 0..5 {
        let (status, text) = post(&url, true).await;
        assert_eq!(status, 200);
        assert_eq!(text.matches("data: ").count(), 7, "{text}");
        assert!(text.contains("t4") && text.ends_with("data: [DONE]\n\n"));
    }
    let recs = sink.wait(5).await;
    for r in &recs {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!((r.token_chunks, r.completion_tokens), (5, Some(5)));
    }
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "one kept-alive connection"
    );
    // The request went out with the upstream's Host, a length, and no hop-by-hop headers.
    let first = up.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        first.starts_with("post /v1/chat/completions http/1.1\r\n"),
        "{first}"
    );
    assert!(first.contains(&format!("host: {}", up.url.trim_start_matches("http://"))));
    assert!(first.contains("content-length: "));
    assert!(
        !first.contains("connection:") && !first.contains("expect:"),
        "{first}"
    );
}

#[tokio::test]
async fn length_bodies_and_bodies_until_close() {
    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
    let with_len = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let until_close = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{body}");
    for (answer, after, reused) in [
        (with_len, After::KeepAlive, true),
        (until_close, After::Close, false),
    ] {
        let up = scripted(Script {
            answer: answer.into_bytes(),
            after,
        })
        .await;
        let (url, sink, _stop) = proxy(&up.url).await;
        for _ in 0..3 {
            let (status, text) = post(&url, false).await;
            assert_eq!((status, text.as_str()), (200, body));
        }
        for r in sink.wait(3).await {
            assert_eq!(
                (r.outcome, r.completion_tokens),
                (Outcome::Ok, Some(1)),
                "{r:?}"
            );
        }
        let conns = up.connections.load(Ordering::SeqCst);
        assert_eq!(conns == 1, reused, "{conns} connections");
    }
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_reused() {
    // The upstream closes every connection 50 ms after answering, as a keep-alive timeout
    // would; the next request must go out on a new connection and succeed.
    let body =
        r#"{"choices":[{"index":0,"message":{"content":"x"}}],"usage":{"completion_tokens":1}}"#;
    let up = scripted(Script {
        answer: format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        after: After::CloseIdle,
    })
    .await;
    let (url, sink, _stop) = proxy(&up.url).await;
    for _ in 0..3 {
        let (status, _) = post(&url, false).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert!(sink.wait(3).await.iter().all(|r| r.outcome == Outcome::Ok));
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);

    // Closed just as the request went out: retried once on a new connection.
    let up = scripted(Script {
        answer: format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        after: After::DropSecond,
    })
    .await;
    let (url, sink, _stop) = proxy(&up.url).await;
    for _ in 0..2 {
        assert_eq!(post(&url, false).await.0, 200);
    }
    assert!(sink.wait(2).await.iter().all(|r| r.outcome == Outcome::Ok));
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    assert_eq!(
        up.requests.lock().unwrap().len(),
        2,
        "each request answered once"
    );
}

#[tokio::test]
async fn broken_framing_and_garbage_heads_are_recorded_failures() {
    for (answer, want_status, want) in [
        (
            &b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"[..],
            200,
            "not a hexadecimal number",
        ),
        (&b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..], 502, "not HTTP"),
        (
            &b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{\"cho"[..],
            200,
            "before the answer was complete",
        ),
    ] {
        let up = scripted(Script {
            answer: answer.to_vec(),
            after: After::Close,
        })
        .await;
        let (url, sink, _stop) = proxy(&up.url).await;
        let r = infermon_tls::client().build().unwrap()
            .post(format!("{url}/v1/chat/completions"))
            .json(&chat(true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want_status);
        let _ = r.bytes().await;
        let rec = &sink.wait(1).await[0];
        assert_eq!(rec.outcome, Outcome::UpstreamFailed, "{rec:?}");
        let e = rec.error.as_deref().unwrap_or("");
        assert!(e.contains(want), "{e}");
    }
}
