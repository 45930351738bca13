//! What a trace is known to contain: the labels written next to it as `NAME.labels.json`.

use serde::{Deserialize, Serialize};

/// Every observation kind the diagnosis layer reports, by its stable name.
pub const KINDS: [&str; 17] = [
    "thermal_throttling",
    "power_capping",
    "kv_saturation",
    "queue_backlog",
    "ttft_regression",
    "tpot_regression",
    "throughput_drop",
    "efficiency_drift",
    "swap_storm",
    "memory_pressure",
    "oom_risk",
    "model_change",
    "model_churn",
    "engine_down",
    "error_rate",
    "bandwidth_bound",
    "cpu_contention",
];

/// The symptom kinds (a figure got worse); the others are patterns that can explain one.
pub const SYMPTOMS: [&str; 4] = [
    "ttft_regression",
    "tpot_regression",
    "throughput_drop",
    "efficiency_drift",
];

/// One observation a correct diagnosis must report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    /// Its kind, one of [`KINDS`].
    pub kind: String,
    /// When the condition starts, in the trace's `t_s` (the first row that shows it).
    pub onset_s: f64,
    /// The first row that no longer shows it; `None` (`null`) when it lasts to the end.
    pub end_s: Option<f64>,
    /// For a symptom: the pattern that explains it; `None` when nothing visible does.
    pub cause: Option<String>,
}

/// The labels of one trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    /// The trace's name (its file is `NAME.csv`).
    pub name: String,
    /// What happens in it.
    pub description: String,
    /// The seed it was generated from.
    pub seed: u64,
    /// Data rows (the header not counted).
    pub rows: usize,
    /// Seconds between rows.
    pub step_s: f64,
    /// What must be reported.
    pub expect: Vec<Expect>,
    /// Kinds that may be reported without being required (symptoms of a fault, effects that
    /// are real but borderline); anything else reported is a false positive.
    pub allowed: Vec<String>,
    /// Nothing is wrong: any report outside `allowed` is a false positive.
    pub quiet: bool,
}

impl Labels {
    /// The labels as pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and options cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// `Expect` builder used by the scenarios.
pub(crate) fn expect(kind: &str, onset_s: f64, end_s: Option<f64>, cause: Option<&str>) -> Expect {
    Expect {
        kind: kind.to_string(),
        onset_s,
        end_s,
        cause: cause.map(str::to_string),
    }
}
