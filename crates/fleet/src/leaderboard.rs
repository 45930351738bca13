//! The leaderboard: nodes ranked by penalized WES, with raw WES, thermal cost, tok/s and power
//! beside it. A node without a WES (no power reading, idle, no token counters) or that is not
//! up is listed apart with the reason, never ranked as zero.

use infermon_model::wes::NoWes;
use serde::{Deserialize, Serialize};

use crate::{Liveness, Node};

/// One ranked node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// 1 for the most efficient.
    pub rank: usize,
    /// The node's name.
    pub node: String,
    /// WES with the live thermal penalty (the ranking key).
    pub wes_penalized: f64,
    /// WES with the penalty forced to 1.
    pub wes_raw: f64,
    /// Share of raw WES lost to heat, percent.
    pub thermal_cost_percent: f64,
    /// Generated tokens per second on the node (all engines).
    pub tokens_per_second: Option<f64>,
    /// Node power, watts.
    pub power_watts: Option<f64>,
}

/// A node left out of the ranking, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unranked {
    /// The node's name.
    pub node: String,
    /// Whether it is reporting.
    pub liveness: Liveness,
    /// e.g. "WES unavailable: no power reading on this node".
    pub why: String,
}

/// Nodes ranked by penalized WES (best first), and those that could not be ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaderboard {
    /// The model the board is for (`None`: every node).
    pub model: Option<String>,
    /// Ranked nodes, best first.
    pub ranked: Vec<Ranked>,
    /// Nodes without a rank, by name.
    pub unranked: Vec<Unranked>,
}

/// Why a node has no WES, in words.
pub fn no_wes_reason(why: &NoWes) -> &'static str {
    match why {
        NoWes::NoTokenRate => "no engine with token counters",
        NoWes::Idle => "no tokens were generated in the window",
        NoWes::NoPower => "no power reading on this node",
        NoWes::NonPositivePower => "power read as zero or negative",
    }
}

/// The leaderboard at `now_unix_ms`, of every node or of the nodes serving `model` (loaded or
/// offered). WES is a node's figure (all its engines' tokens over all its watts), so for a
/// model the board compares the nodes that serve it. Ties keep name order.
pub fn leaderboard(nodes: &[Node], model: Option<&str>, now_unix_ms: i64) -> Leaderboard {
    let mut ranked = Vec::new();
    let mut unranked = Vec::new();
    for n in nodes {
        if let Some(m) = model {
            if n.serves(m).is_none() {
                continue;
            }
        }
        let liveness = n.liveness(now_unix_ms);
        let eff = &n.snapshot.efficiency;
        if liveness != Liveness::Up {
            let why = format!(
                "{}: last heard from {:.0} s ago",
                if liveness == Liveness::Down {
                    "down"
                } else {
                    "stale"
                },
                n.age_s(now_unix_ms)
            );
            unranked.push(Unranked {
                node: n.name.clone(),
                liveness,
                why,
            });
            continue;
        }
        match &eff.wes {
            Ok(w) => ranked.push(Ranked {
                rank: 0,
                node: n.name.clone(),
                wes_penalized: w.penalized,
                wes_raw: w.raw,
                thermal_cost_percent: w.thermal_cost_percent,
                tokens_per_second: eff.generation_tokens_per_second,
                power_watts: eff.power_watts,
            }),
            Err(e) => unranked.push(Unranked {
                node: n.name.clone(),
                liveness,
                why: format!("WES unavailable: {}", no_wes_reason(e)),
            }),
        }
    }
    ranked.sort_by(|a, b| {
        b.wes_penalized
            .total_cmp(&a.wes_penalized)
            .then_with(|| a.node.cmp(&b.node))
    });
    for (i, r) in ranked.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    unranked.sort_by(|a, b| a.node.cmp(&b.node));
    Leaderboard {
        model: model.map(str::to_string),
        ranked,
        unranked,
    }
}
