//! Model churn: loads and evictions per engine over a window (llama-swap, Ollama events).

use std::collections::{BTreeMap, VecDeque};

use crate::frame::{EngineFrame, Frame};
use crate::observation::{Evidence, Kind};
use crate::patterns::{engine_subject, fig, PatternState, Verdict};

/// How long model loads are counted for churn.
pub(crate) const CHURN_WINDOW_S: f64 = 600.0;
/// Loads in the window that make churn.
pub(crate) const CHURN_LOADS: usize = 4;

/// One engine's model loads over the churn window.
#[derive(Debug, Default)]
pub(crate) struct Churn {
    /// Load starts: (time, model).
    pub loads: VecDeque<(f64, String)>,
    /// When each resident model was loaded.
    pub loaded_at: BTreeMap<String, f64>,
    /// Models evicted soon after they loaded: (time, model).
    pub short_evictions: VecDeque<(f64, String)>,
}

/// A model load begins (`loaded`/`ready` count too when no start was seen for that model).
fn is_load_start(kind: &str) -> bool {
    matches!(kind, "starting" | "load" | "loading" | "swap")
}

fn is_loaded(kind: &str) -> bool {
    matches!(kind, "loaded" | "ready")
}

fn is_unload(kind: &str) -> bool {
    matches!(kind, "unloaded" | "stopped" | "unload")
}

/// A model evicted less than this long after it was loaded thrashes.
pub(crate) const SHORT_RESIDENCY_S: f64 = 300.0;

/// Churn: within [`CHURN_WINDOW_S`], at least [`CHURN_LOADS`] model loads, or two loads with
/// a model evicted after less than [`SHORT_RESIDENCY_S`] resident (models evicting each
/// other). A user switching models now and then loads one at a time and keeps it.
pub(crate) fn churn(
    t: f64,
    e: &EngineFrame,
    f: &Frame,
    st: &mut PatternState,
    out: &mut Vec<Verdict>,
) {
    let mut events: Vec<(&str, &str)> = Vec::new();
    for fr in f.engines.iter().filter(|x| x.engine == e.engine) {
        events.extend(
            fr.events
                .iter()
                .map(|ev| (ev.kind.as_str(), ev.model.as_str())),
        );
    }
    let engine = st.churn.entry(e.engine.clone()).or_default();
    for (kind, model) in events {
        let recent_start = engine
            .loads
            .iter()
            .any(|(at, m)| m == model && t - at <= 120.0);
        if is_load_start(kind) || (is_loaded(kind) && !recent_start) {
            engine.loads.push_back((t, model.to_string()));
        }
        if is_loaded(kind) || is_load_start(kind) {
            engine.loaded_at.entry(model.to_string()).or_insert(t);
        }
        if is_unload(kind) {
            if let Some(since) = engine.loaded_at.remove(model) {
                if t - since < SHORT_RESIDENCY_S {
                    engine.short_evictions.push_back((t, model.to_string()));
                }
            }
        }
    }
    while engine
        .loads
        .front()
        .is_some_and(|(at, _)| t - at > CHURN_WINDOW_S)
    {
        engine.loads.pop_front();
    }
    while engine
        .short_evictions
        .front()
        .is_some_and(|(at, _)| t - at > CHURN_WINDOW_S)
    {
        engine.short_evictions.pop_front();
    }
    let q = &engine.loads;
    let mut models: Vec<&str> = q.iter().map(|(_, m)| m.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    let thrash = q.len() >= 2 && !engine.short_evictions.is_empty();
    let active = if (q.len() >= CHURN_LOADS || thrash) && models.len() >= 2 {
        Some(true)
    } else if q.len() < 2 {
        Some(false)
    } else {
        None
    };
    let mut v = Verdict::new(Kind::ModelChurn, engine_subject(&e.engine), active);
    if active == Some(true) {
        v.start_s = q.front().map(|x| x.0);
        v.evidence = Evidence {
            figures: vec![
                fig(
                    "model_loads",
                    Some(CHURN_LOADS as f64),
                    Some(q.len() as f64),
                ),
                fig(
                    "short_lived_evictions",
                    None,
                    Some(engine.short_evictions.len() as f64),
                ),
            ],
            window_s: CHURN_WINDOW_S,
            context: Some(format!("models: {}", models.join(", "))),
        };
        v.action = format!(
            "{} model loads in 10 minutes on {} ({}), models evicted minutes after they \
             loaded: they evict each other, and every request that waits for a load pays \
             seconds. Keep the hot models resident (fewer models per group, longer TTL), or \
             give them memory to coexist.",
            q.len(),
            e.engine,
            models.join(", ")
        );
    }
    out.push(v);
}
