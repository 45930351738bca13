//! Request counters shared by every connection, and the per-request tracker that settles them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Counters of the generation requests a mock server has seen (the four generation endpoints;
/// `/health`, `/metrics` and the like are not counted).
///
/// Every request counted in `requests` ends in exactly one of `completed`, `cancelled` or
/// `aborted`; until then it is in flight. Share one `Stats` between [`crate::serve_with_stats`]
/// and the caller to read it in-process, or read it over HTTP at `GET /mock/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    aborted: AtomicU64,
    tokens: AtomicU64,
}

impl Stats {
    /// A point-in-time copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        // Read the outcomes before `requests` so that `in_flight` does not go negative.
        let completed = self.completed.load(Ordering::Acquire);
        let cancelled = self.cancelled.load(Ordering::Acquire);
        let aborted = self.aborted.load(Ordering::Acquire);
        let tokens = self.tokens.load(Ordering::Acquire);
        let requests = self.requests.load(Ordering::Acquire);
        StatsSnapshot {
            requests,
            completed,
            cancelled,
            aborted,
            in_flight: requests.saturating_sub(completed + cancelled + aborted),
            tokens,
        }
    }
}

/// The counters of [`Stats`] at one moment; also the JSON body of `GET /mock/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Generation requests received.
    pub requests: u64,
    /// Requests whose whole response (including error responses such as `status:CODE`
    /// faults) was handed to the connection.
    pub completed: u64,
    /// Requests whose client went away first: the connection closed while the response was
    /// pending (`hang`, `slow-headers`, a not-yet-due non-stream reply) or mid-stream.
    pub cancelled: u64,
    /// Streams the mock cut off on purpose (`die-after:K`).
    pub aborted: u64,
    /// `requests` minus the three outcomes.
    pub in_flight: u64,
    /// Completion tokens sent, over all requests.
    pub tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    Completed,
    Aborted,
}

/// Counts one request in on creation and settles its outcome when dropped: a tracker
/// dropped while still pending means the client went away.
#[derive(Debug)]
pub(crate) struct Tracker {
    stats: Arc<Stats>,
    outcome: Outcome,
    tokens: u64,
}

impl Tracker {
    pub(crate) fn new(stats: Arc<Stats>) -> Self {
        stats.requests.fetch_add(1, Ordering::AcqRel);
        Tracker {
            stats,
            outcome: Outcome::Pending,
            tokens: 0,
        }
    }

    pub(crate) fn complete(&mut self) {
        if self.outcome == Outcome::Pending {
            self.outcome = Outcome::Completed;
        }
    }

    pub(crate) fn abort(&mut self) {
        if self.outcome == Outcome::Pending {
            self.outcome = Outcome::Aborted;
        }
    }

    pub(crate) fn add_tokens(&mut self, n: u64) {
        self.tokens += n;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if self.tokens > 0 {
            self.stats.tokens.fetch_add(self.tokens, Ordering::AcqRel);
        }
        let counter = match self.outcome {
            Outcome::Pending => &self.stats.cancelled,
            Outcome::Completed => &self.stats.completed,
            Outcome::Aborted => &self.stats.aborted,
        };
        counter.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_settled_on_drop() {
        let stats = Arc::new(Stats::default());
        let mut a = Tracker::new(stats.clone());
        a.add_tokens(3);
        a.complete();
        let b = Tracker::new(stats.clone());
        let mut c = Tracker::new(stats.clone());
        c.abort();
        c.complete(); // an aborted request stays aborted
        let mid = stats.snapshot();
        assert_eq!(mid.requests, 3);
        assert_eq!(mid.in_flight, 3);
        drop((a, b, c));
        let s = stats.snapshot();
        assert_eq!(
            s,
            StatsSnapshot {
                requests: 3,
                completed: 1,
                cancelled: 1,
                aborted: 1,
                in_flight: 0,
                tokens: 3
            }
        );
    }
}
