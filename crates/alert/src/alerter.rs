//! Routing observation changes to targets, with cooldown and dedup, into the outbox.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use infermon_detect::{Change, Kind, Observation};
use infermon_store::Store;

use crate::deliver::Delivery;
use crate::render::{render, Event};
use crate::sign::{delivery_id, DELIVERY_HEADER};
use crate::stats::{AlertStatsHandle, Counters, Shared};
use crate::target::{check_unique, AlertConfigError, AlertTarget};

/// Default cap of one target's queue; beyond it the oldest alerts are dropped (counted).
pub const DEFAULT_MAX_QUEUE: usize = 10_000;
/// The in-memory routing state keeps at most this many entries per map.
const MAX_MEMORY: usize = 10_000;

/// What the alerter did with an observation's opening, per target: remembered so its
/// resolution follows the same fate, and so a severity raise can still alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Alerted (or already queued).
    Sent(i64),
    /// Not alerted: the target's filters did not take it.
    Filtered(i64),
    /// Not alerted: within the cooldown.
    Cooled(i64),
}

impl Opening {
    fn at_ms(self) -> i64 {
        match self {
            Opening::Sent(t) | Opening::Filtered(t) | Opening::Cooled(t) => t,
        }
    }
}

/// The outcome of queuing one alert.
enum Written {
    Added,
    Duplicate,
    Failed,
}

/// What one [`Alerter::enqueue`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueSummary {
    /// Alerts written to the outbox.
    pub enqueued: usize,
    /// Alerts already in the outbox (same target, event and observation id).
    pub duplicates: usize,
    /// Alerts not sent because of a target's cooldown.
    pub suppressed: usize,
    /// Old alerts dropped to keep queues under their cap.
    pub dropped: u64,
    /// What failed (a store write, or rendering), one message each naming the target and the
    /// observation; the other alerts went on.
    pub errors: Vec<String>,
}

/// Routes observation changes to alert targets and queues them in the store's outbox. It never
/// touches the network; [`Alerter::delivery`] gives the task that does. See the crate docs.
#[derive(Debug)]
pub struct Alerter {
    targets: Arc<[Arc<Shared>]>,
    max_queue: usize,
    /// `(target, kind, subject)` → when an opening was last alerted, ms.
    last_alert: HashMap<(usize, Kind, String), i64>,
    /// `(target, observation id)` → what happened to its opening.
    openings: HashMap<(usize, String), Opening>,
}

impl Alerter {
    /// An alerter for these targets (checked again, names must be unique).
    pub fn new(targets: Vec<AlertTarget>) -> Result<Alerter, AlertConfigError> {
        for t in &targets {
            t.check()?;
        }
        check_unique(&targets)?;
        Ok(Alerter {
            targets: targets.into_iter().map(Shared::new).collect(),
            max_queue: DEFAULT_MAX_QUEUE,
            last_alert: HashMap::new(),
            openings: HashMap::new(),
        })
    }

    /// Caps each target's queue at `max_items` (default [`DEFAULT_MAX_QUEUE`], at least 1).
    pub fn with_max_queue(mut self, max_items: usize) -> Alerter {
        self.max_queue = max_items.max(1);
        self
    }

    /// The targets, in order.
    pub fn targets(&self) -> impl Iterator<Item = &AlertTarget> {
        self.targets.iter().map(|s| &s.target)
    }

    /// The counters, for `/metrics`.
    pub fn stats(&self) -> AlertStatsHandle {
        AlertStatsHandle {
            targets: Arc::clone(&self.targets),
        }
    }

    /// The delivery side (run it with [`Delivery::run`] on the async runtime); it shares the
    /// counters and is woken by every enqueue.
    pub fn delivery(&self) -> Delivery {
        Delivery::new(Arc::clone(&self.targets))
    }

    /// Seeds the cooldown and the fate of open observations after a restart, from the
    /// observations known at start (e.g. the store's recent `observations`): each one a target
    /// takes counts as alerted at its `confirmed_s` (Unix seconds), so a re-opening within the
    /// cooldown stays quiet, and an open one's resolution is sent.
    pub fn restore(&mut self, observations: &[Observation]) {
        for o in observations {
            let at_ms = (o.confirmed_s * 1000.0).round() as i64;
            for (i, sh) in self.targets.iter().enumerate() {
                let t = &sh.target;
                if t.accepts(o.kind, o.severity) {
                    let last = self
                        .last_alert
                        .entry((i, o.kind, o.subject.clone()))
                        .or_insert(at_ms);
                    *last = (*last).max(at_ms);
                }
                if o.is_open() {
                    let fate = if t.accepts(o.kind, o.severity) {
                        Opening::Sent(at_ms)
                    } else {
                        Opening::Filtered(at_ms)
                    };
                    self.openings.insert((i, o.id.clone()), fate);
                }
            }
        }
        self.bound_memory(i64::MAX);
    }

    /// Queues the alerts for these changes in `store`'s outbox, channel `alert:<target>`, and
    /// wakes the delivery task. Only local SQLite writes: it never waits on a receiver.
    ///
    /// Per target: an `Opened` change is alerted when the target takes its kind and severity
    /// and no opening of the same kind and subject was alerted within the cooldown. A
    /// `Resolved` change is alerted when `send_resolved` is set and its opening was alerted
    /// (or is unknown, e.g. after a restart, and the target takes it now). `Updated` changes
    /// are not alerted, except one that raises an opening the target's filters held back to a
    /// severity it takes: that is alerted as the opening. Each (target, event, observation id)
    /// is queued once while it waits.
    pub fn enqueue(&mut self, store: &Store, changes: &[Change], now_ms: i64) -> EnqueueSummary {
        let mut sum = EnqueueSummary::default();
        let mut touched = BTreeSet::new();
        for change in changes {
            for i in 0..self.targets.len() {
                let event = match change {
                    Change::Opened(o) => self.decide_opening(i, o, now_ms, &mut sum),
                    Change::Updated(o) => {
                        let held = matches!(
                            self.openings.get(&(i, o.id.clone())),
                            Some(Opening::Filtered(_))
                        );
                        if held && self.targets[i].target.accepts(o.kind, o.severity) {
                            self.decide_opening(i, o, now_ms, &mut sum)
                        } else {
                            None
                        }
                    }
                    Change::Resolved(o) => {
                        let t = &self.targets[i].target;
                        let sent = match self.openings.remove(&(i, o.id.clone())) {
                            Some(Opening::Sent(_)) => true,
                            Some(_) => false,
                            None => t.accepts(o.kind, o.severity),
                        };
                        (sent && t.send_resolved).then_some(Event::Resolved)
                    }
                };
                let Some(event) = event else { continue };
                let o = change.observation();
                match self.write(store, i, event, o, now_ms, &mut sum) {
                    Written::Added => {
                        touched.insert(i);
                    }
                    Written::Duplicate => {}
                    // Not queued: the next change may try again.
                    Written::Failed => continue,
                }
                if event == Event::Opened {
                    if !self.targets[i].target.cooldown.is_zero() {
                        self.last_alert
                            .insert((i, o.kind, o.subject.clone()), now_ms);
                    }
                    if o.is_open() {
                        self.openings
                            .insert((i, o.id.clone()), Opening::Sent(now_ms));
                    }
                }
            }
        }
        for i in touched {
            self.trim(store, i, &mut sum);
        }
        self.bound_memory(now_ms);
        sum
    }

    /// Whether an opening goes to target `i`; remembers why not.
    fn decide_opening(
        &mut self,
        i: usize,
        o: &Observation,
        now_ms: i64,
        sum: &mut EnqueueSummary,
    ) -> Option<Event> {
        let sh = &self.targets[i];
        let t = &sh.target;
        let key = (i, o.id.clone());
        if !t.accepts(o.kind, o.severity) {
            if o.is_open() {
                self.openings.insert(key, Opening::Filtered(now_ms));
            }
            return None;
        }
        let cooldown_ms = i64::try_from(t.cooldown.as_millis()).unwrap_or(i64::MAX);
        let cooling = self
            .last_alert
            .get(&(i, o.kind, o.subject.clone()))
            .is_some_and(|last| now_ms.saturating_sub(*last) < cooldown_ms);
        if cooling {
            if o.is_open() {
                self.openings.insert(key, Opening::Cooled(now_ms));
            }
            sum.suppressed += 1;
            Counters::add(&sh.counters.suppressed, 1);
            return None;
        }
        Some(Event::Opened)
    }

    /// Renders and queues one alert.
    fn write(
        &self,
        store: &Store,
        i: usize,
        event: Event,
        o: &Observation,
        now_ms: i64,
        sum: &mut EnqueueSummary,
    ) -> Written {
        let sh = &self.targets[i];
        let t = &sh.target;
        let dedup = format!("{}:{}:{}", t.name, event.as_str(), o.id);
        let payload = render(t.format, event, o).and_then(|mut req| {
            req.headers
                .push((DELIVERY_HEADER.into(), delivery_id(&dedup)));
            req.to_payload()
        });
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                let msg = format!(
                    "alert target \"{}\": cannot render {} alert for observation \"{}\": {e}",
                    t.name,
                    event.as_str(),
                    o.id
                );
                tracing::warn!("{msg}");
                sum.errors.push(msg);
                return Written::Failed;
            }
        };
        match store
            .outbox()
            .enqueue(&sh.channel, Some(&dedup), &payload, now_ms)
        {
            Ok(true) => {
                sum.enqueued += 1;
                Counters::add(&sh.counters.enqueued, 1);
                sh.wake.notify_one();
                Written::Added
            }
            Ok(false) => {
                sum.duplicates += 1;
                Written::Duplicate
            }
            Err(e) => {
                let msg = format!(
                    "alert target \"{}\": cannot queue {} alert for observation \"{}\": {e}",
                    t.name,
                    event.as_str(),
                    o.id
                );
                tracing::warn!("{msg}");
                sum.errors.push(msg);
                Written::Failed
            }
        }
    }

    /// Keeps target `i`'s queue under the cap and refreshes its `queued` gauge.
    fn trim(&self, store: &Store, i: usize, sum: &mut EnqueueSummary) {
        let sh = &self.targets[i];
        let outbox = store.outbox();
        match outbox.trim(&sh.channel, self.max_queue) {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    "alert target \"{}\": queue over {} alerts, dropped the {n} oldest",
                    sh.target.name,
                    self.max_queue
                );
                sum.dropped += n;
                Counters::add(&sh.counters.dropped, n);
            }
            Err(e) => sum.errors.push(format!(
                "alert target \"{}\": cannot cap its queue: {e}",
                sh.target.name
            )),
        }
        if let Ok(n) = outbox.len(&sh.channel) {
            sh.counters
                .queued
                .store(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Keeps the routing state bounded: expired cooldowns go first, then the oldest entries.
    fn bound_memory(&mut self, now_ms: i64) {
        if self.last_alert.len() > MAX_MEMORY {
            let targets = &self.targets;
            self.last_alert.retain(|(i, _, _), last| {
                let cooldown = targets[*i].target.cooldown.as_millis();
                i128::from(now_ms) - i128::from(*last) < cooldown as i128
            });
            keep_newest(&mut self.last_alert, MAX_MEMORY / 2, |v| *v);
        }
        if self.openings.len() > MAX_MEMORY {
            keep_newest(&mut self.openings, MAX_MEMORY / 2, |v| v.at_ms());
        }
    }
}

/// Keeps the `keep` entries with the largest time (ties may keep a few more).
fn keep_newest<K, V>(map: &mut HashMap<K, V>, keep: usize, at: impl Fn(&V) -> i64) {
    if map.len() <= keep {
        return;
    }
    let mut times: Vec<i64> = map.values().map(&at).collect();
    let cut = times.len() - keep;
    let (_, threshold, _) = times.select_nth_unstable(cut);
    let threshold = *threshold;
    map.retain(|_, v| at(v) >= threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_newest_keeps_the_newest() {
        let mut m: HashMap<u32, i64> = (0..100).map(|i| (i, i64::from(i))).collect();
        keep_newest(&mut m, 10, |v| *v);
        assert_eq!(m.len(), 10);
        assert!(m.values().all(|v| *v >= 90));
    }
}
