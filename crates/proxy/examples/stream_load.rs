//! `stream_load`: a small, cheap load generator for streamed OpenAI chat completions, used by
//! `bench/proxy-latency.sh` and `bench/proxy-soak.sh` to compare a direct connection to an
//! engine (or `infermon-mockllm`) with the same engine behind a proxy.
//!
//! ```text
//! cargo run --release -p infermon-proxy --example stream_load -- \
//!     --url http://127.0.0.1:9000 --concurrency 16 --requests 2000 --tokens 64 [--warmup 100]
//!     [--duration-s S] [--threads 1] [--include-usage] [--model mock]
//! ```
//!
//! It sends `--requests` `POST /v1/chat/completions` requests with `"stream": true` and
//! `max_tokens` = `--tokens`, `--concurrency` of them in flight at any time, over keep-alive
//! connections of one shared hyper client (at most one connection per stream in flight). The
//! first `--warmup` requests run before the measured phase, at the same concurrency, and are
//! not counted. With `--duration-s` the measured phase runs for that long instead (and
//! `--requests`, when not 0, caps it).
//!
//! Per request it measures, on the client: **TTFT**, from just before the request is written
//! to the arrival of the first SSE `data:` line whose `"content"` is a non-empty string (the
//! first token; the role-only or empty deltas some servers send first do not count), and
//! **E2E**, to the end of the body. It counts tokens as such `data:` lines. A request is `ok`
//! when the status is 200, the body ended cleanly and it carried `data: [DONE]`.
//!
//! To stay cheap (the client shares the CPU with the servers it measures) the body is not
//! parsed as JSON: lines are split as they arrive and searched for `"content":"`. That is
//! exact for compact JSON such as vLLM's, llama.cpp's and the mock's chat chunks.
//!
//! Prints one JSON line: `{"url", "concurrency", "requests", "warmup", "sent", "ok",
//! "errors", "first_error", "tokens", "ttft_ms": Summary, "e2e_ms": Summary, "req_per_s",
//! "tokens_per_s", "wall_s"}`, where a `Summary` is `{count, mean, min, p50, p90, p99, max}`
//! with percentiles interpolated linearly ([`infermon_model::stats::Summary`]).

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use infermon_model::stats::Summary;

type BoxError = Box<dyn Error + Send + Sync>;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

const USAGE: &str = "usage: stream_load --url BASE --concurrency N --requests M --tokens T \
[--warmup W] [--duration-s S] [--threads K] [--include-usage] [--model NAME]";

#[derive(Debug, Clone)]
struct Args {
    url: String,
    concurrency: usize,
    requests: usize,
    tokens: usize,
    warmup: usize,
    duration: Option<Duration>,
    threads: usize,
    include_usage: bool,
    model: String,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut a = Args {
        url: String::new(),
        concurrency: 1,
        requests: 0,
        tokens: 64,
        warmup: 0,
        duration: None,
        threads: 1,
        include_usage: false,
        model: "mock".to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--include-usage" {
            a.include_usage = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| -> Result<usize, BoxError> {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: '{v}' is not a whole number").into())
        };
        match flag.as_str() {
            "--url" => a.url = value.trim_end_matches('/').to_string(),
            "--concurrency" => a.concurrency = num(&value)?.max(1),
            "--requests" => a.requests = num(&value)?,
            "--tokens" => a.tokens = num(&value)?,
            "--warmup" => a.warmup = num(&value)?,
            "--duration-s" => {
                let s: f64 = value
                    .parse()
                    .map_err(|_| format!("--duration-s: '{value}' is not a number"))?;
                a.duration = Some(Duration::try_from_secs_f64(s)?);
            }
            "--threads" => a.threads = num(&value)?.max(1),
            "--model" => a.model = value,
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    if a.url.is_empty() {
        return Err(format!("--url is required\n{USAGE}").into());
    }
    if a.requests == 0 && a.duration.is_none() {
        return Err(format!("give --requests or --duration-s\n{USAGE}").into());
    }
    Ok(a)
}

/// Splits an SSE body into lines as its chunks arrive and counts token events.
#[derive(Default)]
struct Scanner {
    /// The start of a line that a chunk ended inside.
    partial: Vec<u8>,
    tokens: u64,
    done: bool,
}

impl Scanner {
    /// Feeds one body chunk; returns how many token events it completed.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let before = self.tokens;
        while let Some(i) = data.iter().position(|b| *b == b'\n') {
            let (line, rest) = data.split_at(i);
            data = &rest[1..];
            if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole);
                whole.clear();
                self.partial = whole;
            }
        }
        self.partial.extend_from_slice(data);
        self.tokens - before
    }

    fn line(&mut self, line: &[u8]) {
        let Some(d) = line.strip_prefix(b"data:") else {
            return;
        };
        let d = d.trim_ascii();
        if d == b"[DONE]" {
            self.done = true;
        } else if has_content(d) {
            self.tokens += 1;
        }
    }
}

/// Whether a chunk's JSON has `"content"` set to a non-empty string.
fn has_content(json: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":";
    let mut from = 0;
    while let Some(i) = json[from..].windows(KEY.len()).position(|w| w == KEY) {
        let after = json[from + i + KEY.len()..].trim_ascii_start();
        if after.len() >= 2 && after[0] == b'"' && after[1] != b'"' {
            return true;
        }
        from += i + KEY.len();
    }
    false
}

struct Sample {
    ttft_ms: f64,
    e2e_ms: f64,
    tokens: u64,
}

async fn one(client: &HttpClient, uri: &Uri, body: &Bytes) -> Result<Sample, String> {
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri.clone();
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let t0 = Instant::now();
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut scan = Scanner::default();
    let mut first_token = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body broke off: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if scan.feed(&data) > 0 && first_token.is_none() {
                first_token = Some(t0.elapsed());
            }
        }
    }
    let e2e = t0.elapsed();
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    if !scan.done {
        return Err("stream ended without [DONE]".to_string());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Sample {
        ttft_ms: first_token.map_or(f64::NAN, ms),
        e2e_ms: ms(e2e),
        tokens: scan.tokens,
    })
}

#[derive(Default)]
struct Outcome {
    samples: Vec<Sample>,
    errors: usize,
    first_error: Option<String>,
}

/// Runs requests with `concurrency` in flight until `limit` were started (0: no limit) or
/// `deadline` passed.
async fn phase(
    client: &HttpClient,
    uri: &Uri,
    body: &Bytes,
    concurrency: usize,
    limit: usize,
    deadline: Option<Instant>,
) -> Result<Outcome, BoxError> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, uri, body, next) = (client.clone(), uri.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if limit != 0 && i >= limit {
                    break;
                }
                match one(&client, &uri, &body).await {
                    Ok(s) => out.samples.push(s),
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            out
        }));
    }
    let mut all = Outcome::default();
    for t in tasks {
        let mut o = t.await?;
        all.samples.append(&mut o.samples);
        all.errors += o.errors;
        if all.first_error.is_none() {
            all.first_error = o.first_error;
        }
    }
    Ok(all)
}

async fn run(a: Args) -> Result<(), BoxError> {
    let uri: Uri = format!("{}/v1/chat/completions", a.url).parse()?;
    let mut body = serde_json::json!({
        "model": a.model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": true,
        "max_tokens": a.tokens,
    });
    if a.include_usage {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    let body = Bytes::from(serde_json::to_vec(&body)?);
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(a.concurrency)
        .build(conn);

    let mut warm_errors = 0;
    if a.warmup > 0 {
        let w = phase(&client, &uri, &body, a.concurrency, a.warmup, None).await?;
        warm_errors = w.errors;
    }
    let t0 = Instant::now();
    let deadline = a.duration.map(|d| t0 + d);
    let out = phase(&client, &uri, &body, a.concurrency, a.requests, deadline).await?;
    let wall = t0.elapsed().as_secs_f64();

    let mut ttft: Vec<f64> = out.samples.iter().map(|s| s.ttft_ms).collect();
    let mut e2e: Vec<f64> = out.samples.iter().map(|s| s.e2e_ms).collect();
    let tokens: u64 = out.samples.iter().map(|s| s.tokens).sum();
    let ok = out.samples.len();
    let summary = |v: &mut Vec<f64>| {
        Summary::of_owned(v).map_or(serde_json::Value::Null, |s| {
            serde_json::to_value(s).unwrap_or(serde_json::Value::Null)
        })
    };
    let line = serde_json::json!({
        "url": a.url,
        "concurrency": a.concurrency,
        "requests": ok + out.errors,
        "warmup": a.warmup,
        "warmup_errors": warm_errors,
        "sent": a.warmup + ok + out.errors,
        "ok": ok,
        "errors": out.errors,
        "first_error": out.first_error,
        "tokens": tokens,
        "ttft_ms": summary(&mut ttft),
        "e2e_ms": summary(&mut e2e),
        "req_per_s": ok as f64 / wall,
        "tokens_per_s": tokens as f64 / wall,
        "wall_s": wall,
    });
    println!("{line}");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("stream_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let result = rt
        .map_err(BoxError::from)
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stream_load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tokens_across_chunk_boundaries() {
        let mut s = Scanner::default();
        let body =
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\" tok\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\": \" tok\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n\
data: [DONE]\n\n";
        let mut n = 0;
        for c in body.chunks(7) {
            n += s.feed(c);
        }
        assert_eq!((n, s.tokens, s.done), (2, 2, true));
    }
}
