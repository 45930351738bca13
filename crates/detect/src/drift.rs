//! Symptoms: a figure drifting from its contextual baseline at the same load.
//!
//! Per (symptom, subject) a one-sided CUSUM runs over the standardised relative deviation
//! `z = (x / centre − 1) / σ` (sign flipped where lower is worse), `S ← max(0, S + min(z, Z_CLIP) − K)`.
//! The onset is the tick where `S` last left zero. A symptom opens when `S ≥ H`, at least
//! [`MIN_SPAN_S`] have passed since the onset, and three quarters of the values since the
//! onset are worse than the baseline by [`MIN_EFFECT`] or more (a size gate: statistically
//! clear but small shifts stay quiet). It resolves after [`RECOVER_S`] within half that
//! effect of the baseline.

use std::collections::VecDeque;

use crate::observation::Kind;

/// CUSUM allowance, in σ: deviations under 2σ never accumulate.
pub(crate) const K: f64 = 2.0;
/// CUSUM decision threshold, in σ.
pub(crate) const H: f64 = 10.0;
/// One tick adds at most this many σ, so a single spike cannot confirm a drift.
pub(crate) const Z_CLIP: f64 = 6.0;
/// Smallest relative change reported (10 %).
pub(crate) const MIN_EFFECT: f64 = 0.10;
/// A symptom is confirmed no sooner than this after its onset (lets a pattern that explains
/// it confirm first, so the first report already carries its cause).
pub(crate) const MIN_SPAN_S: f64 = 10.0;
/// Seconds back within half the effect before a symptom resolves.
pub(crate) const RECOVER_S: f64 = 30.0;
/// An open symptom without data for this long resolves at its last bad sample.
pub(crate) const STALE_S: f64 = 600.0;

/// What drifts, and which way is worse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    pub kind: Kind,
    pub figure: &'static str,
    pub higher_is_worse: bool,
}

/// The per-model symptoms.
pub(crate) const MODEL_METRICS: [Metric; 3] = [
    Metric {
        kind: Kind::TtftRegression,
        figure: "ttft_p50_ms",
        higher_is_worse: true,
    },
    Metric {
        kind: Kind::TpotRegression,
        figure: "tpot_p50_ms",
        higher_is_worse: true,
    },
    Metric {
        kind: Kind::ThroughputDrop,
        figure: "generation_tokens_per_s",
        higher_is_worse: false,
    },
];

/// The node symptom.
pub(crate) const WES_METRIC: Metric = Metric {
    kind: Kind::EfficiencyDrift,
    figure: "wes_penalized",
    higher_is_worse: false,
};

/// CUSUM state of one (symptom, subject).
#[derive(Debug, Default, Clone)]
pub(crate) struct Drift {
    pub s: f64,
    pub onset: Option<f64>,
    /// Values since the onset (at most 128).
    pub since: Vec<f32>,
    /// The last values that were worse than the baseline by the minimum effect: the
    /// evidence's "now" (so a resolved observation keeps what the incident looked like).
    pub recent: VecDeque<f32>,
    pub recovered_since: Option<f64>,
    pub last_seen: f64,
    pub last_bad: f64,
    /// Relative deviation of the last value (worse positive).
    pub last_rel: f64,
}

/// What one value did to a drift.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Nothing,
    /// Confirmed: onset and the median since it.
    Confirm {
        onset: f64,
        now: f64,
    },
    /// Back to normal since this time.
    Recover {
        at: f64,
    },
}

/// The `q`-th quantile (0–1) of a non-empty slice.
fn quantile(v: &[f32], q: f64) -> f64 {
    crate::baseline::percentile(v, q * 100.0).unwrap_or(f64::NAN)
}

impl Drift {
    /// The median of the last bad values.
    pub fn now(&self) -> Option<f64> {
        (!self.recent.is_empty()).then(|| {
            let v: Vec<f32> = self.recent.iter().copied().collect();
            quantile(&v, 0.5)
        })
    }

    /// Feeds one value against the baseline `(centre, rel_sigma)`; `open` says whether the
    /// symptom is open now.
    pub fn feed(
        &mut self,
        t: f64,
        x: f64,
        centre: f64,
        rel_sigma: f64,
        higher_is_worse: bool,
        open: bool,
    ) -> Step {
        self.last_seen = t;
        let sign = if higher_is_worse { 1.0 } else { -1.0 };
        let rel = sign * (x / centre - 1.0);
        self.last_rel = rel;
        if rel >= MIN_EFFECT {
            self.last_bad = t;
            self.recent.push_back(x as f32);
            if self.recent.len() > 15 {
                self.recent.pop_front();
            }
        }
        if open {
            if rel < MIN_EFFECT / 2.0 {
                let since = *self.recovered_since.get_or_insert(t);
                if t - since >= RECOVER_S {
                    self.reset();
                    return Step::Recover { at: since };
                }
            } else {
                self.recovered_since = None;
            }
            return Step::Nothing;
        }
        let z = (rel / rel_sigma).min(Z_CLIP);
        let s = (self.s + z - K).max(0.0);
        if s == 0.0 {
            self.onset = None;
            self.since.clear();
        } else if self.s == 0.0 || self.onset.is_none() {
            self.onset = Some(t);
            self.since.clear();
        }
        self.s = s;
        if self.onset.is_some() && self.since.len() < 128 {
            self.since.push(x as f32);
        }
        let Some(onset) = self.onset else {
            return Step::Nothing;
        };
        if s < H || t - onset < MIN_SPAN_S || self.since.len() < 4 {
            return Step::Nothing;
        }
        // Three quarters of the values since the onset are worse by the minimum effect.
        let q = if higher_is_worse { 0.25 } else { 0.75 };
        let gate = sign * (quantile(&self.since, q) / centre - 1.0);
        if gate < MIN_EFFECT {
            return Step::Nothing;
        }
        let now = quantile(&self.since, 0.5);
        self.recovered_since = None;
        Step::Confirm { onset, now }
    }

    /// Back to zero after a recovery.
    pub fn reset(&mut self) {
        self.recent.clear();
        self.s = 0.0;
        self.onset = None;
        self.since.clear();
        self.recovered_since = None;
    }

    /// Whether learning from this subject's values is safe (no drift building up).
    pub fn calm(&self) -> bool {
        self.s < H / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: &[f64]) -> Vec<(usize, Step)> {
        let mut d = Drift::default();
        let mut open = false;
        let mut out = Vec::new();
        for (i, &x) in values.iter().enumerate() {
            let st = d.feed(i as f64 * 2.0, x, 100.0, 0.03, true, open);
            match st {
                Step::Confirm { .. } => open = true,
                Step::Recover { .. } => open = false,
                Step::Nothing => continue,
            }
            out.push((i, st));
        }
        out
    }

    #[test]
    fn a_15_percent_step_is_dated_at_its_onset() {
        let mut v = vec![100.0; 50];
        v.extend(vec![115.0; 50]);
        let got = run(&v);
        assert_eq!(got.len(), 1, "{got:?}");
        let (i, Step::Confirm { onset, now }) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(
            *onset, 100.0,
            "onset at the first high sample (t = 50 × 2 s)"
        );
        assert!(*i <= 56, "confirmed within 12 s: tick {i}");
        assert_eq!(*now, 115.0);
    }

    #[test]
    fn spikes_and_small_shifts_stay_quiet() {
        let mut v = vec![100.0; 40];
        v.extend([400.0, 400.0, 100.0, 100.0, 100.0, 100.0]);
        v.extend(vec![106.0; 200]); // +6 %: real, but under the 10 % effect
        assert!(run(&v).is_empty());
    }

    #[test]
    fn recovers_after_thirty_seconds_back_to_normal() {
        let mut v = vec![100.0; 20];
        v.extend(vec![130.0; 20]);
        v.extend(vec![101.0; 20]);
        let got = run(&v);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].1, Step::Recover { at: 80.0 });
    }

    #[test]
    fn lower_is_worse_for_throughput() {
        let mut d = Drift::default();
        let mut confirmed = None;
        for i in 0..60 {
            let x = if i < 30 { 50.0 } else { 35.0 };
            if let Step::Confirm { onset, .. } = d.feed(i as f64 * 2.0, x, 50.0, 0.02, false, false)
            {
                confirmed = Some(onset);
                break;
            }
        }
        assert_eq!(confirmed, Some(60.0));
    }
}
