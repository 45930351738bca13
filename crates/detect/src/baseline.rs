//! Contextual baselines: what is normal for one figure of one model on one engine at one load.
//!
//! Each key keeps the samples of the current minute (`recent`) and the medians of up to
//! [`LONG_MINUTES`] past minutes of activity at that load (`long`). The centre is the median
//! of the minute medians (robust to a spike, slow to follow a drift, so a drift stays visible
//! for hours), and the spread is an exponentially weighted mean absolute deviation relative to
//! the centre (×1.4826, the normal-consistent MAD scale), floored at [`MIN_REL_SIGMA`].
//! A key is usable once it holds [`WARM_SAMPLES`] samples. Samples are only learned while no
//! observation is open (the caller decides), so a fault never becomes normal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Minute medians kept per key (4 h of activity at that load).
pub const LONG_MINUTES: usize = 240;
/// Samples a key needs before it is compared against.
pub const WARM_SAMPLES: u64 = 30;
/// The smallest relative spread assumed (2 %): figures quantised or perfectly steady would
/// otherwise make every wobble look significant.
pub const MIN_REL_SIGMA: f64 = 0.02;
/// Keys kept at most; the least recently updated go first.
pub const MAX_KEYS: usize = 2048;

/// One figure's normal at one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Baseline {
    /// Samples of the minute being collected.
    pub recent: Vec<f32>,
    /// Start of that minute, seconds.
    pub recent_start_s: f64,
    /// Medians of past minutes, oldest first.
    pub long: Vec<f32>,
    /// Every sample while fewer than three minutes are in `long` (at most 256).
    #[serde(default)]
    pub warm: Vec<f32>,
    /// Mean absolute relative deviation from the centre, exponentially weighted.
    pub rel_dev: f64,
    /// Samples learned in total.
    pub samples: u64,
    /// Last time a sample was learned, seconds.
    pub updated_s: f64,
    #[serde(skip)]
    centre_cache: Option<f64>,
}

/// The normal of a figure: its centre and relative spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normal {
    /// Typical value.
    pub centre: f64,
    /// Relative standard deviation (robust), at least [`MIN_REL_SIGMA`].
    pub rel_sigma: f64,
}

/// The `q`-th percentile (0–100) of `values` by the project's one definition
/// (`infermon_model::stats`, NumPy-linear); `None` when empty.
pub(crate) fn percentile(values: &[f32], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().map(|v| f64::from(*v)).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    Some(infermon_model::stats::percentile_sorted(&sorted, q))
}

fn median(v: &[f32]) -> Option<f64> {
    percentile(v, 50.0)
}

impl Baseline {
    fn centre(&mut self) -> Option<f64> {
        if let Some(c) = self.centre_cache {
            return Some(c);
        }
        let c = if self.long.len() >= 3 {
            median(&self.long)
        } else {
            median(&self.warm)
        };
        self.centre_cache = c;
        c
    }

    /// The normal, once warm.
    pub fn normal(&mut self) -> Option<Normal> {
        if self.samples < WARM_SAMPLES {
            return None;
        }
        let centre = self.centre()?;
        if centre.abs() < f64::EPSILON {
            return None;
        }
        Some(Normal {
            centre,
            rel_sigma: (self.rel_dev * 1.4826).max(MIN_REL_SIGMA),
        })
    }

    /// Learns one sample taken at `t_s`.
    pub fn learn(&mut self, t_s: f64, v: f64) {
        if !v.is_finite() {
            return;
        }
        if let Some(c) = self.centre().filter(|c| c.abs() > f64::EPSILON) {
            // Deviations are clipped at 5× the current spread so one outlier moves it little.
            let dev = ((v - c) / c)
                .abs()
                .min(5.0 * self.rel_dev.max(MIN_REL_SIGMA));
            let alpha = if self.samples < WARM_SAMPLES {
                0.2
            } else {
                0.02
            };
            self.rel_dev += alpha * (dev - self.rel_dev);
        }
        if self.recent.is_empty() {
            self.recent_start_s = t_s;
        }
        self.recent.push(v as f32);
        if self.long.len() < 3 && self.warm.len() < 256 {
            self.warm.push(v as f32);
        }
        self.samples += 1;
        self.updated_s = t_s;
        if t_s - self.recent_start_s >= 60.0 {
            if let Some(m) = median(&self.recent) {
                self.long.push(m as f32);
                if self.long.len() > LONG_MINUTES {
                    self.long.remove(0);
                }
                if self.long.len() >= 3 {
                    self.warm = Vec::new();
                }
            }
            self.recent.clear();
        }
        self.centre_cache = None;
    }
}

/// Every key's baseline. Persisted by the agent (the store's `baselines` table), so what is
/// normal survives a restart; replay starts from an empty set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Baselines {
    /// Baselines by key `ENGINE|MODEL|FIGURE|CONTEXT`.
    pub keys: BTreeMap<String, Baseline>,
}

impl Baselines {
    /// The baseline of a key, created empty.
    pub fn entry(&mut self, key: &str) -> &mut Baseline {
        if !self.keys.contains_key(key) {
            if self.keys.len() >= MAX_KEYS {
                self.evict();
            }
            self.keys.insert(key.to_string(), Baseline::default());
        }
        // Inserted above when missing.
        self.keys.entry(key.to_string()).or_default()
    }

    /// The normal of a key, if it exists and is warm.
    pub fn normal(&mut self, key: &str) -> Option<Normal> {
        self.keys.get_mut(key).and_then(Baseline::normal)
    }

    fn evict(&mut self) {
        let oldest = self
            .keys
            .iter()
            .min_by(|a, b| a.1.updated_s.total_cmp(&b.1.updated_s))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.keys.remove(&k);
        }
    }
}

/// The load context of a figure: requests running (exact up to 8, then in bands of about a
/// quarter of an octave) and, for TTFT, the prompt-size band (powers of two of the mean
/// prompt length).
pub fn context(running: Option<f64>, prompt_tokens: Option<f64>) -> String {
    let r = match running {
        None => "r?".to_string(),
        Some(r) => {
            let r = r.max(0.0).round();
            if r <= 8.0 {
                format!("r{r}")
            } else {
                let band = (r.log2() * 4.0).floor() / 4.0;
                format!("r{:.0}+", 2f64.powf(band))
            }
        }
    };
    match prompt_tokens {
        Some(p) if p >= 1.0 => format!("{r},p{}", p.log2().floor() as i64),
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_then_normal_follows_the_median() {
        let mut b = Baseline::default();
        for i in 0..29 {
            b.learn(i as f64 * 2.0, 100.0);
        }
        assert!(b.normal().is_none(), "29 samples are not warm");
        b.learn(58.0, 100.0);
        let n = b.normal().unwrap();
        assert_eq!(n.centre, 100.0);
        assert_eq!(n.rel_sigma, MIN_REL_SIGMA);
        // Outliers barely move the centre.
        for i in 0..3 {
            b.learn(60.0 + i as f64, 1000.0);
        }
        assert_eq!(b.normal().unwrap().centre, 100.0);
    }

    #[test]
    fn spread_estimates_relative_deviation() {
        let mut b = Baseline::default();
        // Alternating ±5 % around 100: mean absolute deviation 5 %, sigma ≈ 7.4 %.
        for i in 0..2000 {
            let v = if i % 2 == 0 { 105.0 } else { 95.0 };
            b.learn(i as f64 * 2.0, v);
        }
        let n = b.normal().unwrap();
        assert!((n.centre - 100.0).abs() <= 5.0, "{n:?}");
        assert!((n.rel_sigma - 0.05 * 1.4826).abs() < 0.01, "{n:?}");
    }

    #[test]
    fn long_memory_holds_minute_medians() {
        let mut b = Baseline::default();
        for i in 0..(3600 / 2) {
            b.learn(i as f64 * 2.0, 50.0);
        }
        // A minute closes with the first sample 60 s after it opened: 31 samples, 62 s.
        assert!(b.long.len() >= 57 && b.long.len() <= 59, "{}", b.long.len());
        // Ten minutes at +20 % do not move a median of an hour.
        for i in 0..300 {
            b.learn(3600.0 + i as f64 * 2.0, 60.0);
        }
        assert_eq!(b.normal().unwrap().centre, 50.0);
    }

    #[test]
    fn contexts() {
        assert_eq!(context(Some(2.0), None), "r2");
        assert_eq!(context(Some(3.6), None), "r4");
        assert_eq!(context(None, None), "r?");
        assert_eq!(context(Some(12.0), None), "r11+");
        assert_eq!(context(Some(1.0), Some(700.0)), "r1,p9");
    }

    #[test]
    fn persisted_form_round_trips_and_keys_are_capped() {
        let mut all = Baselines::default();
        for i in 0..(MAX_KEYS + 5) {
            all.entry(&format!("k{i}")).learn(i as f64, 1.0);
        }
        assert_eq!(all.keys.len(), MAX_KEYS);
        assert!(!all.keys.contains_key("k0"), "oldest evicted");
        let json = serde_json::to_string(&all).unwrap();
        let back: Baselines = serde_json::from_str(&json).unwrap();
        assert_eq!(back.keys.len(), MAX_KEYS);
    }
}
