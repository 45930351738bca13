//! The push protocol between an agent and the hub: what a node sends, what the hub answers,
//! and the checks the hub makes on every batch before it stores anything.
//!
//! - `POST /api/v1/hub/join` with `Authorization: Bearer JOIN_TOKEN` and a [`JoinRequest`]:
//!   the hub registers the node and answers a [`JoinReply`] with the node's own token. A name
//!   that is already registered is refused (409): a node can never take another's name.
//! - `POST /api/v1/hub/push` with `Authorization: Bearer NODE_TOKEN` and a JSON array of
//!   [`PushedSample`] (snappy block format when `Content-Encoding: snappy`): the hub stores
//!   each sample it does not hold yet (deduplicated on the node and the sample's time) and
//!   answers a [`PushReply`]. The node is the token's, never a name in the body.
//!
//! The wire types are the model's own serialised types: a raw sample, its snapshot and the
//! node's open observations, exactly as the agent's API serves them.

use infermon_detect::Observation;
use infermon_model::raw::RawSample;
use infermon_model::Snapshot;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The join request's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The node's name: a DNS label.
    pub node: String,
}

/// The hub's answer to a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinReply {
    /// The registered name.
    pub node: String,
    /// The node's token: it authenticates every push of this node and nothing else.
    pub token: String,
}

/// One sampling round of a node as pushed to the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushedSample {
    /// What the node read (the hub stores it like the agent does).
    pub raw: RawSample,
    /// What the node derived from it (the hub ranks and routes on it, and stores its series).
    /// Shared: the hub's fleet views hold it without copying (the wire form is the snapshot).
    pub snapshot: Arc<Snapshot>,
    /// The node's observations open at that time.
    #[serde(default)]
    pub observations: Vec<Observation>,
    /// Where the node serves the OpenAI/Ollama APIs for the hub's routing proxy (its
    /// `--advertise-url`), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The hub's answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushReply {
    /// Samples stored now.
    pub accepted: u64,
    /// Samples the hub already held (a batch sent again after a lost answer).
    pub duplicates: u64,
    /// Samples refused one by one (the rest of the batch is stored): sending them again
    /// cannot help, so the node drops and counts them.
    #[serde(default)]
    pub refused: Vec<Refusal>,
}

/// One sample the hub refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The sample's time, ms since the Unix epoch.
    pub ts_unix_ms: i64,
    /// Why, naming the value and what was expected.
    pub reason: String,
}

/// Samples in one push at most.
pub const MAX_BATCH_SAMPLES: usize = 1000;
/// How far ahead of the hub's clock a sample's time may be.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// Why a batch ([`BatchError::Empty`], [`BatchError::TooMany`]: nothing of it is stored) or
/// one of its samples (the others are stored) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// No sample in the batch.
    Empty,
    /// More than [`MAX_BATCH_SAMPLES`].
    TooMany(usize),
    /// A sample's time is more than [`MAX_FUTURE_MS`] after the hub's clock.
    Future {
        /// The sample's time, ms since the Unix epoch.
        ts_unix_ms: i64,
        /// The hub's time, same clock.
        now_unix_ms: i64,
    },
    /// The raw sample and its snapshot carry different times.
    Mismatch {
        /// The raw sample's time.
        raw_ts_unix_ms: i64,
        /// The snapshot's time.
        snapshot_ts_unix_ms: i64,
    },
    /// The advertised endpoint is not a base URL.
    Endpoint {
        /// What was sent (cut to 64 characters).
        given: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Empty => f.write_str("the batch holds no sample: expected 1 or more"),
            BatchError::TooMany(n) => write!(
                f,
                "the batch holds {n} samples: expected at most {MAX_BATCH_SAMPLES}"
            ),
            BatchError::Future {
                ts_unix_ms,
                now_unix_ms,
            } => write!(
                f,
                "sample time {ts_unix_ms} ms is {:.1} s ahead of the hub's clock ({now_unix_ms} \
                 ms): expected at most {} s ahead; check the node's clock",
                (ts_unix_ms - now_unix_ms) as f64 / 1000.0,
                MAX_FUTURE_MS / 1000
            ),
            BatchError::Endpoint { given, why } => write!(
                f,
                "endpoint \"{given}\" is {why}: expected a base URL such as \
                 http://10.0.0.5:8081"
            ),
            BatchError::Mismatch {
                raw_ts_unix_ms,
                snapshot_ts_unix_ms,
            } => write!(
                f,
                "raw sample time {raw_ts_unix_ms} ms differs from its snapshot's \
                 {snapshot_ts_unix_ms} ms: expected one sampling round per entry"
            ),
        }
    }
}

impl std::error::Error for BatchError {}

/// Checks a decoded batch's size; its samples are checked one by one with [`check_sample`].
pub fn check_batch(samples: &[PushedSample]) -> Result<(), BatchError> {
    if samples.is_empty() {
        return Err(BatchError::Empty);
    }
    if samples.len() > MAX_BATCH_SAMPLES {
        return Err(BatchError::TooMany(samples.len()));
    }
    Ok(())
}

/// Checks one sample against the hub's clock, and its raw sample against its snapshot.
pub fn check_sample(s: &PushedSample, now_unix_ms: i64) -> Result<(), BatchError> {
    if s.raw.ts_unix_ms != s.snapshot.ts_unix_ms {
        return Err(BatchError::Mismatch {
            raw_ts_unix_ms: s.raw.ts_unix_ms,
            snapshot_ts_unix_ms: s.snapshot.ts_unix_ms,
        });
    }
    if let Some(e) = &s.endpoint {
        if let Some(why) = infermon_model::names::endpoint_problem(e) {
            return Err(BatchError::Endpoint {
                given: e.chars().take(64).collect(),
                why,
            });
        }
    }
    if s.raw.ts_unix_ms > now_unix_ms.saturating_add(MAX_FUTURE_MS) {
        return Err(BatchError::Future {
            ts_unix_ms: s.raw.ts_unix_ms,
            now_unix_ms,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use infermon_model::{derive, testing, DeriveSettings};

    const NOW: i64 = 1_800_000_000_000;

    fn sample(ts: i64) -> PushedSample {
        let mut raw = testing::sample_with_engine(0, 0.0, 0.0);
        raw.ts_unix_ms = ts;
        let snapshot = derive(None, &raw, &DeriveSettings::default()).into();
        PushedSample {
            raw,
            snapshot,
            observations: Vec::new(),
            endpoint: None,
        }
    }

    #[test]
    fn a_batch_round_trips_through_json() {
        let b = vec![sample(NOW - 2000), sample(NOW)];
        let text = serde_json::to_string(&b).unwrap();
        let back: Vec<PushedSample> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, b);
        assert_eq!(check_batch(&back), Ok(()));
        assert!(back.iter().all(|s| check_sample(s, NOW).is_ok()));
    }

    #[test]
    fn bad_batches_are_named() {
        assert_eq!(check_batch(&[]), Err(BatchError::Empty));
        let many = vec![sample(NOW); MAX_BATCH_SAMPLES + 1];
        assert_eq!(
            check_batch(&many),
            Err(BatchError::TooMany(MAX_BATCH_SAMPLES + 1))
        );
        // Five minutes ahead passes, a millisecond more does not.
        assert_eq!(check_sample(&sample(NOW + MAX_FUTURE_MS), NOW), Ok(()));
        let e = check_sample(&sample(NOW + MAX_FUTURE_MS + 1), NOW).unwrap_err();
        assert!(e.to_string().contains("300.0 s ahead"), "{e}");
        let mut m = sample(NOW);
        Arc::make_mut(&mut m.snapshot).ts_unix_ms -= 2000;
        assert!(matches!(
            check_sample(&m, NOW),
            Err(BatchError::Mismatch { .. })
        ));
        let mut e = sample(NOW);
        e.endpoint = Some("http://10.0.0.5:8081".into());
        assert_eq!(check_sample(&e, NOW), Ok(()));
        e.endpoint = Some("http://10.0.0.5:8081/v1?x".into());
        let why = check_sample(&e, NOW).unwrap_err().to_string();
        assert!(
            why.contains("\"http://10.0.0.5:8081/v1?x\" is more than"),
            "{why}"
        );
    }

    #[test]
    fn a_sample_without_an_endpoint_reads_as_before() {
        let old = serde_json::to_value(sample(NOW)).unwrap();
        assert!(old.get("endpoint").is_none());
        let back: PushedSample = serde_json::from_value(old).unwrap();
        assert_eq!(back.endpoint, None);
    }
}
