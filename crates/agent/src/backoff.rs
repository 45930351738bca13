//! Adaptive sampling interval: the base interval while anything is active; doubling towards
//! the maximum while the node stays idle; back to the base at the first active sample.

use std::time::Duration;

use infermon_model::Snapshot;

/// GPU busy share at or above which the node counts as active.
pub const GPU_ACTIVE_RATIO: f64 = 0.10;

/// Interval schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `base`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            current: base,
        }
    }

    /// The interval in force.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// The interval before the next sample, given whether this one was active.
    pub fn next(&mut self, active: bool) -> Duration {
        self.current = if active {
            self.base
        } else {
            (self.current * 2).min(self.max)
        };
        self.current
    }
}

/// Whether a snapshot shows inference activity: an engine running or queueing requests, busy
/// slots, tokens generated in the window, a counter reset (a restart), or a busy GPU.
pub fn is_active(s: &Snapshot) -> bool {
    let engine = s.engines.iter().any(|e| {
        e.requests_running.unwrap_or(0.0) > 0.0
            || e.requests_waiting.unwrap_or(0.0) > 0.0
            || e.slots_processing.unwrap_or(0) > 0
            || e.generation_tokens_in_window.unwrap_or(0.0) > 0.0
            || e.prompt_throughput_tokens_per_second.unwrap_or(0.0) > 0.0
            || e.counters_reset
    });
    let gpu = s
        .gpus
        .iter()
        .any(|g| g.utilization_ratio.unwrap_or(0.0) >= GPU_ACTIVE_RATIO);
    engine || gpu
}

#[cfg(test)]
mod tests {
    use super::*;
    use infermon_model::testing::sample_with_engine;
    use infermon_model::{derive, DeriveSettings};

    #[test]
    fn doubles_to_max_and_snaps_back() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(20));
        let seq: Vec<u64> = (0..5).map(|_| b.next(false).as_secs()).collect();
        assert_eq!(seq, vec![4, 8, 16, 20, 20]);
        assert_eq!(b.next(true).as_secs(), 2);
    }

    #[test]
    fn activity_from_tokens_in_window() {
        let a = sample_with_engine(0, 100.0, 1.0);
        let idle = sample_with_engine(2000, 100.0, 1.0);
        let busy = sample_with_engine(4000, 150.0, 1.5);
        let s = DeriveSettings::default();
        assert!(!is_active(&derive(Some(&a), &idle, &s)));
        assert!(is_active(&derive(Some(&idle), &busy, &s)));
    }
}
