//! The NVML conversion on fake devices built from JSON fixtures (no NVIDIA GPU is available
//! where these tests were written), and NVML's init on this machine.

mod common;

use common::FakeNvmlDevice;
use infermon_hw::{read_nvml_device, GpuSource, NvmlSource};
use infermon_model::raw::{GpuProcess, GpuVendor, ThrottleRaw};

#[test]
fn h100_sxm_power_capped() {
    let dev = FakeNvmlDevice::load("h100_sxm_throttled.json");
    let g = read_nvml_device(0, &dev);
    assert_eq!(g.vendor, GpuVendor::Nvidia);
    assert_eq!(g.index, 0);
    assert_eq!(g.id, "GPU-5d3c2a81-7f4e-4b1e-9a62-0c8e2f1d7b34");
    assert_eq!(g.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(g.busy_percent, Some(100.0));
    assert_eq!(g.mem_busy_percent, Some(62.0));
    assert_eq!(g.vram_total_bytes, Some(81559 * 1024 * 1024));
    assert_eq!(g.vram_used_bytes, Some(83477135360));
    assert_eq!((g.gtt_used_bytes, g.gtt_total_bytes), (None, None));
    assert_eq!(g.power_watts, Some(451.873), "mW → W");
    assert_eq!(g.power_limit_watts, Some(700.0));
    assert_eq!(g.energy_mj, Some(5832114209));
    assert_eq!(g.temperature_c, Some(71.0));
    assert_eq!(g.clock_mhz, Some(1755.0));
    assert_eq!(g.clock_max_mhz, Some(1980.0));
    assert_eq!(g.mem_clock_mhz, Some(2619.0));
    assert_eq!(
        g.throttle,
        Some(ThrottleRaw::NvidiaClockEvents { mask: 0x4 })
    );
    assert_eq!(
        g.processes,
        [
            GpuProcess {
                pid: 48211,
                used_bytes: Some(78536245248)
            },
            GpuProcess {
                pid: 51877,
                used_bytes: Some(4404019200)
            },
        ]
    );
    assert!(g.unavailable.is_empty(), "{:?}", g.unavailable);
}

#[test]
fn not_supported_is_none_with_an_entry_never_zero() {
    let dev = FakeNvmlDevice::load("p40_power_energy_not_supported.json");
    let g = read_nvml_device(3, &dev);
    assert_eq!(g.index, 3);
    assert_eq!(g.power_watts, None);
    assert_eq!(g.energy_mj, None);
    assert_eq!(
        g.unavailable,
        ["power: not supported", "energy: not supported"]
    );
    assert_eq!(g.power_limit_watts, Some(250.0));
    assert_eq!(g.throttle, Some(ThrottleRaw::NvidiaClockEvents { mask: 0 }));
    assert_eq!(
        g.processes,
        [GpuProcess {
            pid: 2231,
            used_bytes: None
        }]
    );
}

#[test]
fn every_gpu_gets_its_own_index_and_a_failed_uuid_gets_a_fallback_id() {
    let devices = [
        FakeNvmlDevice::load("h100_sxm_throttled.json"),
        FakeNvmlDevice::load("h100_sxm_throttled.json").with_uuid_error("gpu lost"),
    ];
    let gpus: Vec<_> = devices
        .iter()
        .zip(0u32..)
        .map(|(d, i)| read_nvml_device(i, d))
        .collect();
    assert_eq!(gpus[0].index, 0);
    assert_eq!(gpus[1].index, 1);
    assert_eq!(gpus[1].id, "nvml:1");
    assert_eq!(gpus[1].unavailable, ["uuid: gpu lost"]);
    assert_eq!(gpus[1].power_watts, Some(451.873));
}

#[test]
fn init_without_a_driver_is_an_error_with_a_reason() {
    match NvmlSource::init() {
        Ok(mut source) => {
            // A machine with an NVIDIA driver: every GPU is read.
            let gpus = source.read().unwrap();
            assert_eq!(gpus.len() as u32, source.device_count());
        }
        Err(reason) => {
            eprintln!("nvml: {reason}");
            assert!(!reason.is_empty());
            assert!(reason.chars().next().unwrap().is_lowercase(), "{reason}");
        }
    }
}
