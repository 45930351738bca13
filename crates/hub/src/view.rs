//! What the hub serves: the node table, the leaderboard, routing and the fleet's
//! observations. Every figure is the node's own (derived by its agent); the rankings and
//! scores are `infermon-fleet`'s.

use infermon_detect::Observation;
use infermon_fleet::alerts::{fleet_observations, node_down_action, outlier_action};
use infermon_fleet::{
    fleet_outliers, leaderboard, no_wes_reason, route, Leaderboard, Liveness, NoRoute, Node,
    RouteChoice, RouteSettings,
};
use infermon_model::thermal::Thermal;
use serde::Serialize;

use crate::{Hub, HubError};

/// One engine of a node, as the node table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EngineView {
    /// Engine kind (`llama_cpp`, `vllm`, …).
    pub kind: String,
    /// Its base URL on the node.
    pub instance: String,
    /// The model it serves.
    pub model: String,
    /// Whether it answered.
    pub up: bool,
    /// Generated tokens per second.
    pub tokens_per_second: Option<f64>,
}

/// One node in the fleet table.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// Its name.
    pub name: String,
    /// Up, stale or down.
    pub liveness: Liveness,
    /// When the hub last stored a push of it (`None`: joined, never pushed).
    pub last_seen_unix_ms: Option<i64>,
    /// Seconds since then.
    pub age_s: Option<f64>,
    /// Time of its newest sample (its own clock).
    pub sample_ts_unix_ms: Option<i64>,
    /// Whether its token was revoked.
    pub revoked: bool,
    /// CPUs.
    pub cpu_count: Option<u32>,
    /// Memory, bytes.
    pub memory_total_bytes: Option<u64>,
    /// GPU names (or ids where the name is unknown).
    pub gpus: Vec<String>,
    /// Its engines.
    pub engines: Vec<EngineView>,
    /// Generated tokens per second over all engines.
    pub tokens_per_second: Option<f64>,
    /// Node power, watts.
    pub power_watts: Option<f64>,
    /// Penalized WES.
    pub wes_penalized: Option<f64>,
    /// Raw WES.
    pub wes_raw: Option<f64>,
    /// Why there is no WES.
    pub wes_unavailable: Option<String>,
    /// Worst thermal state and its reasons.
    pub thermal: Option<Thermal>,
    /// Its open observations.
    pub observations: Vec<Observation>,
    /// Where it serves the OpenAI/Ollama APIs, as it advertised (`--advertise-url`).
    pub endpoint: Option<String>,
}

/// An observation of the fleet: a node's own, or one the hub makes (`node_down`,
/// `fleet_outlier`).
#[derive(Debug, Clone, Serialize)]
pub struct FleetObservation {
    /// The node it concerns.
    pub node: String,
    /// `node_down`, `fleet_outlier`, or the node's own observation kind.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What it is, with the figures.
    pub summary: String,
    /// What to do.
    pub action: String,
    /// The node's own observation, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
}

fn view(n: &Node, now_ms: i64, revoked: bool) -> NodeView {
    let s = &n.snapshot;
    let (wes_penalized, wes_raw, wes_unavailable) = match &s.efficiency.wes {
        Ok(w) => (Some(w.penalized), Some(w.raw), None),
        Err(why) => (
            None,
            None,
            Some(format!("WES unavailable: {}", no_wes_reason(why))),
        ),
    };
    NodeView {
        name: n.name.clone(),
        liveness: n.liveness(now_ms),
        last_seen_unix_ms: Some(n.last_seen_unix_ms),
        age_s: Some(n.age_s(now_ms)),
        sample_ts_unix_ms: Some(s.ts_unix_ms),
        revoked,
        cpu_count: s.host.cpu_count,
        memory_total_bytes: s.host.memory_total_bytes,
        gpus: s
            .gpus
            .iter()
            .map(|g| g.name.clone().unwrap_or_else(|| g.id.clone()))
            .collect(),
        engines: s
            .engines
            .iter()
            .map(|e| EngineView {
                kind: serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                instance: e.instance.clone(),
                model: e.model.clone(),
                up: e.up,
                tokens_per_second: e.generation_tokens_per_second,
            })
            .collect(),
        tokens_per_second: s.efficiency.generation_tokens_per_second,
        power_watts: s.efficiency.power_watts,
        wes_penalized,
        wes_raw,
        wes_unavailable,
        thermal: Some(s.efficiency.thermal.clone()),
        observations: n.observations.clone(),
        endpoint: n.endpoint.clone(),
    }
}

impl Hub {
    /// Every registered node at `now_ms`, by name.
    pub fn nodes(&self, now_ms: i64) -> Result<Vec<NodeView>, HubError> {
        let fleet = self.fleet()?;
        let registered = self.registry.all()?;
        let mut out = Vec::with_capacity(registered.len());
        for r in registered {
            let revoked = r.revoked_ms.is_some();
            // `fleet` is sorted by name.
            match fleet.binary_search_by(|n| n.name.as_str().cmp(&r.name)) {
                Ok(i) => out.push(view(&fleet[i], now_ms, revoked)),
                Err(_) => out.push(NodeView {
                    name: r.name,
                    liveness: Liveness::Down,
                    last_seen_unix_ms: None,
                    age_s: None,
                    sample_ts_unix_ms: None,
                    revoked,
                    cpu_count: None,
                    memory_total_bytes: None,
                    gpus: Vec::new(),
                    engines: Vec::new(),
                    tokens_per_second: None,
                    power_watts: None,
                    wes_penalized: None,
                    wes_raw: None,
                    wes_unavailable: Some("WES unavailable: the node has not pushed yet".into()),
                    thermal: None,
                    observations: Vec::new(),
                    endpoint: None,
                }),
            }
        }
        Ok(out)
    }

    /// One node's latest snapshot and open observations, as its agent's `/api/v1/snapshot`
    /// and `/api/v1/observations?active=true` serve them: 404 for a name the hub does not
    /// know, 503 for a node that joined but has not pushed.
    pub fn node(&self, name: &str) -> Result<Node, HubError> {
        if let Some(n) = self.fleet_node(name)? {
            return Ok(n);
        }
        if self.registry.get(name)?.is_some() {
            return Err(HubError::new(
                503,
                format!("node \"{name}\" has joined but not pushed a sample yet"),
            ));
        }
        Err(HubError::new(
            404,
            format!("node \"{name}\" is not registered on this hub"),
        ))
    }

    /// The leaderboard of every node or of the nodes serving `model`.
    pub fn leaderboard(&self, model: Option<&str>, now_ms: i64) -> Result<Leaderboard, HubError> {
        Ok(leaderboard(&self.fleet()?, model, now_ms))
    }

    /// Where the next request for `model` should go.
    pub fn route(
        &self,
        model: &str,
        settings: &RouteSettings,
        now_ms: i64,
    ) -> Result<Result<RouteChoice, NoRoute>, HubError> {
        Ok(route(&self.fleet()?, model, now_ms, settings))
    }

    /// The fleet's open observations as diagnosis observations, for alerts (see
    /// `infermon_fleet::alerts`).
    pub fn fleet_observations(&self, now_ms: i64) -> Result<Vec<Observation>, HubError> {
        Ok(fleet_observations(&self.fleet()?, now_ms))
    }

    /// Open observations of the fleet: nodes down, fleet outliers, then every node's own.
    pub fn observations(&self, now_ms: i64) -> Result<Vec<FleetObservation>, HubError> {
        let fleet = self.fleet()?;
        let mut out = Vec::new();
        for n in fleet
            .iter()
            .filter(|n| n.liveness(now_ms) == Liveness::Down)
        {
            out.push(FleetObservation {
                node: n.name.clone(),
                kind: "node_down".into(),
                severity: "critical".into(),
                summary: format!(
                    "{} has not pushed for {:.0} s (newest sample at {} ms)",
                    n.name,
                    n.age_s(now_ms),
                    n.snapshot.ts_unix_ms
                ),
                action: node_down_action(&n.name),
                observation: None,
            });
        }
        for o in fleet_outliers(&fleet, now_ms) {
            out.push(FleetObservation {
                node: o.node.clone(),
                kind: "fleet_outlier".into(),
                severity: "warning".into(),
                summary: format!(
                    "{} serves {} at penalized WES {:.3}, {:.0} % of the fleet median {:.3}",
                    o.node,
                    o.model,
                    o.wes_penalized,
                    o.ratio * 100.0,
                    o.fleet_median
                ),
                action: outlier_action(&o),
                observation: None,
            });
        }
        for (node, obs) in Hub::node_observations(&fleet) {
            out.push(FleetObservation {
                node,
                kind: obs.kind.as_str().to_string(),
                severity: serde_json::to_value(obs.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                summary: summary(&obs),
                action: obs.action.clone(),
                observation: Some(obs),
            });
        }
        Ok(out)
    }
}

/// One line of a node's own observation: its subject, evidence figures and context.
fn summary(o: &Observation) -> String {
    let num = |v: f64| {
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        }
    };
    let figures: Vec<String> = o
        .evidence
        .figures
        .iter()
        .map(|f| {
            let now = f.now.map(num).unwrap_or_else(|| "–".to_string());
            match f.baseline {
                Some(b) => format!("{} {now} (baseline {})", f.name, num(b)),
                None => format!("{} {now}", f.name),
            }
        })
        .collect();
    let mut line = o.subject.clone();
    if !figures.is_empty() {
        line.push_str(": ");
        line.push_str(&figures.join(", "));
    }
    if let Some(c) = &o.evidence.context {
        line.push_str("; ");
        line.push_str(c);
    }
    line
}
