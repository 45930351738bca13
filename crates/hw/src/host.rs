//! [`HostReader`]: node-wide readings (CPU, memory, swap, pressure, energy, temperatures).

use std::path::{Path, PathBuf};

use infermon_model::raw::HostRaw;

use crate::paths::Paths;
use crate::{cpufreq, procfs, psi, rapl, sysconf, thermal};

/// Reads [`HostRaw`] from `root/proc` and `root/sys`.
///
/// Each part is read on its own: a missing file, a permission error or garbage content makes
/// that part [`Reading::Unavailable`](infermon_model::raw::Reading::Unavailable) with a reason
/// naming the path, and never stops the other parts.
#[derive(Debug, Clone)]
pub struct HostReader {
    paths: Paths,
    page_size: Option<u64>,
}

impl HostReader {
    /// A reader of the system under `root` (`/` for the real one). The page size used to turn
    /// `/proc/vmstat` pages into bytes is this system's (`sysconf(_SC_PAGESIZE)`); tests of a
    /// recorded tree set it with [`HostReader::with_page_size`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostReader {
            paths: Paths::new(root),
            page_size: sysconf::page_size(),
        }
    }

    /// Uses `bytes` as the page size instead of asking the running system.
    pub fn with_page_size(mut self, bytes: u64) -> Self {
        self.page_size = Some(bytes);
        self
    }

    /// The root this reader reads below.
    pub fn root(&self) -> &Path {
        self.paths.root()
    }

    /// Reads every part once.
    pub fn read(&mut self) -> HostRaw {
        HostRaw {
            cpu: procfs::read_cpu(&self.paths),
            cpu_freq: cpufreq::read_cpufreq(&self.paths),
            memory: procfs::read_memory(&self.paths),
            vmstat: procfs::read_vmstat(&self.paths, self.page_size),
            pressure: psi::read_pressure(&self.paths),
            rapl: rapl::read_rapl(&self.paths),
            temperatures: thermal::read_temperatures(&self.paths),
            cpu_throttle: thermal::read_cpu_throttle(&self.paths),
        }
    }
}

impl Default for HostReader {
    /// The real system (`/`).
    fn default() -> Self {
        HostReader::new("/")
    }
}
