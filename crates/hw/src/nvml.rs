//! NVIDIA GPUs through NVML (`nvml-wrapper`, which dlopens `libnvidia-ml.so.1` at run time, so
//! the binary starts on machines without the driver).
//!
//! Every NVML query goes through [`NvmlDeviceApi`], and one conversion,
//! [`read_nvml_device`], turns its answers into a [`GpuRaw`]; the real source and the tests
//! (a fake device built from a JSON fixture) share it.

use infermon_model::raw::{GpuProcess, GpuRaw, GpuVendor, ThrottleRaw};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use serde::{Deserialize, Serialize};

use crate::error::lowercase_first;
use crate::{keep, GpuSource};

/// NVML utilisation rates (`nvmlDeviceGetUtilizationRates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmlUtilization {
    /// Percent of the last sample period a kernel was running.
    pub gpu: u32,
    /// Percent of the last sample period device memory was read or written.
    pub memory: u32,
}

/// NVML memory figures (`nvmlDeviceGetMemoryInfo_v2`), bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmlMemory {
    /// Total installed framebuffer memory.
    pub total: u64,
    /// Allocated framebuffer memory.
    pub used: u64,
}

/// A clock domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NvmlClock {
    /// Graphics clock.
    Graphics,
    /// Streaming-multiprocessor clock.
    Sm,
    /// Memory clock.
    Memory,
}

/// The NVML queries infermon makes of one device. Each answer is the value or the error as
/// text; `"not supported"` is what `NVML_ERROR_NOT_SUPPORTED` becomes.
pub trait NvmlDeviceApi {
    /// `nvmlDeviceGetName`.
    fn name(&self) -> Result<String, String>;
    /// `nvmlDeviceGetUUID`.
    fn uuid(&self) -> Result<String, String>;
    /// `nvmlDeviceGetUtilizationRates`.
    fn utilization(&self) -> Result<NvmlUtilization, String>;
    /// `nvmlDeviceGetMemoryInfo_v2`.
    fn memory(&self) -> Result<NvmlMemory, String>;
    /// `nvmlDeviceGetPowerUsage`, milliwatts.
    fn power_usage_mw(&self) -> Result<u32, String>;
    /// `nvmlDeviceGetEnforcedPowerLimit`, milliwatts.
    fn enforced_power_limit_mw(&self) -> Result<u32, String>;
    /// `nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver was loaded (Volta+).
    fn total_energy_mj(&self) -> Result<u64, String>;
    /// `nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)`, °C.
    fn temperature_c(&self) -> Result<u32, String>;
    /// `nvmlDeviceGetClockInfo`, MHz.
    fn clock_mhz(&self, clock: NvmlClock) -> Result<u32, String>;
    /// `nvmlDeviceGetMaxClockInfo`, MHz.
    fn max_clock_mhz(&self, clock: NvmlClock) -> Result<u32, String>;
    /// `nvmlDeviceGetCurrentClocksThrottleReasons` (renamed ClocksEventReasons in NVML 13;
    /// same bits).
    fn clock_event_reasons(&self) -> Result<u64, String>;
    /// `nvmlDeviceGetComputeRunningProcesses`.
    fn running_compute_processes(&self) -> Result<Vec<GpuProcess>, String>;
}

/// SM clock, else the graphics clock (they are the same domain on current data-centre GPUs).
fn sm_or_graphics(read: impl Fn(NvmlClock) -> Result<u32, String>) -> Result<u32, String> {
    read(NvmlClock::Sm)
        .or_else(|sm| read(NvmlClock::Graphics).map_err(|gr| format!("sm: {sm}; graphics: {gr}")))
}

/// Turns one device's NVML answers into a [`GpuRaw`]; every failed query is `None` plus an
/// `unavailable` entry (`"power: not supported"`).
pub fn read_nvml_device(index: u32, dev: &dyn NvmlDeviceApi) -> GpuRaw {
    let mut unavailable = Vec::new();
    let u = &mut unavailable;
    let id = keep(u, "uuid", dev.uuid()).unwrap_or_else(|| format!("nvml:{index}"));
    let mut g = GpuRaw::empty(GpuVendor::Nvidia, index, id);
    g.name = keep(u, "name", dev.name());
    if let Some(util) = keep(u, "utilization", dev.utilization()) {
        g.busy_percent = Some(f64::from(util.gpu));
        g.mem_busy_percent = Some(f64::from(util.memory));
    }
    if let Some(mem) = keep(u, "memory", dev.memory()) {
        g.vram_used_bytes = Some(mem.used);
        g.vram_total_bytes = Some(mem.total);
    }
    g.power_watts = keep(u, "power", dev.power_usage_mw()).map(|mw| f64::from(mw) / 1000.0);
    g.power_limit_watts =
        keep(u, "power_limit", dev.enforced_power_limit_mw()).map(|mw| f64::from(mw) / 1000.0);
    g.energy_mj = keep(u, "energy", dev.total_energy_mj());
    g.temperature_c = keep(u, "temperature", dev.temperature_c()).map(f64::from);
    g.clock_mhz = keep(u, "clock", sm_or_graphics(|c| dev.clock_mhz(c))).map(f64::from);
    g.clock_max_mhz = keep(u, "clock_max", sm_or_graphics(|c| dev.max_clock_mhz(c))).map(f64::from);
    g.mem_clock_mhz = keep(u, "mem_clock", dev.clock_mhz(NvmlClock::Memory)).map(f64::from);
    g.throttle = keep(u, "throttle", dev.clock_event_reasons())
        .map(|mask| ThrottleRaw::NvidiaClockEvents { mask });
    g.processes = keep(u, "processes", dev.running_compute_processes()).unwrap_or_default();
    g.unavailable = unavailable;
    g
}

/// NVML's error as text: `"not supported"`, `"permission denied"`, or NVML's own message.
fn nvml_err(e: NvmlError) -> String {
    match e {
        NvmlError::NotSupported => "not supported".to_string(),
        NvmlError::NoPermission => "permission denied".to_string(),
        NvmlError::FailedToLoadSymbol(s) => {
            format!("function missing from this driver's libnvidia-ml: {s}")
        }
        other => other.to_string(),
    }
}

/// The nvml-wrapper clock for ours.
fn wrapper_clock(clock: NvmlClock) -> Clock {
    match clock {
        NvmlClock::Graphics => Clock::Graphics,
        NvmlClock::Sm => Clock::SM,
        NvmlClock::Memory => Clock::Memory,
    }
}

/// [`NvmlDeviceApi`] over a real NVML device.
pub struct NvmlDevice<'nvml>(
    /// The nvml-wrapper device handle.
    pub Device<'nvml>,
);

impl NvmlDeviceApi for NvmlDevice<'_> {
    fn name(&self) -> Result<String, String> {
        self.0.name().map_err(nvml_err)
    }
    fn uuid(&self) -> Result<String, String> {
        self.0.uuid().map_err(nvml_err)
    }
    fn utilization(&self) -> Result<NvmlUtilization, String> {
        let u = self.0.utilization_rates().map_err(nvml_err)?;
        Ok(NvmlUtilization {
            gpu: u.gpu,
            memory: u.memory,
        })
    }
    fn memory(&self) -> Result<NvmlMemory, String> {
        let m = self.0.memory_info().map_err(nvml_err)?;
        Ok(NvmlMemory {
            total: m.total,
            used: m.used,
        })
    }
    fn power_usage_mw(&self) -> Result<u32, String> {
        self.0.power_usage().map_err(nvml_err)
    }
    fn enforced_power_limit_mw(&self) -> Result<u32, String> {
        self.0.enforced_power_limit().map_err(nvml_err)
    }
    fn total_energy_mj(&self) -> Result<u64, String> {
        self.0.total_energy_consumption().map_err(nvml_err)
    }
    fn temperature_c(&self) -> Result<u32, String> {
        self.0.temperature(TemperatureSensor::Gpu).map_err(nvml_err)
    }
    fn clock_mhz(&self, clock: NvmlClock) -> Result<u32, String> {
        self.0.clock_info(wrapper_clock(clock)).map_err(nvml_err)
    }
    fn max_clock_mhz(&self, clock: NvmlClock) -> Result<u32, String> {
        self.0
            .max_clock_info(wrapper_clock(clock))
            .map_err(nvml_err)
    }
    fn clock_event_reasons(&self) -> Result<u64, String> {
        // nvml-wrapper keeps only the bits it knows (`from_bits_truncate`); all nine defined
        // reasons (0x1..0x100) are among them.
        self.0
            .current_throttle_reasons()
            .map(|r| r.bits())
            .map_err(nvml_err)
    }
    fn running_compute_processes(&self) -> Result<Vec<GpuProcess>, String> {
        let procs = self.0.running_compute_processes().map_err(nvml_err)?;
        Ok(procs
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                used_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes),
                    UsedGpuMemory::Unavailable => None,
                },
            })
            .collect())
    }
}

/// All NVIDIA GPUs through NVML.
pub struct NvmlSource {
    nvml: Nvml,
    count: u32,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl NvmlSource {
    /// Loads `libnvidia-ml.so.1`, initialises NVML and counts the devices. The error says why
    /// NVML cannot be used (no driver, driver not loaded, no device...).
    pub fn init() -> Result<Self, String> {
        let nvml = Nvml::init().map_err(|e| match e {
            NvmlError::LibloadingError(inner) => format!(
                "libnvidia-ml.so.1 could not be loaded (no NVIDIA driver): {}",
                lowercase_first(&inner.to_string())
            ),
            NvmlError::DriverNotLoaded => "the NVIDIA kernel driver is not loaded".to_string(),
            NvmlError::NoPermission => {
                "permission denied opening the NVIDIA devices (/dev/nvidia*)".to_string()
            }
            other => format!("nvml init failed: {}", nvml_err(other)),
        })?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("nvml device count failed: {}", nvml_err(e)))?;
        if count == 0 {
            return Err("nvml loaded but found no NVIDIA GPU".to_string());
        }
        Ok(NvmlSource { nvml, count })
    }

    /// How many GPUs NVML reported at init.
    pub fn device_count(&self) -> u32 {
        self.count
    }
}

impl GpuSource for NvmlSource {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn read(&mut self) -> Result<Vec<GpuRaw>, String> {
        Ok((0..self.count)
            .map(|index| match self.nvml.device_by_index(index) {
                Ok(device) => read_nvml_device(index, &NvmlDevice(device)),
                Err(e) => {
                    let mut g = GpuRaw::empty(GpuVendor::Nvidia, index, format!("nvml:{index}"));
                    g.unavailable.push(format!("device: {}", nvml_err(e)));
                    g
                }
            })
            .collect())
    }
}
