//! Push to an infermon hub: the same outbox and sender as remote write, with the hub's own
//! body (a JSON array of [`PushedSample`], snappy-compressed) and its own credentials.
//!
//! The node joins once with the hub's join token and keeps the node token it is given in its
//! store (`meta` key `hub_token:URL`), so a restarted agent pushes as the same node. A push
//! answered 401 (the hub no longer knows the token, e.g. its data directory was replaced)
//! forgets the token and joins again; 403 (revoked) and 409 (the name belongs to another
//! token) keep every queued sample and retry slowly, logging why: nothing is dropped because
//! of credentials.

use std::sync::{Arc, Mutex};

use infermon_fleet::push::{JoinReply, JoinRequest, PushedSample};
use infermon_store::{OutboxItem, Store};

use crate::send::with_store;
use crate::{wire, EnqueueError, Stats, Target};

/// The store's `meta` key for the node token given by the hub at `base`.
fn token_key(base: &str) -> String {
    format!("hub_token:{base}")
}

/// The hub's base URL of a hub target (its push URL without the path).
pub(crate) fn base(target: &Target) -> &str {
    target
        .url
        .strip_suffix(crate::HUB_PUSH_PATH)
        .unwrap_or(&target.url)
}

/// Queues one sampling round for the hub; keyed by its time, so it is queued once.
pub fn enqueue_push(
    store: &Store,
    target: &Target,
    sample: &PushedSample,
    stats: &Stats,
    now_ms: i64,
) -> Result<(), EnqueueError> {
    let json = serde_json::to_vec(sample).map_err(|e| {
        EnqueueError::Compress(format!(
            "encoding the sample at {} ms for the hub: {e}",
            sample.raw.ts_unix_ms
        ))
    })?;
    let payload = wire::compress(&json).map_err(|e| {
        EnqueueError::Compress(format!(
            "snappy compression of a {}-byte hub push item: {e}",
            json.len()
        ))
    })?;
    crate::queue(
        store,
        target,
        &sample.raw.ts_unix_ms.to_string(),
        &payload,
        stats,
        now_ms,
    )
}

/// One push body from queued items: `[item,item,…]`, snappy-compressed. Items that cannot
/// be read back are returned apart (dropped: they can never be sent).
pub(crate) fn batch_body(items: &[OutboxItem]) -> (Option<Vec<u8>>, Vec<i64>) {
    let mut raw = vec![b'['];
    let mut bad = Vec::new();
    for i in items {
        match wire::decompress(&i.payload) {
            Ok(b) => {
                if raw.len() > 1 {
                    raw.push(b',');
                }
                raw.extend_from_slice(&b);
            }
            Err(_) => bad.push(i.id),
        }
    }
    raw.push(b']');
    (wire::compress(&raw).ok(), bad)
}

/// The node token for `target`: the one kept in the store, else a new one from the hub's
/// join. `Err` says why there is none yet (the sender retries later).
pub(crate) async fn node_token(
    client: &reqwest::Client,
    target: &Target,
    join_token: &str,
    node: &str,
    store: &Arc<Mutex<Store>>,
) -> Result<String, String> {
    let key = token_key(base(target));
    let k = key.clone();
    let kept = with_store(store, move |s| s.meta_value(&k))
        .await
        .ok_or("the store is unavailable")?
        .map_err(|e| e.to_string())?;
    if let Some(t) = kept {
        return Ok(t);
    }
    let url = format!("{}/api/v1/hub/join", base(target));
    let r = client
        .post(&url)
        .bearer_auth(join_token)
        .timeout(target.timeout)
        .json(&JoinRequest {
            node: node.to_string(),
        })
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", crate::send::error_chain(&e)))?;
    let status = r.status();
    if !status.is_success() {
        let text: String = r
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        return Err(format!(
            "joining the hub at {url} as {node}: {status}: {}",
            text.trim()
        ));
    }
    let reply: JoinReply = r
        .json()
        .await
        .map_err(|e| format!("joining the hub at {url}: the answer is not a join reply: {e}"))?;
    let t = reply.token.clone();
    with_store(store, move |s| s.set_meta_value(&key, Some(&t)))
        .await
        .ok_or("the store is unavailable")?
        .map_err(|e| format!("keeping the node token: {e}"))?;
    tracing::info!("joined the hub at {} as {node}", base(target));
    Ok(reply.token)
}

/// Forgets the node token for `target` (the hub answered 401), so the next round joins again.
pub(crate) async fn forget_token(target: &Target, store: &Arc<Mutex<Store>>) {
    let key = token_key(base(target));
    let _ = with_store(store, move |s| s.set_meta_value(&key, None)).await;
}
