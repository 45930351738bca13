//! The fleet screen, when `--url` is a hub's and no `--node` is given: one row per node from
//! the hub's `/api/v1/fleet/nodes`, as the hub computed it (liveness, tok/s, power, WES,
//! thermal state, open observations, models). Nothing is derived here.

use ratatui::text::{Line, Span};
use serde::Deserialize;

use crate::fmt::{self, ABSENT};
use crate::view::Theme;

/// The fields of one node of `/api/v1/fleet/nodes` that the screen shows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FleetNode {
    /// Node name.
    pub name: String,
    /// `up`, `stale` or `down`.
    pub liveness: String,
    /// Seconds since the hub last heard from it (`None`: never pushed).
    pub age_s: Option<f64>,
    /// Whether its token was revoked.
    #[serde(default)]
    pub revoked: bool,
    /// GPU names.
    #[serde(default)]
    pub gpus: Vec<String>,
    /// Its engines, for the models they serve.
    #[serde(default)]
    pub engines: Vec<FleetEngine>,
    /// Generated tokens per second over all engines.
    pub tokens_per_second: Option<f64>,
    /// Node power, watts.
    pub power_watts: Option<f64>,
    /// Penalized WES.
    pub wes_penalized: Option<f64>,
    /// Why WES is missing.
    pub wes_unavailable: Option<String>,
    /// Thermal figures (`state` is shown).
    pub thermal: Option<serde_json::Value>,
    /// Its open observations (counted).
    #[serde(default)]
    pub observations: Vec<serde_json::Value>,
}

/// An engine of a fleet node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FleetEngine {
    /// The model it serves, if known.
    pub model: Option<String>,
}

impl FleetNode {
    fn models(&self) -> String {
        let mut m: Vec<&str> = self
            .engines
            .iter()
            .filter_map(|e| e.model.as_deref())
            .collect();
        m.sort_unstable();
        m.dedup();
        if m.is_empty() {
            ABSENT.to_string()
        } else {
            m.join(", ")
        }
    }

    fn thermal_state(&self) -> String {
        self.thermal
            .as_ref()
            .and_then(|t| t.get("state")?.as_str().map(str::to_string))
            .unwrap_or_else(|| ABSENT.to_string())
    }
}

const COLUMNS: [(&str, usize); 8] = [
    ("NODE", 14),
    ("STATE", 9),
    ("TOK/S", 8),
    ("POWER", 8),
    ("WES", 7),
    ("THERMAL", 9),
    ("OBS", 4),
    ("MODELS", 0),
];

fn row(cells: [String; 8], width: usize) -> String {
    let mut out = String::new();
    for (i, (cell, (_, w))) in cells.iter().zip(COLUMNS).enumerate() {
        if w == 0 {
            out.push_str(cell);
        } else if (2..=6).contains(&i) {
            out.push_str(&format!("{:>w$} ", fmt::fit(cell, w)));
        } else {
            out.push_str(&format!("{:<w$} ", fmt::fit(cell, w)));
        }
    }
    fmt::fit(out.trim_end(), width)
}

/// The lines below the header and status: a title, the column names, one row per node, and
/// the reasons WES is missing.
pub(crate) fn lines(nodes: &[FleetNode], t: Theme, width: usize) -> Vec<Line<'static>> {
    let up = nodes.iter().filter(|n| n.liveness == "up").count();
    let mut out = vec![
        Line::from(Span::styled(
            fmt::fit(
                &format!(
                    "Fleet · {} node{}, {up} up · add --node NAME to see one node",
                    nodes.len(),
                    if nodes.len() == 1 { "" } else { "s" }
                ),
                width,
            ),
            t.title(),
        )),
        Line::from(Span::styled(
            row(COLUMNS.map(|(h, _)| h.to_string()), width),
            t.dim(),
        )),
    ];
    if nodes.is_empty() {
        out.push(Line::from(Span::styled(
            "no node has joined this hub yet",
            t.dim(),
        )));
    }
    for n in nodes {
        let state = if n.revoked {
            "revoked".to_string()
        } else {
            n.liveness.clone()
        };
        let style = match state.as_str() {
            "up" => t.good(),
            "stale" => t.warn(),
            _ => t.bad(),
        };
        let text = row(
            [
                n.name.clone(),
                state,
                fmt::num(n.tokens_per_second, 1),
                n.power_watts
                    .map_or(ABSENT.to_string(), |w| format!("{w:.0} W")),
                fmt::num(n.wes_penalized, 2),
                n.thermal_state(),
                n.observations.len().to_string(),
                n.models(),
            ],
            width,
        );
        out.push(Line::from(Span::styled(text, style)));
    }
    for n in nodes.iter().filter(|n| n.wes_penalized.is_none()) {
        if let Some(why) = &n.wes_unavailable {
            out.push(Line::from(Span::styled(
                fmt::fit(&format!("{}: {why}", n.name), width),
                t.dim(),
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_the_hubs_figures_and_say_why_wes_is_missing() {
        let nodes: Vec<FleetNode> = serde_json::from_value(serde_json::json!([
            {"name": "edge-1", "liveness": "up", "age_s": 1.0, "gpus": ["H100"],
             "engines": [{"model": "qwen"}, {"model": "llama"}, {"model": "qwen"}],
             "tokens_per_second": 812.25, "power_watts": 451.6, "wes_penalized": 1.799,
             "wes_unavailable": null, "thermal": {"state": "normal"}, "observations": [{}]},
            {"name": "edge-2", "liveness": "down", "age_s": null, "tokens_per_second": null,
             "power_watts": null, "wes_penalized": null,
             "wes_unavailable": "WES unavailable: the node has not pushed yet", "thermal": null}
        ]))
        .unwrap();
        let text: Vec<String> = lines(&nodes, Theme { color: false }, 100)
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert!(text[0].starts_with("Fleet · 2 nodes, 1 up"), "{text:?}");
        assert!(text[1].starts_with("NODE"), "{text:?}");
        let one: Vec<&str> = text[2].split_whitespace().collect();
        assert_eq!(
            one,
            ["edge-1", "up", "812.2", "452", "W", "1.80", "normal", "1", "llama,", "qwen"]
        );
        let two: Vec<&str> = text[3].split_whitespace().collect();
        assert_eq!(two, ["edge-2", "down", "–", "–", "–", "–", "0", "–"]);
        assert_eq!(
            text[4],
            "edge-2: WES unavailable: the node has not pushed yet"
        );
    }
}
