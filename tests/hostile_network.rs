//! A hostile network against the real `infermon agent` (API and one measuring proxy in front
//! of the mock engine), with bounded test clients on loopback: slow request heads
//! (slowloris), a connection flood past the caps, oversized heads and bodies, and a SIGTERM
//! in the middle of a proxied stream.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use infermon_mockllm::{MockConfig, MockServer};
use support::{free_port, wait_http_ok};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The agent under test, killed on drop unless it already exited.
struct Agent {
    child: Child,
    api: String,
    proxy: String,
    log: PathBuf,
    data: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `infermon agent` with `config` (TOML) and a proxy to `mock`, sampling every second;
/// waits until the API and the proxy answer.
async fn start(config: &str, mock: &MockServer) -> Agent {
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("config.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = data.path().join("agent.log");
    let (api, proxy) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .arg("agent")
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", &api, "--data-dir"])
        .arg(data.path().join("data"))
        .args(["--no-discovery", "--interval", "1s", "--max-interval", "1s"])
        .args(["--proxy", &format!("{proxy}={}", mock.url())])
        .env("INFERMON_LOG", "info")
        .env_remove("INFERMON_ENGINES")
        .env_remove("INFERMON_PROXIES")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn infermon agent");
    let agent = Agent {
        child,
        api,
        proxy,
        log,
        data,
    };
    wait_http_ok(
        &format!("http://{}/api/v1/snapshot", agent.api),
        Duration::from_secs(30),
    )
    .await;
    wait_http_ok(
        &format!("http://{}/v1/models", agent.proxy),
        Duration::from_secs(30),
    )
    .await;
    agent
}

async fn mock(tokens: usize, itl: Duration) -> MockServer {
    infermon_mockllm::spawn(MockConfig {
        tokens,
        itl,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A client that keeps no idle connection (so it never holds a place under a cap).
fn client() -> reqwest::Client {
    infermon_tls::client()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Sends `request` on a fresh connection and reads the answer until the server closes or
/// 5 s pass; returns the text read.
async fn exchange(addr: &str, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0_u8; 8192];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            // One answer is enough; the server may keep the connection open.
            if let Some(i) = find(&got, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..i]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if len.is_some_and(|n| got.len() >= i + 4 + n) {
                    break;
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of an answer's first line (0 when there is none).
fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// One slowloris connection: a request head trickled a byte every 250 ms. Returns how long
/// the server took to close it (`None`: still open after `limit`).
async fn trickle(addr: String, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(&addr).await.ok()?;
    let head = format!("GET /v1/models HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    tcp.write_all(head.as_bytes()).await.ok()?;
    let mut buf = [0_u8; 1024];
    while start.elapsed() < limit {
        if tcp.write_all(b"a").await.is_err() {
            return Some(start.elapsed());
        }
        match tokio::time::timeout(Duration::from_millis(250), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            // hyper sends nothing on a head timeout; anything else is wrong, but still an end.
            Ok(Ok(_)) => return Some(start.elapsed()),
            Err(_) => {}
        }
    }
    None
}

/// `n` slowloris connections against each address at once, while a normal client keeps
/// asking the API and the proxy; returns the longest and shortest close times.
async fn slowloris_round(a: &Agent, n: usize, head_timeout: Duration) -> (Duration, Duration) {
    let limit = head_timeout + Duration::from_secs(6);
    let mut tasks = Vec::new();
    for addr in [&a.api, &a.proxy] {
        for _ in 0..n {
            tasks.push(tokio::spawn(trickle(addr.clone(), limit)));
        }
    }
    // Normal requests go on answering during the attack.
    let http = client();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        for url in [
            format!("http://{}/api/v1/snapshot", a.api),
            format!("http://{}/v1/models", a.proxy),
        ] {
            let t = Instant::now();
            let r = http.get(&url).send().await.expect("a normal request");
            assert_eq!(r.status(), 200, "{url} during the attack");
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "{url} took {:?} during the attack",
                t.elapsed()
            );
        }
    }
    let mut times = Vec::new();
    for t in tasks {
        let closed = t.await.unwrap();
        times.push(closed.expect("a slow connection was still open well past the head timeout"));
    }
    let max = times.iter().max().copied().unwrap();
    let min = times.iter().min().copied().unwrap();
    (max, min)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_by_the_head_timeout_and_memory_stays_flat() {
    let engine = mock(4, Duration::ZERO).await;
    let a = start("[agent]\nheader_read_timeout = \"2s\"\n", &engine).await;
    let head_timeout = Duration::from_secs(2);
    let before = rss_kib(a.pid());
    // The first rounds warm the allocator up (its per-thread arenas grow to the peak of 400
    // connections); memory is compared after them and after three more.
    let (max, min) = slowloris_round(&a, 200, head_timeout).await;
    for _ in 0..2 {
        slowloris_round(&a, 200, head_timeout).await;
    }
    let warmed = rss_kib(a.pid());
    for _ in 0..3 {
        let (mx, mn) = slowloris_round(&a, 200, head_timeout).await;
        assert!(
            mx <= head_timeout + Duration::from_secs(4),
            "closed after {mx:?}"
        );
        assert!(
            mn >= head_timeout - Duration::from_millis(300),
            "closed after {mn:?}"
        );
    }
    let after = rss_kib(a.pid());
    eprintln!(
        "slowloris (200 to the API + 200 to the proxy, 6 rounds): RSS {before} KiB before, \
         {warmed} KiB after 3 rounds, {after} KiB after 6; closes between {min:?} and {max:?}"
    );
    assert!(
        max <= head_timeout + Duration::from_secs(4),
        "closed after {max:?}"
    );
    assert!(
        min >= head_timeout - Duration::from_millis(300),
        "closed after {min:?}: before the head timeout"
    );
    assert!(
        after <= warmed + 8 * 1024,
        "RSS grew from {warmed} KiB to {after} KiB over three more rounds"
    );
    let log = a.log_text();
    assert!(
        log.contains("API: closed connections that sent no whole request head in time")
            && log.contains("proxy: closed connections that sent no whole request head"),
        "{log}"
    );
    // The log is throttled: 1 200 closed connections make a handful of lines, not hundreds.
    assert!(log.matches("whole request head").count() <= 10, "{log}");
}

/// Opens `n` connections to `addr` that send nothing (they hold places under the cap).
async fn holders(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    v
}

/// `n` requests at once on fresh connections; the statuses they got (0: no answer).
async fn burst(addr: &str, n: usize) -> Vec<(u16, String)> {
    let req = format!("GET /v1/models HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (addr, req) = (addr.to_string(), req.clone());
            tokio::spawn(async move {
                let a = exchange(&addr, req.as_bytes()).await;
                (status(&a), a)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_past_the_cap_gets_503_and_the_agent_serves_on() {
    let engine = mock(4, Duration::ZERO).await;
    let cap = 16;
    let a = start(
        &format!(
            "[agent]\nmax_connections = {cap}\nheader_read_timeout = \"20s\"\n\
             [requests]\nmax_connections = {cap}\n"
        ),
        &engine,
    )
    .await;
    let before = rss_kib(a.pid());
    let held_api = holders(&a.api, cap).await;
    let held_proxy = holders(&a.proxy, cap).await;
    let mut refused = 0;
    let mut warmed = 0;
    for round in 0..12 {
        for addr in [&a.api, &a.proxy] {
            for (code, answer) in burst(addr, 40).await {
                assert_eq!(code, 503, "{addr} over the cap: {answer:?}");
                // The whole answer: head, Retry-After and the JSON body to its end.
                let whole = answer.trim_end().ends_with("retry later\"}")
                    || answer.trim_end().ends_with("\"code\":503}}");
                assert!(
                    answer.to_lowercase().contains("retry-after: 1") && whole,
                    "{answer}"
                );
                refused += 1;
            }
        }
        if round == 1 {
            warmed = rss_kib(a.pid());
        }
    }
    let after = rss_kib(a.pid());
    eprintln!(
        "flood ({refused} connections over a cap of {cap}, API and proxy): RSS {before} KiB \
         before, {warmed} KiB after 2 rounds, {after} KiB after 12"
    );
    assert!(
        after <= warmed + 8 * 1024,
        "RSS grew from {warmed} KiB to {after} KiB"
    );
    // The places come back when the holders leave.
    drop(held_api);
    drop(held_proxy);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = client();
    for url in [
        format!("http://{}/api/v1/snapshot", a.api),
        format!("http://{}/v1/models", a.proxy),
    ] {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 200, "{url}");
    }
    let log = a.log_text();
    assert!(
        log.contains("API: connection cap reached") && log.contains("proxy: connection cap"),
        "{log}"
    );
    assert!(
        log.matches("connection cap reached").count() <= 10,
        "throttled log: {log}"
    );
}

fn head_with(addr: &str, method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_and_oversized_bodies_413() {
    let engine = mock(8, Duration::ZERO).await;
    let a = start(
        "[requests]\nmax_body_bytes = 1048576\nmax_passthrough_body_bytes = 65536\n",
        &engine,
    )
    .await;
    let many = |n: usize| (0..n).map(|i| format!("x-h{i}: v\r\n")).collect::<String>();
    let big = |kib: usize| format!("x-big: {}\r\n", "a".repeat(kib * 1024));
    // API: 16 KiB and 64 fields at most.
    let api = &a.api;
    for (extra, want) in [
        (big(20), 431),
        (many(80), 431),
        (big(8) + &many(40), 200),
        ("content-length: 100000\r\n".to_string(), 413),
    ] {
        let method = if want == 413 { "POST" } else { "GET" };
        let ans = exchange(api, &head_with(api, method, "/api/v1/snapshot", &extra)).await;
        assert_eq!(
            status(&ans),
            want,
            "API, {} header bytes: {ans:.200}",
            extra.len()
        );
    }
    // Proxy: 32 KiB and 100 fields; bodies 64 KiB passed through, 1 MiB measured.
    let px = &a.proxy;
    for (extra, want) in [(big(40), 431), (many(120), 431), (big(16) + &many(60), 200)] {
        let ans = exchange(px, &head_with(px, "GET", "/v1/models", &extra)).await;
        assert_eq!(
            status(&ans),
            want,
            "proxy, {} header bytes: {ans:.200}",
            extra.len()
        );
    }
    let ans = exchange(
        px,
        &head_with(px, "POST", "/v1/embeddings", "content-length: 100000\r\n"),
    )
    .await;
    assert_eq!(status(&ans), 413, "{ans}");
    let ans = exchange(
        px,
        &head_with(
            px,
            "POST",
            "/v1/chat/completions",
            "content-type: application/json\r\ncontent-length: 2000000\r\n",
        ),
    )
    .await;
    assert_eq!(status(&ans), 413, "{ans}");
    // A chunked measured body that grows past the limit: the proxy stops reading at it.
    let mut tcp = TcpStream::connect(px.as_str()).await.unwrap();
    tcp.write_all(&head_with(
        px,
        "POST",
        "/v1/chat/completions",
        "content-type: application/json\r\ntransfer-encoding: chunked\r\n",
    ))
    .await
    .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
    for _ in 0..17 {
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await;
    let ans = String::from_utf8_lossy(&got);
    assert_eq!(status(&ans), 413, "{ans}");
    assert!(ans.contains("over the limit of 1048576 bytes"), "{ans}");
    // A measured stream with a 512 KiB prompt is under the cap and goes through whole.
    let prompt = "word ".repeat(100 * 1024);
    let body = serde_json::json!({
        "model": "mock", "stream": true, "max_tokens": 8,
        "messages": [{"role": "user", "content": prompt}],
    });
    let r = client()
        .post(format!("http://{px}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.matches("\"content\":").count() >= 8, "{text}");
    let log = a.log_text();
    for line in [
        "API: answered 431",
        "API: answered 413",
        "proxy: answered 431",
        "proxy: answered 413",
    ] {
        assert!(log.contains(line), "no {line:?} in {log}");
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn open_store(data: &Path) -> infermon_store::Store {
    infermon_store::Store::open(&data.join("data/infermon.db"), Default::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_proxied_stream_and_writes_it_before_exit() {
    // 30 tokens 100 ms apart: a 3 s stream.
    let engine = mock(30, Duration::from_millis(100)).await;
    let mut a = start("[agent]\ndrain_timeout = \"20s\"\n", &engine).await;
    let http = client();
    // An event-stream subscriber: it must end at stop, not hold the drain.
    let sse = http
        .get(format!("http://{}/api/v1/stream", a.api))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let sse = tokio::spawn(async move {
        let mut s = sse.bytes_stream();
        while let Some(Ok(_)) = s.next().await {}
        Instant::now()
    });
    let sent_ms = now_ms();
    let r = http
        .post(format!("http://{}/v1/chat/completions", a.proxy))
        .timeout(Duration::from_secs(30))
        .json(&serde_json::json!({
            "model": "mock", "stream": true,
            "messages": [{"role": "user", "content": "drain me"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"content\":") {
        text.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    let term_at = Instant::now();
    let term_ms = now_ms();
    let kill = Command::new("kill")
        .args(["-TERM", &a.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    while let Some(c) = body.next().await {
        text.push_str(std::str::from_utf8(&c.expect("the stream goes on after SIGTERM")).unwrap());
    }
    let stream_end = term_at.elapsed();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(
        text.matches("\"content\":\"").count(),
        30,
        "every token arrived: {text}"
    );
    // The agent exits 0, soon after the stream ended and well within the drain timeout.
    let status = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            term_at.elapsed() < Duration::from_secs(25),
            "the agent did not exit within 25 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let exit_after = term_at.elapsed();
    assert!(status.success(), "exit status {status:?}: {}", a.log_text());
    assert!(
        exit_after < stream_end + Duration::from_secs(8),
        "exit {exit_after:?} after SIGTERM, the stream ended at {stream_end:?}"
    );
    let sse_end = tokio::time::timeout(Duration::from_secs(5), sse)
        .await
        .expect("the event stream ended at stop")
        .unwrap();
    assert!(sse_end.duration_since(term_at) < Duration::from_secs(5));
    // The store holds the request (complete, 30 tokens) and a sample from the last seconds.
    let store = open_store(a.data.path());
    let reqs = store
        .requests(&infermon_store::RequestQuery {
            since_ms: Some(sent_ms - 1000),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let r = &reqs[0];
    assert_eq!(r.outcome, infermon_model::request::Outcome::Ok, "{r:?}");
    assert_eq!(r.completion_tokens, Some(30), "{r:?}");
    assert!(r.e2e_ms >= 2500.0, "{r:?}");
    let last = store.latest_sample().unwrap().expect("a sample");
    assert!(
        last.ts_unix_ms >= term_ms - 3000,
        "newest sample at {} ms, SIGTERM at {term_ms} ms",
        last.ts_unix_ms
    );
    eprintln!("SIGTERM: stream ended {stream_end:?} after it, agent exited 0 after {exit_after:?}");
}
