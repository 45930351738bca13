//! Test helpers: fake roots built from fixture trees, and a fake NVML device.
// Helpers are not `#[test]` functions, so the workspace's unwrap lint would apply; a failed
// fixture setup should panic.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use infermon_hw::{NvmlClock, NvmlDeviceApi, NvmlMemory, NvmlUtilization};
use infermon_model::raw::GpuProcess;
use serde::Deserialize;

/// `crates/hw/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A temporary root holding the given fixture trees merged (later trees win).
pub fn fake_root(trees: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for tree in trees {
        copy_tree(&fixture(tree), dir.path());
    }
    dir
}

/// Copies `from` into `to` recursively, making every file writable.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            use std::os::unix::fs::PermissionsExt;
            fs::copy(entry.path(), &target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Writes `content` at `root/rel`, creating directories.
pub fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Replaces the file `root/rel` with an empty directory (reading it fails with EISDIR).
pub fn make_dir_in_place(root: &Path, rel: &str) {
    let path = root.join(rel);
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
}

/// Whether this process can read files whose mode is 000 (root, CAP_DAC_OVERRIDE).
pub fn reads_despite_mode_000(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join(".probe");
    fs::write(&probe, "x").unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o000)).unwrap();
    let readable = fs::read(&probe).is_ok();
    fs::remove_file(&probe).unwrap();
    readable
}

/// `chmod 000`.
pub fn chmod_000(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o000)).unwrap();
}

/// Adds the `device/driver` link sysfs has (`../../../bus/pci/drivers/<driver>`; it may dangle).
pub fn link_driver(root: &Path, card: &str, driver: &str) {
    let link = root.join("sys/class/drm").join(card).join("device/driver");
    std::os::unix::fs::symlink(format!("../../../../bus/pci/drivers/{driver}"), link).unwrap();
}

/// The only GPU of an amdgpu tree.
pub fn read_one_amd(root: &Path) -> infermon_model::raw::GpuRaw {
    use infermon_hw::GpuSource;
    let mut source = infermon_hw::AmdGpuSource::new(root).unwrap();
    let mut gpus = source.read().unwrap();
    assert_eq!(gpus.len(), 1);
    gpus.remove(0)
}

/// One NVML answer in a fixture: `{"ok": value}` or `{"err": "not supported"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer<T> {
    /// The call returned this value.
    Ok(T),
    /// The call failed with this error text.
    Err(String),
}

impl<T: Clone> Answer<T> {
    fn get(&self) -> Result<T, String> {
        match self {
            Answer::Ok(v) => Ok(v.clone()),
            Answer::Err(e) => Err(e.clone()),
        }
    }
}

/// Answers per clock domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockAnswers {
    graphics: Answer<u32>,
    sm: Answer<u32>,
    memory: Answer<u32>,
}

impl ClockAnswers {
    fn get(&self, clock: NvmlClock) -> Result<u32, String> {
        match clock {
            NvmlClock::Graphics => self.graphics.get(),
            NvmlClock::Sm => self.sm.get(),
            NvmlClock::Memory => self.memory.get(),
        }
    }
}

/// An NVML device answering from a JSON fixture (`tests/fixtures/nvml/*.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeNvmlDevice {
    name: Answer<String>,
    uuid: Answer<String>,
    utilization: Answer<NvmlUtilization>,
    memory: Answer<NvmlMemory>,
    power_usage_mw: Answer<u32>,
    enforced_power_limit_mw: Answer<u32>,
    total_energy_mj: Answer<u64>,
    temperature_c: Answer<u32>,
    clocks_mhz: ClockAnswers,
    max_clocks_mhz: ClockAnswers,
    clock_event_reasons: Answer<u64>,
    running_compute_processes: Answer<Vec<GpuProcess>>,
}

impl FakeNvmlDevice {
    /// Loads `tests/fixtures/nvml/<name>`.
    pub fn load(name: &str) -> Self {
        let text = fs::read_to_string(fixture(&format!("nvml/{name}"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Makes one query fail with `error` (the uuid, for the id fallback).
    pub fn with_uuid_error(mut self, error: &str) -> Self {
        self.uuid = Answer::Err(error.to_string());
        self
    }
}

impl NvmlDeviceApi for FakeNvmlDevice {
    fn name(&self) -> Result<String, String> {
        self.name.get()
    }
    fn uuid(&self) -> Result<String, String> {
        self.uuid.get()
    }
    fn utilization(&self) -> Result<NvmlUtilization, String> {
        self.utilization.get()
    }
    fn memory(&self) -> Result<NvmlMemory, String> {
        self.memory.get()
    }
    fn power_usage_mw(&self) -> Result<u32, String> {
        self.power_usage_mw.get()
    }
    fn enforced_power_limit_mw(&self) -> Result<u32, String> {
        self.enforced_power_limit_mw.get()
    }
    fn total_energy_mj(&self) -> Result<u64, String> {
        self.total_energy_mj.get()
    }
    fn temperature_c(&self) -> Result<u32, String> {
        self.temperature_c.get()
    }
    fn clock_mhz(&self, clock: NvmlClock) -> Result<u32, String> {
        self.clocks_mhz.get(clock)
    }
    fn max_clock_mhz(&self, clock: NvmlClock) -> Result<u32, String> {
        self.max_clocks_mhz.get(clock)
    }
    fn clock_event_reasons(&self) -> Result<u64, String> {
        self.clock_event_reasons.get()
    }
    fn running_compute_processes(&self) -> Result<Vec<GpuProcess>, String> {
        self.running_compute_processes.get()
    }
}
