//! The peak memory bandwidth of a run, and the memory-bandwidth utilisation (MBU) of decode.
//!
//! Peaks come from the one device table, [`infermon_model::bandwidth`] (vendor specifications
//! in GB/s, 10⁹ bytes/s); a device not in the table has no peak (say `--peak-bandwidth GB/s`);
//! nothing is guessed.
//!
//! **Approximation.** Decode reads every weight once per step, so bytes per step ≈ the model
//! file's size; steps per second ≈ 1000 ÷ mean TPOT. At concurrency 1 a step makes one token;
//! at higher concurrency one step serves the whole batch, so the same formula holds per step.
//! The KV cache read (grows with context) is left out, so the result is a lower bound; for
//! mixture-of-experts models only the active experts are read, so it is an upper bound there.

pub use infermon_model::bandwidth::lookup;

/// The peak for a run: `--peak-bandwidth` first, else the first GPU the table knows.
/// Returns (GB/s, where it came from); `(None, "unknown")` when neither applies.
pub fn peak(flag_gb_s: Option<f64>, gpu_names: &[String]) -> (Option<f64>, String) {
    if let Some(f) = flag_gb_s {
        return (Some(f), "--peak-bandwidth".to_string());
    }
    match infermon_model::bandwidth::first_known(gpu_names.iter().map(String::as_str)) {
        Some((n, gbs, display)) => (Some(gbs), format!("table: {display} (from GPU \"{n}\")")),
        None => (None, "unknown".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_and_unknown_says_so() {
        assert_eq!(peak(Some(100.0), &["NVIDIA H200".into()]).0, Some(100.0));
        let (p, src) = peak(None, &["NVIDIA H200".into()]);
        assert_eq!(p, Some(4800.0));
        assert!(src.starts_with("table: H200"));
        assert_eq!(peak(None, &[]), (None, "unknown".to_string()));
        let (p, src) = peak(None, &["Tesla T4".into(), "NVIDIA GeForce RTX 4090".into()]);
        assert_eq!(p, Some(1008.0));
        assert_eq!(
            src,
            "table: RTX 4090 (from GPU \"NVIDIA GeForce RTX 4090\")"
        );
    }
}
