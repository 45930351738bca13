//! Join and push: the only ways data enters the hub.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use infermon_fleet::push::{
    check_batch, check_sample, JoinReply, PushReply, PushedSample, Refusal,
};
use infermon_model::names::{is_dns_label, secrets_equal};
use infermon_model::raw::RawSample;
use infermon_model::series::SeriesPoint;

use crate::{lock, Hub, HubError, Latest};

/// Largest push body accepted after snappy decompression, bytes.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

impl Hub {
    /// Registers `node` if `join_token` is the hub's; answers its node token.
    pub fn join(&self, join_token: &str, node: &str, now_ms: i64) -> Result<JoinReply, HubError> {
        let r = self.join_inner(join_token, node, now_ms);
        match &r {
            Ok(_) => {
                self.stats.joins.fetch_add(1, Ordering::Relaxed);
                tracing::info!("hub: node {node} joined");
            }
            Err(e) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(status = e.status, "hub: join refused: {}", e.message);
            }
        }
        r
    }

    fn join_inner(&self, join_token: &str, node: &str, now_ms: i64) -> Result<JoinReply, HubError> {
        if !secrets_equal(join_token.as_bytes(), self.join_token.as_bytes()) {
            return Err(HubError::new(401, "wrong join token"));
        }
        if !is_dns_label(node) {
            return Err(HubError::new(
                400,
                format!(
                    "node name \"{}\" is not a DNS label: expected 1-63 lowercase letters, \
                     digits or '-', not starting or ending with '-'",
                    node.escape_default()
                ),
            ));
        }
        let token = self.registry.join(node, now_ms)?;
        Ok(JoinReply {
            node: node.to_string(),
            token,
        })
    }

    /// Stores a push from the node that owns `token`. `snappy` says whether `body` is in the
    /// snappy block format (else it is JSON as is). Nothing is stored from a refused batch.
    pub fn push(
        &self,
        token: &str,
        body: &[u8],
        snappy: bool,
        now_ms: i64,
    ) -> Result<(String, PushReply), HubError> {
        let r = self.push_inner(token, body, snappy, now_ms);
        match &r {
            Ok((node, reply)) => {
                self.stats.pushes.fetch_add(1, Ordering::Relaxed);
                let refused = reply.refused.len() as u64;
                self.stats
                    .samples_refused
                    .fetch_add(refused, Ordering::Relaxed);
                if let Some(first) = reply.refused.first() {
                    tracing::warn!(
                        "hub: push from {node}: {refused} samples refused, the rest stored; first: {}",
                        first.reason
                    );
                }
                self.stats
                    .accepted
                    .fetch_add(reply.accepted, Ordering::Relaxed);
                self.stats
                    .duplicates
                    .fetch_add(reply.duplicates, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(status = e.status, "hub: push refused: {}", e.message);
            }
        }
        r
    }

    fn push_inner(
        &self,
        token: &str,
        body: &[u8],
        snappy: bool,
        now_ms: i64,
    ) -> Result<(String, PushReply), HubError> {
        let node = self.registry.authenticate(token)?;
        let decoded;
        let json = if snappy {
            let n = snap::raw::decompress_len(body).map_err(|e| {
                HubError::new(
                    400,
                    format!("push from {node}: the body is not snappy: {e}"),
                )
            })?;
            if n > MAX_DECODED_BYTES {
                return Err(HubError::new(
                    413,
                    format!(
                        "push from {node}: {n} bytes once decompressed: expected at most \
                         {MAX_DECODED_BYTES}; send smaller batches"
                    ),
                ));
            }
            decoded = snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| {
                    HubError::new(
                        400,
                        format!("push from {node}: the body is not snappy: {e}"),
                    )
                })?;
            &decoded[..]
        } else {
            body
        };
        let samples: Vec<PushedSample> = serde_json::from_slice(json).map_err(|e| {
            HubError::new(
                400,
                format!("push from {node}: expected a JSON array of pushed samples: {e}"),
            )
        })?;
        check_batch(&samples).map_err(|e| HubError::new(400, format!("push from {node}: {e}")))?;
        // Each sample on its own: one bad time does not cost the node the rest of its batch.
        let mut refused = Vec::new();
        let samples: Vec<PushedSample> = samples
            .into_iter()
            .filter(|s| match check_sample(s, now_ms) {
                Ok(()) => true,
                Err(e) => {
                    refused.push(Refusal {
                        ts_unix_ms: s.raw.ts_unix_ms,
                        reason: e.to_string(),
                    });
                    false
                }
            })
            .collect();
        if samples.is_empty() {
            self.stats
                .samples_refused
                .fetch_add(refused.len() as u64, Ordering::Relaxed);
            return Err(HubError::new(
                422,
                format!(
                    "push from {node}: every sample refused ({}); first: {}",
                    refused.len(),
                    refused.first().map_or("", |r| r.reason.as_str())
                ),
            ));
        }

        let slot = self.slot(&node)?;
        let mut reply = PushReply {
            accepted: 0,
            duplicates: 0,
            refused,
        };
        {
            let mut store = lock(&slot.store)?;
            // Samples the node's store already holds, or that an earlier sample of this batch
            // has, are duplicates (the hub de-duplicates on node and sample time).
            let mut fresh: Vec<(&RawSample, Vec<SeriesPoint>)> = Vec::with_capacity(samples.len());
            for s in &samples {
                let ts = s.raw.ts_unix_ms;
                let held = store
                    .raw_samples(ts, ts, 1)
                    .map_err(|e| HubError::internal(format!("node {node}: {e}")))?;
                if !held.is_empty() || fresh.iter().any(|(r, _)| r.ts_unix_ms == ts) {
                    reply.duplicates += 1;
                    continue;
                }
                fresh.push((&s.raw, s.snapshot.series()));
            }
            // The raw samples are stored now and the points pend until the next fold:
            // acknowledged means on disk, and the fold writes many rounds' points at once. A
            // catching-up node's batch is one transaction, stored whole or not at all.
            if !fresh.is_empty() {
                let rounds: Vec<(&RawSample, &[SeriesPoint])> =
                    fresh.iter().map(|(r, p)| (*r, p.as_slice())).collect();
                let pending = store.write_deferred_many(&rounds).map_err(|e| {
                    let (first, last) = (
                        rounds[0].0.ts_unix_ms,
                        rounds[rounds.len() - 1].0.ts_unix_ms,
                    );
                    let what = format!("storing {} samples ({first}..{last} ms)", rounds.len());
                    crate::store_failed(&node, &what, &e)
                })?;
                slot.pending.store(pending, Ordering::Relaxed);
                reply.accepted += rounds.len() as u64;
            }
        }
        // The newest sample by time becomes the node's current state; it is kept in the
        // node's own store every PERSIST_EVERY_MS (not at every push).
        let newest = samples
            .into_iter()
            .max_by_key(|s| s.raw.ts_unix_ms)
            .map(Arc::new);
        let mut current = None;
        if let Some(n) = newest {
            let mut latest = lock(&slot.latest)?;
            let newer = latest
                .as_ref()
                .is_none_or(|l| l.sample.raw.ts_unix_ms <= n.raw.ts_unix_ms);
            if newer {
                *latest = Some(Latest {
                    received_ms: now_ms,
                    sample: n,
                });
            } else if let Some(l) = latest.as_mut() {
                l.received_ms = now_ms;
            }
            current = latest.as_ref().map(|l| l.sample.clone());
        }
        let last = slot.persisted_ms.load(Ordering::Relaxed);
        if now_ms - last >= crate::PERSIST_EVERY_MS || now_ms < last {
            slot.persisted_ms.store(now_ms, Ordering::Relaxed);
            if let Some(c) = current {
                crate::keep_last_push(&node, &slot, &c, now_ms)?;
            }
        }
        Ok((node, reply))
    }
}
