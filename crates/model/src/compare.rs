//! Estimated against measured: the one place the error is computed.

use serde::{Deserialize, Serialize};

/// An estimate next to a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Estimated bytes.
    pub estimated_bytes: u64,
    /// Measured bytes.
    pub measured_bytes: u64,
    /// estimated − measured.
    pub error_bytes: i64,
    /// (estimated − measured) / measured × 100.
    pub error_percent: f64,
}

/// Compares an estimate with a measurement (`None` when nothing was measured).
pub fn compare(estimated: u64, measured: u64) -> Option<Comparison> {
    if measured == 0 {
        return None;
    }
    let error_bytes = estimated as i64 - measured as i64;
    Some(Comparison {
        estimated_bytes: estimated,
        measured_bytes: measured,
        error_bytes,
        error_percent: error_bytes as f64 / measured as f64 * 100.0,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent() {
        let c = super::compare(110, 100).unwrap();
        assert_eq!((c.error_bytes, c.error_percent), (10, 10.0));
        assert!(super::compare(1, 0).is_none());
    }
}
