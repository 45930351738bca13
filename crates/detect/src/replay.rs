//! Runs the detector over a whole trace: what `infermon replay` and the evaluation call.

use std::collections::BTreeMap;

use crate::detector::Detector;
use crate::observation::{Kind, Observation};
use crate::text::Clock;
use crate::trace::Trace;

/// Every observation a trace produced (each in its last state, in order of onset), and the
/// kinds that were switched off.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Observations, ordered by start then kind.
    pub observations: Vec<Observation>,
    /// Kinds switched off, with the reason.
    pub disabled: Vec<(Kind, String)>,
    /// Frames replayed.
    pub frames: usize,
}

/// Replays a trace through a cold detector, exactly as the agent steps it.
pub fn replay(trace: &Trace) -> Replay {
    let mut d = Detector::new(Clock::Trace);
    for (k, why) in &trace.disabled {
        d.disable(*k, why.clone());
    }
    let mut by_id: BTreeMap<String, Observation> = BTreeMap::new();
    for f in &trace.frames {
        for c in d.step(f) {
            let o = c.observation();
            by_id.insert(o.id.clone(), o.clone());
        }
    }
    let mut observations: Vec<Observation> = by_id.into_values().collect();
    observations.sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then(a.kind.cmp(&b.kind)));
    Replay {
        observations,
        disabled: trace.disabled.clone(),
        frames: trace.frames.len(),
    }
}
