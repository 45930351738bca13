//! Requests measured by the proxies: kept for the recent window (per-model figures in the
//! snapshot), counted into cumulative histograms (`/metrics`), and written to the store in
//! batches off the async runtime.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use infermon_model::reqstats::{
    aggregate_with, Observed, RequestHistograms, RequestStats, Slo, WindowRecord,
};
use infermon_model::request::RequestRecord;
use infermon_store::{RequestQuery, Store};

/// Most requests kept in memory for the window, whatever its length (about 0.4 KiB each
/// for a 64-token answer: the compact [`WindowRecord`]).
const WINDOW_CAP: usize = 50_000;
/// Whole records kept for `/api/v1/requests` when no store is kept.
const LATEST_CAP: usize = 2_000;

/// Key of a histogram family: upstream, model, `gen_ai.operation.name`.
pub type HistogramKey = (String, String, &'static str);

#[derive(Default)]
struct Inner {
    /// The window: compact copies, oldest first.
    window: VecDeque<Arc<WindowRecord>>,
    /// Upstream and model names, shared by the window's records.
    names: HashSet<Arc<str>>,
    /// The newest whole records (only without a store).
    latest: VecDeque<Arc<RequestRecord>>,
    histograms: BTreeMap<HistogramKey, RequestHistograms>,
    /// Records waiting to be written (only with a store).
    pending: Vec<RequestRecord>,
}

impl Inner {
    fn name(&mut self, s: &str) -> Arc<str> {
        if let Some(n) = self.names.get(s) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(s);
        self.names.insert(n.clone());
        n
    }
}

/// The agent's log of measured requests. Cheap to record into from any thread.
pub struct RequestLog {
    inner: Mutex<Inner>,
    window: Duration,
    slo: Slo,
    wake: tokio::sync::Notify,
    /// Whether a store takes the records ([`RequestLog::write_loop`]); without one, only the
    /// newest [`LATEST_CAP`] whole records are kept.
    persisted: AtomicBool,
    /// The pooled gaps of the last aggregation, kept for the next (see `stats`).
    scratch: Mutex<Vec<f64>>,
}

impl RequestLog {
    /// A log whose snapshot figures cover `window`, with goodput against `slo`.
    pub fn new(window: Duration, slo: Slo) -> Arc<Self> {
        Arc::new(RequestLog {
            inner: Mutex::new(Inner::default()),
            window,
            slo,
            wake: tokio::sync::Notify::new(),
            persisted: AtomicBool::new(false),
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// Says whether a store takes the records (set once, before proxies start).
    pub fn set_persisted(&self, yes: bool) {
        self.persisted.store(yes, Ordering::Relaxed);
    }

    /// Takes one finished request.
    pub fn push(&self, r: RequestRecord) {
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        let key = (r.upstream.as_str(), r.model.as_str(), r.api.operation());
        match g
            .histograms
            .iter_mut()
            .find(|(k, _)| (k.0.as_str(), k.1.as_str(), k.2) == key)
        {
            Some((_, h)) => h.observe(&r),
            None => g
                .histograms
                .entry((r.upstream.clone(), r.model.clone(), r.api.operation()))
                .or_default()
                .observe(&r),
        }
        let (upstream, model) = (g.name(&r.upstream), g.name(&r.model));
        g.window
            .push_back(Arc::new(WindowRecord::of(&r, upstream, model)));
        if g.window.len() > WINDOW_CAP {
            g.window.pop_front();
        }
        if self.persisted.load(Ordering::Relaxed) {
            g.pending.push(r);
            if g.pending.len() >= 256 {
                self.wake.notify_one();
            }
        } else {
            g.latest.push_back(Arc::new(r));
            if g.latest.len() > LATEST_CAP {
                g.latest.pop_front();
            }
        }
    }

    /// Per-model figures over the window ending at `now_ms`. The lock is held only to drop
    /// expired records and take pointers to the rest; the aggregation (sorting every gap of
    /// the window) runs outside it, off the async workers, so finishing requests never wait
    /// on it.
    pub fn stats(&self, now_ms: i64) -> Vec<RequestStats> {
        let kept: Vec<Arc<WindowRecord>> = {
            let Ok(mut g) = self.inner.lock() else {
                return Vec::new();
            };
            let cut = now_ms - self.window.as_millis() as i64;
            while g.window.front().is_some_and(|r| r.ts_unix_ms < cut) {
                g.window.pop_front();
            }
            g.window.iter().cloned().collect()
        };
        let run = || {
            let mut scratch = self
                .scratch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            aggregate_with(
                kept.iter().map(|r| &**r),
                self.window.as_secs_f64(),
                &self.slo,
                &mut scratch,
            )
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }

    /// Per-model figures of the requests that ended in the last `span` before `now_ms` (at
    /// most the log's window): what diagnosis compares, so a change shows within seconds.
    pub fn stats_over(&self, now_ms: i64, span: Duration) -> Vec<RequestStats> {
        let span = span.min(self.window);
        let cut = now_ms - span.as_millis() as i64;
        let kept: Vec<Arc<WindowRecord>> = {
            let Ok(g) = self.inner.lock() else {
                return Vec::new();
            };
            // Records go in as they end; `ts_unix_ms` is when they arrived, so a long request
            // can sit behind shorter, later ones: look back a little past the cut.
            g.window
                .iter()
                .rev()
                .take_while(|r| r.ts_unix_ms >= cut - 300_000)
                .filter(|r| r.ts_unix_ms + r.e2e_ms() as i64 >= cut)
                .cloned()
                .collect()
        };
        if kept.is_empty() {
            return Vec::new();
        }
        aggregate_with(
            kept.iter().map(|r| &**r),
            span.as_secs_f64(),
            &self.slo,
            &mut Vec::new(),
        )
    }

    /// Cumulative histograms since the agent started, per (upstream, model, operation).
    pub fn histograms(&self) -> Vec<(HistogramKey, RequestHistograms)> {
        self.inner
            .lock()
            .map(|g| {
                g.histograms
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The newest requests still in memory (used when no store is kept: the last
    /// [`LATEST_CAP`]).
    pub fn recent(&self, q: &RequestQuery) -> Vec<RequestRecord> {
        let Ok(g) = self.inner.lock() else {
            return Vec::new();
        };
        g.latest
            .iter()
            .rev()
            .filter(|r| q.model.as_ref().is_none_or(|m| *m == r.model))
            .filter(|r| q.since_ms.is_none_or(|s| r.ts_unix_ms >= s))
            .take(q.limit)
            .map(|r| (**r).clone())
            .collect()
    }

    fn take_pending(&self) -> Vec<RequestRecord> {
        self.inner
            .lock()
            .map(|mut g| std::mem::take(&mut g.pending))
            .unwrap_or_default()
    }

    /// Writes pending records to `store` every `every` (sooner when many are waiting) until
    /// `stop` turns true, then writes what is left. A failed write is logged and its records
    /// are kept for the next attempt.
    pub async fn write_loop(
        self: Arc<Self>,
        store: Arc<Mutex<Store>>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = self.wake.notified() => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            let batch = self.take_pending();
            if !batch.is_empty() {
                let st = store.clone();
                let res = tokio::task::spawn_blocking(move || {
                    let r = st
                        .lock()
                        .map_err(|_| "store lock poisoned".to_string())
                        .and_then(|mut s| s.write_requests(&batch).map_err(|e| e.to_string()));
                    (r, batch)
                })
                .await;
                match res {
                    Ok((Ok(()), _)) => {}
                    Ok((Err(e), batch)) => {
                        tracing::warn!("writing {} requests failed: {e}", batch.len());
                        if let Ok(mut g) = self.inner.lock() {
                            let mut rest = std::mem::take(&mut g.pending);
                            g.pending = batch;
                            g.pending.append(&mut rest);
                        }
                    }
                    Err(e) => tracing::warn!("request write task failed: {e}"),
                }
            }
            if stopping {
                return;
            }
        }
    }
}

/// Lets proxies record into the log.
pub struct LogSink(pub Arc<RequestLog>);

impl infermon_proxy::RecordSink for LogSink {
    fn record(&self, r: RequestRecord) {
        self.0.push(r);
    }
}
