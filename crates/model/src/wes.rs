//! WES, the efficiency score: `tok/s ÷ (W × PUE × ThermalPenalty)` (PRODUCT.md).
//!
//! Raw WES forces the penalty to 1.0; penalized WES uses the live penalty; both are rounded to
//! 0.1. Thermal cost is `(raw − penalized) / raw × 100` of the rounded values, rounded to an
//! integer. No tok/s, no power, or power ≤ 0 gives no WES at all — never a zero.

use serde::{Deserialize, Serialize};

/// The score, both ways, and what the thermal state costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wes {
    /// WES with the penalty forced to 1.0, rounded to 0.1.
    pub raw: f64,
    /// WES with the live thermal penalty, rounded to 0.1.
    pub penalized: f64,
    /// `(raw − penalized) / raw × 100`, rounded to an integer percent.
    pub thermal_cost_percent: f64,
}

/// Why there is no WES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoWes {
    /// No token rate was measured (no engine with counters).
    NoTokenRate,
    /// Engines were idle: no tokens were generated in the window.
    Idle,
    /// No power reading on this node.
    NoPower,
    /// Power read as zero or negative.
    NonPositivePower,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Penalized WES before rounding (`tok/s ÷ (W × PUE × penalty)`), for comparisons finer
/// than the displayed 0.1 (diagnosis compares it with its own baseline); `None` where
/// [`wes`] gives no WES.
pub fn penalized_unrounded(
    tokens_per_second: Option<f64>,
    watts: Option<f64>,
    pue: f64,
    penalty: f64,
) -> Option<f64> {
    let tps = tokens_per_second.filter(|t| *t > 0.0)?;
    let w = watts.filter(|w| *w > 0.0 && w.is_finite())?;
    Some(tps / (w * pue * penalty))
}

/// Computes WES from tokens per second, watts, PUE and the thermal penalty.
pub fn wes(
    tokens_per_second: Option<f64>,
    watts: Option<f64>,
    pue: f64,
    penalty: f64,
) -> Result<Wes, NoWes> {
    let tps = tokens_per_second.ok_or(NoWes::NoTokenRate)?;
    if tps <= 0.0 {
        return Err(NoWes::Idle);
    }
    let w = watts.ok_or(NoWes::NoPower)?;
    if w <= 0.0 || !w.is_finite() {
        return Err(NoWes::NonPositivePower);
    }
    let raw = round1(tps / (w * pue));
    let penalized = round1(tps / (w * pue * penalty));
    let thermal_cost_percent = if raw > 0.0 {
        ((raw - penalized) / raw * 100.0).round()
    } else {
        0.0
    };
    Ok(Wes {
        raw,
        penalized,
        thermal_cost_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thermal::ThermalState;

    #[test]
    fn product_example_normal() {
        let w = wes(Some(108.9), Some(0.6), 1.0, ThermalState::Normal.penalty()).unwrap();
        assert_eq!(w.raw, 181.5);
        assert_eq!(w.penalized, 181.5);
        assert_eq!(w.thermal_cost_percent, 0.0);
    }

    #[test]
    fn product_example_fair() {
        let w = wes(Some(94.1), Some(0.9), 1.0, ThermalState::Fair.penalty()).unwrap();
        assert_eq!(w.raw, 104.6);
        assert_eq!(w.penalized, 83.6);
        assert_eq!(w.thermal_cost_percent, 20.0);
    }

    #[test]
    fn pue_divides() {
        let w = wes(Some(100.0), Some(10.0), 2.0, 1.0).unwrap();
        assert_eq!(w.raw, 5.0);
    }

    #[test]
    fn no_wes_without_inputs() {
        assert_eq!(wes(None, Some(1.0), 1.0, 1.0), Err(NoWes::NoTokenRate));
        assert_eq!(wes(Some(0.0), Some(1.0), 1.0, 1.0), Err(NoWes::Idle));
        assert_eq!(wes(Some(10.0), None, 1.0, 1.0), Err(NoWes::NoPower));
        assert_eq!(
            wes(Some(10.0), Some(0.0), 1.0, 1.0),
            Err(NoWes::NonPositivePower)
        );
        assert_eq!(
            wes(Some(10.0), Some(-3.0), 1.0, 1.0),
            Err(NoWes::NonPositivePower)
        );
    }
}
