//! Hardware collectors for infermon: what a Linux box's `/proc`, `/sys`, amdgpu and NVML say,
//! as raw samples ([`infermon_model::raw`]). No figure is derived here; rates, totals and
//! thermal classification live in the model crate.
//!
//! - [`HostReader`] reads CPU times and frequency, memory, swap and fault counters, PSI, RAPL
//!   energy, temperatures and Intel throttle counters into a [`HostRaw`], and names the
//!   [`TOP_PROCESSES`] processes that used the most CPU since its previous read.
//! - [`detect_gpus`] picks the GPU sources once (amdgpu sysfs, NVML) and says why any could
//!   not be used; each [`GpuSource`] then reads all of its GPUs.
//! - [`read_self`] and [`read_process`] read a process's CPU time and memory.
//! - [`pci_gpus`] counts the display controllers on the PCI bus by vendor (driver or not).
//!
//! Every reader takes a root directory (`/` on a real system) so tests can point it at a
//! recorded or constructed tree; parsers work on strings and bytes and are public.
//! Absent is not zero: what cannot be read is a
//! [`Reading::Unavailable`](infermon_model::raw::Reading::Unavailable) or an `unavailable`
//! entry carrying the path and the error, never a 0, and one failing part never stops the others.
//!
//! ```no_run
//! let mut host = infermon_hw::HostReader::new("/");
//! let raw = host.read();
//! println!("{:?}", raw.memory);
//! let (mut gpus, unavailable) = infermon_hw::detect_gpus(std::path::Path::new("/"));
//! for source in &mut gpus {
//!     println!("{}: {:?}", source.name(), source.read());
//! }
//! for status in unavailable {
//!     println!("{}: {:?}", status.source, status.unavailable);
//! }
//! ```
#![deny(missing_docs)]

mod amdgpu;
mod amdgpu_metrics;
mod cpufreq;
mod error;
mod fsread;
mod host;
mod nvml;
mod paths;
mod pci;
mod proccpu;
mod procfs;
mod psi;
mod rapl;
mod selfproc;
mod sysconf;
mod thermal;

use std::path::Path;

use infermon_model::raw::{GpuRaw, SourceStatus};

pub use amdgpu::{parse_pp_dpm, parse_uevent_pci_slot, AmdGpuSource, PpDpm};
pub use amdgpu_metrics::{
    parse_gpu_metrics_header, parse_gpu_metrics_throttle, GpuMetricsHeader, GpuMetricsThrottle,
};
pub use cpufreq::summarize_cpufreq;
pub use error::HwError;
pub use host::HostReader;
pub use nvml::{
    read_nvml_device, NvmlClock, NvmlDevice, NvmlDeviceApi, NvmlMemory, NvmlSource, NvmlUtilization,
};
pub use pci::{pci_gpus, PciGpus};
pub use proccpu::{parse_pid_stat_cpu, PidStatCpu, TOP_PROCESSES};
pub use procfs::{parse_meminfo, parse_proc_stat, parse_vmstat};
pub use psi::parse_psi;
pub use selfproc::{
    parse_pid_stat_times, parse_smaps_rollup_pss, parse_status_vm_rss, read_process, read_self,
    ProcessMem, SelfUsage,
};

#[doc(no_inline)]
pub use infermon_model::raw::HostRaw;

/// A source of GPU readings (one vendor's driver interface), chosen once by [`detect_gpus`].
///
/// Contract: `read` returns every GPU the source knows, each field it could not read as `None`
/// with a `"field: reason"` entry in [`GpuRaw::unavailable`] — never 0 for unknown. `Err` means
/// the source as a whole could not be read this time.
pub trait GpuSource: Send {
    /// Short name: `amdgpu`, `nvml`.
    fn name(&self) -> &'static str;
    /// Reads all of this source's GPUs.
    fn read(&mut self) -> Result<Vec<GpuRaw>, String>;
}

/// Keeps a GPU field's value, or records `field: reason` in [`GpuRaw::unavailable`].
pub(crate) fn keep<T>(
    unavailable: &mut Vec<String>,
    field: &str,
    result: Result<T, String>,
) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(reason) => {
            unavailable.push(format!("{field}: {reason}"));
            None
        }
    }
}

/// Tries every GPU source under `root` (amdgpu sysfs) and on this machine (NVML, which is a
/// library and ignores `root`). Returns the sources that work and, for each that does not, a
/// [`SourceStatus`] with the reason — a missing driver never stops anything.
pub fn detect_gpus(root: &Path) -> (Vec<Box<dyn GpuSource>>, Vec<SourceStatus>) {
    let mut sources: Vec<Box<dyn GpuSource>> = Vec::new();
    let mut statuses = Vec::new();
    let mut consider = |name: &str, found: Result<Box<dyn GpuSource>, String>| match found {
        Ok(source) => sources.push(source),
        Err(reason) => statuses.push(SourceStatus {
            source: name.to_string(),
            unavailable: Some(reason),
        }),
    };
    consider(
        "amdgpu",
        AmdGpuSource::new(root).map(|s| Box::new(s) as Box<dyn GpuSource>),
    );
    consider(
        "nvml",
        NvmlSource::init().map(|s| Box::new(s) as Box<dyn GpuSource>),
    );
    (sources, statuses)
}
