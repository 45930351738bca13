//! CPU frequency from `sys/devices/system/cpu/cpuN/cpufreq/{scaling_cur_freq,cpuinfo_max_freq}`.

use infermon_model::raw::{CpuFreq, Reading};

use crate::error::HwError;
use crate::fsread::{list_numbered, read_u64};
use crate::paths::{self, Paths};

/// Summarises per-CPU `scaling_cur_freq` values (kHz) and cpu0's `cpuinfo_max_freq` (kHz).
/// `None` when there is no CPU frequency at all.
pub fn summarize_cpufreq(cur_khz: &[u64], hw_max_khz: Option<u64>) -> Option<CpuFreq> {
    let max = cur_khz.iter().copied().max()?;
    let sum: f64 = cur_khz.iter().map(|&k| k as f64).sum();
    Some(CpuFreq {
        avg_mhz: sum / cur_khz.len() as f64 / 1000.0,
        max_cur_mhz: max as f64 / 1000.0,
        hw_max_mhz: hw_max_khz.map(|k| k as f64 / 1000.0),
    })
}

/// Reads every `cpuN/cpufreq/scaling_cur_freq`. A CPU without the file (offline, or no cpufreq
/// driver as in most VMs) is skipped; a file that exists but cannot be read or parsed makes the
/// reading unavailable; no file at all is unavailable. `cpuinfo_max_freq` is optional.
pub(crate) fn read_cpufreq(paths: &Paths) -> Reading<CpuFreq> {
    let cpu_dir = paths.at(paths::SYS_CPU);
    let cpus = match list_numbered(&cpu_dir, "cpu") {
        Ok(cpus) => cpus,
        Err(e) => return Reading::unavailable(e.to_string()),
    };
    let mut cur_khz = Vec::with_capacity(cpus.len());
    for cpu in &cpus {
        match read_u64(&cpu.path.join(paths::cpu::SCALING_CUR_FREQ)) {
            Ok(khz) => cur_khz.push(khz),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => {}
            Err(e) => return Reading::unavailable(e.to_string()),
        }
    }
    let hw_max_khz = read_u64(&paths.cpu0().join(paths::cpu::CPUINFO_MAX_FREQ)).ok();
    match summarize_cpufreq(&cur_khz, hw_max_khz) {
        Some(freq) => Reading::ok(freq),
        None => Reading::unavailable(no_cpufreq(&cpu_dir)),
    }
}

/// The reason when no CPU has a readable `scaling_cur_freq`.
fn no_cpufreq(cpu_dir: &std::path::Path) -> String {
    HwError::malformed(
        cpu_dir,
        format!(
            "no cpu*/{} (no cpufreq driver, e.g. in a virtual machine)",
            paths::cpu::SCALING_CUR_FREQ
        ),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_converts_khz_to_mhz() {
        let f = summarize_cpufreq(&[800_000, 4_200_000, 3_000_000, 2_000_000], Some(5_000_000))
            .unwrap();
        assert_eq!(f.avg_mhz, 2500.0);
        assert_eq!(f.max_cur_mhz, 4200.0);
        assert_eq!(f.hw_max_mhz, Some(5000.0));
        assert_eq!(summarize_cpufreq(&[], Some(1)), None);
    }
}
