//! `fleet_outlier`: a node whose penalized WES is far below the fleet's for the same model.

use serde::{Deserialize, Serialize};

use crate::leaderboard::leaderboard;
use crate::Node;

/// Below this share of the fleet median a node is an outlier.
pub const OUTLIER_RATIO: f64 = 0.5;
/// At least this many ranked nodes serve the model before a median means anything.
pub const MIN_PEERS: usize = 3;

/// A node far less efficient than its peers for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outlier {
    /// The node's name.
    pub node: String,
    /// The model both it and its peers serve.
    pub model: String,
    /// Its penalized WES.
    pub wes_penalized: f64,
    /// Median penalized WES of the up nodes serving the model (the node included).
    pub fleet_median: f64,
    /// `wes_penalized / fleet_median`.
    pub ratio: f64,
}

/// Outliers for every model served by at least [`MIN_PEERS`] ranked nodes, by model then node.
pub fn fleet_outliers(nodes: &[Node], now_unix_ms: i64) -> Vec<Outlier> {
    let mut models: Vec<String> = nodes
        .iter()
        .flat_map(|n| n.snapshot.engines.iter().filter(|e| e.up))
        .map(|e| e.model.clone())
        .filter(|m| !m.is_empty())
        .collect();
    models.sort();
    models.dedup();
    let mut out = Vec::new();
    for model in models {
        let board = leaderboard(nodes, Some(&model), now_unix_ms);
        if board.ranked.len() < MIN_PEERS {
            continue;
        }
        // Ranked best first: reversed, the values are sorted ascending.
        let w: Vec<f64> = board.ranked.iter().rev().map(|r| r.wes_penalized).collect();
        let median = infermon_model::stats::percentile_sorted(&w, 50.0);
        if median.is_nan() || median <= 0.0 {
            continue;
        }
        for r in &board.ranked {
            let ratio = r.wes_penalized / median;
            if ratio < OUTLIER_RATIO {
                out.push(Outlier {
                    node: r.node.clone(),
                    model: model.clone(),
                    wes_penalized: r.wes_penalized,
                    fleet_median: median,
                    ratio,
                });
            }
        }
    }
    out
}
