//! Temperatures (`sys/class/thermal/thermal_zone*` and CPU hwmon drivers) and Intel
//! `thermal_throttle` counters. Classifying thermal state is the model crate's job; this
//! module only reads.

use std::io::ErrorKind;
use std::path::Path;

use infermon_model::raw::{CpuThrottle, Reading, Temperature};

use crate::error::HwError;
use crate::fsread::{list_numbered, read_i64, read_u64, read_u64_if_present, read_value};
use crate::paths::{self, Paths};

/// hwmon drivers that report CPU temperatures.
const CPU_HWMON_DRIVERS: [&str; 3] = ["coretemp", "k10temp", "zenpower"];

/// The message when `thermal_throttle` is absent.
pub(crate) const NO_THERMAL_THROTTLE: &str =
    "no thermal_throttle counters (not an Intel CPU or not exposed)";

/// Millidegrees Celsius to degrees.
fn celsius(milli: i64) -> f64 {
    milli as f64 / 1000.0
}

/// Reads every thermal zone and every CPU hwmon sensor. Sensors that fail to read are skipped
/// (some zones answer `ENODATA` while their device sleeps); when none can be read, the reading is
/// unavailable and lists why.
pub(crate) fn read_temperatures(paths: &Paths) -> Reading<Vec<Temperature>> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    read_thermal_zones(&paths.at(paths::SYS_THERMAL), &mut found, &mut errors);
    read_cpu_hwmon(&paths.at(paths::SYS_HWMON), &mut found, &mut errors);
    if !found.is_empty() {
        return Reading::ok(found);
    }
    if errors.is_empty() {
        return Reading::unavailable(format!(
            "no temperature sensors in {} or CPU sensors ({}) in {}",
            paths.at(paths::SYS_THERMAL).display(),
            CPU_HWMON_DRIVERS.join(", "),
            paths.at(paths::SYS_HWMON).display()
        ));
    }
    Reading::unavailable(errors.join("; "))
}

/// `thermal_zoneN/{type,temp}` → `thermal_zoneN:<type>`.
fn read_thermal_zones(dir: &Path, found: &mut Vec<Temperature>, errors: &mut Vec<String>) {
    let zones = match list_numbered(dir, paths::thermal::ZONE_PREFIX) {
        Ok(zones) => zones,
        Err(e) if e.io_kind() == Some(ErrorKind::NotFound) => return,
        Err(e) => return errors.push(e.to_string()),
    };
    for zone in zones {
        let read = || -> Result<Temperature, HwError> {
            let kind = read_value(&zone.path.join(paths::thermal::ZONE_TYPE))?;
            let milli = read_i64(&zone.path.join(paths::thermal::ZONE_TEMP))?;
            Ok(Temperature {
                sensor: format!("{}:{kind}", zone.name),
                celsius: celsius(milli),
            })
        };
        match read() {
            Ok(t) => found.push(t),
            Err(e) => errors.push(e.to_string()),
        }
    }
}

/// `hwmonN/temp*_input` of CPU drivers → `hwmon:<driver>:<label or tempK>`.
fn read_cpu_hwmon(dir: &Path, found: &mut Vec<Temperature>, errors: &mut Vec<String>) {
    let hwmons = match list_numbered(dir, paths::thermal::HWMON_PREFIX) {
        Ok(h) => h,
        Err(e) if e.io_kind() == Some(ErrorKind::NotFound) => return,
        Err(e) => return errors.push(e.to_string()),
    };
    for hwmon in hwmons {
        let Ok(driver) = read_value(&hwmon.path.join(paths::thermal::HWMON_NAME)) else {
            continue;
        };
        if !CPU_HWMON_DRIVERS.contains(&driver.as_str()) {
            continue;
        }
        let inputs = match hwmon_temp_inputs(&hwmon.path) {
            Ok(inputs) => inputs,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        for n in inputs {
            let input = hwmon.path.join(format!("temp{n}_input"));
            let label = read_value(&hwmon.path.join(format!("temp{n}_label")))
                .unwrap_or_else(|_| format!("temp{n}"));
            match read_i64(&input) {
                Ok(milli) => found.push(Temperature {
                    sensor: format!("hwmon:{driver}:{label}"),
                    celsius: celsius(milli),
                }),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
}

/// The `N` of every `tempN_input` in an hwmon directory, sorted.
fn hwmon_temp_inputs(dir: &Path) -> Result<Vec<u32>, HwError> {
    let entries = std::fs::read_dir(dir).map_err(|e| HwError::io(dir, e))?;
    let mut numbers: Vec<u32> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_prefix("temp")?
                .strip_suffix("_input")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// cpu0's `thermal_throttle` counters (package counters are per package; cpu0's package is
/// read, never a sum over CPUs).
pub(crate) fn read_cpu_throttle(paths: &Paths) -> Reading<CpuThrottle> {
    let dir = paths.cpu0().join(paths::cpu::THERMAL_THROTTLE);
    match std::fs::metadata(&dir) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Reading::unavailable(format!("{}: {NO_THERMAL_THROTTLE}", dir.display()))
        }
        Err(e) => return Reading::unavailable(HwError::io(&dir, e).to_string()),
    }
    let read = || -> Result<CpuThrottle, HwError> {
        Ok(CpuThrottle {
            package_count: read_u64(&dir.join(paths::cpu::PACKAGE_THROTTLE_COUNT))?,
            core_count: read_u64(&dir.join(paths::cpu::CORE_THROTTLE_COUNT))?,
            package_total_ms: read_u64_if_present(
                &dir.join(paths::cpu::PACKAGE_THROTTLE_TOTAL_TIME_MS),
            )?,
        })
    };
    Reading::from_result(read())
}
