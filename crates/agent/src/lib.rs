//! The agent: samples hardware and engines on an adaptive schedule, derives every figure with
//! [`infermon_model::derive`], writes raw samples and series to the store, and publishes each
//! snapshot to subscribers (the API's SSE stream, `/metrics`).
//!
//! Rules: a collector that fails yields an `Unavailable` reading and the loop goes on; the
//! store is written off the async runtime; nothing here computes a figure. A round the store
//! cannot take (a full disk) waits in a bounded in-memory backlog and is written when it can
//! be; the snapshot's `store` source and `store` figures say so (see `storewrite.rs`).
#![deny(missing_docs)]

mod backoff;
mod collect;
mod diagnosis;
mod proxies;
mod requests;
mod shared;
mod storewrite;

pub use backoff::{is_active, Backoff};
pub use collect::Collector;
pub use diagnosis::{ChangeSink, Diagnosis, RECENT_REQUESTS};
pub use proxies::{slo_of, start_proxies};
pub use requests::{HistogramKey, LogSink, RequestLog};
pub use shared::{Round, Shared};

use std::sync::Arc;
use std::time::{Duration, Instant};

use infermon_config::Settings;
use infermon_model::{derive, DeriveSettings};
use tokio::sync::watch;

/// Runs the sampling loop until `stop` turns true.
pub async fn run(
    settings: Settings,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    run_with(settings, shared, None, stop).await
}

/// [`run`], with every observation change also handed to `sink` (the alert outbox) right
/// after it is stored.
pub async fn run_with(
    settings: Settings,
    shared: Arc<Shared>,
    sink: Option<ChangeSink>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let mut diagnosis = Diagnosis::start(&shared, sink).await;
    let mut collector = Collector::new(&settings);
    let derive_settings = DeriveSettings { pue: settings.pue };
    let mut backoff = Backoff::new(settings.interval, settings.max_interval);
    let mut prev = None;
    let mut last_discovery: Option<Instant> = None;
    let mut last_prune = Instant::now();
    loop {
        let started = Instant::now();
        if last_discovery.is_none_or(|t| t.elapsed() >= settings.discovery_interval) {
            if settings.discovery {
                collector.refresh_discovery();
            } else {
                // Configured engines that run here still get their process (memory, and
                // not counted as "other processes" by the CPU contention pattern).
                collector.attach_local_processes();
            }
            last_discovery = Some(Instant::now());
        }
        let mut raw = collector.sample(backoff.current()).await;
        proxies::annotate_engines(&mut raw, &settings.proxies);
        let mut snapshot = derive(prev.as_ref(), &raw, &derive_settings);
        snapshot.requests = shared.requests().stats(raw.ts_unix_ms);
        if settings.diagnosis {
            diagnosis.step(&shared, &snapshot).await;
        }
        let next = backoff.next(is_active(&snapshot) || diagnosis.alarmed());
        shared.publish(&raw, snapshot).await;
        if last_prune.elapsed() >= Duration::from_secs(600) {
            shared.prune(raw.ts_unix_ms).await;
            last_prune = Instant::now();
        }
        prev = Some(raw);
        let wake = started + next;
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            let now_ms = prev
                .as_ref()
                .map_or(0, |p: &infermon_model::raw::RawSample| p.ts_unix_ms);
            diagnosis.save(&shared, now_ms).await;
            shared.flush_store().await;
            return Ok(());
        }
    }
}

/// Errors that stop the agent before it starts sampling.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The data directory could not be created.
    #[error("cannot create data directory \"{path}\": {source}")]
    DataDir {
        /// Path.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] infermon_store::StoreError),
}
