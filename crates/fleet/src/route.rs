//! Where the next request for a model should go, from live signals.
//!
//! Each node that is up and serves the model gets a cost, in seconds-like units; the lowest
//! wins, ties by name. The cost is the expected wait before the first token, made worse by what
//! is wrong on the node:
//!
//! ```text
//! base  = cold load (if the model is offered but not loaded)          cold_load_s, default 15 s
//!       + queue     (requests waiting × service time ÷ parallel slots)  service time: the node's
//!                                                                       measured E2E p50 for the
//!                                                                       model, else 2 s
//!       + TTFT      (the node's measured TTFT p50 for the model)        else 0.5 s
//! cost  = base × health × kv × slo × efficiency
//!   health     ×1.5 per open warning observation, ×3 per critical one (capped at ×10):
//!              throttling, power capping, swapping, memory pressure, CPU contention, regressions…
//!   kv         ×2 when the model's KV cache is ≥ 90 % used
//!   slo        ×1.5 when the measured TTFT or TPOT p99 misses the SLO
//!   efficiency ×(1 + 0.25 × (1 − WES ÷ best WES)); ×1.25 without a WES
//! ```
//!
//! The terms are in the order a user feels them: a cold load costs seconds, a queue costs
//! whole requests, TTFT costs milliseconds; health multiplies because a throttling or swapping
//! node gets slower for every request it takes; efficiency only breaks near-ties. Routers people
//! know weigh queue depth and cache hits (llm-d), prefix affinity with a shortest-queue fallback
//! (SGLang's router) or requests in flight (LiteLLM); none of them steers away from a node that
//! is throttling or swapping, which is what the health term is for.

use infermon_detect::Severity;
use serde::{Deserialize, Serialize};

use crate::{Liveness, Node, Serving};

/// Knobs of the score (the hub's configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSettings {
    /// What loading a model that is not in memory costs, seconds.
    pub cold_load_s: f64,
    /// Service time per request when a node has not measured one, seconds.
    pub default_service_s: f64,
    /// TTFT when a node has not measured one, seconds.
    pub default_ttft_s: f64,
    /// TTFT p99 objective, ms (`None`: no SLO term).
    pub slo_ttft_ms: Option<f64>,
    /// TPOT p99 objective, ms.
    pub slo_tpot_ms: Option<f64>,
}

impl Default for RouteSettings {
    fn default() -> Self {
        RouteSettings {
            cold_load_s: 15.0,
            default_service_s: 2.0,
            default_ttft_s: 0.5,
            slo_ttft_ms: None,
            slo_tpot_ms: None,
        }
    }
}

/// A node considered for the request: its cost, or why it was left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The node's name.
    pub node: String,
    /// Lower is better; `None` when the node cannot take the request.
    pub cost: Option<f64>,
    /// The terms of the cost, or why it was excluded.
    pub why: String,
}

/// The chosen node and every node considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteChoice {
    /// The model asked for.
    pub model: String,
    /// The node to send it to.
    pub node: String,
    /// Why: the chosen node's cost and its terms.
    pub reason: String,
    /// How many nodes were considered (`candidates` may hold only the first of them).
    pub candidates_total: usize,
    /// The nodes considered, cheapest first, excluded ones last.
    pub candidates: Vec<Candidate>,
}

/// No node can serve the model; `candidates` say why for each node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoRoute {
    /// The model asked for.
    pub model: String,
    /// Why no node was chosen.
    pub reason: String,
    /// How many nodes were considered (`candidates` may hold only the first of them).
    pub candidates_total: usize,
    /// The nodes considered and why each was left out, by name.
    pub candidates: Vec<Candidate>,
}

impl RouteChoice {
    /// Keeps the `n` cheapest candidates (`candidates_total` still counts them all).
    pub fn keep_candidates(&mut self, n: usize) {
        self.candidates.truncate(n);
    }
}

impl NoRoute {
    /// Keeps the first `n` candidates by name (`candidates_total` still counts them all).
    pub fn keep_candidates(&mut self, n: usize) {
        self.candidates.truncate(n);
    }
}

/// Picks the node for the next request for `model` at `now_unix_ms`.
pub fn route(
    nodes: &[Node],
    model: &str,
    now_unix_ms: i64,
    settings: &RouteSettings,
) -> Result<RouteChoice, NoRoute> {
    let best_wes = nodes
        .iter()
        .filter(|n| n.liveness(now_unix_ms) == Liveness::Up && n.serves(model).is_some())
        .filter_map(|n| n.snapshot.efficiency.wes.as_ref().ok())
        .map(|w| w.penalized)
        .fold(None, |m: Option<f64>, w| Some(m.map_or(w, |m| m.max(w))));
    let mut candidates: Vec<Candidate> = nodes
        .iter()
        .map(|n| consider(n, model, now_unix_ms, settings, best_wes))
        .collect();
    candidates.sort_by(|a, b| match (a.cost, b.cost) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.node.cmp(&b.node)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.node.cmp(&b.node),
    });
    match candidates.first() {
        Some(c) if c.cost.is_some() => Ok(RouteChoice {
            model: model.to_string(),
            node: c.node.clone(),
            reason: format!("{}: {}", c.node, c.why),
            candidates_total: candidates.len(),
            candidates,
        }),
        _ => Err(NoRoute {
            model: model.to_string(),
            reason: if candidates.is_empty() {
                "no nodes have reported".to_string()
            } else {
                format!("no node that is up serves {model}")
            },
            candidates_total: candidates.len(),
            candidates,
        }),
    }
}

fn excluded(n: &Node, why: String) -> Candidate {
    Candidate {
        node: n.name.clone(),
        cost: None,
        why,
    }
}

fn consider(
    n: &Node,
    model: &str,
    now_unix_ms: i64,
    s: &RouteSettings,
    best_wes: Option<f64>,
) -> Candidate {
    match n.liveness(now_unix_ms) {
        Liveness::Up => {}
        l => {
            let word = if l == Liveness::Down { "down" } else { "stale" };
            let age = n.age_s(now_unix_ms);
            return excluded(n, format!("{word}: last heard from {age:.0} s ago"));
        }
    }
    let Some(serving) = n.serves(model) else {
        return excluded(n, format!("no engine that is up serves {model}"));
    };
    let snap = &n.snapshot;
    let measured = snap.requests.iter().find(|r| r.model == model);
    let engines = snap.engines.iter().filter(|e| {
        e.up && (e.model == model || e.models.iter().flatten().any(|m| m.raw.name == model))
    });
    let (mut waiting, mut parallel, mut kv) = (0.0, 0.0, None::<f64>);
    for e in engines {
        let sched = e.scheduler.iter().find(|x| x.model == model);
        waiting += sched
            .and_then(|x| x.requests_waiting)
            .or(e.requests_waiting)
            .unwrap_or(0.0);
        parallel += e
            .slots_total
            .map(f64::from)
            .or(e.requests_running)
            .unwrap_or(1.0)
            .max(1.0);
        if let Some(k) = sched.and_then(|x| x.kv_usage_ratio) {
            kv = Some(kv.map_or(k, |v: f64| v.max(k)));
        }
    }
    let service_s = measured
        .and_then(|r| r.e2e_ms.as_ref())
        .map_or(s.default_service_s, |e| e.p50 / 1000.0);
    let ttft_s = measured
        .and_then(|r| r.ttft_ms.as_ref())
        .map_or(s.default_ttft_s, |t| t.p50 / 1000.0);
    let cold_s = if serving == Serving::Cold {
        s.cold_load_s
    } else {
        0.0
    };
    let queue_s = waiting * service_s / parallel.max(1.0);
    let base = cold_s + queue_s + ttft_s;

    let mut terms = vec![
        format!("{}", if cold_s > 0.0 { "not loaded" } else { "loaded" }),
        format!("{waiting:.0} waiting"),
        format!("TTFT p50 {:.0} ms", ttft_s * 1000.0),
    ];
    let mut health = 1.0_f64;
    let mut problems = Vec::new();
    for o in &n.observations {
        let f = match o.severity {
            Severity::Info => continue,
            Severity::Warning => 1.5,
            Severity::Critical => 3.0,
        };
        health *= f;
        problems.push(o.kind.as_str());
    }
    let health = health.min(10.0);
    if problems.is_empty() {
        terms.push("no open problems".to_string());
    } else {
        terms.push(format!("open: {} (×{health:.1})", problems.join(", ")));
    }
    let kv_factor = match kv {
        Some(k) if k >= 0.9 => {
            terms.push(format!("KV cache {:.0} % (×2)", k * 100.0));
            2.0
        }
        _ => 1.0,
    };
    let misses =
        |p99: Option<f64>, slo: Option<f64>| matches!((p99, slo), (Some(v), Some(o)) if v > o);
    let ttft_p99 = measured.and_then(|r| r.ttft_ms.as_ref()).map(|t| t.p99);
    let tpot_p99 = measured.and_then(|r| r.tpot_ms.as_ref()).map(|t| t.p99);
    let slo_factor = if misses(ttft_p99, s.slo_ttft_ms) || misses(tpot_p99, s.slo_tpot_ms) {
        terms.push("misses the SLO (×1.5)".to_string());
        1.5
    } else {
        1.0
    };
    let eff_factor = match (&snap.efficiency.wes, best_wes) {
        (Ok(w), Some(best)) if best > 0.0 => {
            terms.push(format!("WES {:.1}", w.penalized));
            1.0 + 0.25 * (1.0 - (w.penalized / best).clamp(0.0, 1.0))
        }
        _ => {
            terms.push("no WES (×1.25)".to_string());
            1.25
        }
    };
    let cost = base * health * kv_factor * slo_factor * eff_factor;
    Candidate {
        node: n.name.clone(),
        cost: Some(cost),
        why: format!("cost {cost:.3}: {}", terms.join(", ")),
    }
}
