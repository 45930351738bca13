//! The load generator's HTTP client: one pooled hyper HTTP/1.1 client, every answer's head
//! and body chunks fed, with their arrival instants, through an `infermon-reqmeter` `Meter`
//! (no second parser), and one timer per request, moved only when it fires (not per chunk).

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use infermon_model::request::{tpot_ms, Api, Outcome, RequestRecord};
use infermon_reqmeter::{End, Meter, Prepared};

/// A request ready to send: its body and what `prepare` read from it.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    pub body: Bytes,
    pub prepared: Prepared,
}

/// Sends requests to one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    endpoint: Uri,
    endpoint_text: Arc<str>,
    api: Api,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    timeout: Duration,
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The innermost cause of an error, with its chain ("connection refused", not "client error").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

impl Client {
    /// A client for `endpoint` (an `http://` URL); `headers` are `Name: value` strings.
    pub(crate) fn new(
        endpoint: &str,
        api: Api,
        headers: &[(String, String)],
        timeout: Duration,
        pool: usize,
    ) -> Result<Client, String> {
        if endpoint.starts_with("https://") {
            return Err(format!(
                "\"{endpoint}\": https is not supported by infermon bench; use the engine's plain http:// address (or a local TLS-terminating proxy)"
            ));
        }
        let uri: Uri = endpoint
            .parse()
            .map_err(|e| format!("\"{endpoint}\" is not a URL ({e}); expected http://HOST:PORT"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!(
                "\"{endpoint}\" is not an http:// URL; expected http://HOST:PORT"
            ));
        }
        let mut hs = Vec::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| format!("header name \"{k}\" is not a valid HTTP header name"))?;
            let value = HeaderValue::from_str(v.trim())
                .map_err(|_| format!("header \"{k}\": value \"{v}\" is not valid in HTTP"))?;
            hs.push((name, value));
        }
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(timeout));
        let http = HyperClient::builder(TokioExecutor::new())
            // llama-server closes idle keep-alive connections after 5 s; reusing one just as
            // it closes fails the request, so idle connections are dropped sooner.
            .pool_idle_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(pool.max(1))
            .build(conn);
        Ok(Client {
            http,
            endpoint: uri,
            endpoint_text: Arc::from(endpoint),
            api,
            headers: Arc::new(hs),
            timeout,
        })
    }

    /// The URL requests go to.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint_text
    }

    /// The API of the requests.
    pub(crate) fn api(&self) -> Api {
        self.api
    }

    /// GETs `url`: the status and body, or why there is none (10 s at most).
    pub(crate) async fn get(&self, url: &str) -> Result<(u16, Bytes), String> {
        tokio::time::timeout(Duration::from_secs(10), self.call(Method::GET, url, None))
            .await
            .map_err(|_| format!("GET {url}: no answer within 10 s"))?
    }

    /// POSTs a JSON body to `url` (an API call of the benchmark, not a measured request):
    /// the status and body, or why there is none (`limit` at most).
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        limit: Duration,
    ) -> Result<(u16, Bytes), String> {
        let body = Bytes::from(body.to_string());
        tokio::time::timeout(limit, self.call(Method::POST, url, Some(body)))
            .await
            .map_err(|_| format!("POST {url}: no answer within {} s", limit.as_secs_f64()))?
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
    ) -> Result<(u16, Bytes), String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("\"{url}\" is not a URL: {e}"))?;
        let mut req = Request::builder().method(method.clone()).uri(uri);
        for (k, v) in self.headers.iter() {
            req = req.header(k, v);
        }
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| format!("cannot reach \"{url}\": {}", chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: the answer broke off: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    /// GETs `url` and parses a 2xx answer as JSON; the error says why not.
    pub(crate) async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let (status, body) = self.get(url).await?;
        if !(200..300).contains(&status) {
            return Err(format!("GET {url} answered HTTP {status}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }

    /// Sends one request and measures it; never fails, the record says how it ended.
    pub(crate) async fn send(&self, ready: &Ready) -> RequestRecord {
        // A pooled keep-alive connection the server closed just as it was reused fails
        // before any byte of an answer: that one is retried once on a fresh connection, and
        // the request is timed from the retry (the stale connection is the client pool's
        // artefact, not the server's latency).
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(ready, attempt < 2).await {
                Ok(r) => return r,
                Err(()) => continue,
            }
        }
    }

    /// One try; `Err(())` when it failed on a stale pooled connection and `may_retry`.
    async fn send_once(&self, ready: &Ready, may_retry: bool) -> Result<RequestRecord, ()> {
        let ts = now_unix_ms();
        let start = Instant::now();
        let mut meter = Meter::new(self.api, &ready.prepared, start);
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                ACCEPT,
                HeaderValue::from_static(
                    "text/event-stream, application/x-ndjson, application/json",
                ),
            );
        for (k, v) in self.headers.iter() {
            req = req.header(k, v);
        }
        let req = match req.body(Full::new(ready.body.clone())) {
            Ok(r) => r,
            Err(e) => {
                let end = End::UpstreamFailed(format!("cannot build the request: {e}"));
                return Ok(self.finish(meter, end, Instant::now(), ts, None));
            }
        };
        let timeout = self.timeout;
        let mut deadline = pin!(tokio::time::sleep(timeout));
        let resp = tokio::select! {
            r = self.http.request(req) => r,
            () = &mut deadline => {
                let end = End::Timeout(format!("no response from {} within {:?}", self.endpoint_text, timeout));
                return Ok(self.finish(meter, end, Instant::now(), ts, None));
            }
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let unreachable = e.is_connect();
                let text = chain(&e);
                if may_retry
                    && !unreachable
                    && text.contains("connection closed before message completed")
                {
                    return Err(());
                }
                let why = if unreachable {
                    format!("cannot connect to {}: {text}", self.endpoint_text)
                } else {
                    format!("request to {} failed: {text}", self.endpoint_text)
                };
                let end = End::UpstreamFailed(why);
                let outcome = unreachable.then_some(Outcome::Unreachable);
                return Ok(self.finish(meter, end, Instant::now(), ts, outcome));
            }
        };
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        meter.on_head(
            resp.status().as_u16(),
            content_type.as_deref(),
            Instant::now(),
        );
        let mut body = resp.into_body();
        // The deadline is moved lazily: a chunk only records when it came; when the timer
        // fires early because data kept coming, it is re-armed from the last chunk.
        let mut last = tokio::time::Instant::now();
        deadline.as_mut().reset(last + timeout);
        let end = loop {
            tokio::select! {
                biased;
                frame = body.frame() => match frame {
                    None => {
                        let _ = meter.flush(Instant::now());
                        break End::Complete;
                    }
                    Some(Err(e)) => break End::UpstreamFailed(format!("the answer broke off: {}", chain(&e))),
                    Some(Ok(f)) => {
                        if let Some(data) = f.data_ref() {
                            let now = Instant::now();
                            last = now.into();
                            let _ = meter.on_data(data, now);
                        }
                    }
                },
                () = &mut deadline => {
                    if last.elapsed() >= timeout {
                        break End::Timeout(format!("no data for {timeout:?} in the middle of the answer"));
                    }
                    deadline.as_mut().reset(last + timeout);
                }
            }
        };
        Ok(self.finish(meter, end, Instant::now(), ts, None))
    }

    fn finish(
        &self,
        meter: Meter,
        end: End,
        at: Instant,
        ts: i64,
        outcome: Option<Outcome>,
    ) -> RequestRecord {
        let mut r = meter.finish(end, at, &self.endpoint_text);
        r.ts_unix_ms = ts;
        if let Some(o) = outcome {
            r.outcome = o;
        }
        to_last_token(&mut r);
        r
    }
}

/// vLLM's `bench serve` ends E2E at the last token-bearing chunk (not at the usage chunk or
/// `[DONE]` after it): move E2E there — TTFT plus every gap between token chunks — and
/// recompute TPOT with the one formula of `infermon_model::request`.
fn to_last_token(r: &mut RequestRecord) {
    if !r.stream || r.outcome != Outcome::Ok {
        return;
    }
    let Some(ttft) = r.ttft_ms else {
        return;
    };
    let last = ttft + r.itl_gaps_ms.iter().sum::<f64>();
    if last <= r.e2e_ms {
        r.e2e_ms = last;
        r.tpot_ms = r.completion_tokens.and_then(|n| tpot_ms(last, ttft, n));
    }
}
