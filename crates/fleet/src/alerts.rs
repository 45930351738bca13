//! The fleet's open observations as diagnosis [`Observation`]s, so the hub alerts through the
//! same targets, outbox and formats as an agent: a node that stopped pushing (`node_down`), a
//! node far less efficient than its peers for a model (`fleet_outlier`), and every node's own
//! open observations. Subjects and ids are prefixed with the node's name (`edge-1/gpu:0`), so
//! two nodes' observations never share one. [`FleetWatch`] turns the open set at each step
//! into opened, updated and resolved changes. Pure: the hub calls it on a timer.

use std::collections::BTreeMap;

use infermon_detect::{Change, Evidence, Figure, Kind, Observation, Severity};

use crate::{fleet_outliers, Liveness, Node, Outlier, DOWN_AFTER_S};

/// What to do about a node that stopped pushing.
pub fn node_down_action(node: &str) -> String {
    format!(
        "check that the agent on {node} runs and reaches the hub; it keeps its samples and \
         sends them when it does"
    )
}

/// What to do about a fleet outlier.
pub fn outlier_action(o: &Outlier) -> String {
    format!(
        "compare {}'s thermal state, power limit, quantization and engine flags with its \
         peers serving {}",
        o.node, o.model
    )
}

fn observation(
    kind: Kind,
    subject: String,
    start_s: f64,
    now_s: f64,
    severity: Severity,
    evidence: Evidence,
    action: String,
) -> Observation {
    Observation {
        id: Observation::make_id(kind, &subject, start_s),
        kind,
        start_s,
        confirmed_s: now_s,
        end_s: None,
        severity,
        subject,
        evidence,
        cause: None,
        action,
    }
}

/// The fleet's open observations at `now_unix_ms`, by node.
pub fn fleet_observations(nodes: &[Node], now_unix_ms: i64) -> Vec<Observation> {
    let now_s = now_unix_ms as f64 / 1000.0;
    let mut out = Vec::new();
    for n in nodes {
        if n.liveness(now_unix_ms) == Liveness::Down {
            let evidence = Evidence {
                figures: vec![Figure {
                    name: "seconds_since_last_push".into(),
                    baseline: Some(DOWN_AFTER_S),
                    now: Some(n.age_s(now_unix_ms)),
                }],
                window_s: n.age_s(now_unix_ms),
                context: Some(format!("newest sample at {} ms", n.snapshot.ts_unix_ms)),
            };
            out.push(observation(
                Kind::NodeDown,
                format!("{}/node", n.name),
                n.last_seen_unix_ms as f64 / 1000.0,
                now_s,
                Severity::Critical,
                evidence,
                node_down_action(&n.name),
            ));
        }
        for o in &n.observations {
            let mut o = o.clone();
            o.id = format!("{}/{}", n.name, o.id);
            o.subject = format!("{}/{}", n.name, o.subject);
            if let Some(c) = o.cause.as_mut() {
                c.id = format!("{}/{}", n.name, c.id);
                c.subject = format!("{}/{}", n.name, c.subject);
            }
            out.push(o);
        }
    }
    for o in fleet_outliers(nodes, now_unix_ms) {
        let evidence = Evidence {
            figures: vec![Figure {
                name: "wes_penalized".into(),
                baseline: Some(o.fleet_median),
                now: Some(o.wes_penalized),
            }],
            window_s: 0.0,
            context: Some(format!("model={}", o.model)),
        };
        out.push(observation(
            Kind::FleetOutlier,
            format!("{}/model:{}", o.node, o.model),
            now_s,
            now_s,
            Severity::Warning,
            evidence,
            outlier_action(&o),
        ));
    }
    out
}

/// The observations open at the last step, by kind and subject.
#[derive(Debug, Default)]
pub struct FleetWatch {
    open: BTreeMap<(Kind, String), Observation>,
}

impl FleetWatch {
    /// A watch that has seen nothing open.
    pub fn new() -> FleetWatch {
        FleetWatch::default()
    }

    /// A watch that knows these observations open (a restarted hub's, from its store): they
    /// keep their ids and starts, and resolve when they are gone.
    pub fn restore(open: Vec<Observation>) -> FleetWatch {
        FleetWatch {
            open: open
                .into_iter()
                .filter(Observation::is_open)
                .map(|o| ((o.kind, o.subject.clone()), o))
                .collect(),
        }
    }

    /// Compares `current` (what [`fleet_observations`] gives now) with the last step: a new
    /// (kind, subject) is opened; one still there keeps its id and start, and is updated when
    /// its severity changed; one gone is resolved at `now_unix_ms`.
    pub fn step(&mut self, current: Vec<Observation>, now_unix_ms: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut next = BTreeMap::new();
        for mut o in current {
            let key = (o.kind, o.subject.clone());
            match self.open.remove(&key) {
                Some(old) => {
                    let raised = old.severity != o.severity;
                    o.id = old.id;
                    o.start_s = old.start_s;
                    o.confirmed_s = old.confirmed_s;
                    if raised {
                        changes.push(Change::Updated(o.clone()));
                    }
                }
                None => changes.push(Change::Opened(o.clone())),
            }
            next.insert(key, o);
        }
        for (_, mut gone) in std::mem::take(&mut self.open) {
            gone.end_s = Some(now_unix_ms as f64 / 1000.0);
            changes.push(Change::Resolved(gone));
        }
        self.open = next;
        changes
    }
}
