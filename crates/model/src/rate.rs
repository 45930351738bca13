//! Counter arithmetic: deltas with reset and wrap handling, in one place.

/// Increase of a cumulative counter; `None` when it went down (the source restarted or the
/// counter was reset), so no rate is made up across a reset.
pub fn counter_delta(prev: f64, cur: f64) -> Option<f64> {
    if cur >= prev && cur.is_finite() && prev.is_finite() {
        Some(cur - prev)
    } else {
        None
    }
}

/// Increase of an integer counter.
pub fn counter_delta_u64(prev: u64, cur: u64) -> Option<u64> {
    cur.checked_sub(prev)
}

/// Increase of a counter that wraps at `range` (RAPL `energy_uj` wraps at
/// `max_energy_range_uj`): one wrap between samples is assumed when it went down.
pub fn wrapping_delta(prev: u64, cur: u64, range: u64) -> Option<u64> {
    if cur >= prev {
        Some(cur - prev)
    } else if range > prev {
        Some(range - prev + cur)
    } else {
        None
    }
}

/// `delta / seconds`, or `None` when no time passed.
pub fn per_second(delta: f64, seconds: f64) -> Option<f64> {
    if seconds > 0.0 {
        Some(delta / seconds)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas() {
        assert_eq!(counter_delta(5.0, 8.0), Some(3.0));
        assert_eq!(counter_delta(8.0, 5.0), None);
        assert_eq!(counter_delta_u64(8, 5), None);
        assert_eq!(wrapping_delta(90, 10, 100), Some(20));
        assert_eq!(wrapping_delta(10, 30, 100), Some(20));
        assert_eq!(per_second(10.0, 0.0), None);
        assert_eq!(per_second(10.0, 2.0), Some(5.0));
    }
}
