//! The tasks of remote write and hub push: queueing each broadcast snapshot (or sampling
//! round), and sending the queue.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use infermon_model::Snapshot;
use infermon_store::{OutboxItem, Store};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use tokio::sync::{broadcast, watch};

use infermon_detect::Observation;
use infermon_fleet::push::PushedSample;
use infermon_model::raw::RawSample;

use crate::{enqueue_with, hub, wire, Auth, Protocol, Stats, Target};

/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Wait after a failed request, doubled on each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs `f` on the store off the async workers; `None` if the lock was poisoned or the task
/// could not run.
pub(crate) async fn with_store<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> Option<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.lock().ok().map(|s| f(&s)))
        .await
        .ok()
        .flatten()
}

/// Exposition text of series to send beside each snapshot's (read when the snapshot arrives).
pub type MoreSeries = Arc<dyn Fn() -> String + Send + Sync>;

/// The node's open observations (read when a round arrives, pushed with it to the hub).
pub type OpenObservations = Arc<dyn Fn() -> Vec<Observation> + Send + Sync>;

/// Queues every sampling round of `rounds` for the hub `target` until `stop`, with the
/// observations open at that time.
pub async fn run_hub_enqueuer(
    target: Target,
    stats: Arc<Stats>,
    mut rounds: broadcast::Receiver<Arc<(RawSample, Arc<Snapshot>)>>,
    store: Arc<Mutex<Store>>,
    observations: OpenObservations,
    mut stop: watch::Receiver<bool>,
) {
    let endpoint = match &target.protocol {
        Protocol::Hub { endpoint, .. } => endpoint.clone(),
        Protocol::RemoteWrite => None,
    };
    let target = Arc::new(target);
    loop {
        let round = tokio::select! {
            r = rounds.recv() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let round = match round {
            Ok(r) => r,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("hub push: fell {n} samples behind; they are not sent");
                stats.dropped_unqueued.fetch_add(n, Ordering::Relaxed);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let sample = PushedSample {
            raw: round.0.clone(),
            snapshot: round.1.clone(),
            observations: observations(),
            endpoint: endpoint.clone(),
        };
        let (t, st) = (target.clone(), stats.clone());
        let res = with_store(&store, move |s| {
            crate::enqueue_push(s, &t, &sample, &st, now_ms()).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|| Err("the store is unavailable".to_string()));
        if let Err(e) = res {
            stats.dropped_unqueued.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("hub push: {e}");
        }
    }
}

/// Queues every snapshot of `snapshots` for every target until `stop`, with the series of
/// `more` at the same time.
pub async fn run_enqueuer(
    targets: Vec<(Target, Arc<Stats>)>,
    mut snapshots: broadcast::Receiver<Arc<Snapshot>>,
    store: Arc<Mutex<Store>>,
    more: Option<MoreSeries>,
    mut stop: watch::Receiver<bool>,
) {
    let mut warned = false;
    let targets = Arc::new(targets);
    loop {
        let snap = tokio::select! {
            r = snapshots.recv() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let snap = match snap {
            Ok(s) => s,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("remote write: fell {n} snapshots behind; they are not sent");
                for (_, st) in targets.iter() {
                    st.dropped_unqueued.fetch_add(n, Ordering::Relaxed);
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let extra = match more.as_ref().map(|f| infermon_promtext::parse(&f())) {
            None => Vec::new(),
            Some(Ok(x)) => x.samples,
            Some(Err(e)) => {
                if !warned {
                    tracing::warn!("remote write: request histograms not sent: {e}");
                    warned = true;
                }
                Vec::new()
            }
        };
        let ts = targets.clone();
        let errors = with_store(&store, move |s| {
            let mut errors = Vec::new();
            for (t, st) in ts.iter() {
                if let Err(e) = enqueue_with(s, t, &snap, &extra, st, now_ms()) {
                    st.dropped_unqueued.fetch_add(1, Ordering::Relaxed);
                    errors.push(format!("{}: {e}", t.url));
                }
            }
            errors
        })
        .await
        .unwrap_or_else(|| vec!["the store is unavailable".to_string()]);
        for e in errors {
            tracing::warn!("remote write: {e}");
        }
    }
}

fn headers(protocol: &Protocol, auth: &Auth) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    match protocol {
        Protocol::RemoteWrite => {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
            h.insert(
                "X-Prometheus-Remote-Write-Version",
                HeaderValue::from_static("0.1.0"),
            );
        }
        Protocol::Hub { .. } => {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    h.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(concat!("infermon/", env!("CARGO_PKG_VERSION"))),
    );
    let value = match auth {
        Auth::None => None,
        Auth::Bearer(t) => Some(format!("Bearer {t}")),
        Auth::Basic { user, password } => Some(format!(
            "Basic {}",
            base64(format!("{user}:{password}").as_bytes())
        )),
    };
    if let Some(mut v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        v.set_sensitive(true);
        h.insert(AUTHORIZATION, v);
    }
    h
}

/// Standard base64 with padding (RFC 4648), for the Basic header.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// How one request ended.
enum Outcome {
    /// 2xx: delete the batch. The hub may have refused some of its samples one by one
    /// (their count and the first reason): they are dropped and counted.
    Accepted(u64, Option<String>),
    /// 4xx other than 429: the receiver will never take it; drop it.
    Refused(String),
    /// 5xx, 429, a network error or a timeout: keep it and retry after the wait, if given.
    Retry(String, Option<Duration>),
    /// The hub does not know the node token: forget it, join again, keep the batch.
    Rejoin(String),
}

/// An error with its sources, for the log.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut why = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        why.push_str(&format!(": {c}"));
        cur = c.source();
    }
    why
}

async fn post(client: &reqwest::Client, t: &Target, auth: &Auth, body: Vec<u8>) -> Outcome {
    let r = client
        .post(&t.url)
        .headers(headers(&t.protocol, auth))
        .timeout(t.timeout)
        .body(body)
        .send()
        .await;
    let r = match r {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(format!("POST {}: {}", t.url, error_chain(&e)), None),
    };
    let status = r.status();
    if status.is_success() {
        if !matches!(t.protocol, Protocol::Hub { .. }) {
            return Outcome::Accepted(0, None);
        }
        // The hub says which samples it refused; an answer it cannot read refuses none.
        let reply = r.json::<infermon_fleet::push::PushReply>().await.ok();
        let refused = reply.map(|r| r.refused).unwrap_or_default();
        let first = refused.first().map(|r| r.reason.clone());
        return Outcome::Accepted(refused.len() as u64, first);
    }
    let retry_after = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_BACKOFF * 2));
    let text = r.text().await.unwrap_or_default();
    let text: String = text.trim().chars().take(300).collect();
    let why = format!("{} answered {status}: {text}", t.url);
    let hub = matches!(t.protocol, Protocol::Hub { .. });
    match status.as_u16() {
        429 | 500..=599 => Outcome::Retry(why, retry_after),
        // The hub no longer knows this node's token: join again, keep the data.
        401 if hub => Outcome::Rejoin(why),
        // Revoked, or the name is another node's: keep the data, retry slowly.
        403 | 409 if hub => Outcome::Retry(why, Some(MAX_BACKOFF)),
        _ => Outcome::Refused(why),
    }
}

/// One request's body from queued items: their protobuf bytes joined, compressed again.
/// Items that cannot be read back are returned apart (they are dropped: they can never be
/// sent).
fn remote_write_body(items: &[OutboxItem]) -> (Option<Vec<u8>>, Vec<i64>) {
    let mut raw = Vec::new();
    let mut bad = Vec::new();
    for i in items {
        match wire::decompress(&i.payload) {
            Ok(b) => raw.extend_from_slice(&b),
            Err(_) => bad.push(i.id),
        }
    }
    (wire::compress(&raw).ok(), bad)
}

/// Sends `target`'s queue until `stop`, oldest first.
pub async fn run_sender(
    target: Target,
    store: Arc<Mutex<Store>>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let client = loop {
        match infermon_tls::client_with_ca(target.ca.as_deref()).map(|b| b.build()) {
            Ok(Ok(c)) => break c,
            Ok(Err(e)) => tracing::error!(
                "{}: cannot make an HTTP client: {}; the outbox is kept",
                target.url,
                error_chain(&e)
            ),
            Err(e) => tracing::error!("{}: {e}; the outbox is kept", target.url),
        }
        pause(&mut stop, MAX_BACKOFF).await;
        if *stop.borrow() {
            return;
        }
    };
    let channel = target.channel();
    let mut backoff = FIRST_BACKOFF;
    let mut last_error = String::new();
    let what = match target.protocol {
        Protocol::RemoteWrite => "remote write",
        Protocol::Hub { .. } => "hub push",
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let (ch, limit) = (channel.clone(), target.batch.max(1));
        let taken = with_store(&store, move |s| {
            let o = s.outbox();
            Some((o.oldest(&ch, limit).ok()?, o.len(&ch).ok()?))
        })
        .await
        .flatten();
        let Some((items, pending)) = taken else {
            pause(&mut stop, Duration::from_secs(1)).await;
            continue;
        };
        stats.pending.store(pending, Ordering::Relaxed);
        if items.is_empty() {
            pause(&mut stop, Duration::from_millis(500)).await;
            continue;
        }
        let (body, bad) = match target.protocol {
            Protocol::RemoteWrite => remote_write_body(&items),
            Protocol::Hub { .. } => hub::batch_body(&items),
        };
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        let auth = match &target.protocol {
            Protocol::RemoteWrite => Ok(target.auth.clone()),
            Protocol::Hub {
                join_token, node, ..
            } => hub::node_token(&client, &target, join_token, node, &store)
                .await
                .map(Auth::Bearer),
        };
        let outcome = match (body, auth) {
            (_, Err(why)) => Outcome::Retry(why, None),
            (Some(b), Ok(auth)) => post(&client, &target, &auth, b).await,
            (None, _) => Outcome::Refused("the batch could not be compressed".to_string()),
        };
        let n = items.len() as u64;
        match outcome {
            Outcome::Accepted(refused, first) => {
                let dropped = (bad.len() as u64 + refused).min(n);
                stats.sent.fetch_add(n - dropped, Ordering::Relaxed);
                stats.dropped_rejected.fetch_add(dropped, Ordering::Relaxed);
                if let Some(why) = first {
                    tracing::warn!(
                        "{what}: the hub refused {refused} of {n} snapshots, the rest stored: {why}"
                    );
                }
                if !last_error.is_empty() {
                    tracing::info!("{what} to {} recovered", target.url);
                    last_error.clear();
                }
                backoff = FIRST_BACKOFF;
                delete(&store, ids, what).await;
                // Bounded catch-up: n snapshots at max_samples_per_second.
                if pending > n {
                    let per = f64::from(target.max_samples_per_second.max(1));
                    pause(&mut stop, Duration::from_secs_f64(n as f64 / per)).await;
                }
            }
            Outcome::Refused(why) => {
                stats.dropped_rejected.fetch_add(n, Ordering::Relaxed);
                tracing::warn!("{what}: {n} snapshots dropped: {why}");
                delete(&store, ids, what).await;
            }
            Outcome::Rejoin(why) => {
                stats.failed_requests.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{why}; joining the hub again, {pending} samples kept");
                hub::forget_token(&target, &store).await;
                pause(&mut stop, backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Outcome::Retry(why, wait) => {
                stats.failed_requests.fetch_add(1, Ordering::Relaxed);
                if why != last_error {
                    tracing::warn!("{what}: {why}; {pending} snapshots kept, retrying");
                    last_error = why;
                }
                let wait = wait.unwrap_or(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                pause(&mut stop, wait).await;
            }
        }
    }
}

async fn delete(store: &Arc<Mutex<Store>>, ids: Vec<i64>, what: &str) {
    let failed = with_store(store, move |s| {
        let o = s.outbox();
        ids.iter().filter(|id| o.delivered(**id).is_err()).count()
    })
    .await;
    if failed != Some(0) {
        tracing::warn!(
            "{what}: sent items could not be removed from the outbox; they will be sent again"
        );
    }
}

async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_by_rfc4648_examples() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
