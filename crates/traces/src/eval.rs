//! Evaluation: every labelled trace through `infermon_detect::replay`, scored against its
//! labels. Pure; the `evaluate` binary prints it and `tests/evaluate.rs` holds the targets.
//!
//! Per expected observation: found (an observation of its kind whose span overlaps the
//! label's), its **delay** (confirmation − labelled onset), its **dating error** (reported
//! start − labelled onset) and, for a symptom with a labelled cause, whether the reported cause
//! is that kind (and for one labelled without cause, that none is reported). Every other
//! observation that is neither expected nor allowed in that trace is a **false alarm**.

use infermon_detect::{replay, trace, Kind, Observation};

use crate::{Expect, Trace};

/// One expected observation and what was found for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Trace name.
    pub trace: String,
    /// The label.
    pub expect: Expect,
    /// Confirmation − onset, seconds (`None`: not found).
    pub delay_s: Option<f64>,
    /// Reported start − onset, seconds.
    pub dating_s: Option<f64>,
    /// The cause reported (kind name), when found.
    pub cause: Option<String>,
}

impl Hit {
    /// Found and, for a symptom, with the labelled cause (none when none is labelled).
    /// Causes are labelled on symptoms only; a pattern's own cause (a queue backlog from KV
    /// saturation) is not scored.
    pub fn cause_ok(&self) -> bool {
        let symptom = Kind::parse(&self.expect.kind).is_some_and(Kind::is_symptom);
        self.delay_s.is_some() && (!symptom || self.cause == self.expect.cause)
    }
}

/// One trace's score.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceScore {
    /// Trace name.
    pub name: String,
    /// Rows replayed.
    pub rows: usize,
    /// Simulated hours.
    pub hours: f64,
    /// Quiet trace (nothing but allowed kinds may appear).
    pub quiet: bool,
    /// Expected observations and what was found.
    pub hits: Vec<Hit>,
    /// Observations neither expected nor allowed.
    pub false_alarms: Vec<Observation>,
    /// Symptoms whose cause is not a kind expected in the trace.
    pub wrong_causes: Vec<Observation>,
    /// Wall time of the replay, seconds.
    pub replay_s: f64,
}

fn overlaps(o: &Observation, e: &Expect) -> bool {
    let o_end = o.end_s.unwrap_or(f64::INFINITY);
    let e_end = e.end_s.unwrap_or(f64::INFINITY);
    o.start_s <= e_end && o_end >= e.onset_s - 60.0
}

/// Scores one trace.
pub fn score(t: &Trace) -> Result<TraceScore, String> {
    let started = std::time::Instant::now();
    let parsed = trace::parse(&t.csv).map_err(|e| format!("{}: {e}", t.name))?;
    let r = replay(&parsed);
    let replay_s = started.elapsed().as_secs_f64();
    let l = &t.labels;
    let expected_kinds: Vec<&str> = l.expect.iter().map(|e| e.kind.as_str()).collect();
    let mut hits = Vec::new();
    for e in &l.expect {
        let found = r
            .observations
            .iter()
            .filter(|o| o.kind.as_str() == e.kind && overlaps(o, e))
            .min_by(|a, b| {
                (a.start_s - e.onset_s)
                    .abs()
                    .total_cmp(&(b.start_s - e.onset_s).abs())
            });
        hits.push(Hit {
            trace: t.name.clone(),
            expect: e.clone(),
            delay_s: found.map(|o| o.confirmed_s - e.onset_s),
            dating_s: found.map(|o| o.start_s - e.onset_s),
            cause: found.and_then(|o| o.cause.as_ref().map(|c| c.kind.as_str().to_string())),
        });
    }
    let false_alarms: Vec<Observation> = r
        .observations
        .iter()
        .filter(|o| {
            let k = o.kind.as_str();
            !expected_kinds.contains(&k) && !l.allowed.iter().any(|a| a == k)
        })
        .cloned()
        .collect();
    let wrong_causes = r
        .observations
        .iter()
        .filter(|o| o.kind.is_symptom())
        .filter(|o| {
            o.cause
                .as_ref()
                .is_some_and(|c| !expected_kinds.contains(&c.kind.as_str()))
        })
        .cloned()
        .collect();
    // Each row stands for one step of time: n rows cover n steps.
    let hours = match parsed.frames.as_slice() {
        [a, b, ..] => (parsed.frames.len() as f64) * (b.t_s - a.t_s) / 3600.0,
        _ => 0.0,
    };
    Ok(TraceScore {
        name: t.name.clone(),
        rows: r.frames,
        hours,
        quiet: l.quiet,
        hits,
        false_alarms,
        wrong_causes,
        replay_s,
    })
}

/// Per kind: expected, found, worst delay and worst dating error, causes right.
#[derive(Debug, Clone, PartialEq)]
pub struct KindRow {
    /// Kind.
    pub kind: Kind,
    /// Expected observations of it.
    pub expected: usize,
    /// Found.
    pub found: usize,
    /// Largest delay, seconds.
    pub max_delay_s: Option<f64>,
    /// Largest |dating error|, seconds.
    pub max_dating_s: Option<f64>,
    /// Found with the labelled cause (or none when none is labelled).
    pub cause_ok: usize,
}

/// Rolls hits up by kind.
pub fn by_kind(scores: &[TraceScore]) -> Vec<KindRow> {
    Kind::ALL
        .iter()
        .filter_map(|k| {
            let hits: Vec<&Hit> = scores
                .iter()
                .flat_map(|s| &s.hits)
                .filter(|h| h.expect.kind == k.as_str())
                .collect();
            if hits.is_empty() {
                return None;
            }
            let max = |f: fn(&Hit) -> Option<f64>| {
                hits.iter()
                    .filter_map(|h| f(h))
                    .map(f64::abs)
                    .reduce(f64::max)
            };
            Some(KindRow {
                kind: *k,
                expected: hits.len(),
                found: hits.iter().filter(|h| h.delay_s.is_some()).count(),
                max_delay_s: max(|h| h.delay_s),
                max_dating_s: max(|h| h.dating_s),
                cause_ok: hits.iter().filter(|h| h.cause_ok()).count(),
            })
        })
        .collect()
}

/// A Markdown report of every score.
pub fn report(scores: &[TraceScore]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| kind | expected | found | max delay | max dating error | cause right |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    let s = |v: Option<f64>| v.map(|x| format!("{x:.0} s")).unwrap_or_else(|| "–".into());
    for r in by_kind(scores) {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {}/{} |",
            r.kind,
            r.expected,
            r.found,
            s(r.max_delay_s),
            s(r.max_dating_s),
            r.cause_ok,
            r.found
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| trace | rows | hours | false alarms | per 24 h | wrong causes | replay |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for t in scores {
        let per_day = if t.hours > 0.0 {
            t.false_alarms.len() as f64 * 24.0 / t.hours
        } else {
            0.0
        };
        let _ = writeln!(
            o,
            "| {}{} | {} | {:.1} | {} | {:.1} | {} | {:.0} ms |",
            t.name,
            if t.quiet { " (quiet)" } else { "" },
            t.rows,
            t.hours,
            t.false_alarms.len(),
            per_day,
            t.wrong_causes.len(),
            t.replay_s * 1000.0
        );
    }
    for t in scores {
        for f in t.false_alarms.iter().chain(&t.wrong_causes) {
            let _ = writeln!(
                o,
                "- {}: {} on {} at {:.0} s (cause {:?})",
                t.name,
                f.kind,
                f.subject,
                f.start_s,
                f.cause.as_ref().map(|c| c.kind.as_str())
            );
        }
        for h in t.hits.iter().filter(|h| !h.cause_ok()) {
            let _ = writeln!(
                o,
                "- {}: expected {} at {:.0} s (cause {:?}): found {}, cause {:?}",
                t.name,
                h.expect.kind,
                h.expect.onset_s,
                h.expect.cause,
                h.delay_s.is_some(),
                h.cause
            );
        }
    }
    o
}
