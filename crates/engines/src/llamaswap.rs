//! llama-swap: `/health` (`OK`), `/running` (models with a process and their state, `ready`,
//! `starting`, `stopping`, `stopped`, `shutdown`), `/api/version`, and the server-sent events
//! stream `/api/events`, whose `modelStatus` messages carry the state of every configured model
//! each time a process changes state.
//!
//! **Never** is anything under `/upstream/` or any model route (`/v1/…`) requested: llama-swap
//! starts (and swaps in) a model for such a request, so a monitor asking would load models. The
//! model servers' own `/metrics` and `/slots` are therefore not read through llama-swap.
//!
//! `read()` is called every few seconds and must not block, so on the first `read()` the
//! collector starts a background task that stays subscribed to `/api/events` (reconnecting with
//! backoff), turns state changes into [`EngineEvent`]s, and buffers them; each `read()` drains
//! the buffer. A `ready` event carries the load time measured from the same model's `starting`
//! event. Where `/api/events` is not served (404, older llama-swap) or while the stream is
//! down, `read()` diffs `/running` between reads instead; those events' times (and load times)
//! are known only to within one sample interval, which their `detail` says. The task is aborted
//! when the collector is dropped.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use infermon_model::detail::{EngineEvent, ModelRaw};
use infermon_model::raw::{EngineHealth, EngineKind, EngineProps, EngineRaw, Reading};
use serde_json::Value;
use tokio::task::AbortHandle;

use crate::http::{describe, ok_status, EngineHttp};
use crate::ollama::{checked, joined_names, NO_PROXY_NOTE};

/// Why `metrics` is unavailable for llama-swap.
pub const NO_COUNTERS_REASON: &str = "llama-swap exposes no token counters (its /metrics has \
     host gauges only); request metrics come from infermon's proxy";

const EVENTS: &str = "/api/events";
/// A stream session is cut and reopened after this long (the request needs some bound).
const STREAM_SESSION: Duration = Duration::from_secs(600);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long to wait before asking again for an events endpoint that was not there.
const MISSING_RETRY: Duration = Duration::from_secs(300);
/// Events kept between two reads; older ones are dropped (and counted) beyond this.
const MAX_BUFFERED_EVENTS: usize = 1000;
/// Longest server-sent event accepted (llama-swap's first messages carry its log history).
const MAX_SSE_EVENT_BYTES: usize = 16 << 20;
/// A model stopped at most this long before another starts counts as swapped out by it.
const SWAP_WINDOW_MS: i64 = 30_000;
const POLL_DETAIL: &str = "seen by diffing /running between samples (no event stream): time \
     and load time known only to within one sample interval";

/// Where the collector's model events come from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsSource {
    /// No `read()` yet.
    NotStarted,
    /// The background task is connecting to `/api/events`; `/running` is diffed meanwhile.
    Connecting,
    /// Subscribed to `/api/events`.
    Streaming,
    /// `/api/events` is not served; `/running` is diffed.
    Missing {
        /// What the server answered.
        reason: String,
    },
    /// The stream failed and is being retried with backoff; `/running` is diffed meanwhile.
    Failing {
        /// Last error.
        reason: String,
    },
}

#[derive(Debug)]
struct Shared {
    tracker: StateTracker,
    events: VecDeque<EngineEvent>,
    dropped: u64,
    source: EventsSource,
}

impl Shared {
    fn push(&mut self, events: Vec<EngineEvent>) {
        for e in events {
            if self.events.len() >= MAX_BUFFERED_EVENTS {
                self.events.pop_front();
                self.dropped += 1;
            }
            self.events.push_back(e);
        }
    }
}

/// Polls one llama-swap and follows its event stream.
#[derive(Debug)]
pub struct LlamaSwap {
    origin: String,
    http: EngineHttp,
    shared: Arc<Mutex<Shared>>,
    task: Mutex<Option<AbortHandle>>,
}

impl LlamaSwap {
    /// A collector for llama-swap at `base` (e.g. `http://127.0.0.1:8080`); every polled
    /// request is bounded by `timeout`. Nothing is requested before the first `read()`.
    pub fn new(base: &str, origin: &str, timeout: Duration) -> Self {
        LlamaSwap {
            origin: origin.to_string(),
            http: EngineHttp::new(base, timeout),
            shared: Arc::new(Mutex::new(Shared {
                tracker: StateTracker::new(),
                events: VecDeque::new(),
                dropped: 0,
                source: EventsSource::NotStarted,
            })),
            task: Mutex::new(None),
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    /// Where model events come from now.
    pub fn events_source(&self) -> EventsSource {
        lock(&self.shared).source.clone()
    }

    /// Reads `/health`, `/running` and `/api/version` concurrently and drains the events seen
    /// since the previous read (starting the event-stream task on the first call).
    pub async fn read(&self) -> EngineRaw {
        self.ensure_follower();
        let (health, running, version) = tokio::join!(
            self.http.get("/health"),
            self.http.get("/running"),
            self.http.get("/api/version"),
        );
        let mut raw =
            EngineRaw::blank(EngineKind::LlamaSwap, self.base(), &self.origin, "not read");
        raw.slots = Reading::unavailable(
            "llama-swap has no slots endpoint (its model servers' are under /upstream/, which \
             infermon never requests: that would load the model)",
        );
        raw.metrics = Reading::unavailable(NO_COUNTERS_REASON);
        raw.notes.push(NO_PROXY_NOTE.to_string());
        raw.health = Reading::from_result(health.map(|(s, _, b)| parse_health(s, &b)));
        let build = version
            .ok()
            .filter(|(s, _, _)| *s == 200)
            .and_then(|(_, _, b)| parse_version(&b).ok());
        let models = checked(&self.http, "/running", running, parse_running);
        raw.props = match &models {
            Ok(list) => Reading::ok(EngineProps {
                model: joined_names(list.iter().map(|m| m.name.as_str())),
                model_path: None,
                n_ctx: None,
                total_slots: None,
                build_info: build,
            }),
            Err(e) => Reading::unavailable(e.clone()),
        };
        self.drain_events(&models, &mut raw);
        raw.models = Some(Reading::from_result(models));
        raw
    }

    fn drain_events(&self, models: &Result<Vec<ModelRaw>, String>, raw: &mut EngineRaw) {
        let mut sh = lock(&self.shared);
        if sh.source != EventsSource::Streaming {
            if let Ok(list) = models {
                let states: Vec<ModelState> = list
                    .iter()
                    .map(|m| ModelState {
                        model: m.name.clone(),
                        state: m.state.clone(),
                    })
                    .collect();
                let events = sh.tracker.observe(&states, now_ms(), Via::Poll);
                sh.push(events);
            }
        }
        raw.events = sh.events.drain(..).collect();
        if sh.dropped > 0 {
            raw.notes.push(format!(
                "{} model events dropped: more than {MAX_BUFFERED_EVENTS} came between two samples",
                sh.dropped
            ));
            sh.dropped = 0;
        }
        match &sh.source {
            EventsSource::Missing { reason } => raw.notes.push(format!(
                "{reason}: model events come from diffing /running, so their times are known \
                 only to within one sample interval"
            )),
            EventsSource::Failing { reason } => raw.notes.push(format!(
                "model event stream: {reason}; retrying, diffing /running meanwhile"
            )),
            _ => {}
        }
    }

    fn ensure_follower(&self) {
        let mut task = lock(&self.task);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut sh = lock(&self.shared);
            if sh.source == EventsSource::NotStarted {
                sh.source = EventsSource::Connecting;
            }
        }
        let handle = rt.spawn(follow(self.http.clone(), Arc::clone(&self.shared)));
        *task = Some(handle.abort_handle());
    }
}

impl Drop for LlamaSwap {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = task.take() {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn set_source(shared: &Mutex<Shared>, source: EventsSource) {
    lock(shared).source = source;
}

/// How one stream session ended.
enum End {
    /// No events endpoint: fall back to `/running` for a while.
    Missing(String),
    /// Could not subscribe.
    Failed(String),
    /// Subscribed, then the stream ended; `fed` when it delivered model status.
    Closed { fed: bool, reason: String },
}

/// Stays subscribed to `/api/events` until aborted.
async fn follow(http: EngineHttp, shared: Arc<Mutex<Shared>>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let wait = match stream_once(&http, &shared).await {
            End::Missing(reason) => {
                set_source(&shared, EventsSource::Missing { reason });
                MISSING_RETRY
            }
            End::Closed { fed: true, .. } => {
                set_source(&shared, EventsSource::Connecting);
                backoff = BACKOFF_MIN;
                BACKOFF_MIN
            }
            End::Failed(reason) | End::Closed { reason, .. } => {
                set_source(&shared, EventsSource::Failing { reason });
                let wait = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn stream_once(http: &EngineHttp, shared: &Mutex<Shared>) -> End {
    let url = http.url(EVENTS);
    let sent = http
        .client()
        .get(&url)
        .header("accept", "text/event-stream")
        .timeout(STREAM_SESSION)
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => return End::Failed(describe(&url, &e)),
    };
    let status = resp.status().as_u16();
    if status == 404 {
        return End::Missing(format!(
            "{url} answered 404 (llama-swap without its events API)"
        ));
    }
    if status != 200 {
        let body = resp.text().await.unwrap_or_default();
        let reason = ok_status(&url, status, &body).err().unwrap_or_default();
        return End::Failed(reason);
    }
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !ctype.starts_with("text/event-stream") {
        return End::Missing(format!(
            "{url} is not an event stream (content-type \"{ctype}\")"
        ));
    }
    set_source(shared, EventsSource::Streaming);
    let mut parser = SseParser::default();
    let mut fed = false;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => {
                let reason = format!("{url}: the server closed the stream");
                return End::Closed { fed, reason };
            }
            Err(e) => {
                let reason = describe(&url, &e);
                return End::Closed { fed, reason };
            }
        };
        let messages = match parser.push(&chunk) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("{url}: {e}");
                return End::Closed { fed, reason };
            }
        };
        for m in messages {
            match parse_model_status(&m.data) {
                Ok(Some(states)) => {
                    fed = true;
                    let mut sh = lock(shared);
                    let events = sh.tracker.observe(&states, now_ms(), Via::Stream);
                    sh.push(events);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(url = %url, error = %e, "llama-swap event skipped"),
            }
        }
    }
}

/// `/health`: 200 with body `OK` is `ok`; anything else says what came.
pub fn parse_health(status: u16, body: &str) -> EngineHealth {
    let word = match status {
        200 if body.trim().eq_ignore_ascii_case("ok") => "ok".to_string(),
        200 => format!("http 200 with \"{}\" instead of OK", head(body)),
        s => format!("http {s}: \"{}\"", head(body)),
    };
    EngineHealth {
        http_status: status,
        status: word,
    }
}

/// `/api/version` body `{"version":"…","commit":"…","build_date":"…"}` → `version (commit)`.
pub fn parse_version(body: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("/api/version is not JSON ({e}): \"{}\"", head(body)))?;
    let version = v
        .get("version")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("/api/version has no \"version\": \"{}\"", head(body)))?;
    Ok(match v.get("commit").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => format!("{version} ({c})"),
        _ => version.to_string(),
    })
}

/// `/running` body `{"running":[{"model","state","proxy",…}]}` → models with a process.
/// `cmd` is not kept (a command line may hold secrets).
pub fn parse_running(body: &str) -> Result<Vec<ModelRaw>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): \"{}\"", head(body)))?;
    let list = match v.get("running") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(Value::Null) => &[],
        _ => return Err(format!("no \"running\" array: \"{}\"", head(body))),
    };
    list.iter()
        .map(|m| {
            let text = |k: &str| {
                m.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            Ok(ModelRaw {
                name: text("model").ok_or_else(|| {
                    format!("an entry without \"model\": {}", head(&m.to_string()))
                })?,
                state: text("state").unwrap_or_else(|| "unknown".to_string()),
                size_bytes: None,
                vram_bytes: None,
                context_length: None,
                expires_unix_ms: None,
                quantization: None,
                parameter_size: None,
                upstream: text("proxy"),
            })
        })
        .collect()
}

/// A model's state as llama-swap reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelState {
    /// Model id.
    pub model: String,
    /// `ready`, `starting`, `stopping`, `stopped`, `shutdown` (older versions: `unknown`).
    pub state: String,
}

/// One event's `data` → the model states of a `modelStatus` message, `None` for the other
/// message types (`logData`, `activity`, `inflight`, …). The message is an envelope
/// `{"type":"modelStatus","data":"<JSON array as a string>"}`; models of peers (non-empty
/// `peerID`) are left out: they are not this llama-swap's processes.
pub fn parse_model_status(data: &str) -> Result<Option<Vec<ModelState>>, String> {
    let env: Value = serde_json::from_str(data)
        .map_err(|e| format!("event data is not JSON ({e}): \"{}\"", head(data)))?;
    if env.get("type").and_then(Value::as_str) != Some("modelStatus") {
        return Ok(None);
    }
    let inner = env
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("modelStatus without a \"data\" string: \"{}\"", head(data)))?;
    let list: Value = serde_json::from_str(inner)
        .map_err(|e| format!("modelStatus data is not JSON ({e}): \"{}\"", head(inner)))?;
    let arr = match &list {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        _ => {
            return Err(format!(
                "modelStatus data is not a list: \"{}\"",
                head(inner)
            ))
        }
    };
    let text = |m: &Value, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(Some(
        arr.iter()
            .filter(|m| text(m, "peerID").is_none())
            .filter_map(|m| {
                Some(ModelState {
                    model: text(m, "id")?,
                    state: text(m, "state")?,
                })
            })
            .collect(),
    ))
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// `event:` field (`message` when absent).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental `text/event-stream` parser: feed body chunks as they come (they may split
/// lines, or UTF-8 sequences); comment lines (`:`) and `id:`/`retry:` are ignored.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds one chunk; returns the events it completed. Fails on an event over 16 MiB.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseMessage>, String> {
        let mut out = Vec::new();
        for &c in chunk {
            if c == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.field(&String::from_utf8_lossy(&line), &mut out);
            } else {
                if self.line.len() + self.data.len() >= MAX_SSE_EVENT_BYTES {
                    return Err(format!(
                        "an event longer than {MAX_SSE_EVENT_BYTES} bytes in the stream"
                    ));
                }
                self.line.push(c);
            }
        }
        Ok(out)
    }

    fn field(&mut self, line: &str, out: &mut Vec<SseMessage>) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if std::mem::take(&mut self.has_data) {
                let event = if event.is_empty() {
                    "message".to_string()
                } else {
                    event
                };
                out.push(SseMessage { event, data });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

/// How a state snapshot was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A `modelStatus` message, as it happened.
    Stream,
    /// A `/running` answer at sampling time: times are only known to within an interval.
    Poll,
}

/// Turns successive model-state snapshots into events: one per model whose state changed,
/// `kind` the new state. A model missing from a snapshot is `stopped` (`/running` lists only
/// models with a process). The first snapshot only sets the baseline.
#[derive(Debug, Default)]
pub struct StateTracker {
    known: Option<HashMap<String, String>>,
    starting_since: HashMap<String, i64>,
    recent_stops: Vec<(String, i64)>,
}

impl StateTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the full snapshot `states` seen at `now_ms` (Unix ms); returns the changes since
    /// the previous snapshot. Stops come before starts, so a swap reads in order; a model that
    /// starts within 30 s of another stopping says which one it replaced.
    pub fn observe(&mut self, states: &[ModelState], now_ms: i64, via: Via) -> Vec<EngineEvent> {
        let current: HashMap<String, String> = states
            .iter()
            .map(|m| (m.model.clone(), m.state.clone()))
            .collect();
        let Some(known) = self.known.replace(current.clone()) else {
            return Vec::new();
        };
        let names: BTreeSet<&String> = known.keys().chain(current.keys()).collect();
        let state_in = |map: &HashMap<String, String>, n: &str| {
            map.get(n).cloned().unwrap_or_else(|| "stopped".to_string())
        };
        let mut changes: Vec<(String, String, String)> = names
            .into_iter()
            .map(|n| (n.clone(), state_in(&known, n), state_in(&current, n)))
            .filter(|(_, from, to)| from != to)
            .collect();
        changes.sort_by_key(|(_, _, to)| match to.as_str() {
            "starting" => 1,
            "ready" => 2,
            _ => 0,
        });
        self.recent_stops
            .retain(|(_, t)| now_ms - t <= SWAP_WINDOW_MS);
        changes
            .into_iter()
            .map(|(model, from, to)| self.change(model, &from, to, now_ms, via))
            .collect()
    }

    fn change(&mut self, model: String, from: &str, to: String, now: i64, via: Via) -> EngineEvent {
        let mut detail = Vec::new();
        let mut duration_ms = None;
        match to.as_str() {
            "starting" => {
                self.starting_since.insert(model.clone(), now);
                detail.extend(self.swap_note(&model));
            }
            "ready" => match self.starting_since.remove(&model) {
                Some(t0) => duration_ms = Some((now - t0) as f64),
                None => {
                    detail.extend(self.swap_note(&model));
                    detail.push(format!("its start was not seen (it was {from})"));
                }
            },
            _ => {
                if self.starting_since.remove(&model).is_some() {
                    detail.push(format!(
                        "went {to} while starting: the load failed or was stopped"
                    ));
                }
                if matches!(to.as_str(), "stopping" | "stopped") && from != "stopping" {
                    self.recent_stops.push((model.clone(), now));
                }
            }
        }
        if via == Via::Poll {
            detail.push(POLL_DETAIL.to_string());
        }
        EngineEvent {
            ts_unix_ms: now,
            model,
            kind: to,
            duration_ms,
            detail: (!detail.is_empty()).then(|| detail.join("; ")),
        }
    }

    fn swap_note(&mut self, model: &str) -> Option<String> {
        let replaced: Vec<String> = self
            .recent_stops
            .iter()
            .filter(|(m, _)| m != model)
            .map(|(m, _)| m.clone())
            .collect();
        self.recent_stops.clear();
        (!replaced.is_empty()).then(|| format!("swap: replaces {}", replaced.join(", ")))
    }
}

fn head(body: &str) -> String {
    body.chars().take(80).collect()
}
