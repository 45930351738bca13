//! The detector: one [`Detector::step`] per frame, for the agent and for replay alike.

use std::collections::BTreeMap;

use crate::baseline::{context, Baselines};
use crate::drift::{Drift, Metric, Step, MODEL_METRICS, STALE_S, WES_METRIC};
use crate::frame::{EngineFrame, Frame};
use crate::observation::{Cause, Change, Evidence, Figure, Kind, Observation, Severity};
use crate::patterns::{self, engine_subject, model_subject, PatternState, Verdict};
use crate::text::{change, fmt_num, Clock};

/// Seconds a pattern must hold before it is reported, and be clear before it resolves.
pub fn timing(kind: Kind) -> (f64, f64) {
    match kind {
        Kind::EngineDown => (3.0, 2.0),
        Kind::ThermalThrottling => (4.0, 20.0),
        Kind::PowerCapping => (10.0, 20.0),
        Kind::CpuContention => (8.0, 20.0),
        Kind::KvSaturation => (10.0, 20.0),
        Kind::QueueBacklog => (30.0, 20.0),
        Kind::SwapStorm => (6.0, 30.0),
        Kind::MemoryPressure => (20.0, 30.0),
        Kind::OomRisk => (2.0, 20.0),
        Kind::ErrorRate => (20.0, 30.0),
        Kind::BandwidthBound => (30.0, 60.0),
        Kind::ModelChurn | Kind::ModelChange => (0.0, 0.0),
        // Judged by the hub on its own clock (a minute of silence; a WES ratio), not here.
        Kind::NodeDown | Kind::FleetOutlier => (0.0, 0.0),
        Kind::TtftRegression
        | Kind::TpotRegression
        | Kind::ThroughputDrop
        | Kind::EfficiencyDrift => (0.0, crate::drift::RECOVER_S),
    }
}

/// The patterns that can explain a kind, most likely first.
pub fn explained_by(kind: Kind) -> &'static [Kind] {
    use Kind::*;
    match kind {
        TtftRegression => &[
            CpuContention,
            QueueBacklog,
            KvSaturation,
            SwapStorm,
            MemoryPressure,
            ThermalThrottling,
            PowerCapping,
            ModelChurn,
        ],
        TpotRegression | ThroughputDrop => &[
            ThermalThrottling,
            PowerCapping,
            SwapStorm,
            CpuContention,
            MemoryPressure,
            KvSaturation,
        ],
        EfficiencyDrift => &[
            ThermalThrottling,
            PowerCapping,
            SwapStorm,
            CpuContention,
            MemoryPressure,
        ],
        QueueBacklog => &[KvSaturation],
        _ => &[],
    }
}

#[derive(Debug, Default, Clone)]
struct Hold {
    active_since: Option<f64>,
    clear_since: Option<f64>,
    last_active: f64,
    last_seen: f64,
}

/// Turns frames into observations. See the crate docs.
#[derive(Debug, Default)]
pub struct Detector {
    clock: Clock,
    baselines: Baselines,
    open: BTreeMap<(Kind, String), Observation>,
    last_emit: BTreeMap<(Kind, String), f64>,
    holds: BTreeMap<(Kind, String), Hold>,
    drifts: BTreeMap<(Kind, String), Drift>,
    patterns: PatternState,
    disabled: BTreeMap<Kind, String>,
}

impl Detector {
    /// A detector starting cold, printing times with `clock`.
    pub fn new(clock: Clock) -> Self {
        Detector {
            clock,
            ..Default::default()
        }
    }

    /// A detector that starts from persisted baselines.
    pub fn with_baselines(clock: Clock, baselines: Baselines) -> Self {
        Detector {
            clock,
            baselines,
            ..Default::default()
        }
    }

    /// What has been learned (to persist).
    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// Switches a kind off, with the reason (replay: a column it needs is missing).
    pub fn disable(&mut self, kind: Kind, reason: impl Into<String>) {
        self.disabled.insert(kind, reason.into());
    }

    /// The kinds switched off, with reasons.
    pub fn disabled(&self) -> &BTreeMap<Kind, String> {
        &self.disabled
    }

    /// Observations open now.
    pub fn open(&self) -> impl Iterator<Item = &Observation> {
        self.open.values()
    }

    /// Adopts observations that were open when the agent stopped, so they resolve (or stay
    /// open) instead of opening again.
    pub fn adopt(&mut self, obs: Vec<Observation>) {
        for o in obs.into_iter().filter(Observation::is_open) {
            self.holds.insert(
                (o.kind, o.subject.clone()),
                Hold {
                    active_since: Some(o.start_s),
                    last_active: o.confirmed_s,
                    last_seen: o.confirmed_s,
                    ..Default::default()
                },
            );
            self.open.insert((o.kind, o.subject.clone()), o);
        }
    }

    /// Takes one frame; returns what opened, changed and resolved.
    pub fn step(&mut self, f: &Frame) -> Vec<Change> {
        let mut out = Vec::new();
        let learn = !self.open.values().any(|o| o.severity >= Severity::Warning);
        self.model_changes(f, &mut out);
        let verdicts = patterns::judge(f, &mut self.patterns, &mut self.baselines, learn);
        for v in verdicts {
            if !self.disabled.contains_key(&v.kind) {
                self.apply(f.t_s, v, &mut out);
            }
        }
        for e in &f.engines {
            self.model_drifts(f.t_s, e, learn, &mut out);
        }
        self.wes_drift(f, learn, &mut out);
        self.link_causes(f.t_s, &mut out);
        self.expire(f.t_s, &mut out);
        out
    }

    fn model_changes(&mut self, f: &Frame, out: &mut Vec<Change>) {
        if self.disabled.contains_key(&Kind::ModelChange) {
            return;
        }
        for e in &f.engines {
            if f.engines.iter().filter(|x| x.engine == e.engine).count() != 1 {
                continue;
            }
            let Some(model) = e.model.clone() else {
                continue;
            };
            let prev = self.patterns.models.insert(e.engine.clone(), model.clone());
            let Some(prev) = prev.filter(|p| *p != model) else {
                continue;
            };
            let subject = engine_subject(&e.engine);
            out.push(Change::Opened(Observation {
                id: Observation::make_id(Kind::ModelChange, &subject, f.t_s),
                kind: Kind::ModelChange,
                start_s: f.t_s,
                confirmed_s: f.t_s,
                end_s: Some(f.t_s),
                severity: Severity::Info,
                subject,
                evidence: Evidence {
                    figures: Vec::new(),
                    window_s: 0.0,
                    context: Some(format!("{prev} → {model}")),
                },
                cause: None,
                action: format!(
                    "{} now serves {model} (was {prev}) since {}. Its speed and latency are \
                     compared with {model}'s own baseline from here on; nothing to do if the \
                     switch was intended.",
                    e.engine,
                    self.clock.at(f.t_s)
                ),
            }));
        }
    }

    fn apply(&mut self, t: f64, v: Verdict, out: &mut Vec<Change>) {
        let key = (v.kind, v.subject.clone());
        let (hold_s, release_s) = timing(v.kind);
        let h = self.holds.entry(key.clone()).or_default();
        h.last_seen = t;
        match v.active {
            Some(true) => {
                h.clear_since = None;
                h.last_active = t;
                let first = *h.active_since.get_or_insert(t);
                if let Some(o) = self.open.get_mut(&key) {
                    let severity_changed = o.severity != v.severity;
                    o.severity = v.severity;
                    o.evidence = Evidence {
                        window_s: t - o.start_s,
                        ..v.evidence
                    };
                    o.action = v.action.replace(patterns::SINCE, &self.clock.at(o.start_s));
                    let last = self.last_emit.get(&key).copied().unwrap_or(f64::MIN);
                    if severity_changed || t - last >= 60.0 {
                        self.last_emit.insert(key, t);
                        out.push(Change::Updated(o.clone()));
                    }
                } else if t - first >= hold_s {
                    let start = v.start_s.map_or(first, |s| s.min(first));
                    let o = Observation {
                        id: Observation::make_id(v.kind, &v.subject, start),
                        kind: v.kind,
                        start_s: start,
                        confirmed_s: t,
                        end_s: None,
                        severity: v.severity,
                        subject: v.subject,
                        evidence: Evidence {
                            window_s: t - start,
                            ..v.evidence
                        },
                        cause: None,
                        action: v.action.replace(patterns::SINCE, &self.clock.at(start)),
                    };
                    self.last_emit.insert(key.clone(), t);
                    self.open.insert(key, o.clone());
                    out.push(Change::Opened(o));
                }
            }
            Some(false) => {
                h.active_since = None;
                if self.open.contains_key(&key) {
                    let since = *h.clear_since.get_or_insert(t);
                    if t - since >= release_s {
                        self.resolve(&key, since, out);
                    }
                }
            }
            // Not enough to judge (too few requests, a value in the dead band): an open
            // observation stays open, but a pending one must start its hold again, so that
            // two isolated bad samples never add up to a condition.
            None => {
                if !self.open.contains_key(&key) {
                    h.active_since = None;
                }
            }
        }
    }

    fn resolve(&mut self, key: &(Kind, String), end: f64, out: &mut Vec<Change>) {
        if let Some(mut o) = self.open.remove(key) {
            o.end_s = Some(end.max(o.start_s));
            self.holds.remove(key);
            self.last_emit.remove(key);
            out.push(Change::Resolved(o));
        }
    }

    fn model_drifts(&mut self, t: f64, e: &EngineFrame, learn: bool, out: &mut Vec<Change>) {
        if e.up == Some(false) || e.model.is_none() {
            return;
        }
        let running = e.requests_running;
        if running.is_some_and(|r| r <= 0.0) {
            return;
        }
        let subject = model_subject(e);
        for m in MODEL_METRICS {
            let x = match m.kind {
                Kind::TtftRegression => e.ttft_p50_ms,
                Kind::TpotRegression => e.tpot_p50_ms,
                _ => e.generation_tokens_per_s,
            };
            let prompt = (m.kind == Kind::TtftRegression)
                .then_some(e.prompt_tokens_mean)
                .flatten();
            let ctx = context(running, prompt);
            let key = format!(
                "{}|{}|{}|{}",
                e.engine,
                e.model.as_deref().unwrap_or(""),
                m.figure,
                ctx
            );
            self.drift(t, m, &subject, &key, &ctx, x, learn, out);
        }
    }

    fn wes_drift(&mut self, f: &Frame, learn: bool, out: &mut Vec<Change>) {
        let running: Option<f64> = f
            .engines
            .iter()
            .map(|e| e.requests_running)
            .try_fold(0.0, |a, r| r.map(|r| a + r));
        if running.is_some_and(|r| r <= 0.0) || f.engines.iter().any(|e| e.up == Some(false)) {
            return;
        }
        let mut models: Vec<&str> = f
            .engines
            .iter()
            .filter_map(|e| e.model.as_deref())
            .collect();
        models.sort_unstable();
        let ctx = context(running, None);
        let key = format!("node|{}|{}|{}", models.join("+"), WES_METRIC.figure, ctx);
        self.drift(
            t_of(f),
            WES_METRIC,
            "node",
            &key,
            &ctx,
            f.node.wes_penalized,
            learn,
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn drift(
        &mut self,
        t: f64,
        m: Metric,
        subject: &str,
        key: &str,
        ctx: &str,
        x: Option<f64>,
        learn: bool,
        out: &mut Vec<Change>,
    ) {
        if self.disabled.contains_key(&m.kind) {
            return;
        }
        let Some(x) = x.filter(|x| x.is_finite() && *x > 0.0) else {
            return;
        };
        let okey = (m.kind, subject.to_string());
        let is_open = self.open.contains_key(&okey);
        let d = self.drifts.entry(okey.clone()).or_default();
        let Some(normal) = self.baselines.normal(key) else {
            if learn && !is_open && d.calm() {
                self.baselines.entry(key).learn(t, x);
            }
            return;
        };
        let step = d.feed(
            t,
            x,
            normal.centre,
            normal.rel_sigma,
            m.higher_is_worse,
            is_open,
        );
        let calm = d.calm();
        let now = d.now();
        match step {
            Step::Confirm { onset, now } => {
                let o = Observation {
                    id: Observation::make_id(m.kind, subject, onset),
                    kind: m.kind,
                    start_s: onset,
                    confirmed_s: t,
                    end_s: None,
                    severity: symptom_severity(m, now, normal.centre),
                    subject: subject.to_string(),
                    evidence: Evidence {
                        figures: vec![Figure {
                            name: m.figure.into(),
                            baseline: Some(normal.centre),
                            now: Some(now),
                        }],
                        window_s: t - onset,
                        context: Some(ctx.to_string()),
                    },
                    cause: None,
                    action: String::new(),
                };
                self.open.insert(okey.clone(), o);
                self.refresh_action(&okey);
                self.last_emit.insert(okey.clone(), t);
                if let Some(o) = self.open.get(&okey) {
                    out.push(Change::Opened(o.clone()));
                }
            }
            Step::Recover { at } => self.resolve(&okey, at, out),
            Step::Nothing => {
                // "now" is the median of the last bad values: once the figure recovers, the
                // evidence keeps what the incident looked like.
                if let (Some(o), Some(now)) = (self.open.get_mut(&okey), now) {
                    o.evidence.window_s = t - o.start_s;
                    if let Some(fig) = o.evidence.figures.first_mut() {
                        fig.now = Some(now);
                    }
                }
                if learn && !is_open && calm {
                    self.baselines.entry(key).learn(t, x);
                }
            }
        }
    }

    fn refresh_action(&mut self, key: &(Kind, String)) {
        let tpot_calm = self
            .drifts
            .get(&(Kind::TpotRegression, key.1.clone()))
            .map(|d| d.last_rel.abs() < crate::drift::MIN_EFFECT);
        let cause_action = self
            .open
            .get(key)
            .and_then(|o| o.cause.as_ref())
            .and_then(|c| self.open.get(&(c.kind, c.subject.clone())))
            .map(|c| c.action.clone());
        let clock = self.clock;
        let Some(o) = self.open.get_mut(key) else {
            return;
        };
        o.action = symptom_action(o, tpot_calm, cause_action.as_deref(), clock);
    }

    fn link_causes(&mut self, t: f64, out: &mut Vec<Change>) {
        let mut found = Vec::new();
        for (key, o) in &self.open {
            if o.cause.is_some() || explained_by(o.kind).is_empty() {
                continue;
            }
            let cause = explained_by(o.kind).iter().find_map(|k| {
                self.open
                    .range((*k, String::new())..)
                    .take_while(|((kk, _), _)| kk == k)
                    .find(|((_, s), _)| covers(s, &o.subject))
                    .map(|(_, c)| Cause {
                        id: c.id.clone(),
                        kind: c.kind,
                        subject: c.subject.clone(),
                    })
            });
            if let Some(c) = cause {
                found.push((key.clone(), c));
            }
        }
        for (key, c) in found {
            if let Some(o) = self.open.get_mut(&key) {
                o.cause = Some(c);
            }
            if key.0.is_symptom() {
                self.refresh_action(&key);
            }
            self.last_emit.insert(key.clone(), t);
            if let Some(o) = self.open.get(&key) {
                out.push(Change::Updated(o.clone()));
            }
        }
    }

    fn expire(&mut self, t: f64, out: &mut Vec<Change>) {
        let stale: Vec<((Kind, String), f64)> = self
            .open
            .keys()
            .filter_map(|k| {
                let last = if k.0.is_symptom() {
                    let d = self.drifts.get(k)?;
                    (t - d.last_seen > STALE_S).then_some(d.last_bad)
                } else {
                    let h = self.holds.get(k)?;
                    (t - h.last_active > STALE_S && t - h.last_seen > 0.0).then_some(h.last_active)
                };
                last.map(|l| (k.clone(), l))
            })
            .collect();
        for (k, end) in stale {
            if let Some(d) = self.drifts.get_mut(&k) {
                d.reset();
            }
            self.resolve(&k, end, out);
        }
    }
}

fn t_of(f: &Frame) -> f64 {
    f.t_s
}

/// Whether a pattern on `pattern` can explain a symptom on `symptom`.
fn covers(pattern: &str, symptom: &str) -> bool {
    if pattern == "node" || pattern.starts_with("gpu:") {
        return true;
    }
    if let Some(engine) = pattern.strip_prefix("engine:") {
        return symptom.ends_with(&format!("@{engine}"));
    }
    pattern == symptom
}

fn symptom_severity(m: Metric, now: f64, base: f64) -> Severity {
    let bad = if m.higher_is_worse {
        now >= 2.0 * base
    } else {
        now <= 0.5 * base
    };
    if bad {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

fn symptom_action(
    o: &Observation,
    tpot_calm: Option<bool>,
    cause: Option<&str>,
    clock: Clock,
) -> String {
    let f = o.evidence.figures.first();
    let (base, now) = (
        f.and_then(|f| f.baseline).unwrap_or(0.0),
        f.and_then(|f| f.now).unwrap_or(0.0),
    );
    let ctx = o.evidence.context.as_deref().unwrap_or("");
    let who = o
        .subject
        .strip_prefix("model:")
        .map(|s| s.to_string())
        .unwrap_or_else(|| "the node".into());
    let what = match o.kind {
        Kind::TtftRegression => format!(
            "Median time to first token of {who} rose from {} to {} ms ({}) at the same load \
             ({ctx}){}",
            fmt_num(base),
            fmt_num(now),
            change(now, base),
            if tpot_calm == Some(true) {
                " while TPOT is flat: prompt processing (or the queue before it) is starved"
            } else {
                ""
            }
        ),
        Kind::TpotRegression => format!(
            "Time per output token of {who} rose from {} to {} ms ({}) at the same load \
             ({ctx}): decoding itself is slower",
            fmt_num(base),
            fmt_num(now),
            change(now, base)
        ),
        Kind::ThroughputDrop => format!(
            "Generation throughput of {who} fell from {} to {} tok/s ({}) at the same load \
             ({ctx})",
            fmt_num(base),
            fmt_num(now),
            change(now, base)
        ),
        _ => format!(
            "Penalized WES of the node fell from {} to {} ({}) at the same load ({ctx}): each \
             token costs more energy",
            fmt_num(base),
            fmt_num(now),
            change(now, base)
        ),
    };
    match (&o.cause, cause) {
        (Some(c), Some(a)) => format!("{what}. Cause: {} — {a}", c.kind),
        (Some(c), None) => format!("{what}. Cause: {} on {}.", c.kind, c.subject),
        _ => format!(
            "{what}, since {}. No hardware or engine pattern explains it: check what changed \
             then (prompt lengths, sampling settings, engine version or flags, other tenants).",
            clock.at(o.start_s)
        ),
    }
}
