//! AMD GPUs through the amdgpu driver's sysfs and hwmon files (world-readable, no library).
//!
//! Per card (`sys/class/drm/cardN/device/`): busy percents, VRAM and GTT bytes, hwmon power
//! (`power1_input`, else `power1_average`; µW), power cap, edge temperature, clocks
//! (`freq1_input`, else the current `pp_dpm_sclk` level; the maximum is the highest level),
//! memory clock (`pp_dpm_mclk`, else `freq2_input`) and the throttle signal from `gpu_metrics`.
//! Per-process GPU memory (DRM fdinfo) is not read.
//!
//! On unified-memory APUs (e.g. Strix Halo) `mem_info_vram_*` is only the BIOS carve-out and
//! most allocations live in GTT, and `power1_average` is the whole SoC (CPU + GPU).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use infermon_model::raw::{GpuRaw, GpuVendor};

use crate::amdgpu_metrics::parse_gpu_metrics_throttle;
use crate::error::HwError;
use crate::fsread::{list_numbered, read_bytes, read_string, read_u64, read_value};
use crate::paths::{self, Paths};
use crate::{keep, GpuSource};

/// PCI vendor id of AMD.
const AMD_PCI_VENDOR: &str = "0x1002";

/// The note put in `unavailable` for per-process memory.
const NO_PROCESSES: &str = "processes: per-process GPU memory (DRM fdinfo) is not read for amdgpu";

/// Levels of a `pp_dpm_*` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PpDpm {
    /// The level marked `*`, MHz; `None` when no level is marked.
    pub current_mhz: Option<u32>,
    /// The highest level, MHz.
    pub max_mhz: u32,
}

/// Parses a `pp_dpm_sclk`/`pp_dpm_mclk` file: lines `N: <MHz>Mhz`, `*` after the current one
/// (a deep-sleep level is printed as `S: 19Mhz *`).
pub fn parse_pp_dpm(text: &str) -> Result<PpDpm, HwError> {
    let path = PathBuf::from(paths::amdgpu::PP_DPM_SCLK);
    let mut current = None;
    let mut max: Option<u32> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || {
            HwError::malformed(
                &path,
                format!(
                    "line \"{}\": expected \"N: <MHz>Mhz\" with \"*\" on the current level",
                    line.trim()
                ),
            )
        };
        let (_, rest) = line.split_once(':').ok_or_else(bad)?;
        let rest = rest.trim();
        let (value, is_current) = match rest.strip_suffix('*') {
            Some(v) => (v.trim_end(), true),
            None => (rest, false),
        };
        let digits = value
            .strip_suffix("Mhz")
            .or_else(|| value.strip_suffix("MHz"))
            .ok_or_else(bad)?;
        let mhz: u32 = digits.trim().parse().map_err(|_| bad())?;
        if is_current {
            current = Some(mhz);
        }
        max = Some(max.map_or(mhz, |m| m.max(mhz)));
    }
    let max_mhz = max.ok_or(HwError::Empty { path })?;
    Ok(PpDpm {
        current_mhz: current,
        max_mhz,
    })
}

/// `PCI_SLOT_NAME` from a device `uevent` file.
pub fn parse_uevent_pci_slot(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PCI_SLOT_NAME="))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// One amdgpu card.
#[derive(Debug, Clone)]
struct AmdCard {
    /// Index among amdgpu cards.
    index: u32,
    /// `cardN`.
    name: String,
    /// `sys/class/drm/cardN/device`.
    device: PathBuf,
}

/// Reads every amdgpu card under a root.
#[derive(Debug, Clone)]
pub struct AmdGpuSource {
    cards: Vec<AmdCard>,
}

impl AmdGpuSource {
    /// Finds the amdgpu cards under `root/sys/class/drm`: a `cardN` whose `device/driver` link
    /// ends in `amdgpu`, or (when the link is unreadable) which has `device/gpu_busy_percent`
    /// and PCI vendor `0x1002`. No card is an error saying where it looked.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, String> {
        let drm = Paths::new(root).at(paths::SYS_DRM);
        let entries = list_numbered(&drm, paths::amdgpu::CARD_PREFIX).map_err(|e| e.to_string())?;
        let cards: Vec<AmdCard> = entries
            .into_iter()
            .map(|e| (e.name, e.path.join(paths::amdgpu::DEVICE)))
            .filter(|(_, device)| is_amdgpu(device))
            .zip(0u32..)
            .map(|((name, device), index)| AmdCard {
                index,
                name,
                device,
            })
            .collect();
        if cards.is_empty() {
            return Err(format!("{}: no amdgpu card", drm.display()));
        }
        Ok(AmdGpuSource { cards })
    }

    /// How many cards were found.
    pub fn card_count(&self) -> usize {
        self.cards.len()
    }
}

impl GpuSource for AmdGpuSource {
    fn name(&self) -> &'static str {
        "amdgpu"
    }

    fn read(&mut self) -> Result<Vec<GpuRaw>, String> {
        Ok(self.cards.iter().map(read_card).collect())
    }
}

/// Whether a DRM card's PCI device is driven by amdgpu.
fn is_amdgpu(device: &Path) -> bool {
    if let Ok(target) = std::fs::read_link(device.join(paths::amdgpu::DRIVER)) {
        return target.file_name().is_some_and(|n| n == "amdgpu");
    }
    device.join(paths::amdgpu::GPU_BUSY_PERCENT).exists()
        && read_value(&device.join(paths::amdgpu::VENDOR)).is_ok_and(|v| v == AMD_PCI_VENDOR)
}

/// A one-value integer file, error as text.
fn num(path: &Path) -> Result<u64, String> {
    read_u64(path).map_err(|e| e.to_string())
}

/// The first `hwmon*` directory of a device.
fn find_hwmon(device: &Path) -> Result<PathBuf, String> {
    let dir = device.join(paths::amdgpu::HWMON);
    list_numbered(&dir, paths::thermal::HWMON_PREFIX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .map(|e| e.path)
        .ok_or_else(|| format!("{}: no hwmon directory", dir.display()))
}

/// A `pp_dpm_*` file, errors pointed at it.
fn read_pp_dpm(path: &Path) -> Result<PpDpm, String> {
    let text = read_string(path).map_err(|e| e.to_string())?;
    parse_pp_dpm(&text).map_err(|e| e.at(path).to_string())
}

/// `power1_input`, else `power1_average`, in watts.
fn read_power(hwmon: &Path) -> Result<f64, String> {
    let input = hwmon.join(paths::amdgpu::POWER1_INPUT);
    let microwatts = match read_u64(&input) {
        Err(e) if e.io_kind() == Some(ErrorKind::NotFound) => {
            read_u64(&hwmon.join(paths::amdgpu::POWER1_AVERAGE))
                .map_err(|e| format!("{e} (and no {})", paths::amdgpu::POWER1_INPUT))?
        }
        other => other.map_err(|e| e.to_string())?,
    };
    Ok(microwatts as f64 / 1e6)
}

/// Reads one card; every field that fails is recorded in `unavailable`.
fn read_card(card: &AmdCard) -> GpuRaw {
    let dev = &card.device;
    let id = read_string(&dev.join(paths::amdgpu::UEVENT))
        .ok()
        .and_then(|t| parse_uevent_pci_slot(&t))
        .unwrap_or_else(|| card.name.clone());
    let mut g = GpuRaw::empty(GpuVendor::Amd, card.index, id);
    let u = &mut g.unavailable;
    g.name = read_value(&dev.join(paths::amdgpu::PRODUCT_NAME)).ok();
    let attr = |name: &str| dev.join(name);
    g.busy_percent = keep(u, "busy", num(&attr(paths::amdgpu::GPU_BUSY_PERCENT))).map(|v| v as f64);
    g.mem_busy_percent =
        keep(u, "mem_busy", num(&attr(paths::amdgpu::MEM_BUSY_PERCENT))).map(|v| v as f64);
    g.vram_used_bytes = keep(u, "vram_used", num(&attr(paths::amdgpu::VRAM_USED)));
    g.vram_total_bytes = keep(u, "vram_total", num(&attr(paths::amdgpu::VRAM_TOTAL)));
    g.gtt_used_bytes = keep(u, "gtt_used", num(&attr(paths::amdgpu::GTT_USED)));
    g.gtt_total_bytes = keep(u, "gtt_total", num(&attr(paths::amdgpu::GTT_TOTAL)));

    let hwmon = find_hwmon(dev);
    let in_hwmon = |name: &str| hwmon.clone().map(|h| h.join(name));
    g.power_watts = keep(u, "power", hwmon.clone().and_then(|h| read_power(&h)));
    g.power_limit_watts = keep(
        u,
        "power_limit",
        in_hwmon(paths::amdgpu::POWER1_CAP).and_then(|p| num(&p)),
    )
    .map(|uw| uw as f64 / 1e6);
    g.temperature_c = keep(
        u,
        "temperature",
        in_hwmon(paths::amdgpu::TEMP1_INPUT).and_then(|p| num(&p)),
    )
    .map(|milli| milli as f64 / 1000.0);

    let sclk = read_pp_dpm(&attr(paths::amdgpu::PP_DPM_SCLK));
    let freq1 = in_hwmon(paths::amdgpu::FREQ1_INPUT).and_then(|p| num(&p));
    let clock = match (freq1, &sclk) {
        (Ok(hz), _) => Ok(hz as f64 / 1e6),
        (
            Err(_),
            Ok(PpDpm {
                current_mhz: Some(mhz),
                ..
            }),
        ) => Ok(f64::from(*mhz)),
        (Err(e), Ok(_)) => Err(format!(
            "{e}; no current level in {}",
            paths::amdgpu::PP_DPM_SCLK
        )),
        (Err(e), Err(s)) => Err(format!("{e}; {s}")),
    };
    g.clock_mhz = keep(u, "clock", clock);
    g.clock_max_mhz = keep(u, "clock_max", sclk.map(|s| f64::from(s.max_mhz)));
    let mclk = read_pp_dpm(&attr(paths::amdgpu::PP_DPM_MCLK));
    let mem_clock = match mclk {
        Ok(PpDpm {
            current_mhz: Some(mhz),
            ..
        }) => Ok(f64::from(mhz)),
        other => {
            let why = match other {
                Ok(_) => format!("no current level in {}", paths::amdgpu::PP_DPM_MCLK),
                Err(e) => e,
            };
            in_hwmon(paths::amdgpu::FREQ2_INPUT)
                .and_then(|p| num(&p))
                .map(|hz| hz as f64 / 1e6)
                .map_err(|e| format!("{why}; {e}"))
        }
    };
    g.mem_clock_mhz = keep(u, "mem_clock", mem_clock);

    let metrics_path = attr(paths::amdgpu::GPU_METRICS);
    let throttle = read_bytes(&metrics_path)
        .and_then(|bytes| parse_gpu_metrics_throttle(&bytes).map_err(|e| e.at(&metrics_path)));
    match throttle {
        Ok(t) => {
            g.throttle = Some(t.throttle);
            u.extend(t.not_reported.into_iter().map(|n| format!("throttle: {n}")));
        }
        Err(e) => u.push(format!("throttle: {e}")),
    }
    u.push(NO_PROCESSES.to_string());
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pp_dpm_levels() {
        let d = parse_pp_dpm("0: 600Mhz \n1: 2864Mhz *\n2: 2900Mhz \n").unwrap();
        assert_eq!(
            d,
            PpDpm {
                current_mhz: Some(2864),
                max_mhz: 2900
            }
        );
        let d = parse_pp_dpm("0: 97Mhz \n1: 456Mhz \n2: 772Mhz \n3: 1249Mhz *\n").unwrap();
        assert_eq!(
            d,
            PpDpm {
                current_mhz: Some(1249),
                max_mhz: 1249
            }
        );
        let d = parse_pp_dpm("S: 19Mhz *\n0: 500Mhz \n1: 2500Mhz \n").unwrap();
        assert_eq!(
            d,
            PpDpm {
                current_mhz: Some(19),
                max_mhz: 2500
            }
        );
        let d = parse_pp_dpm("0: 500Mhz\n1: 800Mhz\n").unwrap();
        assert_eq!(
            d,
            PpDpm {
                current_mhz: None,
                max_mhz: 800
            }
        );
    }

    #[test]
    fn pp_dpm_errors() {
        let e = parse_pp_dpm("0: fastMhz *\n").unwrap_err().to_string();
        assert_eq!(e, "pp_dpm_sclk: line \"0: fastMhz *\": expected \"N: <MHz>Mhz\" with \"*\" on the current level");
        assert!(parse_pp_dpm("garbage\n").is_err());
        assert!(parse_pp_dpm("0: 800 GHz\n").is_err());
        assert_eq!(
            parse_pp_dpm("").unwrap_err().to_string(),
            "pp_dpm_sclk: file is empty"
        );
    }

    #[test]
    fn uevent_slot() {
        let t = "DRIVER=amdgpu\nPCI_CLASS=38000\nPCI_ID=1002:1586\nPCI_SLOT_NAME=0000:c5:00.0\n";
        assert_eq!(parse_uevent_pci_slot(t).as_deref(), Some("0000:c5:00.0"));
        assert_eq!(parse_uevent_pci_slot("DRIVER=amdgpu\n"), None);
    }
}
