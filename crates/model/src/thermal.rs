//! Thermal state from the hardware's own throttle signals, and its WES penalty.
//!
//! The state is never guessed from a temperature: it comes from the bits or counters the
//! device itself sets when it slows down. Each classifier returns the state and the names of
//! the reasons that were active, so the raw cause stays visible next to the verdict.

use serde::{Deserialize, Serialize};

use crate::raw::{CpuThrottle, ThrottleRaw};

/// Normalised thermal state, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThermalState {
    /// No slowdown.
    Normal,
    /// Clocks held back to stay inside a power or current limit.
    Fair,
    /// Clocks cut for temperature (software thermal slowdown, hardware slowdown).
    Serious,
    /// Emergency slowdown: hardware thermal trip, power brake, PROCHOT, VR hot.
    Critical,
}

impl ThermalState {
    /// WES penalty of the state (PRODUCT.md): 1.0, 1.25, 1.75, 2.0.
    pub fn penalty(self) -> f64 {
        match self {
            ThermalState::Normal => 1.0,
            ThermalState::Fair => 1.25,
            ThermalState::Serious => 1.75,
            ThermalState::Critical => 2.0,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ThermalState::Normal => "normal",
            ThermalState::Fair => "fair",
            ThermalState::Serious => "serious",
            ThermalState::Critical => "critical",
        }
    }

    /// 0 (normal) to 3 (critical), for the Prometheus gauge.
    pub fn level(self) -> u8 {
        self as u8
    }
}

/// A state with the reasons that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thermal {
    /// The state.
    pub state: ThermalState,
    /// Active reasons, e.g. `sw_power_cap`, `hw_thermal_slowdown`, `cpu_package_throttle`.
    pub reasons: Vec<String>,
}

impl Thermal {
    /// No slowdown and no reasons.
    pub fn normal() -> Self {
        Thermal {
            state: ThermalState::Normal,
            reasons: Vec::new(),
        }
    }

    /// The worse of two, with the reasons of both.
    pub fn worst(mut self, other: Thermal) -> Thermal {
        self.state = self.state.max(other.state);
        self.reasons.extend(other.reasons);
        self
    }
}

/// NVML clock-event reason bits (`nvml.h`), with their state.
const NVIDIA_BITS: &[(u64, &str, ThermalState)] = &[
    (0x1, "gpu_idle", ThermalState::Normal),
    (0x2, "applications_clocks_setting", ThermalState::Normal),
    (0x4, "sw_power_cap", ThermalState::Fair),
    (0x8, "hw_slowdown", ThermalState::Serious),
    (0x10, "sync_boost", ThermalState::Normal),
    (0x20, "sw_thermal_slowdown", ThermalState::Serious),
    (0x40, "hw_thermal_slowdown", ThermalState::Critical),
    (0x80, "hw_power_brake_slowdown", ThermalState::Critical),
    (0x100, "display_clock_setting", ThermalState::Normal),
];

/// Classifies an NVML clock-event reason mask. Informational bits (idle, sync boost,
/// application or display clocks) are listed but do not raise the state.
pub fn classify_nvidia(mask: u64) -> Thermal {
    let mut t = Thermal::normal();
    for &(bit, name, state) in NVIDIA_BITS {
        if mask & bit != 0 {
            t.reasons.push(name.to_string());
            t.state = t.state.max(state);
        }
    }
    t
}

/// Classifies amdgpu `indep_throttle_status` (`amdgpu_smu.h` bit layout): power-limit and
/// current-limit bits are Fair, temperature bits Serious, VR hot and PROCHOT Critical.
pub fn classify_amd_indep(mask: u64) -> Thermal {
    let mut t = Thermal::normal();
    for bit in 0..64u32 {
        if mask & (1u64 << bit) == 0 {
            continue;
        }
        let (name, state) = amd_bit(bit);
        t.reasons.push(name);
        t.state = t.state.max(state);
    }
    t
}

fn amd_bit(bit: u32) -> (String, ThermalState) {
    const POWER: [&str; 8] = [
        "ppt0", "ppt1", "ppt2", "ppt3", "spl", "fppt", "sppt", "sppt_apu",
    ];
    const CURRENT: [&str; 8] = [
        "tdc_gfx", "tdc_soc", "tdc_mem", "tdc_vdd", "tdc_cvip", "edc_cpu", "edc_gfx", "apcc",
    ];
    const TEMP: [&str; 12] = [
        "temp_gpu",
        "temp_core",
        "temp_mem",
        "temp_edge",
        "temp_hotspot",
        "temp_soc",
        "temp_vr_gfx",
        "temp_vr_soc",
        "temp_vr_mem0",
        "temp_vr_mem1",
        "temp_liquid0",
        "temp_liquid1",
    ];
    const HOT: [&str; 4] = ["vrhot0", "vrhot1", "prochot_cpu", "prochot_gfx"];
    match bit {
        0..=7 => (POWER[bit as usize].to_string(), ThermalState::Fair),
        16..=23 => (CURRENT[(bit - 16) as usize].to_string(), ThermalState::Fair),
        32..=43 => (TEMP[(bit - 32) as usize].to_string(), ThermalState::Serious),
        44..=47 => (HOT[(bit - 44) as usize].to_string(), ThermalState::Critical),
        56 => ("ppm".to_string(), ThermalState::Fair),
        57 => ("fit".to_string(), ThermalState::Fair),
        other => (format!("bit{other}"), ThermalState::Fair),
    }
}

/// Classifies the growth of amdgpu `gpu_metrics` v3.0 throttle residency counters between two
/// samples: any growth of a thermal counter is Serious, of PROCHOT Critical, of a power-limit
/// counter Fair. Without a previous sample nothing can be said, so the state is Normal.
pub fn classify_amd_residency(prev: Option<&ThrottleRaw>, cur: &ThrottleRaw) -> Thermal {
    let (
        Some(ThrottleRaw::AmdThrottleResidency {
            prochot: p0,
            spl: s0,
            fppt: f0,
            sppt: sp0,
            thm_core: c0,
            thm_gfx: g0,
            thm_soc: so0,
        }),
        ThrottleRaw::AmdThrottleResidency {
            prochot,
            spl,
            fppt,
            sppt,
            thm_core,
            thm_gfx,
            thm_soc,
        },
    ) = (prev, cur)
    else {
        return Thermal::normal();
    };
    let checks = [
        ("prochot", *p0, *prochot, ThermalState::Critical),
        ("spl", *s0, *spl, ThermalState::Fair),
        ("fppt", *f0, *fppt, ThermalState::Fair),
        ("sppt", *sp0, *sppt, ThermalState::Fair),
        ("thm_core", *c0, *thm_core, ThermalState::Serious),
        ("thm_gfx", *g0, *thm_gfx, ThermalState::Serious),
        ("thm_soc", *so0, *thm_soc, ThermalState::Serious),
    ];
    let mut t = Thermal::normal();
    for (name, before, now, state) in checks {
        if now > before {
            t.reasons.push(name.to_string());
            t.state = t.state.max(state);
        }
    }
    t
}

/// Classifies a GPU's raw throttle signal, using the previous one for counter kinds.
pub fn classify_gpu(prev: Option<&ThrottleRaw>, cur: &ThrottleRaw) -> Thermal {
    match cur {
        ThrottleRaw::NvidiaClockEvents { mask } => classify_nvidia(*mask),
        ThrottleRaw::AmdIndepThrottle { mask } => classify_amd_indep(*mask),
        ThrottleRaw::AmdThrottleResidency { .. } => classify_amd_residency(prev, cur),
    }
}

/// Classifies Intel CPU throttling: package or core throttle events since the previous sample
/// mean the CPU cut its clocks for temperature (Serious).
pub fn classify_cpu(prev: Option<&CpuThrottle>, cur: &CpuThrottle) -> Thermal {
    let mut t = Thermal::normal();
    if let Some(p) = prev {
        if cur.package_count > p.package_count {
            t.reasons.push("cpu_package_throttle".to_string());
            t.state = ThermalState::Serious;
        }
        if cur.core_count > p.core_count {
            t.reasons.push("cpu_core_throttle".to_string());
            t.state = ThermalState::Serious;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_power_cap_is_fair_and_idle_is_normal() {
        assert_eq!(classify_nvidia(0x1).state, ThermalState::Normal);
        let t = classify_nvidia(0x4 | 0x1);
        assert_eq!(t.state, ThermalState::Fair);
        assert_eq!(t.reasons, vec!["gpu_idle", "sw_power_cap"]);
    }

    #[test]
    fn nvidia_thermal_bits() {
        assert_eq!(classify_nvidia(0x20).state, ThermalState::Serious);
        assert_eq!(classify_nvidia(0x8).state, ThermalState::Serious);
        assert_eq!(classify_nvidia(0x40).state, ThermalState::Critical);
        assert_eq!(classify_nvidia(0x80 | 0x4).state, ThermalState::Critical);
    }

    #[test]
    fn amd_bits_map_to_states() {
        assert_eq!(classify_amd_indep(1 << 4).state, ThermalState::Fair);
        assert_eq!(classify_amd_indep(1 << 4).reasons, vec!["spl"]);
        assert_eq!(classify_amd_indep(1 << 36).state, ThermalState::Serious);
        assert_eq!(classify_amd_indep(1 << 36).reasons, vec!["temp_hotspot"]);
        assert_eq!(classify_amd_indep(1 << 46).state, ThermalState::Critical);
        assert_eq!(classify_amd_indep(0).state, ThermalState::Normal);
    }

    #[test]
    fn amd_residency_needs_growth() {
        let a = ThrottleRaw::AmdThrottleResidency {
            prochot: 0,
            spl: 5,
            fppt: 0,
            sppt: 0,
            thm_core: 0,
            thm_gfx: 0,
            thm_soc: 0,
        };
        let mut b = a;
        assert_eq!(classify_amd_residency(None, &a).state, ThermalState::Normal);
        assert_eq!(
            classify_amd_residency(Some(&a), &b).state,
            ThermalState::Normal
        );
        if let ThrottleRaw::AmdThrottleResidency { thm_gfx, .. } = &mut b {
            *thm_gfx = 3;
        }
        let t = classify_amd_residency(Some(&a), &b);
        assert_eq!(t.state, ThermalState::Serious);
        assert_eq!(t.reasons, vec!["thm_gfx"]);
    }

    #[test]
    fn cpu_throttle_growth_is_serious() {
        let a = CpuThrottle {
            package_count: 10,
            core_count: 3,
            package_total_ms: None,
        };
        let b = CpuThrottle {
            package_count: 11,
            ..a
        };
        assert_eq!(classify_cpu(Some(&a), &a).state, ThermalState::Normal);
        assert_eq!(classify_cpu(Some(&a), &b).state, ThermalState::Serious);
        assert_eq!(classify_cpu(None, &b).state, ThermalState::Normal);
    }

    #[test]
    fn penalties_match_product_table() {
        assert_eq!(ThermalState::Normal.penalty(), 1.0);
        assert_eq!(ThermalState::Fair.penalty(), 1.25);
        assert_eq!(ThermalState::Serious.penalty(), 1.75);
        assert_eq!(ThermalState::Critical.penalty(), 2.0);
    }
}
