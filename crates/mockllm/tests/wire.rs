#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The mock over real HTTP: wire formats, timing, faults, counters, and a throughput figure.

use std::time::{Duration, Instant};

use infermon_mockllm::{spawn, MockConfig, MockServer, StatsSnapshot, TOKEN_TEXT};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    infermon_tls::client().no_proxy().build().unwrap()
}

async fn mock(cfg: MockConfig) -> MockServer {
    spawn(cfg).await.unwrap()
}

async fn post(
    mock: &MockServer,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client().post(format!("{}{path}", mock.url())).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Reads a body to the end, returning every body chunk as the client received it.
async fn chunks(resp: &mut reqwest::Response) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        out.push(c.to_vec());
    }
    out
}

/// SSE `data:` payloads in order.
fn sse_data(bytes: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(
        text.ends_with("\n\n"),
        "stream must end with a complete event: {text:?}"
    );
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect(e).to_string())
        .collect()
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn stats(mock: &MockServer) -> StatsSnapshot {
    let over_http: StatsSnapshot = client()
        .get(format!("{}/mock/stats", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    over_http
}

/// Waits (up to 3 s) until `pred` holds for the counters.
async fn wait_stats(mock: &MockServer, pred: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let s = stats(mock).await;
        if pred(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_has_one_event_per_token_and_usage_only_when_asked() {
    let m = mock(MockConfig::default()).await;
    for include_usage in [false, true] {
        let mut body = json!({"model": "llama", "stream": true, "max_tokens": 7,
            "messages": [{"role": "user", "content": "hello there"}]});
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let mut resp = post(&m, "/v1/chat/completions", body, &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        assert_eq!(resp.headers()["transfer-encoding"], "chunked");
        let all: Vec<u8> = chunks(&mut resp).await.concat();
        let data = sse_data(&all);
        assert_eq!(data.last().unwrap(), "[DONE]");
        let events: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let content: Vec<&Value> = events
            .iter()
            .filter(|e| e["choices"][0]["delta"]["content"].is_string())
            .collect();
        assert_eq!(content.len(), 7);
        for (i, e) in content.iter().enumerate() {
            assert_eq!(e["object"], "chat.completion.chunk");
            assert_eq!(e["model"], "llama");
            assert!(e["id"].as_str().unwrap().starts_with("chatcmpl-"));
            assert_eq!(e["id"], events[0]["id"]);
            assert_eq!(e["choices"][0]["delta"]["content"], TOKEN_TEXT);
            assert_eq!(e["choices"][0]["finish_reason"], Value::Null);
            let role = &e["choices"][0]["delta"]["role"];
            assert_eq!(role == "assistant", i == 0, "role only in the first chunk");
        }
        let finish = &events[7];
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        if include_usage {
            assert_eq!(events.len(), 9);
            let u = &events[8];
            assert_eq!(u["choices"], json!([]));
            assert_eq!(u["usage"]["completion_tokens"], 7);
            assert_eq!(u["usage"]["prompt_tokens"], 4); // "user" + "hello there" = 15 chars
            assert_eq!(u["usage"]["total_tokens"], 11);
        } else {
            assert_eq!(events.len(), 8);
            assert!(events.iter().all(|e| e.get("usage").is_none()));
        }
    }
    let s = wait_stats(&m, |s| s.completed == 2).await;
    assert_eq!(
        (s.requests, s.completed, s.cancelled, s.tokens),
        (2, 2, 0, 14)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_stream_and_non_stream() {
    let m = mock(MockConfig {
        tokens: 5,
        prompt_tokens: Some(100),
        ..MockConfig::default()
    })
    .await;
    let mut resp = post(
        &m,
        "/v1/completions",
        json!({"prompt": "x", "stream": true, "stream_options": {"include_usage": true}}),
        &[],
    )
    .await;
    let data = sse_data(&chunks(&mut resp).await.concat());
    assert_eq!(data.len(), 5 + 3);
    let events: Vec<Value> = data[..7]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events[..5]
        .iter()
        .all(|e| e["choices"][0]["text"] == TOKEN_TEXT
            && e["object"] == "text_completion"
            && e["model"] == "mock"));
    assert_eq!(events[5]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[6]["usage"]["prompt_tokens"], 100);
    assert_eq!(events[6]["usage"]["completion_tokens"], 5);

    for (path, text_at) in [
        ("/v1/completions", "/choices/0/text"),
        ("/v1/chat/completions", "/choices/0/message/content"),
    ] {
        let resp = post(&m, path, json!({"max_completion_tokens": 3}), &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v.pointer(text_at).unwrap(), &TOKEN_TEXT.repeat(3));
        assert_eq!(v["usage"]["completion_tokens"], 3);
        assert_eq!(v["usage"]["total_tokens"], 103);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
    }
    let chat: Value = post(&m, "/v1/chat/completions", json!({}), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chat["object"], "chat.completion");
    assert_eq!(chat["choices"][0]["message"]["role"], "assistant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_chat_stream_durations_are_consistent() {
    let (ttft, itl, n) = (30u64, 5u64, 10u64);
    let m = mock(MockConfig {
        ttft: Duration::from_millis(ttft),
        itl: Duration::from_millis(itl),
        ..MockConfig::default()
    })
    .await;
    let started = Instant::now();
    let mut resp = post(
        &m,
        "/api/chat",
        json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}],
               "options": {"num_predict": n}}),
        &[],
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let frames = chunks(&mut resp).await;
    let wall = started.elapsed();
    let lines = ndjson(&frames.concat());
    assert_eq!(lines.len() as u64, n + 1);
    for l in &lines[..n as usize] {
        assert_eq!(l["done"], false);
        assert_eq!(l["message"]["content"], TOKEN_TEXT);
        assert_eq!(l["message"]["role"], "assistant");
        assert_eq!(l["model"], "llama3.2");
        assert!(l["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let last = &lines[n as usize];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["eval_count"], n);
    let get = |k: &str| last[k].as_u64().unwrap_or_else(|| panic!("{k}: {last}"));
    let ms = 1_000_000;
    assert!(get("eval_duration") >= (n - 1) * itl * ms, "{last}");
    assert_eq!(get("prompt_eval_duration"), ttft * ms);
    assert_eq!(
        get("total_duration"),
        get("load_duration") + get("prompt_eval_duration") + get("eval_duration")
    );
    assert!(
        get("total_duration") <= wall.as_nanos() as u64,
        "{last} vs {wall:?}"
    );
    assert!(wall >= Duration::from_millis(ttft + (n - 1) * itl));
    assert!(get("prompt_eval_count") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_generate_stream_and_non_stream() {
    let m = mock(MockConfig {
        tokens: 4,
        ..MockConfig::default()
    })
    .await;
    let mut resp = post(&m, "/api/generate", json!({"prompt": "why"}), &[]).await;
    let lines = ndjson(&chunks(&mut resp).await.concat());
    assert_eq!(lines.len(), 5);
    assert!(lines[..4]
        .iter()
        .all(|l| l["response"] == TOKEN_TEXT && l["done"] == false));
    assert_eq!(lines[4]["done_reason"], "stop");
    assert_eq!(lines[4]["eval_count"], 4);

    let resp = post(
        &m,
        "/api/generate",
        json!({"prompt": "why", "stream": false}),
        &[("x-mock-tokens", "6")],
    )
    .await;
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["response"], TOKEN_TEXT.repeat(6));
    assert_eq!(v["done"], true);
    assert_eq!(v["eval_count"], 6);
    let chat: Value = post(&m, "/api/chat", json!({"stream": false}), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chat["message"]["content"], TOKEN_TEXT.repeat(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_overrides_and_timing() {
    let m = mock(MockConfig::default()).await;
    let started = Instant::now();
    let mut resp = post(
        &m,
        "/v1/chat/completions",
        json!({"stream": true, "max_tokens": 100}),
        &[
            ("x-mock-tokens", "5"),
            ("x-mock-ttft-ms", "100"),
            ("x-mock-itl-ms", "50"),
        ],
    )
    .await;
    let headers_at = started.elapsed();
    let mut token_times = Vec::new();
    let mut all = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        if c.windows(TOKEN_TEXT.len())
            .any(|w| w == TOKEN_TEXT.as_bytes())
        {
            token_times.push(started.elapsed());
        }
        all.extend_from_slice(&c);
    }
    assert!(
        headers_at < Duration::from_millis(100),
        "headers come at once: {headers_at:?}"
    );
    // Each token is flushed when it is due, not batched with the next.
    assert_eq!(token_times.len(), 5, "one read per token: {token_times:?}");
    assert!(token_times[0] >= Duration::from_millis(100));
    for w in token_times.windows(2) {
        // A grid of 50 ms; allow timer jitter but not batching.
        assert!(w[1] - w[0] >= Duration::from_millis(20), "{token_times:?}");
    }
    assert!(token_times[4] >= Duration::from_millis(100 + 4 * 50));
    let finish: Value = serde_json::from_str(&sse_data(&all)[5]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn die_after_breaks_the_body_after_k_tokens() {
    let m = mock(MockConfig::default()).await;
    let mut resp = post(
        &m,
        "/v1/chat/completions",
        json!({"stream": true}),
        &[("x-mock-fault", "die-after:3")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let err = loop {
        match resp.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => panic!("body ended cleanly: {}", String::from_utf8_lossy(&got)),
            Err(e) => break e,
        }
    };
    assert!(err.is_body() || err.is_decode(), "{err:?}");
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text.matches("data: ").count(), 3, "{text}");
    assert!(!text.contains("[DONE]"));

    // Non-streamed: half a body, then the connection drops.
    let resp = post(
        &m,
        "/v1/completions",
        json!({}),
        &[("x-mock-fault", "die-after:0")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
    let s = wait_stats(&m, |s| s.aborted == 2).await;
    assert_eq!(
        (s.requests, s.aborted, s.completed, s.cancelled),
        (2, 2, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_fault_gives_a_json_error() {
    let m = mock(MockConfig::default()).await;
    for path in ["/v1/chat/completions", "/api/chat"] {
        let resp = post(
            &m,
            path,
            json!({"stream": true}),
            &[("x-mock-fault", "status:503")],
        )
        .await;
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "ServiceUnavailableError");
        assert_eq!(v["error"]["code"], 503);
        assert!(v["error"]["message"].as_str().unwrap().contains("503"));
    }
    let resp = post(
        &m,
        "/v1/completions",
        json!({}),
        &[("x-mock-fault", "status:429")],
    )
    .await;
    assert_eq!(resp.status(), 429);
    let resp = post(
        &m,
        "/v1/completions",
        json!({}),
        &[("x-mock-fault", "explode")],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("die-after:K"));
    let resp = client()
        .post(format!("{}/v1/completions", m.url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_times_out_on_the_client_and_counts_as_cancelled() {
    let m = mock(MockConfig::default()).await;
    let started = Instant::now();
    let err = client()
        .post(format!("{}/v1/chat/completions", m.url()))
        .header("x-mock-fault", "hang")
        .json(&json!({"stream": true}))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let s = wait_stats(&m, |s| s.cancelled == 1).await;
    assert_eq!((s.requests, s.cancelled, s.in_flight), (1, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_after_stalls_after_k_tokens() {
    let m = mock(MockConfig::default()).await;
    let mut resp = post(
        &m,
        "/api/generate",
        json!({}),
        &[("x-mock-fault", "hang-after:2")],
    )
    .await;
    let mut got = Vec::new();
    while let Ok(c) = tokio::time::timeout(Duration::from_millis(300), resp.chunk()).await {
        got.extend_from_slice(&c.unwrap().expect("no end"));
    }
    assert_eq!(ndjson(&got).len(), 2);
    assert_eq!(stats(&m).await.in_flight, 1);
    drop(resp);
    let s = wait_stats(&m, |s| s.cancelled == 1).await;
    assert_eq!((s.cancelled, s.in_flight, s.tokens), (1, 0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_dropping_mid_stream_is_counted_as_cancelled() {
    let m = mock(MockConfig {
        tokens: 1000,
        itl: Duration::from_millis(10),
        ..MockConfig::default()
    })
    .await;
    let mut resp = post(&m, "/v1/chat/completions", json!({"stream": true}), &[]).await;
    for _ in 0..3 {
        resp.chunk().await.unwrap().unwrap();
    }
    assert_eq!(stats(&m).await.in_flight, 1);
    drop(resp);
    let s = wait_stats(&m, |s| s.cancelled == 1).await;
    assert_eq!(
        (s.requests, s.completed, s.cancelled, s.in_flight),
        (1, 0, 1, 0)
    );
    assert!(s.tokens >= 3 && s.tokens < 1000, "{s:?}");
    assert_eq!(m.stats(), s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_slow_headers() {
    let m = mock(MockConfig {
        tokens: 6,
        ..MockConfig::default()
    })
    .await;
    let mut resp = post(
        &m,
        "/v1/chat/completions",
        json!({"stream": true}),
        &[("x-mock-fault", "malformed")],
    )
    .await;
    let data = sse_data(&chunks(&mut resp).await.concat());
    let bad: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, d)| *d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(bad, vec![3], "one bad line after half the tokens");
    assert_eq!(data.len(), 6 + 1 + 2);

    let mut resp = post(&m, "/api/chat", json!({}), &[("x-mock-fault", "malformed")]).await;
    let body = String::from_utf8(chunks(&mut resp).await.concat()).unwrap();
    assert_eq!(
        body.lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_err())
            .count(),
        1
    );

    let started = Instant::now();
    let resp = post(
        &m,
        "/v1/chat/completions",
        json!({}),
        &[("x-mock-fault", "slow-headers:200")],
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_endpoints() {
    let dir = std::env::temp_dir().join(format!("mockllm-metrics-{}", std::process::id()));
    std::fs::write(&dir, "vllm:num_requests_running 3\n").unwrap();
    let m = mock(MockConfig {
        model: "qwen".into(),
        metrics_file: Some(dir.clone()),
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let get = |p: &str| c.get(format!("{}{p}", m.url())).send();
    let health: Value = get("/health").await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let models: Value = get("/v1/models").await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "qwen");
    let tags: Value = get("/api/tags").await.unwrap().json().await.unwrap();
    assert_eq!(tags["models"][0]["name"], "qwen");
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert_eq!(metrics, "vllm:num_requests_running 3\n");
    std::fs::write(&dir, "changed 1\n").unwrap();
    assert_eq!(
        get("/metrics").await.unwrap().text().await.unwrap(),
        "changed 1\n"
    );
    std::fs::remove_file(&dir).unwrap();
    assert_eq!(get("/metrics").await.unwrap().status(), 500);
    assert_eq!(get("/nope").await.unwrap().status(), 404);
    assert_eq!(get("/v1/chat/completions").await.unwrap().status(), 405);
    assert_eq!(stats(&m).await, StatsSnapshot::default());

    let builtin = mock(MockConfig::default()).await;
    post(&builtin, "/api/generate", json!({"stream": false}), &[]).await;
    let text = client()
        .get(format!("{}/metrics", builtin.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\nmockllm_requests_total 1\n"), "{text}");
    assert!(
        text.contains("\nmockllm_generation_tokens_total 16\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_its_address_and_serves() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_infermon-mockllm"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            "3",
            "--itl-ms",
            "1",
            "--workers",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().expect(&line);
    let v: Value = client()
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 3);
    child.kill().await.unwrap();
}

/// Not a timing assertion: prints requests/s so a regression is visible in the test log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_sanity() {
    const REQUESTS: usize = 2000;
    const CONCURRENCY: usize = 64;
    const TOKENS: usize = 16;
    let m = mock(MockConfig {
        tokens: TOKENS,
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let url = format!("{}/v1/chat/completions", m.url());
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (c, url, next) = (c.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut events = 0;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REQUESTS {
                let mut resp = c
                    .post(&url)
                    .body(r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
                    .send()
                    .await
                    .unwrap();
                while let Some(chunk) = resp.chunk().await.unwrap() {
                    events += chunk.windows(6).filter(|w| w == b"data: ").count();
                }
            }
            events
        }));
    }
    let mut events = 0;
    for t in tasks {
        events += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(events, REQUESTS * (TOKENS + 2));
    let s = m.stats();
    assert_eq!(
        (s.requests, s.completed),
        (REQUESTS as u64, REQUESTS as u64)
    );
    println!(
        "mockllm throughput: {REQUESTS} streamed {TOKENS}-token requests at concurrency \
         {CONCURRENCY} (client and server in one 2-worker runtime, debug={}) in {secs:.2}s \
         = {:.0} req/s, {:.0} tokens/s",
        cfg!(debug_assertions),
        REQUESTS as f64 / secs,
        (REQUESTS * TOKENS) as f64 / secs
    );
}
