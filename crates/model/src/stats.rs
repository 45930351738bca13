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

    /// Like [`Summary::of`], reordering `values` in place (no copy). The percentiles are
    /// the same as from a sorted copy, but only the order statistics they need are found
    /// (selection, O(n)), not the whole order: a window of hundreds of thousands of
    /// inter-token gaps is summarised in a few milliseconds.
    pub fn of_owned(values: &mut Vec<f64>) -> Option<Summary> {
        values.retain(|x| x.is_finite());
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let qs = [50.0, 90.0, 99.0];
        // Ranks each percentile interpolates between, largest first; each is selected in the
        // part left of the one before (which holds exactly the smaller values).
        let mut ranks: Vec<usize> = qs
            .iter()
            .flat_map(|q| {
                let (lo, hi, _) = ranks_of(n, *q);
                [lo, hi]
            })
            .collect();
        ranks.sort_unstable_by(|a, b| b.cmp(a));
        ranks.dedup();
        let mut bound = n;
        for &k in &ranks {
            values[..bound].select_nth_unstable_by(k, f64::total_cmp);
            bound = k;
        }
        let at = |q: f64| {
            let (lo, hi, frac) = ranks_of(n, q);
            values[lo] + (values[hi] - values[lo]) * frac
        };
        Some(Summary {
            count: n as u64,
            mean,
            min,
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max,
        })
    }
}

/// The two ranks the `q`-th percentile of `n` values interpolates between, and how far.
fn ranks_of(n: usize, q: f64) -> (usize, usize, f64) {
    if n < 2 {
        return (0, 0, 0.0);
    }
    let rank = (q.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    (lo, hi, rank - lo as f64)
}

/// The `q`-th percentile (0–100) of sorted, finite `values`, interpolating linearly between
/// the closest ranks; NaN for an empty slice.
pub fn percentile_sorted(values: &[f64], q: f64) -> f64 {
    match values.len() {
        0 => f64::NAN,
        1 => values[0],
        n => {
            let (lo, hi, frac) = ranks_of(n, q);
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
    fn selection_gives_the_percentiles_of_a_full_sort() {
        // A deterministic scramble with many ties, of every length up to 300.
        for n in 1..300usize {
            let v: Vec<f64> = (0..n).map(|i| ((i * 7919) % 97) as f64 / 7.0).collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let s = Summary::of(&v).unwrap();
            for (q, got) in [(50.0, s.p50), (90.0, s.p90), (99.0, s.p99)] {
                assert_eq!(got, percentile_sorted(&sorted, q), "n {n} q {q}");
            }
            assert_eq!((s.min, s.max), (sorted[0], sorted[n - 1]));
        }
    }

    #[test]
    fn empty_and_non_finite_give_none() {
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN, f64::INFINITY]).is_none());
        let s = Summary::of(&[f64::NAN, 2.0]).unwrap();
        assert_eq!((s.count, s.p99), (1, 2.0));
    }
}
