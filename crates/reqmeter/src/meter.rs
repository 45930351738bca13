//! Timing one answer as its bytes pass.

use std::time::Instant;

use infermon_model::request::{tpot_ms, Api, Outcome, RequestRecord, ServerTimings};
use infermon_model::stats::Summary;
use serde_json::Value;

use crate::events::{facts, Facts};
use crate::prepare::Prepared;

/// Non-streamed answers larger than this are forwarded but not parsed for usage.
const WHOLE_BODY_LIMIT: usize = 64 << 20;

/// How the answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The upstream finished the answer.
    Complete,
    /// The upstream connection broke; the text says how.
    UpstreamFailed(String),
    /// The upstream stalled longer than the timeout.
    Timeout(String),
    /// The client went away before the upstream's body ended. After the answer's terminal
    /// event (SSE `data: [DONE]`, Ollama's `done: true`, a whole body that is complete JSON)
    /// this is not a cancel: clients (the OpenAI Python SDK) close as soon as they read it,
    /// often before the upstream's end of body (the chunked `0\r\n\r\n`) arrived, and the
    /// request is finished as complete at that event.
    ClientGone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Sse,
    Ndjson,
    Whole,
}

/// Watches one answer. Feed it the head, then every body chunk with the instant it arrived,
/// then [`Meter::finish`].
#[derive(Debug)]
pub struct Meter {
    api: Api,
    model: String,
    stream: bool,
    strip_usage: bool,
    start: Instant,
    status: u16,
    framing: Framing,
    first_byte: Option<Instant>,
    /// When the last body bytes arrived.
    last_byte: Option<Instant>,
    /// When the answer's terminal event arrived (`[DONE]`, Ollama's final object).
    terminal: Option<Instant>,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    gaps_ms: Vec<f64>,
    token_chunks: u64,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    timings: Option<ServerTimings>,
    stream_error: Option<String>,
    malformed: Option<String>,
    /// The current line, when a chunk ended inside it.
    line: Vec<u8>,
    /// `data:` payload of the current SSE event.
    data: Vec<u8>,
    /// Raw bytes of the current SSE event (kept only while stripping usage).
    event_raw: Vec<u8>,
    /// A non-streamed body, or the start of an error body.
    whole: Vec<u8>,
    whole_overflow: bool,
    captured: Option<Vec<u8>>,
    events_seen: u64,
    /// While stripping usage: the finishing event, held until the next event shows whether
    /// the usage chunk carried fields the client would otherwise have seen on it.
    held: Option<(Vec<u8>, Value)>,
    /// While stripping usage: the JSON of the event being ended.
    last_value: Option<Value>,
}

/// Fields of a usage chunk that belong to the usage chunk itself; any other field (llama.cpp
/// `timings`) is one the engine would have put on the finishing chunk had usage not been
/// asked for, so it is moved there.
const USAGE_CHUNK_OWN: [&str; 7] = [
    "choices",
    "usage",
    "id",
    "object",
    "created",
    "model",
    "system_fingerprint",
];

impl Meter {
    /// Starts measuring a request that arrived at `start`.
    pub fn new(api: Api, prepared: &Prepared, start: Instant) -> Self {
        Meter {
            api,
            model: prepared
                .model
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
            stream: prepared.stream,
            strip_usage: prepared.usage_injected,
            start,
            status: 0,
            framing: Framing::Whole,
            first_byte: None,
            last_byte: None,
            terminal: None,
            first_token: None,
            last_token: None,
            gaps_ms: Vec::new(),
            token_chunks: 0,
            prompt_tokens: None,
            completion_tokens: None,
            timings: None,
            stream_error: None,
            malformed: None,
            line: Vec::new(),
            data: Vec::new(),
            event_raw: Vec::new(),
            whole: Vec::new(),
            whole_overflow: false,
            captured: None,
            events_seen: 0,
            held: None,
            last_value: None,
        }
    }

    /// Keeps a copy of the answer as the client receives it (`--capture-bodies`).
    pub fn capture(&mut self) {
        self.captured = Some(Vec::new());
    }

    /// Whether the meter may change the answer's bytes (it removes the usage chunk it asked
    /// for), so a `Content-Length` from upstream no longer holds.
    pub fn rewrites(&self) -> bool {
        self.strip_usage
    }

    /// The response head arrived.
    pub fn on_head(&mut self, status: u16, content_type: Option<&str>, _at: Instant) {
        self.status = status;
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        self.framing = if !(200..300).contains(&status) {
            Framing::Whole
        } else if ct.starts_with("text/event-stream") {
            Framing::Sse
        } else if ct.starts_with("application/x-ndjson")
            || (self.stream && matches!(self.api, Api::OllamaChat | Api::OllamaGenerate))
        {
            Framing::Ndjson
        } else {
            Framing::Whole
        };
        if self.framing != Framing::Sse {
            self.strip_usage = false;
        }
    }

    /// A body chunk arrived at `at`. Returns `None` to forward `data` unchanged, or the bytes
    /// to forward instead (only when removing the usage chunk infermon asked for).
    pub fn on_data(&mut self, data: &[u8], at: Instant) -> Option<Vec<u8>> {
        if data.is_empty() {
            return None;
        }
        self.first_byte.get_or_insert(at);
        self.last_byte = Some(at);
        let out = match self.framing {
            // While stripping usage the events are rebuilt, but most come out as they went
            // in: then the original bytes are forwarded as they are.
            Framing::Sse => self.feed_lines(data, at).filter(|o| o.as_slice() != data),
            Framing::Ndjson => {
                self.feed_lines(data, at);
                None
            }
            Framing::Whole => {
                if self.whole.len() + data.len() <= WHOLE_BODY_LIMIT {
                    self.whole.extend_from_slice(data);
                } else {
                    self.whole_overflow = true;
                }
                None
            }
        };
        if let Some(c) = self.captured.as_mut() {
            c.extend_from_slice(out.as_deref().unwrap_or(data));
        }
        out
    }

    /// The answer ended; returns bytes still to forward (a last event that had no blank line
    /// after it, while stripping usage).
    pub fn flush(&mut self, at: Instant) -> Option<Vec<u8>> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, at, &mut None);
        }
        let mut out = self.strip_usage.then(Vec::new);
        if !self.data.is_empty() {
            self.end_event(at, &mut out);
        }
        if let Some(o) = out.as_mut() {
            if let Some((raw, _)) = self.held.take() {
                o.extend_from_slice(&raw);
            }
            o.append(&mut self.event_raw);
        }
        out.filter(|o| !o.is_empty())
    }

    fn feed_lines(&mut self, mut rest: &[u8], at: Instant) -> Option<Vec<u8>> {
        let mut out = self.strip_usage.then(|| Vec::with_capacity(rest.len()));
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (seg, tail) = rest.split_at(i + 1);
            rest = tail;
            if self.strip_usage {
                self.event_raw.extend_from_slice(seg);
            }
            if self.line.is_empty() {
                self.on_line(seg, at, &mut out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(seg);
                self.on_line(&line, at, &mut out);
            }
        }
        if !rest.is_empty() {
            self.line.extend_from_slice(rest);
            if self.strip_usage {
                self.event_raw.extend_from_slice(rest);
            }
        }
        out
    }

    fn on_line(&mut self, line: &[u8], at: Instant, out: &mut Option<Vec<u8>>) {
        let line = trim_eol(line);
        if self.framing == Framing::Ndjson {
            if !line.iter().all(u8::is_ascii_whitespace) {
                self.on_json(line, at);
            }
            return;
        }
        if line.is_empty() {
            self.end_event(at, out);
        } else if let Some(d) = line.strip_prefix(b"data:") {
            let d = d.strip_prefix(b" ").unwrap_or(d);
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(d);
        }
    }

    fn end_event(&mut self, at: Instant, out: &mut Option<Vec<u8>>) {
        let data = std::mem::take(&mut self.data);
        let facts = if data.is_empty() || data == b"[DONE]" {
            if !data.is_empty() {
                self.terminal.get_or_insert(at);
            }
            Facts::default()
        } else {
            self.on_json(&data, at)
        };
        self.data = data;
        self.data.clear();
        let Some(o) = out.as_mut() else {
            return;
        };
        let value = self.last_value.take();
        if facts.usage_only {
            self.event_raw.clear();
            if let Some((raw, mut held)) = self.held.take() {
                let moved = move_extra_fields(value, &mut held);
                match (moved, serde_json::to_vec(&held)) {
                    (true, Ok(json)) => {
                        o.extend_from_slice(b"data: ");
                        o.extend_from_slice(&json);
                        o.extend_from_slice(b"\n\n");
                    }
                    _ => o.extend_from_slice(&raw),
                }
            }
            return;
        }
        if let Some((raw, _)) = self.held.take() {
            o.extend_from_slice(&raw);
        }
        match value {
            Some(v) if facts.finish => self.held = Some((std::mem::take(&mut self.event_raw), v)),
            _ => o.append(&mut self.event_raw),
        }
    }

    fn on_json(&mut self, text: &[u8], at: Instant) -> Facts {
        self.events_seen += 1;
        // Most chunks of an OpenAI stream carry a token and nothing else: read those without
        // building a JSON tree (the full reading below gives the same answer for them).
        if matches!(self.api, Api::OpenaiChat | Api::OpenaiCompletions) {
            if let Some(token) = crate::fast::token_chunk(text) {
                let f = Facts {
                    token,
                    ..Facts::default()
                };
                self.absorb(&f, at, true);
                self.last_value = None;
                return f;
            }
        }
        let v: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                if self.malformed.is_none() {
                    let snippet = String::from_utf8_lossy(&text[..text.len().min(80)]);
                    self.malformed = Some(format!(
                        "event {} is not JSON ({e}): \"{snippet}\"",
                        self.events_seen
                    ));
                }
                return Facts::default();
            }
        };
        let f = facts(self.api, &v);
        self.absorb(&f, at, true);
        if f.terminal {
            self.terminal.get_or_insert(at);
        }
        if self.strip_usage {
            self.last_value = Some(v);
        }
        f
    }

    fn absorb(&mut self, f: &Facts, at: Instant, timed: bool) {
        if f.token && timed {
            match self.last_token {
                None => self.first_token = Some(at),
                Some(prev) => self
                    .gaps_ms
                    .push(at.saturating_duration_since(prev).as_secs_f64() * 1000.0),
            }
            self.last_token = Some(at);
            self.token_chunks += 1;
        }
        if f.prompt_tokens.is_some() {
            self.prompt_tokens = f.prompt_tokens;
        }
        if f.completion_tokens.is_some() {
            self.completion_tokens = f.completion_tokens;
        }
        if f.timings.is_some() {
            self.timings = f.timings;
        }
        if let Some(e) = &f.error {
            self.stream_error.get_or_insert_with(|| e.clone());
        }
    }

    /// Finishes the measurement at `at` (the last byte, or when the failure was seen).
    /// A client gone after the terminal event (see [`End::ClientGone`]) finishes it as
    /// complete, at that event.
    pub fn finish(mut self, mut end: End, mut at: Instant, upstream: &str) -> RequestRecord {
        let mut error = None;
        let ok_status = (200..300).contains(&self.status);
        if end == End::ClientGone {
            if let Some(t) = self.terminal {
                end = End::Complete;
                at = t;
            }
        }
        if self.framing == Framing::Whole && !self.whole.is_empty() {
            match serde_json::from_slice::<Value>(&self.whole) {
                Ok(v) => {
                    // A whole body that is complete JSON has all arrived: the client may leave.
                    if end == End::ClientGone && !self.whole_overflow {
                        if let Some(t) = self.last_byte {
                            end = End::Complete;
                            at = t;
                        }
                    }
                    let f = facts(self.api, &v);
                    self.absorb(&f, at, false);
                    if f.token {
                        self.token_chunks = 1;
                    }
                }
                Err(e) if ok_status && end == End::Complete => {
                    self.malformed = Some(format!("answer is not JSON: {e}"));
                }
                Err(_) => {}
            }
        }
        if self.whole_overflow {
            error = Some(format!(
                "answer larger than {} MiB: not parsed for usage",
                WHOLE_BODY_LIMIT >> 20
            ));
        }
        let outcome = match &end {
            End::ClientGone => Outcome::Cancelled,
            End::Timeout(why) => {
                error = Some(why.clone());
                Outcome::Timeout
            }
            End::UpstreamFailed(why) => {
                error = Some(why.clone());
                Outcome::UpstreamFailed
            }
            End::Complete if !ok_status => {
                error = Some(self.stream_error.clone().unwrap_or_else(|| {
                    let s = String::from_utf8_lossy(&self.whole[..self.whole.len().min(200)]);
                    format!("HTTP {}: {s}", self.status)
                }));
                Outcome::HttpError
            }
            End::Complete if self.stream_error.is_some() => {
                error = self.stream_error.clone();
                Outcome::StreamError
            }
            End::Complete if self.malformed.is_some() => {
                error = self.malformed.clone();
                Outcome::Malformed
            }
            End::Complete => Outcome::Ok,
        };
        let ms = |t: Instant| t.saturating_duration_since(self.start).as_secs_f64() * 1000.0;
        let e2e = ms(at);
        let ttft = if self.stream {
            self.first_token.map(ms)
        } else if ok_status {
            self.first_byte.map(ms)
        } else {
            None
        };
        let tpot = match (self.stream, ttft, self.completion_tokens) {
            (true, Some(t), Some(n)) if outcome == Outcome::Ok => tpot_ms(e2e, t, n),
            _ => None,
        };
        RequestRecord {
            ts_unix_ms: 0,
            upstream: upstream.to_string(),
            api: self.api,
            model: self.model,
            stream: self.stream,
            status: self.status,
            outcome,
            error,
            ttfb_ms: self.first_byte.map(ms),
            ttft_ms: ttft,
            tpot_ms: tpot,
            e2e_ms: e2e,
            itl_ms: Summary::of(&self.gaps_ms),
            itl_gaps_ms: self.gaps_ms,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            token_chunks: self.token_chunks,
            usage_injected: self.strip_usage,
            server_timings: self.timings,
            request_body: None,
            response_body: self
                .captured
                .map(|c| String::from_utf8_lossy(&c).into_owned()),
        }
    }
}

/// Copies the fields of a usage chunk that are not its own onto the held finishing chunk;
/// whether any were copied.
fn move_extra_fields(usage_chunk: Option<Value>, held: &mut Value) -> bool {
    let (Some(Value::Object(from)), Value::Object(to)) = (usage_chunk, held) else {
        return false;
    };
    let mut moved = false;
    for (k, v) in from {
        if !USAGE_CHUNK_OWN.contains(&k.as_str()) && !to.contains_key(&k) {
            to.insert(k, v);
            moved = true;
        }
    }
    moved
}

fn trim_eol(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}
