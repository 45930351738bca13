//! Flat, named series: the one shape in which derived figures leave the model.
//!
//! The Prometheus exposition, the store and the history API all consume [`SeriesPoint`]s
//! produced by [`crate::Snapshot::series`], so a figure has one name and one value everywhere.

use serde::{Deserialize, Serialize};

/// Prometheus metric type of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A value that goes up and down.
    Gauge,
    /// A cumulative value that only goes up (resets when its source restarts).
    Counter,
}

/// One value of one series at the time of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Metric name, `infermon_` prefix, base units, `_total` for counters.
    pub name: &'static str,
    /// Label pairs in a fixed order.
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: f64,
    /// Type.
    pub kind: MetricKind,
}

impl SeriesPoint {
    /// Canonical `k="v",k2="v2"` text of the labels (no braces), as the store keys series.
    pub fn label_key(&self) -> String {
        label_key(&self.labels)
    }
}

/// Canonical `k="v",k2="v2"` text of label pairs, in the given order, with Prometheus escaping.
pub fn label_key<K: AsRef<str>>(labels: &[(K, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k.as_ref());
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}
