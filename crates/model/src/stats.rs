//! Distribution summaries: the one percentile definition every latency figure uses.
//!
//! Percentiles interpolate linearly between the two nearest ranks (NumPy's default, which is
//! what vLLM's `bench serve` reports), so infermon's p50/p90/p99 can be compared with it.

use serde::{Deserialize, Serialize};

/// Mean and percentiles of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises `values` (non-finite values are ignored); `None` when none are left.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        Summary::of_owned(&mut v)
    }

    /// Like [`Summary::of`], sorting `values` in place (no copy).
    pub fn of_owned(values: &mut Vec<f64>) -> Option<Summary> {
        values.retain(|x| x.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        Some(Summary {
            count: n as u64,
            mean,
            min: values[0],
            p50: percentile_sorted(values, 50.0),
            p90: percentile_sorted(values, 90.0),
            p99: percentile_sorted(values, 99.0),
            max: values[n - 1],
        })
    }
}

/// The `q`-th percentile (0–100) of sorted, finite `values`, interpolating linearly between
/// the closest ranks; NaN for an empty slice.
pub fn percentile_sorted(values: &[f64], q: f64) -> f64 {
    match values.len() {
        0 => f64::NAN,
        1 => values[0],
        n => {
            let rank = (q.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = rank - lo as f64;
            values[lo] + (values[hi] - values[lo]) * frac
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn matches_numpy_linear_percentiles() {
        // numpy.percentile([1, 2, 3, 4, 10], [50, 90, 99]) == [3.0, 7.6, 9.76]
        let s = Summary::of(&[10.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.p50, 3.0);
        assert!((s.p90 - 7.6).abs() < 1e-12);
        assert!((s.p99 - 9.76).abs() < 1e-12);
        assert_eq!(s.mean, 4.0);
        assert_eq!((s.min, s.max, s.count), (1.0, 10.0, 5));
    }

    #[test]
    fn empty_and_non_finite_give_none() {
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN, f64::INFINITY]).is_none());
        let s = Summary::of(&[f64::NAN, 2.0]).unwrap();
        assert_eq!((s.count, s.p99), (1, 2.0));
    }
}
