//! The amdgpu source on constructed Strix Halo (gpu_metrics v3.0) and RX 7900 XTX
//! (gpu_metrics v1.3) trees, detection, and failure modes.

mod common;

use common::{fake_root, link_driver, make_dir_in_place, read_one_amd as read_one, write};
use infermon_hw::{detect_gpus, AmdGpuSource, GpuSource};
use infermon_model::raw::{GpuRaw, GpuVendor, ThrottleRaw};

const STRIX_HALO: &str = "amdgpu/strix_halo";
const RX7900XTX: &str = "amdgpu/rx7900xtx";

fn strix_halo() -> tempfile::TempDir {
    let root = fake_root(&[STRIX_HALO]);
    link_driver(root.path(), "card1", "amdgpu");
    root
}

fn has_entry(g: &GpuRaw, prefix: &str) -> bool {
    g.unavailable.iter().any(|u| u.starts_with(prefix))
}

#[test]
fn strix_halo_apu() {
    let root = strix_halo();
    let source = AmdGpuSource::new(root.path()).unwrap();
    assert_eq!(source.card_count(), 1);
    assert_eq!(source.name(), "amdgpu");
    let g = read_one(root.path());
    assert_eq!(g.vendor, GpuVendor::Amd);
    assert_eq!(g.index, 0);
    assert_eq!(g.id, "0000:c5:00.0");
    assert_eq!(g.name, None);
    assert_eq!(g.busy_percent, Some(97.0));
    assert_eq!(g.mem_busy_percent, None, "APUs have no mem_busy_percent");
    assert!(has_entry(&g, "mem_busy: "), "{:?}", g.unavailable);
    assert_eq!(g.vram_total_bytes, Some(512 * 1024 * 1024));
    assert_eq!(g.vram_used_bytes, Some(160432128));
    assert_eq!(g.gtt_total_bytes, Some(68451041280));
    assert_eq!(g.gtt_used_bytes, Some(44023414784));
    assert_eq!(g.power_watts, Some(118.0), "power1_average, µW → W");
    assert_eq!(g.power_limit_watts, None);
    assert!(has_entry(&g, "power_limit: "));
    assert_eq!(g.temperature_c, Some(61.0));
    assert_eq!(g.clock_mhz, Some(2864.0), "freq1_input, Hz → MHz");
    assert_eq!(g.clock_max_mhz, Some(2900.0));
    assert_eq!(g.mem_clock_mhz, None);
    assert!(has_entry(&g, "mem_clock: "));
    assert_eq!(
        g.throttle,
        Some(ThrottleRaw::AmdThrottleResidency {
            prochot: 0,
            spl: 184233,
            fppt: 2210,
            sppt: 31877,
            thm_core: 0,
            thm_gfx: 0,
            thm_soc: 0,
        })
    );
    assert!(g.processes.is_empty());
    assert!(has_entry(&g, "processes: "));
    assert_eq!(g.energy_mj, None);
}

#[test]
fn rx7900xtx_dgpu_found_by_vendor_without_driver_link() {
    let root = fake_root(&[RX7900XTX]);
    let g = read_one(root.path());
    assert_eq!(g.id, "0000:03:00.0");
    assert_eq!(g.busy_percent, Some(98.0));
    assert_eq!(g.mem_busy_percent, Some(61.0));
    assert_eq!(g.vram_total_bytes, Some(25753026560));
    assert_eq!(g.vram_used_bytes, Some(23622320128));
    assert_eq!(
        g.power_watts,
        Some(347.0),
        "power1_input wins over power1_average"
    );
    assert_eq!(g.power_limit_watts, Some(339.0));
    assert_eq!(g.temperature_c, Some(64.0));
    assert_eq!(g.clock_mhz, Some(2371.0));
    assert_eq!(g.clock_max_mhz, Some(2500.0));
    assert_eq!(g.mem_clock_mhz, Some(1249.0));
    assert_eq!(
        g.throttle,
        Some(ThrottleRaw::AmdIndepThrottle {
            mask: (1 << 0) | (1 << 36)
        })
    );
    assert_eq!(g.unavailable.len(), 1, "{:?}", g.unavailable);
}

#[test]
fn clock_falls_back_to_pp_dpm_sclk_and_mem_clock_to_freq2() {
    let root = fake_root(&[RX7900XTX]);
    let r = root.path();
    let dev = "sys/class/drm/card0/device";
    std::fs::remove_file(r.join(dev).join("hwmon/hwmon3/freq1_input")).unwrap();
    write(
        r,
        &format!("{dev}/pp_dpm_sclk"),
        "0: 500Mhz \n1: 1803Mhz *\n2: 2500Mhz \n",
    );
    std::fs::remove_file(r.join(dev).join("pp_dpm_mclk")).unwrap();
    let g = read_one(r);
    assert_eq!(g.clock_mhz, Some(1803.0));
    assert_eq!(g.mem_clock_mhz, Some(1249.0));
    std::fs::remove_file(r.join(dev).join("hwmon/hwmon3/power1_input")).unwrap();
    let g = read_one(r);
    assert_eq!(g.power_watts, Some(339.0), "falls back to power1_average");
}

#[test]
fn every_failing_field_is_none_with_a_reason_and_the_rest_reads() {
    let root = fake_root(&[RX7900XTX]);
    let r = root.path();
    let dev = "sys/class/drm/card0/device";
    write(r, &format!("{dev}/gpu_busy_percent"), "busy\n");
    write(r, &format!("{dev}/mem_info_vram_used"), "");
    make_dir_in_place(r, &format!("{dev}/gpu_metrics"));
    write(r, &format!("{dev}/pp_dpm_sclk"), "garbage\n");
    std::fs::remove_dir_all(r.join(dev).join("hwmon")).unwrap();
    let g = read_one(r);
    let dev_path = r.join(dev).display().to_string();
    let entry = |field: &str| {
        g.unavailable
            .iter()
            .find(|u| u.starts_with(&format!("{field}: ")))
            .unwrap_or_else(|| panic!("no {field} entry in {:?}", g.unavailable))
            .clone()
    };
    assert_eq!(g.busy_percent, None);
    assert_eq!(
        entry("busy"),
        format!(
            "busy: {dev_path}/gpu_busy_percent: value \"busy\": expected a non-negative integer"
        )
    );
    assert_eq!(g.vram_used_bytes, None);
    assert_eq!(
        entry("vram_used"),
        format!("vram_used: {dev_path}/mem_info_vram_used: file is empty")
    );
    assert_eq!(g.throttle, None);
    assert!(entry("throttle").contains("gpu_metrics: is a directory"));
    assert_eq!(g.clock_max_mhz, None);
    assert!(entry("clock_max").contains("pp_dpm_sclk: line \"garbage\""));
    assert_eq!(
        (g.power_watts, g.temperature_c, g.clock_mhz),
        (None, None, None)
    );
    assert!(entry("power").contains("hwmon: no such file or directory"));
    assert!(entry("temperature").contains(&dev_path));
    // The rest still reads.
    assert_eq!(g.vram_total_bytes, Some(25753026560));
    assert_eq!(g.mem_busy_percent, Some(61.0));
    assert_eq!(g.mem_clock_mhz, Some(1249.0));
}

#[test]
fn gpu_metrics_of_an_unknown_or_truncated_revision_is_reported_not_guessed() {
    let root = strix_halo();
    let r = root.path();
    let metrics = r.join("sys/class/drm/card1/device/gpu_metrics");
    let mut bytes = std::fs::read(&metrics).unwrap();
    bytes[3] = 1; // v3.1: not a layout this reader knows
    std::fs::write(&metrics, &bytes).unwrap();
    let g = read_one(r);
    assert_eq!(g.throttle, None);
    assert!(has_entry(&g, "throttle: "), "{:?}", g.unavailable);
    assert!(g
        .unavailable
        .iter()
        .any(|u| u.contains("v3.1: layout not known")));

    bytes[3] = 0;
    std::fs::write(&metrics, &bytes[..200]).unwrap();
    let g = read_one(r);
    assert!(g
        .unavailable
        .iter()
        .any(|u| u.contains("file is 200 bytes, v3.0 needs at least 256")));
}

#[test]
fn id_falls_back_to_the_card_name() {
    let root = strix_halo();
    std::fs::remove_file(root.path().join("sys/class/drm/card1/device/uevent")).unwrap();
    assert_eq!(read_one(root.path()).id, "card1");
}

#[test]
fn other_drivers_and_connectors_are_not_amdgpu() {
    let root = fake_root(&[STRIX_HALO]);
    let r = root.path();
    // An NVIDIA card next to the APU.
    write(r, "sys/class/drm/card0/device/vendor", "0x10de\n");
    link_driver(r, "card0", "nvidia");
    // Without its driver link the APU is still found by vendor + gpu_busy_percent.
    let source = AmdGpuSource::new(r).unwrap();
    assert_eq!(source.card_count(), 1);
    // A card whose link names another driver is not amdgpu, whatever its files say.
    link_driver(r, "card1", "vfio-pci");
    let e = AmdGpuSource::new(r).unwrap_err();
    assert!(e.ends_with("sys/class/drm: no amdgpu card"), "{e}");
}

#[test]
fn two_cards_are_indexed_in_card_order() {
    let root = fake_root(&[RX7900XTX]);
    common::copy_tree(
        &common::fixture(STRIX_HALO).join("sys/class/drm/card1"),
        &root.path().join("sys/class/drm/card1"),
    );
    let gpus = AmdGpuSource::new(root.path()).unwrap().read().unwrap();
    let ids: Vec<(u32, &str)> = gpus.iter().map(|g| (g.index, g.id.as_str())).collect();
    assert_eq!(ids, [(0, "0000:03:00.0"), (1, "0000:c5:00.0")]);
}

#[test]
fn detection_reports_each_missing_source_with_a_reason() {
    let empty = tempfile::tempdir().unwrap();
    let (sources, statuses) = detect_gpus(empty.path());
    let amd = statuses.iter().find(|s| s.source == "amdgpu").unwrap();
    assert!(amd
        .unavailable
        .as_deref()
        .unwrap()
        .contains("sys/class/drm: no such file or directory"));
    // This machine has no NVIDIA driver; where it has one, NVML is a working source instead.
    let nvml_ok = sources.iter().any(|s| s.name() == "nvml");
    let nvml_status = statuses.iter().find(|s| s.source == "nvml");
    assert!(nvml_ok != nvml_status.is_some());
    if let Some(s) = nvml_status {
        assert!(!s.unavailable.as_deref().unwrap().is_empty());
    }

    let root = strix_halo();
    let (sources, statuses) = detect_gpus(root.path());
    assert!(sources.iter().any(|s| s.name() == "amdgpu"));
    assert!(statuses.iter().all(|s| s.source != "amdgpu"));
}
