//! Every path this crate reads, in one place, relative to an injectable root.
//!
//! Readers take a root directory (`/` on a real system, a temporary directory in tests) and
//! build every path through [`Paths`]; file names inside per-device directories are the
//! constants below. Nothing else in the crate spells a `/proc` or `/sys` path.

use std::path::{Path, PathBuf};

/// `proc/stat`
pub(crate) const PROC_STAT: &str = "proc/stat";
/// `proc/meminfo`
pub(crate) const PROC_MEMINFO: &str = "proc/meminfo";
/// `proc/vmstat`
pub(crate) const PROC_VMSTAT: &str = "proc/vmstat";
/// `proc/pressure` (PSI); one file per resource.
pub(crate) const PROC_PRESSURE: &str = "proc/pressure";
/// `proc` (per-process directories live below it).
pub(crate) const PROC: &str = "proc";
/// `sys/devices/system/cpu`
pub(crate) const SYS_CPU: &str = "sys/devices/system/cpu";
/// `sys/class/powercap`
pub(crate) const SYS_POWERCAP: &str = "sys/class/powercap";
/// `sys/class/thermal`
pub(crate) const SYS_THERMAL: &str = "sys/class/thermal";
/// `sys/class/hwmon`
pub(crate) const SYS_HWMON: &str = "sys/class/hwmon";
/// `sys/class/drm`
pub(crate) const SYS_DRM: &str = "sys/class/drm";
/// `sys/bus/pci/devices` (one entry per PCI function, named by its address).
pub(crate) const SYS_PCI_DEVICES: &str = "sys/bus/pci/devices";

/// Files of a PCI function (`sys/bus/pci/devices/<address>/`).
pub(crate) mod pci {
    /// `vendor`, e.g. `0x10de` (NVIDIA), `0x1002` (AMD).
    pub(crate) const VENDOR: &str = "vendor";
    /// `class`, e.g. `0x030000` (VGA), `0x030200` (3D controller); `0x03....` is a display
    /// controller.
    pub(crate) const CLASS: &str = "class";
}

/// Files of a process directory (`proc/<pid>/`, `proc/self/`).
pub(crate) mod process {
    /// `stat` (utime, stime in clock ticks).
    pub(crate) const STAT: &str = "stat";
    /// `status` (VmRSS).
    pub(crate) const STATUS: &str = "status";
    /// `smaps_rollup` (Pss).
    pub(crate) const SMAPS_ROLLUP: &str = "smaps_rollup";
}

/// Files of `sys/devices/system/cpu/cpuN/`.
pub(crate) mod cpu {
    /// `cpufreq/scaling_cur_freq` (kHz).
    pub(crate) const SCALING_CUR_FREQ: &str = "cpufreq/scaling_cur_freq";
    /// `cpufreq/cpuinfo_max_freq` (kHz).
    pub(crate) const CPUINFO_MAX_FREQ: &str = "cpufreq/cpuinfo_max_freq";
    /// `thermal_throttle` directory (Intel `therm_throt`).
    pub(crate) const THERMAL_THROTTLE: &str = "thermal_throttle";
    /// `thermal_throttle/package_throttle_count`
    pub(crate) const PACKAGE_THROTTLE_COUNT: &str = "package_throttle_count";
    /// `thermal_throttle/core_throttle_count`
    pub(crate) const CORE_THROTTLE_COUNT: &str = "core_throttle_count";
    /// `thermal_throttle/package_throttle_total_time_ms`
    pub(crate) const PACKAGE_THROTTLE_TOTAL_TIME_MS: &str = "package_throttle_total_time_ms";
}

/// Files of a powercap zone (`sys/class/powercap/intel-rapl:N[:M]/`).
pub(crate) mod rapl {
    /// Zone directory name prefix (AMD Zen is served by the same driver and names).
    pub(crate) const ZONE_PREFIX: &str = "intel-rapl:";
    /// `name`, e.g. `package-0`.
    pub(crate) const NAME: &str = "name";
    /// `energy_uj` (root-only since Linux 5.10).
    pub(crate) const ENERGY_UJ: &str = "energy_uj";
    /// `max_energy_range_uj`
    pub(crate) const MAX_ENERGY_RANGE_UJ: &str = "max_energy_range_uj";
}

/// Files of `sys/class/thermal/thermal_zoneN/` and `sys/class/hwmon/hwmonN/`.
pub(crate) mod thermal {
    /// Thermal zone directory prefix.
    pub(crate) const ZONE_PREFIX: &str = "thermal_zone";
    /// Zone `type`, e.g. `x86_pkg_temp`.
    pub(crate) const ZONE_TYPE: &str = "type";
    /// Zone `temp` (m°C).
    pub(crate) const ZONE_TEMP: &str = "temp";
    /// hwmon directory prefix.
    pub(crate) const HWMON_PREFIX: &str = "hwmon";
    /// hwmon `name`, e.g. `k10temp`.
    pub(crate) const HWMON_NAME: &str = "name";
}

/// Files of an amdgpu card (`sys/class/drm/cardN/device/` and its `hwmon/hwmonM/`).
pub(crate) mod amdgpu {
    /// DRM card directory prefix (`card0`; connectors like `card0-DP-1` are skipped).
    pub(crate) const CARD_PREFIX: &str = "card";
    /// `device` link to the PCI device.
    pub(crate) const DEVICE: &str = "device";
    /// `driver` link; its target ends in `amdgpu`.
    pub(crate) const DRIVER: &str = "driver";
    /// PCI `vendor` (`0x1002` for AMD).
    pub(crate) const VENDOR: &str = "vendor";
    /// `uevent` (PCI_SLOT_NAME).
    pub(crate) const UEVENT: &str = "uevent";
    /// `product_name` (dGPUs with a FRU only).
    pub(crate) const PRODUCT_NAME: &str = "product_name";
    /// `gpu_busy_percent`
    pub(crate) const GPU_BUSY_PERCENT: &str = "gpu_busy_percent";
    /// `mem_busy_percent` (dGPUs).
    pub(crate) const MEM_BUSY_PERCENT: &str = "mem_busy_percent";
    /// `mem_info_vram_used` (bytes).
    pub(crate) const VRAM_USED: &str = "mem_info_vram_used";
    /// `mem_info_vram_total` (bytes).
    pub(crate) const VRAM_TOTAL: &str = "mem_info_vram_total";
    /// `mem_info_gtt_used` (bytes).
    pub(crate) const GTT_USED: &str = "mem_info_gtt_used";
    /// `mem_info_gtt_total` (bytes).
    pub(crate) const GTT_TOTAL: &str = "mem_info_gtt_total";
    /// `pp_dpm_sclk` (levels, `*` on the current one).
    pub(crate) const PP_DPM_SCLK: &str = "pp_dpm_sclk";
    /// `pp_dpm_mclk`
    pub(crate) const PP_DPM_MCLK: &str = "pp_dpm_mclk";
    /// `gpu_metrics` (binary).
    pub(crate) const GPU_METRICS: &str = "gpu_metrics";
    /// `hwmon` directory of the device.
    pub(crate) const HWMON: &str = "hwmon";
    /// hwmon `power1_input` (µW, instantaneous).
    pub(crate) const POWER1_INPUT: &str = "power1_input";
    /// hwmon `power1_average` (µW).
    pub(crate) const POWER1_AVERAGE: &str = "power1_average";
    /// hwmon `power1_cap` (µW).
    pub(crate) const POWER1_CAP: &str = "power1_cap";
    /// hwmon `temp1_input` (m°C, edge).
    pub(crate) const TEMP1_INPUT: &str = "temp1_input";
    /// hwmon `freq1_input` (sclk, Hz).
    pub(crate) const FREQ1_INPUT: &str = "freq1_input";
    /// hwmon `freq2_input` (mclk, Hz).
    pub(crate) const FREQ2_INPUT: &str = "freq2_input";
}

/// The usual absolute location of a relative path (`proc/meminfo` → `/proc/meminfo`); parsers
/// name files this way, and readers re-point errors at the file they actually read.
pub(crate) fn canonical(rel: &str) -> PathBuf {
    Path::new("/").join(rel)
}

/// Paths under one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Paths under `root`.
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        Paths { root: root.into() }
    }

    /// The root itself.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `root/rel`.
    pub(crate) fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `root/proc/pressure/<resource>`.
    pub(crate) fn pressure(&self, resource: &str) -> PathBuf {
        self.at(PROC_PRESSURE).join(resource)
    }

    /// `root/proc/<pid>` or `root/proc/self`.
    pub(crate) fn process_dir(&self, pid: Option<u32>) -> PathBuf {
        let proc_dir = self.at(PROC);
        match pid {
            Some(pid) => proc_dir.join(pid.to_string()),
            None => proc_dir.join("self"),
        }
    }

    /// `root/sys/devices/system/cpu/cpu0`.
    pub(crate) fn cpu0(&self) -> PathBuf {
        self.at(SYS_CPU).join("cpu0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_hang_below_the_root() {
        let p = Paths::new("/tmp/fake");
        assert_eq!(p.at(PROC_STAT), PathBuf::from("/tmp/fake/proc/stat"));
        assert_eq!(
            p.pressure("io"),
            PathBuf::from("/tmp/fake/proc/pressure/io")
        );
        assert_eq!(p.process_dir(Some(42)), PathBuf::from("/tmp/fake/proc/42"));
        assert_eq!(p.process_dir(None), PathBuf::from("/tmp/fake/proc/self"));
        assert_eq!(canonical(PROC_MEMINFO), PathBuf::from("/proc/meminfo"));
    }
}
