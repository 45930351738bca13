//! [`HostReader`]: node-wide readings (CPU, memory, swap, pressure, energy, temperatures) and
//! the processes that used the most CPU.

use std::path::{Path, PathBuf};
use std::time::Instant;

use infermon_model::raw::HostRaw;

use crate::paths::Paths;
use crate::proccpu::ProcessCpuTracker;
use crate::{cpufreq, procfs, psi, rapl, sysconf, thermal};

/// Reads [`HostRaw`] from `root/proc` and `root/sys`.
///
/// Each part is read on its own: a missing file, a permission error or garbage content makes
/// that part [`Reading::Unavailable`](infermon_model::raw::Reading::Unavailable) with a reason
/// naming the path, and never stops the other parts.
///
/// The reader has state: every process's cumulative CPU ticks as of the previous read, so that
/// [`HostRaw::top_processes`] names the [`TOP_PROCESSES`](crate::TOP_PROCESSES) processes that
/// used the most CPU time since then, with the window measured on this reader's monotonic
/// clock. The first read has no window and returns an empty list. Processes that exited are
/// forgotten at each read.
#[derive(Debug, Clone)]
pub struct HostReader {
    paths: Paths,
    page_size: Option<u64>,
    processes: ProcessCpuTracker,
}

impl HostReader {
    /// A reader of the system under `root` (`/` for the real one). The page size used to turn
    /// `/proc/vmstat` pages into bytes is this system's (`sysconf(_SC_PAGESIZE)`); tests of a
    /// recorded tree set it with [`HostReader::with_page_size`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostReader {
            paths: Paths::new(root),
            page_size: sysconf::page_size(),
            processes: ProcessCpuTracker::new(sysconf::clock_ticks_per_second()),
        }
    }

    /// Uses `bytes` as the page size instead of asking the running system.
    pub fn with_page_size(mut self, bytes: u64) -> Self {
        self.page_size = Some(bytes);
        self
    }

    /// Uses `hz` clock ticks per second (the unit of `/proc/<pid>/stat` times) instead of
    /// asking the running system (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
    pub fn with_clock_ticks(mut self, hz: u64) -> Self {
        self.processes.set_ticks_per_second(hz);
        self
    }

    /// The root this reader reads below.
    pub fn root(&self) -> &Path {
        self.paths.root()
    }

    /// Reads every part once.
    pub fn read(&mut self) -> HostRaw {
        self.read_inner(None)
    }

    /// [`HostReader::read`] with the per-process CPU window ending at the monotonic time `now`
    /// instead of when the processes are read (tests pass instants a known distance apart).
    pub fn read_at(&mut self, now: Instant) -> HostRaw {
        self.read_inner(Some(now))
    }

    fn read_inner(&mut self, now: Option<Instant>) -> HostRaw {
        HostRaw {
            cpu: procfs::read_cpu(&self.paths),
            cpu_freq: cpufreq::read_cpufreq(&self.paths),
            memory: procfs::read_memory(&self.paths),
            vmstat: procfs::read_vmstat(&self.paths, self.page_size),
            pressure: psi::read_pressure(&self.paths),
            rapl: rapl::read_rapl(&self.paths),
            temperatures: thermal::read_temperatures(&self.paths),
            cpu_throttle: thermal::read_cpu_throttle(&self.paths),
            // Fields are evaluated in order: the clock is read just before the processes are.
            top_processes: Some(
                self.processes
                    .read(&self.paths, now.unwrap_or_else(Instant::now)),
            ),
        }
    }
}

impl Default for HostReader {
    /// The real system (`/`).
    fn default() -> Self {
        HostReader::new("/")
    }
}
