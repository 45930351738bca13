//! RAPL energy counters from `sys/class/powercap/intel-rapl:N[:M]/` (AMD Zen uses the same
//! driver and names).
//!
//! Since Linux 5.10 (and the stable kernels it was backported to) `energy_uj` is readable by
//! root only (CVE-2020-8694, "PLATYPUS"); a non-root agent gets an unavailable reading that
//! says so.

use std::io::ErrorKind;

use infermon_model::raw::{RaplZone, Reading};

use crate::error::HwError;
use crate::fsread::{list_numbered, read_u64, read_value};
use crate::paths::{self, Paths};

/// Reads every zone (packages and their subzones, each with its `name`). Any failure makes the
/// whole reading unavailable: a partial set of zones would give wrong totals.
pub(crate) fn read_rapl(paths: &Paths) -> Reading<Vec<RaplZone>> {
    let dir = paths.at(paths::SYS_POWERCAP);
    let zones = match list_numbered(&dir, paths::rapl::ZONE_PREFIX) {
        Ok(zones) => zones,
        Err(e) => return Reading::unavailable(rapl_reason(&e)),
    };
    if zones.is_empty() {
        return Reading::unavailable(format!(
            "{}: no intel-rapl zones (no RAPL support, driver not loaded, or hidden in a container)",
            dir.display()
        ));
    }
    let mut out = Vec::with_capacity(zones.len());
    for zone in zones {
        let read = || -> Result<RaplZone, HwError> {
            Ok(RaplZone {
                name: read_value(&zone.path.join(paths::rapl::NAME))?,
                energy_uj: read_u64(&zone.path.join(paths::rapl::ENERGY_UJ))?,
                max_energy_range_uj: read_u64(&zone.path.join(paths::rapl::MAX_ENERGY_RANGE_UJ))?,
                zone: zone.name.clone(),
            })
        };
        match read() {
            Ok(z) => out.push(z),
            Err(e) => return Reading::unavailable(rapl_reason(&e)),
        }
    }
    Reading::ok(out)
}

/// The reason for a RAPL failure, with the usual explanations for "permission denied" and
/// "no such file".
pub(crate) fn rapl_reason(e: &HwError) -> String {
    match e.io_kind() {
        Some(ErrorKind::PermissionDenied) => format!(
            "{e}: RAPL energy counters are root-only since Linux 5.10 (CVE-2020-8694); run the \
             agent as root or make energy_uj readable (e.g. a udev rule)"
        ),
        Some(ErrorKind::NotFound) => format!(
            "{e}: no RAPL powercap zones (no RAPL support, intel_rapl driver not loaded, or hidden \
             in a container)"
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn permission_denied_mentions_root_only_and_the_cve() {
        let e = HwError::io(
            Path::new("/sys/class/powercap/intel-rapl:0/energy_uj"),
            std::io::Error::from(ErrorKind::PermissionDenied),
        );
        let reason = rapl_reason(&e);
        assert!(
            reason.starts_with("/sys/class/powercap/intel-rapl:0/energy_uj: permission denied"),
            "{reason}"
        );
        assert!(reason.contains("root-only since Linux 5.10"), "{reason}");
        assert!(reason.contains("CVE-2020-8694"), "{reason}");
    }

    #[test]
    fn missing_powercap_says_why() {
        let e = HwError::io(
            Path::new("/sys/class/powercap"),
            std::io::Error::from(ErrorKind::NotFound),
        );
        assert!(rapl_reason(&e).contains("no RAPL powercap zones"));
    }
}
