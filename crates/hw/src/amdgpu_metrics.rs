//! Decoding the throttle signal from amdgpu's binary `gpu_metrics` file.
//!
//! The file is one of the `gpu_metrics_vX_Y` structs of the kernel's
//! `drivers/gpu/drm/amd/include/kgd_pp_interface.h`, naturally aligned (not packed), in the
//! host's byte order, starting with `struct metrics_table_header { u16 structure_size;
//! u8 format_revision; u8 content_revision; }`. The driver fills the whole table with `0xFF`
//! before writing the fields the firmware reports (`smu_cmn_init_soft_gpu_metrics`), so an
//! all-ones value means "not reported".
//!
//! Only layouts whose offsets are certain are read:
//! - **v1.3** (dGPUs, e.g. SMU 11/13 Navi): `indep_throttle_status` (u64) at byte 112. v1.0–v1.2
//!   have no such field; v1.4–v1.6 (MI300) replaced the layout and only keep the
//!   ASIC-dependent `throttle_status`, so they are reported as not read.
//! - **v2.2, v2.3, v2.4** (APUs): `indep_throttle_status` (u64) at byte 120 (v2.3 and v2.4 only
//!   append fields after it).
//! - **v3.0** (SMU 14 APUs such as Strix Point/Halo): no bitmask;
//!   `throttle_residency_{prochot,spl,fppt,sppt,thm_core,thm_gfx,thm_soc}` (7 × u32) at bytes
//!   228..256.
//!
//! The offsets were computed by compiling the header's struct definitions with gcc on x86_64
//! and printing `offsetof` of each field (v1.3 size 120, v2.2 size 128, v3.0 size 264).

use std::path::{Path, PathBuf};

use infermon_model::raw::ThrottleRaw;

use crate::error::HwError;
use crate::paths;

/// `offsetof(struct gpu_metrics_v1_3, indep_throttle_status)`.
const V1_3_INDEP_THROTTLE: usize = 112;
/// `offsetof(struct gpu_metrics_v2_2, indep_throttle_status)` (same in v2.3, v2.4).
const V2_2_INDEP_THROTTLE: usize = 120;
/// `offsetof(struct gpu_metrics_v3_0, throttle_residency_prochot)`; the other six u32
/// counters follow in the order spl, fppt, sppt, thm_core, thm_gfx, thm_soc.
const V3_0_THROTTLE_RESIDENCY: usize = 228;
/// Names of the v3.0 residency counters, in file order.
const V3_0_RESIDENCY_NAMES: [&str; 7] = [
    "throttle_residency_prochot",
    "throttle_residency_spl",
    "throttle_residency_fppt",
    "throttle_residency_sppt",
    "throttle_residency_thm_core",
    "throttle_residency_thm_gfx",
    "throttle_residency_thm_soc",
];

/// `struct metrics_table_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuMetricsHeader {
    /// `structure_size`: bytes in the table, header included.
    pub structure_size: u16,
    /// `format_revision` (1 dGPU, 2 and 3 APU).
    pub format_revision: u8,
    /// `content_revision`.
    pub content_revision: u8,
}

/// The throttle signal found in a `gpu_metrics` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuMetricsThrottle {
    /// The raw signal.
    pub throttle: ThrottleRaw,
    /// Fields the firmware did not report (all ones), kept raw in `throttle`, e.g.
    /// `"throttle_residency_thm_core: 0xffffffff (not reported by the firmware)"`.
    pub not_reported: Vec<String>,
}

/// The logical name used in errors before the reader points them at the real file.
fn logical_path() -> PathBuf {
    PathBuf::from(paths::amdgpu::GPU_METRICS)
}

/// Parses the 4-byte header.
pub fn parse_gpu_metrics_header(bytes: &[u8]) -> Result<GpuMetricsHeader, HwError> {
    let path = logical_path();
    if bytes.is_empty() {
        return Err(HwError::Empty { path });
    }
    let [s0, s1, format_revision, content_revision, ..] = *bytes else {
        return Err(too_short(&path, bytes.len(), 4, "the header"));
    };
    Ok(GpuMetricsHeader {
        structure_size: u16::from_ne_bytes([s0, s1]),
        format_revision,
        content_revision,
    })
}

/// Extracts the throttle signal: `indep_throttle_status` for v1.3 and v2.2–v2.4, the
/// throttle residency counters for v3.0. Any other revision is an error saying it is not read.
pub fn parse_gpu_metrics_throttle(bytes: &[u8]) -> Result<GpuMetricsThrottle, HwError> {
    let path = logical_path();
    let header = parse_gpu_metrics_header(bytes)?;
    let version = format!("v{}.{}", header.format_revision, header.content_revision);
    match (header.format_revision, header.content_revision) {
        (1, 3) => indep_throttle(bytes, V1_3_INDEP_THROTTLE, &version),
        (2, 2..=4) => indep_throttle(bytes, V2_2_INDEP_THROTTLE, &version),
        (3, 0) => residency(bytes, &version),
        (1, 0..=2) | (2, 0..=1) => Err(HwError::malformed(
            &path,
            format!("gpu_metrics {version} has no throttle signal (indep_throttle_status came in v1.3 and v2.2)"),
        )),
        (1, _) => Err(HwError::malformed(
            &path,
            format!("gpu_metrics {version} has no indep_throttle_status (the v1.4+ layout keeps only the ASIC-dependent throttle_status); not read"),
        )),
        _ => Err(HwError::malformed(
            &path,
            format!("gpu_metrics {version}: layout not known to this reader; not read"),
        )),
    }
}

/// `indep_throttle_status` at `offset`.
fn indep_throttle(
    bytes: &[u8],
    offset: usize,
    version: &str,
) -> Result<GpuMetricsThrottle, HwError> {
    let path = logical_path();
    let raw = bytes
        .get(offset..offset + 8)
        .ok_or_else(|| too_short(&path, bytes.len(), offset + 8, version))?;
    let mut word = [0u8; 8];
    word.copy_from_slice(raw);
    let mask = u64::from_ne_bytes(word);
    if mask == u64::MAX {
        return Err(HwError::malformed(
            &path,
            format!("gpu_metrics {version}: indep_throttle_status is 0xffffffffffffffff (not reported by the firmware)"),
        ));
    }
    Ok(GpuMetricsThrottle {
        throttle: ThrottleRaw::AmdIndepThrottle { mask },
        not_reported: Vec::new(),
    })
}

/// The seven v3.0 throttle residency counters.
fn residency(bytes: &[u8], version: &str) -> Result<GpuMetricsThrottle, HwError> {
    let path = logical_path();
    let end = V3_0_THROTTLE_RESIDENCY + 4 * V3_0_RESIDENCY_NAMES.len();
    let raw = bytes
        .get(V3_0_THROTTLE_RESIDENCY..end)
        .ok_or_else(|| too_short(&path, bytes.len(), end, version))?;
    let mut v = [0u32; 7];
    for (slot, chunk) in v.iter_mut().zip(raw.chunks_exact(4)) {
        let mut word = [0u8; 4];
        word.copy_from_slice(chunk);
        *slot = u32::from_ne_bytes(word);
    }
    let not_reported: Vec<String> = V3_0_RESIDENCY_NAMES
        .iter()
        .zip(v)
        .filter(|(_, value)| *value == u32::MAX)
        .map(|(name, _)| format!("{name}: 0xffffffff (not reported by the firmware)"))
        .collect();
    if not_reported.len() == v.len() {
        return Err(HwError::malformed(
            &path,
            format!(
                "gpu_metrics {version}: no throttle residency counter is reported (all 0xffffffff)"
            ),
        ));
    }
    let [prochot, spl, fppt, sppt, thm_core, thm_gfx, thm_soc] = v;
    Ok(GpuMetricsThrottle {
        throttle: ThrottleRaw::AmdThrottleResidency {
            prochot,
            spl,
            fppt,
            sppt,
            thm_core,
            thm_gfx,
            thm_soc,
        },
        not_reported,
    })
}

/// "file is N bytes, X needs at least M".
fn too_short(path: &Path, len: usize, needed: usize, what: &str) -> HwError {
    HwError::malformed(
        path,
        format!("file is {len} bytes, {what} needs at least {needed}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table as the driver makes it: all 0xFF, then the header.
    fn table(size: usize, format: u8, content: u8) -> Vec<u8> {
        let mut t = vec![0xFF; size];
        t[0..2].copy_from_slice(&(size as u16).to_ne_bytes());
        t[2] = format;
        t[3] = content;
        t
    }

    #[test]
    fn header() {
        let h = parse_gpu_metrics_header(&table(120, 1, 3)).unwrap();
        assert_eq!(
            h,
            GpuMetricsHeader {
                structure_size: 120,
                format_revision: 1,
                content_revision: 3
            }
        );
        assert_eq!(
            parse_gpu_metrics_header(&[]).unwrap_err().to_string(),
            "gpu_metrics: file is empty"
        );
        assert!(parse_gpu_metrics_header(&[1, 2])
            .unwrap_err()
            .to_string()
            .contains("file is 2 bytes"));
    }

    #[test]
    fn v1_3_and_v2_x_masks() {
        let mut t = table(120, 1, 3);
        t[112..120].copy_from_slice(&((1u64 << 36) | 1).to_ne_bytes());
        let got = parse_gpu_metrics_throttle(&t).unwrap();
        assert_eq!(
            got.throttle,
            ThrottleRaw::AmdIndepThrottle {
                mask: (1 << 36) | 1
            }
        );
        for content in 2..=4 {
            let mut t = table(168, 2, content);
            t[120..128].copy_from_slice(&(1u64 << 4).to_ne_bytes());
            let got = parse_gpu_metrics_throttle(&t).unwrap();
            assert_eq!(got.throttle, ThrottleRaw::AmdIndepThrottle { mask: 1 << 4 });
        }
    }

    #[test]
    fn revisions_without_a_known_signal_are_not_read() {
        for (f, c, needle) in [
            (1, 1, "has no throttle signal"),
            (2, 1, "has no throttle signal"),
            (1, 4, "v1.4 has no indep_throttle_status"),
            (1, 6, "v1.6 has no indep_throttle_status"),
            (2, 5, "layout not known"),
            (3, 1, "layout not known"),
            (9, 0, "layout not known"),
        ] {
            let e = parse_gpu_metrics_throttle(&table(300, f, c))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "v{f}.{c}: {e}");
        }
    }

    #[test]
    fn all_ones_is_not_reported() {
        let e = parse_gpu_metrics_throttle(&table(120, 1, 3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not reported"), "{e}");
        let e = parse_gpu_metrics_throttle(&table(264, 3, 0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no throttle residency counter"), "{e}");
    }

    #[test]
    fn v3_0_residency_with_some_fields_unreported() {
        let mut t = table(264, 3, 0);
        for (i, v) in [7u32, 1200, 300, 45, u32::MAX, u32::MAX, 0]
            .iter()
            .enumerate()
        {
            let at = 228 + 4 * i;
            t[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let got = parse_gpu_metrics_throttle(&t).unwrap();
        assert_eq!(
            got.throttle,
            ThrottleRaw::AmdThrottleResidency {
                prochot: 7,
                spl: 1200,
                fppt: 300,
                sppt: 45,
                thm_core: u32::MAX,
                thm_gfx: u32::MAX,
                thm_soc: 0
            }
        );
        assert_eq!(got.not_reported.len(), 2);
        assert!(got.not_reported[0].starts_with("throttle_residency_thm_core"));
    }

    #[test]
    fn truncated_tables() {
        let e = parse_gpu_metrics_throttle(&table(100, 1, 3))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "gpu_metrics: file is 100 bytes, v1.3 needs at least 120");
        let e = parse_gpu_metrics_throttle(&table(240, 3, 0))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "gpu_metrics: file is 240 bytes, v3.0 needs at least 256");
    }
}
