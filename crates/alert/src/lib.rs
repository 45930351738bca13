//! Alert delivery for infermon's observations: routing by kind and severity, cooldown, dedup,
//! a persisted outbox (the store's `outbox` table), signed webhooks, retries with backoff.
//!
//! Two halves, so sampling never waits on a receiver:
//!
//! - [`Alerter::enqueue`] (sync, on the sampling path) routes each detector [`Change`] to the
//!   targets that take it and writes the rendered request into the store's outbox, channel
//!   `alert:<target name>`. Only local SQLite writes; no network.
//! - [`Delivery::run`] (async, its own task) sends each target's queue in order, one request
//!   at a time with the target's timeout, deletes what a receiver took (2xx) and reschedules
//!   the rest with exponential backoff ([`Backoff`]: 1 s doubling to 5 min, jittered). Store
//!   calls run on the blocking pool. One task per target: a receiver that is down, slow,
//!   hanging or answering 500 only delays its own queue.
//!
//! # Wiring
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use infermon_alert::{AlertTarget, AlertTargetSpec, Alerter};
//! use infermon_store::{Retention, Store};
//! # async fn demo(changes: Vec<infermon_detect::Change>, now_ms: i64)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! // Config: one `[[alert]]` table per target, mapped onto the spec and validated.
//! let targets = AlertTarget::validate_all(&[AlertTargetSpec {
//!     name: "ops".into(),
//!     url: "http://10.0.0.5:8080/hooks/infermon".into(),
//!     format: Some("json".into()),
//!     secret: Some("a-long-shared-secret".into()),
//!     kinds: vec![],                         // all kinds
//!     min_severity: Some("warning".into()),
//!     ..Default::default()
//! }])?;
//! let store = Arc::new(Mutex::new(Store::open("/var/lib/infermon/history.db".as_ref(),
//!                                             Retention::default())?));
//! let mut alerter = Alerter::new(targets)?;
//! let stats = alerter.stats();               // clone into the API state for /metrics
//! let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
//! let delivery = tokio::spawn(alerter.delivery().run(Arc::clone(&store), stop_rx));
//!
//! // In the sampling loop, after `Detector::step` (and after writing the observations):
//! if let Ok(store) = store.lock() {
//!     let summary = alerter.enqueue(&store, &changes, now_ms);
//!     for e in &summary.errors { tracing::warn!("{e}"); } // sampling goes on
//! }
//!
//! // On shutdown:
//! let _ = stop_tx.send(true);
//! let _ = delivery.await;
//! # let _ = stats.snapshot(); Ok(()) }
//! ```
//!
//! # What is alerted
//!
//! Per target: an `Opened` change whose kind is in `kinds` (empty = all) and whose severity is
//! at least `min_severity`, unless an opening of the same kind and subject was alerted to this
//! target less than `cooldown` ago; its `Resolved` change when `send_resolved` is set and the
//! opening was alerted. `Updated` changes are not alerted, with one exception: an update that
//! raises an opening held back by `min_severity` to a severity the target takes is alerted as
//! the opening (otherwise a warning that turns critical would never reach a critical-only
//! target). Each (target, event, observation id) is its dedup key: an alert is queued once
//! while it waits.
//!
//! # Across a restart
//!
//! The queue is in the store, so undelivered alerts survive a restart (or crash) and are sent
//! by the next [`Delivery::run`], in order, with their attempt count and backoff. Delivered
//! alerts are deleted, so their dedup keys are forgotten. The cooldown and the fate of open
//! observations are kept in memory only; a new [`Alerter`] starts empty, and then:
//! a re-opening within the cooldown of one alerted before the restart is alerted again, and a
//! resolution of an observation opened before the restart is sent when the target takes it
//! now. [`Alerter::restore`] rebuilds both from the observations the agent loads at start
//! (each taken to have been alerted at its `confirmed_s`). Delivery is at least once: an
//! alert whose 2xx arrived but whose deletion did not (a crash in between) is sent again;
//! receivers can dedup on `X-Infermon-Delivery`.
//!
//! # Wire format
//!
//! Every request is a `POST` to the target's URL with `User-Agent: infermon/<version>` and
//! `X-Infermon-Delivery: <32 hex digits>`, the same on every retry of one alert. Redirects are
//! not followed. Bodies by [`Format`]:
//!
//! - `json`: `{"event": "opened"|"resolved", "observation": <Observation JSON>}`,
//!   `Content-Type: application/json`.
//! - `slack`: `{"text": "[infermon] CRITICAL thermal_throttling on gpu:0: <action>"}`, or
//!   `[infermon] RESOLVED thermal_throttling on gpu:0 (was critical, lasted 4m 10s)`; `&`, `<`,
//!   `>` escaped as Slack asks.
//! - `ntfy`: a plain-text body (the action, the evidence figures, the cause, the id; cut
//!   below ntfy's 4 096-byte message limit) with `Title` (`critical: <kind> on <subject>`,
//!   `resolved: ...`), `Priority` (critical 5 = urgent, warning 4 = high, info 3 = default; a
//!   resolution 3) and `Tags` (`rotating_light`/`warning`/`information_source`, or
//!   `white_check_mark`, then the kind). Header values outside printable ASCII are sent as
//!   RFC 2047 encoded words, which ntfy decodes. The URL is `https://host/topic`.
//!
//! # Signature
//!
//! With a `secret`, each request carries `X-Infermon-Signature: sha256=<hex>`, the lowercase
//! hex HMAC-SHA256 of the **exact body bytes** keyed with the secret, and
//! `X-Infermon-Timestamp: <Unix seconds when sent>`. A receiver must compute the HMAC over the
//! raw body as received, before any JSON parsing or re-encoding, and compare in constant time.
//! The signature covers the body only, not the timestamp: to refuse replays, remember the
//! `X-Infermon-Delivery` ids (or the observation ids) already seen. Both headers are computed
//! at send time, so the secret is never written to the store and a changed secret applies to
//! queued alerts.
//!
//! # Failures
//!
//! Connection errors, timeouts, 5xx, 408, 425 and 429 are retried without limit (the queue
//! cap bounds them; `Retry-After` in seconds is honoured up to the backoff's maximum). A
//! receiver that refuses an alert (other 4xx, or a redirect) gets [`REFUSED_ATTEMPTS`]
//! attempts, then the alert is dropped and counted as `rejected`. Each target's queue is
//! capped ([`DEFAULT_MAX_QUEUE`], oldest dropped first, counted as `dropped`). Logs and
//! stored errors show a URL as `scheme://host:port/…`: webhook paths are often secrets.
//! Queues of targets no longer configured stay in the store untouched.
//!
//! # TLS
//!
//! `https` receivers (Slack, ntfy.sh) are reached with `infermon-tls`'s client: rustls with
//! the system's roots.
#![deny(missing_docs)]

mod alerter;
mod deliver;
mod render;
mod sign;
mod stats;
mod target;

pub use alerter::{Alerter, EnqueueSummary, DEFAULT_MAX_QUEUE};
pub use deliver::{deliver_loop, Backoff, Delivery, REFUSED_ATTEMPTS};
pub use infermon_detect::Change;
pub use render::{ntfy_priority, render, summary, Event, RenderedRequest, PAYLOAD_VERSION};
pub use sign::{signature, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use stats::{AlertStats, AlertStatsHandle, TargetStats};
pub use target::{
    redact_url, AlertConfigError, AlertTarget, AlertTargetSpec, Format, Secret, DEFAULT_COOLDOWN,
    DEFAULT_TIMEOUT, MIN_SECRET_BYTES,
};
