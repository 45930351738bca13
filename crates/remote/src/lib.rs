//! Prometheus remote write 1.0 of every snapshot's series, so a fleet lands in the storage it
//! already runs (Prometheus with `--web.enable-remote-write-receiver`, VictoriaMetrics, Mimir,
//! Thanos receive).
//!
//! Each snapshot becomes one queued item per target in the store's persisted outbox (channel
//! `remote_write:URL`): the series of [`infermon_model::Snapshot::series`] (and the proxy's
//! request histograms, given as exposition text) at the sample's time,
//! protobuf-encoded and snappy-compressed (about 1–2 KB). A sender task per target takes the
//! oldest items, joins them into one request (protobuf repeated fields concatenate), and
//! deletes them only when the receiver answered 2xx. 5xx, 429 and network errors are retried
//! with backoff (honouring `Retry-After`), oldest first, so after an outage every sample
//! arrives in time order; any other 4xx is the receiver refusing the data for good, so that
//! batch is dropped, counted and logged. Catch-up is paced at
//! [`Target::max_samples_per_second`]. The queue is capped at [`Target::max_pending`]
//! snapshots (default 50 000: 27.8 h at 2 s, so a 24 h outage loses nothing; a snapshot of
//! about 60 series queues as 1.8 KB, so about 90 MB then), dropping the oldest first; drops are
//! counted in [`Stats`]. Enqueueing runs on its own task from the agent's snapshot broadcast,
//! so neither encoding nor a slow receiver ever delays sampling.
//!
//! Receivers may be `https`: the client is `infermon-tls`'s (the system's roots plus
//! [`Target::ca`]).
//!
//! Delivery is at least once: a sender stopped between a receiver's 2xx and the delete sends
//! that batch again; receivers drop a sample identical to one they hold.

pub mod hub;
mod send;
pub mod wire;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use infermon_model::Snapshot;
use infermon_store::{Store, StoreError};

pub use hub::enqueue_push;
pub use send::{run_enqueuer, run_hub_enqueuer, run_sender, MoreSeries, OpenObservations};

/// Snapshots a queue holds by default: 27.8 h at 2 s.
pub const DEFAULT_MAX_PENDING: usize = 50_000;

/// How a target authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

/// The hub's push path, after its base URL.
pub const HUB_PUSH_PATH: &str = "/api/v1/hub/push";

/// What a target receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Prometheus remote write 1.0: every series of each snapshot.
    RemoteWrite,
    /// An infermon hub: each sampling round whole (raw sample, snapshot, open observations).
    Hub {
        /// The hub's join token (asked for the node token once).
        join_token: String,
        /// This node's name at the hub.
        node: String,
        /// Where this node serves the OpenAI/Ollama APIs, sent with every sample for the
        /// hub's routing proxy (`--advertise-url`).
        endpoint: Option<String>,
    },
}

/// One receiver: a remote write endpoint or a hub.
#[derive(Debug, Clone)]
pub struct Target {
    /// The receiver's write URL, e.g. `http://prom:9090/api/v1/write`, or the hub's push URL.
    pub url: String,
    /// What it receives.
    pub protocol: Protocol,
    /// Authentication.
    pub auth: Auth,
    /// Labels added to every series (`job`, `instance` and the user's), sorted or not.
    pub labels: Vec<(String, String)>,
    /// Snapshots kept while the receiver is unreachable; the oldest are dropped beyond it.
    pub max_pending: usize,
    /// Catch-up pace, snapshots per second.
    pub max_samples_per_second: u32,
    /// Snapshots per request at most.
    pub batch: usize,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// A PEM file of certificate authorities trusted besides the system's, for an `https`
    /// receiver whose certificate a private CA signed.
    pub ca: Option<PathBuf>,
}

impl Target {
    /// A target with the defaults: no auth, `job="infermon"`, `instance=node`, 50 000
    /// snapshots kept, 500 per second and 200 per request at most, 30 s per request.
    pub fn new(url: &str, node: &str) -> Target {
        Target {
            url: url.to_string(),
            protocol: Protocol::RemoteWrite,
            auth: Auth::None,
            labels: vec![
                ("job".to_string(), "infermon".to_string()),
                ("instance".to_string(), node.to_string()),
            ],
            max_pending: DEFAULT_MAX_PENDING,
            max_samples_per_second: 500,
            batch: 200,
            timeout: Duration::from_secs(30),
            ca: None,
        }
    }

    /// A hub at `base` (e.g. `http://hub:9465`) that this node joins as `node` with
    /// `join_token`; the same queue defaults as remote write.
    pub fn hub(base: &str, node: &str, join_token: &str) -> Target {
        let base = base.trim_end_matches('/');
        let mut t = Target::new(&format!("{base}{HUB_PUSH_PATH}"), node);
        t.protocol = Protocol::Hub {
            join_token: join_token.to_string(),
            node: node.to_string(),
            endpoint: None,
        };
        t.labels.clear();
        t
    }

    /// The outbox channel of this target.
    pub fn channel(&self) -> String {
        match self.protocol {
            Protocol::RemoteWrite => format!("remote_write:{}", self.url),
            Protocol::Hub { .. } => format!("hub:{}", hub::base(self)),
        }
    }
}

/// Counters of one target, shared with `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Snapshots queued.
    pub enqueued: AtomicU64,
    /// Snapshots the receiver accepted.
    pub sent: AtomicU64,
    /// Snapshots waiting in the outbox (as of the sender's last look).
    pub pending: AtomicU64,
    /// Snapshots dropped because the queue was full (oldest first).
    pub dropped_full: AtomicU64,
    /// Snapshots dropped because the receiver refused them with a 4xx other than 429.
    pub dropped_rejected: AtomicU64,
    /// Snapshots never queued because the enqueuer fell behind the broadcast or could not
    /// write to the store.
    pub dropped_unqueued: AtomicU64,
    /// Requests that failed and will be retried.
    pub failed_requests: AtomicU64,
}

impl Stats {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running target's counters as `/metrics` shows them.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The receiver's URL.
    pub url: String,
    /// Its counters.
    pub stats: Arc<Stats>,
    /// How many snapshots its queue holds at most.
    pub capacity: usize,
}

/// Why a snapshot could not be queued.
#[derive(Debug)]
pub enum EnqueueError {
    /// The outbox could not be written.
    Store(StoreError),
    /// Compression failed (never expected; named for the log).
    Compress(String),
}

impl std::fmt::Display for EnqueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnqueueError::Store(e) => write!(f, "queueing for remote write: {e}"),
            EnqueueError::Compress(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for EnqueueError {}

impl From<StoreError> for EnqueueError {
    fn from(e: StoreError) -> Self {
        EnqueueError::Store(e)
    }
}

/// Queues `snapshot` for `target` (encode, compress, insert into the outbox) and caps the
/// queue. One snapshot is one item, keyed by its time so the same sample is never queued
/// twice.
pub fn enqueue(
    store: &Store,
    target: &Target,
    snapshot: &Snapshot,
    stats: &Stats,
    now_ms: i64,
) -> Result<(), EnqueueError> {
    enqueue_with(store, target, snapshot, &[], stats, now_ms)
}

/// [`enqueue`] with more samples sent at the snapshot's time: the series `/metrics` shows
/// beside the snapshot's (the proxy's request histograms), parsed from their text.
pub fn enqueue_with(
    store: &Store,
    target: &Target,
    snapshot: &Snapshot,
    more: &[infermon_promtext::Sample],
    stats: &Stats,
    now_ms: i64,
) -> Result<(), EnqueueError> {
    let mut raw = wire::encode_points(&snapshot.series(), snapshot.ts_unix_ms, &target.labels);
    raw.extend(wire::encode_samples(
        more,
        snapshot.ts_unix_ms,
        &target.labels,
    ));
    let payload = wire::compress(&raw).map_err(|e| {
        EnqueueError::Compress(format!(
            "snappy compression of a {}-byte remote write request: {e}",
            raw.len()
        ))
    })?;
    queue(
        store,
        target,
        &snapshot.ts_unix_ms.to_string(),
        &payload,
        stats,
        now_ms,
    )
}

/// Puts one item in `target`'s outbox under `key` (once per key) and caps the queue,
/// oldest dropped first.
fn queue(
    store: &Store,
    target: &Target,
    key: &str,
    payload: &[u8],
    stats: &Stats,
    now_ms: i64,
) -> Result<(), EnqueueError> {
    let outbox = store.outbox();
    let channel = target.channel();
    if outbox.enqueue(&channel, Some(key), payload, now_ms)? {
        Stats::add(&stats.enqueued, 1);
        // `pending` is the sender's count plus what was queued since; trimming scans the
        // channel, so it runs only when that count says the cap is passed (and on the first
        // call, for a queue left from a larger cap).
        let first = stats.enqueued.load(Ordering::Relaxed) == 1;
        let pending = stats.pending.fetch_add(1, Ordering::Relaxed) + 1;
        // A full queue is cut 1 % below the cap, so the scan runs once per 1 % of it.
        if first || pending > target.max_pending as u64 {
            let keep = target.max_pending - target.max_pending / 100;
            let dropped = outbox.trim(&channel, keep)?;
            Stats::add(&stats.dropped_full, dropped);
            stats
                .pending
                .store(outbox.len(&channel)?.min(keep as u64), Ordering::Relaxed);
        }
    }
    Ok(())
}
