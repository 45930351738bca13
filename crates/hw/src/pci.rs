//! Which GPUs the PCI bus has (`sys/bus/pci/devices/*/{vendor,class}`), whatever driver is
//! bound to them, so that a missing GPU driver can be told from a machine without that GPU.

use std::path::Path;

use crate::error::HwError;
use crate::fsread::read_value;
use crate::paths::{self, Paths};

/// PCI vendor id of NVIDIA.
const NVIDIA: &str = "0x10de";
/// PCI vendor id of AMD (ATI).
const AMD: &str = "0x1002";
/// PCI base class of display controllers (VGA, XGA, 3D, other), as the start of `class`.
const DISPLAY_CLASS: &str = "0x03";

/// Display controllers on the PCI bus, counted by vendor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PciGpus {
    /// NVIDIA display controllers.
    pub nvidia: u32,
    /// AMD display controllers (dGPUs and APUs alike).
    pub amd: u32,
    /// Display controllers of any other vendor (Intel, ASPEED BMC graphics, virtual GPUs).
    pub other: u32,
}

/// Counts the display controllers under `root/sys/bus/pci/devices`. A function whose `vendor`
/// or `class` cannot be read is skipped; an unreadable or missing directory is an error (then
/// nothing can be said about the GPUs).
pub fn pci_gpus(root: &Path) -> Result<PciGpus, HwError> {
    let dir = Paths::new(root).at(paths::SYS_PCI_DEVICES);
    let entries = std::fs::read_dir(&dir).map_err(|e| HwError::io(&dir, e))?;
    let mut found = PciGpus::default();
    for entry in entries {
        let entry = entry.map_err(|e| HwError::io(&dir, e))?;
        let device = entry.path();
        let (Ok(class), Ok(vendor)) = (
            read_value(&device.join(paths::pci::CLASS)),
            read_value(&device.join(paths::pci::VENDOR)),
        ) else {
            continue;
        };
        if !class.to_ascii_lowercase().starts_with(DISPLAY_CLASS) {
            continue;
        }
        match vendor.to_ascii_lowercase().as_str() {
            NVIDIA => found.nvidia += 1,
            AMD => found.amd += 1,
            _ => found.other += 1,
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(root: &Path, address: &str, vendor: &str, class: &str) {
        let dir = root.join("sys/bus/pci/devices").join(address);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vendor"), format!("{vendor}\n")).unwrap();
        std::fs::write(dir.join("class"), format!("{class}\n")).unwrap();
    }

    #[test]
    fn counts_display_controllers_by_vendor() {
        let d = tempfile::tempdir().unwrap();
        function(d.path(), "0000:01:00.0", "0x10de", "0x030200"); // NVIDIA 3D controller
        function(d.path(), "0000:01:00.1", "0x10de", "0x040300"); // its HDMI audio
        function(d.path(), "0000:03:00.0", "0x1002", "0x030000"); // AMD VGA
        function(d.path(), "0000:00:02.0", "0x8086", "0x030000"); // Intel iGPU
        function(d.path(), "0000:00:1f.0", "0x8086", "0x060100"); // ISA bridge
        std::fs::create_dir_all(d.path().join("sys/bus/pci/devices/0000:00:1f.3")).unwrap();
        assert_eq!(
            pci_gpus(d.path()).unwrap(),
            PciGpus {
                nvidia: 1,
                amd: 1,
                other: 1
            }
        );
    }

    #[test]
    fn no_pci_directory_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let e = pci_gpus(d.path()).unwrap_err().to_string();
        assert!(e.contains("sys/bus/pci/devices: no such file"), "{e}");
    }
}
