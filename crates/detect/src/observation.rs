//! What the detectors say: observations with their kind, onset, evidence, cause and action.

use serde::{Deserialize, Serialize};

/// A named condition. The names are stable: the API, `/metrics`, replay and alerts all use
/// [`Kind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Clocks cut for temperature (the device's own throttle signal, or clocks fallen under
    /// load while hot).
    ThermalThrottling,
    /// Clocks held back by a power limit.
    PowerCapping,
    /// KV cache (nearly) full.
    KvSaturation,
    /// Requests waiting and the queue not draining.
    QueueBacklog,
    /// Median time to first token above its baseline at the same load.
    TtftRegression,
    /// Median time per output token above its baseline at the same load.
    TpotRegression,
    /// Generation throughput below its baseline at the same load.
    ThroughputDrop,
    /// Penalized WES below its own baseline at the same load.
    EfficiencyDrift,
    /// Sustained swap-in.
    SwapStorm,
    /// Little memory available, or memory pressure stalls.
    MemoryPressure,
    /// A loaded or loading model's estimated memory exceeds what is left.
    OomRisk,
    /// An engine started serving another model.
    ModelChange,
    /// Models loaded and unloaded over and over.
    ModelChurn,
    /// An engine stopped answering.
    EngineDown,
    /// Too many requests failed.
    ErrorRate,
    /// Decode near the memory-bandwidth roofline (informational).
    BandwidthBound,
    /// Processes other than the engines took the CPU.
    CpuContention,
    /// A node stopped pushing to the hub (the hub's, never an agent's).
    NodeDown,
    /// A node's penalized WES well below its peers' for the same model (the hub's).
    FleetOutlier,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 19] = [
        Kind::ThermalThrottling,
        Kind::PowerCapping,
        Kind::KvSaturation,
        Kind::QueueBacklog,
        Kind::TtftRegression,
        Kind::TpotRegression,
        Kind::ThroughputDrop,
        Kind::EfficiencyDrift,
        Kind::SwapStorm,
        Kind::MemoryPressure,
        Kind::OomRisk,
        Kind::ModelChange,
        Kind::ModelChurn,
        Kind::EngineDown,
        Kind::ErrorRate,
        Kind::BandwidthBound,
        Kind::CpuContention,
        Kind::NodeDown,
        Kind::FleetOutlier,
    ];

    /// The stable name, e.g. `ttft_regression`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ThermalThrottling => "thermal_throttling",
            Kind::PowerCapping => "power_capping",
            Kind::KvSaturation => "kv_saturation",
            Kind::QueueBacklog => "queue_backlog",
            Kind::TtftRegression => "ttft_regression",
            Kind::TpotRegression => "tpot_regression",
            Kind::ThroughputDrop => "throughput_drop",
            Kind::EfficiencyDrift => "efficiency_drift",
            Kind::SwapStorm => "swap_storm",
            Kind::MemoryPressure => "memory_pressure",
            Kind::OomRisk => "oom_risk",
            Kind::ModelChange => "model_change",
            Kind::ModelChurn => "model_churn",
            Kind::EngineDown => "engine_down",
            Kind::ErrorRate => "error_rate",
            Kind::BandwidthBound => "bandwidth_bound",
            Kind::CpuContention => "cpu_contention",
            Kind::NodeDown => "node_down",
            Kind::FleetOutlier => "fleet_outlier",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A symptom (a figure got worse) rather than a pattern that explains one.
    pub fn is_symptom(self) -> bool {
        matches!(
            self,
            Kind::TtftRegression
                | Kind::TpotRegression
                | Kind::ThroughputDrop
                | Kind::EfficiencyDrift
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much it matters, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is wrong (model change, bandwidth bound).
    Info,
    /// Something is degraded.
    Warning,
    /// Something is failing or about to.
    Critical,
}

impl Severity {
    /// `info`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Parses `info`, `warning` or `critical`.
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One figure of the evidence: what it is now against what is normal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What it is, e.g. `tpot_p50_ms`, `gpu_clock_mhz`, `swap_in_pages_per_s`.
    pub name: String,
    /// Normal value (the learned baseline, or the threshold for a pattern).
    pub baseline: Option<f64>,
    /// Value now (median since the onset for a drift).
    pub now: Option<f64>,
}

/// The figures behind an observation, and the context they were compared in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// The figures.
    pub figures: Vec<Figure>,
    /// Seconds of data the verdict rests on.
    pub window_s: f64,
    /// The comparison's context, e.g. `requests_running=2`.
    pub context: Option<String>,
}

/// The pattern observation that explains a symptom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// Its subject.
    pub subject: String,
}

/// A named condition with its onset, evidence, likely cause and the action to take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Stable id: `KIND:SUBJECT:START_MS`.
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// Estimated change point, seconds (Unix seconds in the agent, the trace's `t_s` in
    /// replay) — not the time it was confirmed.
    pub start_s: f64,
    /// When it was confirmed, same clock.
    pub confirmed_s: f64,
    /// When it ended; `None` while open.
    pub end_s: Option<f64>,
    /// How much it matters.
    pub severity: Severity,
    /// What it concerns: `node`, `gpu:ID`, `engine:URL` or `model:NAME@URL`.
    pub subject: String,
    /// The figures.
    pub evidence: Evidence,
    /// For a symptom: the pattern observation that explains it, if any.
    pub cause: Option<Cause>,
    /// What to do, in plain English, naming the culprit where the data can.
    pub action: String,
}

impl Observation {
    /// Builds the id from kind, subject and start.
    pub fn make_id(kind: Kind, subject: &str, start_s: f64) -> String {
        format!(
            "{}:{}:{}",
            kind.as_str(),
            subject,
            (start_s * 1000.0).round() as i64
        )
    }

    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.end_s.is_none()
    }
}

/// What one detector step changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", content = "observation", rename_all = "snake_case")]
pub enum Change {
    /// A new observation (open, or opened and closed in the same step for instant kinds like
    /// `model_change`).
    Opened(Observation),
    /// An open observation's evidence, severity, cause or action changed.
    Updated(Observation),
    /// An observation ended (`end_s` is set).
    Resolved(Observation),
}

impl Change {
    /// The observation it carries.
    pub fn observation(&self) -> &Observation {
        match self {
            Change::Opened(o) | Change::Updated(o) | Change::Resolved(o) => o,
        }
    }

    /// `opened`, `updated` or `resolved`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Change::Opened(_) => "opened",
            Change::Updated(_) => "updated",
            Change::Resolved(_) => "resolved",
        }
    }
}

/// `infermon_observation_active{kind,subject,severity} 1` for each open observation: how
/// `/metrics` (and so Prometheus alerting) sees diagnosis. Ended ones are absent, not 0.
pub fn active_series(open: &[Observation]) -> Vec<infermon_model::series::SeriesPoint> {
    open.iter()
        .filter(|o| o.is_open())
        .map(|o| infermon_model::series::SeriesPoint {
            name: "infermon_observation_active",
            labels: vec![
                ("kind", o.kind.as_str().to_string()),
                ("subject", o.subject.clone()),
                ("severity", o.severity.as_str().to_string()),
            ],
            value: 1.0,
            kind: infermon_model::series::MetricKind::Gauge,
        })
        .collect()
}
