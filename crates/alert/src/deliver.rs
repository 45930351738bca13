//! Delivery: one task per target takes its queue in order, POSTs, and retries with backoff.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use infermon_store::{OutboxItem, Store, StoreError};
use tokio::sync::watch;

use crate::render::RenderedRequest;
use crate::sign::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::stats::{AlertStatsHandle, Counters, Shared};
use crate::target::AlertTarget;

/// An alert the receiver refuses (4xx other than 408/425/429, or a redirect) is given up on
/// after this many attempts.
pub const REFUSED_ATTEMPTS: u32 = 3;
/// Error and response text kept per attempt, bytes.
const MAX_SNIPPET: usize = 200;

/// Retry timing: `initial`, doubling per failed attempt up to `max`, each delay shortened by
/// up to `jitter` of itself at random (so many nodes do not retry in step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure (default 1 s).
    pub initial: Duration,
    /// Longest delay (default 5 min).
    pub max: Duration,
    /// Fraction of each delay taken off at random, 0 to 1 (default 0.2).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay after `failures` failed attempts (1 for the first), with `random` choosing
    /// the jitter.
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let base = self
            .initial
            .saturating_mul(1_u32 << doublings)
            .min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        // 53 random bits as a fraction in [0, 1).
        let unit = (random >> 11) as f64 / (1_u64 << 53) as f64;
        base.mul_f64(1.0 - jitter * unit)
    }
}

/// The delivery side of an [`Alerter`](crate::Alerter), from
/// [`Alerter::delivery`](crate::Alerter::delivery). Run it with [`Delivery::run`].
#[derive(Debug, Clone)]
pub struct Delivery {
    targets: Arc<[Arc<Shared>]>,
    backoff: Backoff,
    poll: Duration,
    batch: usize,
}

impl Delivery {
    pub(crate) fn new(targets: Arc<[Arc<Shared>]>) -> Delivery {
        Delivery {
            targets,
            backoff: Backoff::default(),
            poll: Duration::from_secs(5),
            batch: 32,
        }
    }

    /// Retry timing (tests use milliseconds).
    pub fn with_backoff(mut self, backoff: Backoff) -> Delivery {
        self.backoff = backoff;
        self
    }

    /// How often an idle target looks at its queue without being woken (default 5 s; an
    /// enqueue by this process's [`Alerter`](crate::Alerter) wakes it at once).
    pub fn with_poll_interval(mut self, poll: Duration) -> Delivery {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// The counters, for `/metrics`.
    pub fn stats(&self) -> AlertStatsHandle {
        AlertStatsHandle {
            targets: Arc::clone(&self.targets),
        }
    }

    /// Delivers until `stop` turns true (or its sender is dropped): one task per target, so a
    /// receiver that is down, slow, hanging or failing only delays its own queue. Each target
    /// sends its queue oldest first, one request at a time (an opening before its
    /// resolution), waiting while the oldest is backing off. A request in flight when `stop`
    /// comes is finished (bounded by the target's timeout) and recorded, so nothing is sent
    /// twice by stopping. Store calls run on the blocking pool. Run one per alerter: two
    /// deliveries of the same queues would send alerts twice.
    pub async fn run(self, store: Arc<Mutex<Store>>, stop: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for sh in self.targets.iter() {
            tasks.spawn(run_target(
                Arc::clone(sh),
                Arc::clone(&store),
                self.clone(),
                stop.clone(),
            ));
        }
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!("alert delivery task ended abnormally: {e}");
            }
        }
    }
}

/// [`Delivery::run`] as a free function.
pub async fn deliver_loop(
    store: Arc<Mutex<Store>>,
    delivery: Delivery,
    stop: watch::Receiver<bool>,
) {
    delivery.run(store, stop).await;
}

/// What a target's task does after a pass over its queue.
enum Next {
    /// Look again at once: the batch was full.
    Now,
    /// Nothing due: wait to be woken (or the poll interval).
    Idle,
    /// The oldest item is due at this time, ms since the Unix epoch.
    At(i64),
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

async fn run_target(
    sh: Arc<Shared>,
    store: Arc<Mutex<Store>>,
    cfg: Delivery,
    mut stop: watch::Receiver<bool>,
) {
    let name = sh.target.name.clone();
    let client = match client(&sh.target) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "alert target \"{name}\": cannot build its HTTP client, no alerts will be \
                 sent to it: {e}"
            );
            return;
        }
    };
    let mut store_failures = 0_u32;
    loop {
        if stopped(&stop) {
            return;
        }
        let wait = match pass(&sh, &client, &store, &cfg, &stop).await {
            Ok(next) => {
                store_failures = 0;
                match next {
                    Next::Now => continue,
                    Next::Idle => cfg.poll,
                    Next::At(ms) => {
                        Duration::from_millis(u64::try_from(ms - now_ms()).unwrap_or(0))
                            .min(cfg.poll)
                    }
                }
            }
            Err(e) => {
                store_failures = store_failures.saturating_add(1);
                tracing::warn!("alert target \"{name}\": {e}");
                cfg.backoff.delay(store_failures, random(0))
            }
        };
        if let Ok(n) = with_store(&store, &sh.channel, |s, ch| s.outbox().len(ch)).await {
            sh.counters.queued.store(n, Ordering::Relaxed);
        }
        tokio::select! {
            r = stop.changed() => if r.is_err() { return },
            () = sh.wake.notified() => {},
            () = tokio::time::sleep(wait) => {},
        }
    }
}

/// Sends what is due at the head of the queue, in order, stopping at the first failure.
async fn pass(
    sh: &Shared,
    client: &reqwest::Client,
    store: &Arc<Mutex<Store>>,
    cfg: &Delivery,
    stop: &watch::Receiver<bool>,
) -> Result<Next, String> {
    let batch = cfg.batch;
    let items = with_store(store, &sh.channel, move |s, ch| {
        s.outbox().oldest(ch, batch)
    })
    .await?;
    let full = items.len() == batch;
    for item in items {
        if stopped(stop) {
            return Ok(Next::Idle);
        }
        if item.next_try_ms > now_ms() {
            return Ok(Next::At(item.next_try_ms));
        }
        if let Some(next) = attempt(sh, client, store, cfg, &item).await? {
            return Ok(Next::At(next));
        }
    }
    Ok(if full { Next::Now } else { Next::Idle })
}

/// One attempt at one item; `Some(next try)` when it failed and waits.
async fn attempt(
    sh: &Shared,
    client: &reqwest::Client,
    store: &Arc<Mutex<Store>>,
    cfg: &Delivery,
    item: &OutboxItem,
) -> Result<Option<i64>, String> {
    let name = &sh.target.name;
    let id = item.id;
    let req = match RenderedRequest::from_payload(&item.payload) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("alert target \"{name}\": dropping outbox item {id}: {e}");
            with_store(store, &sh.channel, move |s, _| s.outbox().delivered(id)).await?;
            Counters::add(&sh.counters.rejected, 1);
            return Ok(None);
        }
    };
    let failure = match send(client, &sh.target, &req).await {
        Ok(()) => {
            with_store(store, &sh.channel, move |s, _| s.outbox().delivered(id)).await?;
            Counters::add(&sh.counters.delivered, 1);
            return Ok(None);
        }
        Err(f) => f,
    };
    Counters::add(&sh.counters.failed_attempts, 1);
    let attempts = item.attempts.saturating_add(1);
    let url = sh.target.redacted_url();
    if failure.refused && attempts >= REFUSED_ATTEMPTS {
        tracing::warn!(
            "alert target \"{name}\" ({url}): giving up on alert {id} after {attempts} \
             attempts: {}",
            failure.message
        );
        with_store(store, &sh.channel, move |s, _| s.outbox().delivered(id)).await?;
        Counters::add(&sh.counters.rejected, 1);
        return Ok(None);
    }
    let mut delay = cfg.backoff.delay(attempts, random(id as u64));
    if let Some(after) = failure.retry_after {
        delay = delay.max(after.min(cfg.backoff.max));
    }
    let next = now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
    tracing::warn!(
        "alert target \"{name}\" ({url}): attempt {attempts} failed: {}; next try in {delay:?}",
        failure.message
    );
    let message = failure.message;
    with_store(store, &sh.channel, move |s, _| {
        s.outbox().failed(id, &message, next)
    })
    .await?;
    Ok(Some(next))
}

/// Runs a store call on the blocking pool; the error names the channel.
async fn with_store<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    channel: &str,
    f: impl FnOnce(&Store, &str) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = Arc::clone(store);
    let ch = channel.to_owned();
    tokio::task::spawn_blocking(move || {
        let guard = store.lock().unwrap_or_else(PoisonError::into_inner);
        f(&guard, &ch).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("store call for outbox channel \"{channel}\" did not finish: {e}"))?
}

fn client(t: &AlertTarget) -> Result<reqwest::Client, reqwest::Error> {
    infermon_tls::client()
        .timeout(t.timeout)
        .connect_timeout(t.timeout.min(Duration::from_secs(10)))
        // A signed alert is never forwarded to wherever a redirect points.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("infermon/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why an attempt failed.
struct Failure {
    /// What happened; names no URL path.
    message: String,
    /// The receiver refused this alert (not worth retrying for long).
    refused: bool,
    /// The receiver's `Retry-After`, in seconds form.
    retry_after: Option<Duration>,
}

async fn send(
    client: &reqwest::Client,
    t: &AlertTarget,
    req: &RenderedRequest,
) -> Result<(), Failure> {
    let refused = |message: String| Failure {
        message,
        refused: true,
        retry_after: None,
    };
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| refused(format!("method \"{}\" is not valid", req.method)))?;
    let mut rb = client.request(method, t.url.clone());
    for (k, v) in &req.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    if let Some(secret) = &t.secret {
        rb = rb
            .header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), req.body.as_bytes()),
            )
            .header(TIMESTAMP_HEADER, (now_ms() / 1000).to_string());
    }
    let resp = rb
        .body(req.body.clone())
        .send()
        .await
        .map_err(|e| Failure {
            refused: e.is_builder(),
            message: describe(&e, t.timeout),
            retry_after: None,
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut message = format!("HTTP {status}");
    let mut resp = resp;
    if let Ok(Some(chunk)) = resp.chunk().await {
        let text = String::from_utf8_lossy(&chunk[..chunk.len().min(MAX_SNIPPET)]);
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if !text.trim().is_empty() {
            message += &format!(": {}", text.trim());
        }
    }
    let code = status.as_u16();
    Err(Failure {
        message,
        refused: status.is_redirection()
            || (status.is_client_error() && !matches!(code, 408 | 425 | 429)),
        retry_after,
    })
}

/// A transport error without its URL (the path may be a secret), with its causes.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let mut s = if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_builder() {
        "cannot build the request".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s += &format!(": {cause}");
        source = cause.source();
    }
    s
}

/// Wall-clock ms since the Unix epoch (the clock the agent's `now_ms` uses).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A random-enough `u64` for jitter (splitmix64 over the clock and a seed).
fn random(seed: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut z = seed ^ u64::from(nanos).rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        let b = Backoff::default();
        let none = Backoff { jitter: 0.0, ..b };
        assert_eq!(none.delay(1, 12345), Duration::from_secs(1));
        assert_eq!(none.delay(2, 0), Duration::from_secs(2));
        assert_eq!(none.delay(9, 0), Duration::from_secs(256));
        assert_eq!(none.delay(10, 0), Duration::from_secs(300));
        assert_eq!(none.delay(u32::MAX, 0), Duration::from_secs(300));
        for seed in 0..200 {
            let d = b.delay(3, random(seed));
            assert!(
                d <= Duration::from_secs(4) && d >= Duration::from_millis(3_200),
                "{d:?}"
            );
        }
        assert_eq!(b.delay(1, u64::MAX).as_millis(), 800);
    }
}
