//! Counters for `/metrics`, shared by the [`Alerter`](crate::Alerter) and the delivery tasks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Notify;

use crate::target::AlertTarget;

/// One target's counters (all since start, except `queued`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetStats {
    /// The target's name.
    pub name: String,
    /// Alerts written to the outbox.
    pub enqueued: u64,
    /// Alerts the receiver took (2xx).
    pub delivered: u64,
    /// Attempts that failed (error, timeout or non-2xx); each retry counts.
    pub failed_attempts: u64,
    /// Alerts dropped because the queue was full (oldest first).
    pub dropped: u64,
    /// Alerts given up on: refused by the receiver (4xx other than 408/425/429, or a
    /// redirect) on every one of their attempts, or unreadable in the outbox.
    pub rejected: u64,
    /// Alerts not sent because of the cooldown.
    pub suppressed: u64,
    /// Alerts waiting in the outbox (as last counted).
    pub queued: u64,
}

/// Every target's counters, from [`AlertStatsHandle::snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertStats {
    /// One entry per target, in configuration order.
    pub targets: Vec<TargetStats>,
}

impl AlertStats {
    /// The counters of the target called `name`.
    pub fn target(&self, name: &str) -> Option<&TargetStats> {
        self.targets.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) enqueued: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) suppressed: AtomicU64,
    pub(crate) queued: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the alerter and the delivery task of one target share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) target: AlertTarget,
    pub(crate) channel: String,
    pub(crate) counters: Counters,
    /// Woken when an alert is enqueued.
    pub(crate) wake: Notify,
}

impl Shared {
    pub(crate) fn new(target: AlertTarget) -> Arc<Shared> {
        Arc::new(Shared {
            channel: target.channel(),
            target,
            counters: Counters::default(),
            wake: Notify::new(),
        })
    }
}

/// A cheap, cloneable view of the counters, for the API's `/metrics`.
#[derive(Debug, Clone)]
pub struct AlertStatsHandle {
    pub(crate) targets: Arc<[Arc<Shared>]>,
}

impl AlertStatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> AlertStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AlertStats {
            targets: self
                .targets
                .iter()
                .map(|s| {
                    let c = &s.counters;
                    TargetStats {
                        name: s.target.name.clone(),
                        enqueued: get(&c.enqueued),
                        delivered: get(&c.delivered),
                        failed_attempts: get(&c.failed_attempts),
                        dropped: get(&c.dropped),
                        rejected: get(&c.rejected),
                        suppressed: get(&c.suppressed),
                        queued: get(&c.queued),
                    }
                })
                .collect(),
        }
    }
}
