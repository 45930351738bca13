//! Pareto front and knee of a quantization sweep. Pure.
//!
//! **Front.** A point is on the front when no other point is at least as good on every
//! objective and better on one. The objectives: tokens per second (higher is better),
//! perplexity (lower) and file size (smaller). Only *eligible* points take part: a measured
//! speed (finite, > 0) and, when any point has a perplexity, a perplexity (finite, > 0); a
//! point whose run or perplexity failed is never on the front. When no point has a
//! perplexity, the front is over speed and size alone. Size counts only when every eligible
//! point has one (a model a server offers by name may not say); otherwise it is left out of
//! the comparison, and with neither perplexity nor sizes the fastest point is the knee.
//!
//! **Knee** (the sweet spot). In the speed-vs-quality plane, quality being perplexity (or size
//! when no point has one), each front point gets two ratios to the best front value:
//! `s = tokens/s ÷ fastest` and `q = lowest perplexity ÷ perplexity`, both in (0, 1], 1 best.
//! Draw the line from the fastest front point `A` (highest `s`; ties: higher `q`) to the most
//! accurate one `B` (highest `q`; ties: higher `s`). The knee is the front point farthest from
//! that line on the side of the ideal (1, 1) — the point that gives up least of both, as in
//! Kneedle (Satopää et al., 2011). The farthest point does not depend on how either axis is
//! scaled. When no point lies strictly beyond the line (one or two points in the plane, or all
//! on the line), the knee is the front point closest to (1, 1), i.e. losing least against the
//! best of each axis. Remaining ties go to the smaller file, then to the earlier point. There
//! is exactly one knee when the front is not empty.

/// What is known about one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objectives {
    /// Output tokens per second; `None` when the run failed.
    pub tokens_per_second: Option<f64>,
    /// Perplexity; `None` when not measured.
    pub perplexity: Option<f64>,
    /// File size, bytes (`None` when unknown).
    pub size_bytes: Option<u64>,
}

/// The second axis of the knee's plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// Perplexity (some point had one).
    Perplexity,
    /// File size (no point had a perplexity).
    Size,
    /// Nothing but speed (no perplexity, sizes not all known).
    Speed,
}

/// The front and its knee, indexed like the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Front {
    /// Whether each point is on the front.
    pub on_front: Vec<bool>,
    /// The knee's index; `None` only when the front is empty.
    pub knee: Option<usize>,
    /// What the knee traded speed against.
    pub quality: Quality,
}

/// Distances closer than this count as equal.
const EPS: f64 = 1e-12;

fn positive(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x > 0.0)
}

/// Computes the front and the knee (see the module docs).
pub fn analyse(points: &[Objectives]) -> Front {
    let with_ppl = points
        .iter()
        .any(|p| positive(p.tokens_per_second).is_some() && positive(p.perplexity).is_some());
    // (speed, perplexity or 0) for eligible points.
    let rated: Vec<Option<(f64, f64)>> = points
        .iter()
        .map(|p| {
            let tps = positive(p.tokens_per_second)?;
            let ppl = if with_ppl {
                positive(p.perplexity)?
            } else {
                0.0
            };
            Some((tps, ppl))
        })
        .collect();
    let sized = rated
        .iter()
        .zip(points)
        .all(|(r, p)| r.is_none() || p.size_bytes.is_some());
    let quality = match (with_ppl, sized) {
        (true, _) => Quality::Perplexity,
        (false, true) => Quality::Size,
        (false, false) => Quality::Speed,
    };
    // (speed, perplexity or 0, size or 0) for eligible points.
    let eligible: Vec<Option<(f64, f64, f64)>> = rated
        .iter()
        .zip(points)
        .map(|(r, p)| {
            let (tps, ppl) = (*r)?;
            let size = if sized {
                p.size_bytes.unwrap_or(0) as f64
            } else {
                0.0
            };
            Some((tps, ppl, size))
        })
        .collect();
    let dominates = |a: (f64, f64, f64), b: (f64, f64, f64)| {
        a.0 >= b.0 && a.1 <= b.1 && a.2 <= b.2 && (a.0 > b.0 || a.1 < b.1 || a.2 < b.2)
    };
    let on_front: Vec<bool> = eligible
        .iter()
        .map(|p| p.is_some_and(|p| !eligible.iter().flatten().any(|other| dominates(*other, p))))
        .collect();
    let knee = knee(points, &eligible, &on_front, quality);
    Front {
        on_front,
        knee,
        quality,
    }
}

fn knee(
    points: &[Objectives],
    eligible: &[Option<(f64, f64, f64)>],
    on_front: &[bool],
    quality: Quality,
) -> Option<usize> {
    let front: Vec<(usize, f64, f64)> = eligible
        .iter()
        .enumerate()
        .filter(|(i, _)| on_front[*i])
        .filter_map(|(i, p)| {
            let (tps, ppl, size) = (*p)?;
            let cost = match quality {
                Quality::Perplexity => ppl,
                Quality::Size => size.max(1.0),
                Quality::Speed => 1.0,
            };
            Some((i, tps, cost))
        })
        .collect();
    let fastest = front.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let best = front.iter().map(|p| p.2).fold(f64::MAX, f64::min);
    let plane: Vec<Ratio> = front
        .iter()
        .map(|&(i, tps, cost)| Ratio {
            i,
            s: tps / fastest,
            q: best / cost,
        })
        .collect();
    let size = |i: usize| points[i].size_bytes.unwrap_or(u64::MAX);
    // The best candidate by a key compared in order (higher wins, within EPS), then the
    // smaller file, then the earlier point.
    let pick = |key: &dyn Fn(&Ratio) -> [f64; 2]| {
        plane.iter().copied().reduce(|a, b| {
            let (ka, kb) = (key(&a), key(&b));
            for (x, y) in ka.iter().zip(kb.iter()) {
                if (y - x).abs() > EPS {
                    return if y > x { b } else { a };
                }
            }
            if size(b.i) < size(a.i) {
                b
            } else {
                a
            }
        })
    };
    let a = pick(&|p| [p.s, p.q])?;
    let b = pick(&|p| [p.q, p.s])?;
    if a.i != b.i {
        // Normal of A→B pointing to (1, 1): A has the higher s, B the higher q.
        let (nx, ny) = (b.q - a.q, a.s - b.s);
        let len = nx.hypot(ny);
        let dist = |p: &Ratio| ((p.s - a.s) * nx + (p.q - a.q) * ny) / len;
        if let Some(k) = pick(&|p| [dist(p), 0.0]).filter(|k| dist(k) > EPS) {
            return Some(k.i);
        }
    }
    pick(&|p| [-(1.0 - p.s).hypot(1.0 - p.q), 0.0]).map(|k| k.i)
}

/// A front point in the knee's plane: ratios to the best front value, 1 best.
#[derive(Debug, Clone, Copy)]
struct Ratio {
    /// Index of the point.
    i: usize,
    /// Tokens/s ÷ the fastest.
    s: f64,
    /// Lowest perplexity (or size) ÷ this one's.
    q: f64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pt(tps: f64, ppl: f64, size: u64) -> Objectives {
        Objectives {
            tokens_per_second: Some(tps),
            perplexity: Some(ppl),
            size_bytes: Some(size),
        }
    }

    #[test]
    fn knee_is_farthest_above_the_line_of_the_extremes() {
        // Ratios (s = tps/10, q = 5/ppl): A (1, 0.5), K (0.8, 0.90909), C (0.4, 1).
        // Line A→C, normal (0.5, 0.6), |A→C| = sqrt(0.61) = 0.781025.
        // d(K) = (-0.2·0.5 + 0.40909·0.6) / 0.781025 = 0.18623 > 0: the knee.
        // D (5, 9, 40) is dominated by K (faster, better, smaller).
        // E (3, 12, 5) is the smallest file, so on the front, but below the line:
        // d(E) = (-0.7·0.5 + (0.41667 - 0.5)·0.6) / 0.781025 = -0.512.
        let f = analyse(&[
            pt(10.0, 10.0, 10),
            pt(8.0, 5.5, 20),
            pt(4.0, 5.0, 30),
            pt(5.0, 9.0, 40),
            pt(3.0, 12.0, 5),
        ]);
        assert_eq!(f.on_front, vec![true, true, true, false, true]);
        assert_eq!(f.knee, Some(1));
        assert_eq!(f.quality, Quality::Perplexity);
    }

    #[test]
    fn the_line_method_ignores_axis_scale() {
        // Same shape as above with tokens/s ×1000: same knee.
        let f = analyse(&[
            pt(10_000.0, 10.0, 10),
            pt(8_000.0, 5.5, 20),
            pt(4_000.0, 5.0, 30),
        ]);
        assert_eq!(f.knee, Some(1));
    }

    #[test]
    fn two_points_knee_closest_to_ideal() {
        // s: 1, 0.9; q = 6/ppl: 0.75, 1. Distance to (1, 1): 0.25 vs 0.1 → the second.
        let f = analyse(&[pt(10.0, 8.0, 10), pt(9.0, 6.0, 20)]);
        assert_eq!(f.on_front, vec![true, true]);
        assert_eq!(f.knee, Some(1));
        // Mirror: q 0.9 vs 1, s 1 vs 0.75 → the first loses 0.1, the second 0.25.
        let f = analyse(&[pt(10.0, 6.0 / 0.9, 10), pt(7.5, 6.0, 20)]);
        assert_eq!(f.knee, Some(0));
    }

    #[test]
    fn collinear_points_fall_back_to_ideal_distance() {
        // Ratios (1, 0.5), (0.75, 0.75), (0.5, 1) lie on one line (d = 0 for the middle).
        // Distances to (1, 1): 0.5, 0.3536, 0.5 → the middle one.
        let f = analyse(&[pt(8.0, 10.0, 1), pt(6.0, 5.0 / 0.75, 2), pt(4.0, 5.0, 3)]);
        assert_eq!(f.knee, Some(1));
    }

    #[test]
    fn failed_and_unmeasured_points_are_never_on_the_front() {
        let failed = Objectives {
            tokens_per_second: None,
            perplexity: Some(1.0),
            size_bytes: Some(1),
        };
        let no_ppl = Objectives {
            tokens_per_second: Some(100.0),
            perplexity: None,
            size_bytes: Some(1),
        };
        let zero = Objectives {
            tokens_per_second: Some(0.0),
            perplexity: Some(1.0),
            size_bytes: Some(1),
        };
        let f = analyse(&[failed, pt(5.0, 5.0, 10), no_ppl, zero]);
        assert_eq!(f.on_front, vec![false, true, false, false]);
        assert_eq!(f.knee, Some(1));
    }

    #[test]
    fn without_perplexity_size_is_the_quality_axis() {
        let np = |tps: f64, size: u64| Objectives {
            tokens_per_second: Some(tps),
            perplexity: None,
            size_bytes: Some(size),
        };
        // (10, 100), (9, 40), (5, 30), (4, 50): the last is dominated by (5, 30).
        // Ratios (s, q = 30/size): (1, 0.3), (0.9, 0.75), (0.5, 1). Line from the first to
        // the third, normal (0.7, 0.5): d(second) = (-0.1·0.7 + 0.45·0.5)/0.86023 = 0.180 → knee.
        let f = analyse(&[np(10.0, 100), np(9.0, 40), np(5.0, 30), np(4.0, 50)]);
        assert_eq!(f.quality, Quality::Size);
        assert_eq!(f.on_front, vec![true, true, true, false]);
        assert_eq!(f.knee, Some(1));
    }

    #[test]
    fn ties_go_to_the_smaller_file_then_the_earlier_point() {
        // Same speed and perplexity: the smaller file dominates.
        let f = analyse(&[pt(5.0, 5.0, 20), pt(5.0, 5.0, 10)]);
        assert_eq!(f.on_front, vec![false, true]);
        assert_eq!(f.knee, Some(1));
        // Identical points: both on the front, the first is the knee.
        let f = analyse(&[pt(5.0, 5.0, 10), pt(5.0, 5.0, 10)]);
        assert_eq!(f.on_front, vec![true, true]);
        assert_eq!(f.knee, Some(0));
    }

    #[test]
    fn unknown_sizes_leave_size_out() {
        let p = |tps: f64, ppl: Option<f64>, size: Option<u64>| Objectives {
            tokens_per_second: Some(tps),
            perplexity: ppl,
            size_bytes: size,
        };
        // With perplexity: (10, 10, ?) and (8, 9, 5): neither dominates on speed and
        // perplexity alone, so both stay on the front although one size is unknown.
        let f = analyse(&[p(10.0, Some(10.0), None), p(8.0, Some(9.0), Some(5))]);
        assert_eq!(f.on_front, vec![true, true]);
        // Without perplexity and a size missing: speed alone, the fastest is the knee.
        let f = analyse(&[
            p(5.0, None, Some(10)),
            p(9.0, None, None),
            p(7.0, None, Some(1)),
        ]);
        assert_eq!(f.quality, Quality::Speed);
        assert_eq!(f.on_front, vec![false, true, false]);
        assert_eq!(f.knee, Some(1));
    }

    #[test]
    fn one_point_is_its_own_knee_and_none_gives_none() {
        let f = analyse(&[pt(1.0, 30.0, 5)]);
        assert_eq!((f.on_front, f.knee), (vec![true], Some(0)));
        let f = analyse(&[]);
        assert_eq!((f.on_front, f.knee), (vec![], None));
    }
}
