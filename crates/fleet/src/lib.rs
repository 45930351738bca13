//! Fleet derivations over the latest snapshot of every node: whether a node is up, stale or
//! down, the leaderboard by penalized WES, where the next request for a model should go, and
//! which nodes are far less efficient than the fleet for the same model.
//!
//! [`push`] holds the wire types of the push protocol between an agent and the hub, and the
//! checks on a batch.
//!
//! Pure: no I/O and no clock. The caller (the hub) passes each node's last snapshot, when it
//! was last heard from and its open observations, and the time to judge at. Every figure used
//! here was computed by the node's own agent (`infermon_model::derive`); this crate only
//! compares nodes, so a node that could not measure something is listed with the reason,
//! never ranked or scored as zero.

pub mod alerts;
mod leaderboard;
mod outlier;
pub mod push;
mod route;
#[cfg(test)]
mod tests;

pub use leaderboard::{leaderboard, no_wes_reason, Leaderboard, Ranked, Unranked};
pub use outlier::{fleet_outliers, Outlier};
pub use route::{route, Candidate, NoRoute, RouteChoice, RouteSettings};

use infermon_detect::Observation;
use infermon_model::Snapshot;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What the fleet knows of one node.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// The node's name (a DNS label, checked by the hub when it registers).
    pub name: String,
    /// When the hub last received a sample from it, ms since the Unix epoch.
    pub last_seen_unix_ms: i64,
    /// The node's sampling interval, seconds (from its last snapshot).
    pub interval_seconds: f64,
    /// Its latest snapshot (shared with the push it came in: a fleet view copies no snapshot).
    pub snapshot: Arc<Snapshot>,
    /// Its open observations.
    pub observations: Vec<Observation>,
    /// Where it serves the OpenAI/Ollama APIs, as it advertised (`--advertise-url`).
    pub endpoint: Option<String>,
}

/// Whether a node is reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Heard from within three sampling intervals (at least 10 s).
    Up,
    /// Late, but heard from within the last minute: its figures are shown, never routed to.
    Stale,
    /// Not heard from for over a minute.
    Down,
}

/// Seconds after which a node is down whatever its interval.
pub const DOWN_AFTER_S: f64 = 60.0;

impl Node {
    /// Seconds since the node was last heard from (0 when its clock is ahead of ours).
    pub fn age_s(&self, now_unix_ms: i64) -> f64 {
        (now_unix_ms - self.last_seen_unix_ms).max(0) as f64 / 1000.0
    }

    /// Up, stale or down at `now_unix_ms`.
    pub fn liveness(&self, now_unix_ms: i64) -> Liveness {
        let age = self.age_s(now_unix_ms);
        let up_within = (3.0 * self.interval_seconds).max(10.0);
        if age <= up_within {
            Liveness::Up
        } else if age <= DOWN_AFTER_S {
            Liveness::Stale
        } else {
            Liveness::Down
        }
    }

    /// Whether any engine of this node serves `model` (loaded or offered), and whether it is
    /// loaded now. Names are compared exactly: a router's model name is what clients send.
    pub fn serves(&self, model: &str) -> Option<Serving> {
        let mut offered = false;
        for e in self.snapshot.engines.iter().filter(|e| e.up) {
            if e.model == model {
                return Some(Serving::Loaded);
            }
            for m in e.models.iter().flatten() {
                if m.raw.name == model {
                    if is_loaded(&m.raw.state) {
                        return Some(Serving::Loaded);
                    }
                    offered = true;
                }
            }
        }
        offered.then_some(Serving::Cold)
    }
}

/// Whether a model is in memory on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Serving {
    /// Loaded: the next request starts at once.
    Loaded,
    /// Offered by a router (llama-swap, Ollama) but not in memory: a load comes first.
    Cold,
}

/// Model states engines report for a model in memory (Ollama and LM Studio `loaded`,
/// llama-swap `ready`).
fn is_loaded(state: &str) -> bool {
    matches!(state, "loaded" | "ready")
}
