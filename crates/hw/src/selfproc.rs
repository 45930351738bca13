//! The agent's own cost (`proc/self/stat`, `proc/self/status`) and another process's memory
//! (`proc/<pid>/status`, `proc/<pid>/smaps_rollup`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::HwError;
use crate::fsread::read_parsed;
use crate::paths::{self, Paths};
use crate::sysconf;

/// CPU time and resident memory of the agent process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SelfUsage {
    /// User + system CPU seconds since the process started; `None` when unreadable.
    pub cpu_seconds_total: Option<f64>,
    /// Resident set size (`VmRSS`), bytes; `None` when unreadable.
    pub rss_bytes: Option<u64>,
}

/// Memory of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMem {
    /// Resident set size (`VmRSS` of `status`), bytes.
    pub rss_bytes: u64,
    /// Proportional set size (`Pss` of `smaps_rollup`, Linux 4.14+), bytes; `None` when the file
    /// is missing or not readable (another user's process without privileges).
    pub pss_bytes: Option<u64>,
}

/// Parses `utime` and `stime` (clock ticks) from a `/proc/<pid>/stat` line. The command name
/// may hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_pid_stat_times(text: &str) -> Result<(u64, u64), HwError> {
    let path = paths::canonical("proc/<pid>/stat");
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| HwError::malformed(&path, "no \")\" closing the command name"))?;
    // After ")" comes field 3 (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |index: usize, name: &str| -> Result<u64, HwError> {
        let value = fields.get(index).ok_or_else(|| HwError::MissingField {
            path: path.clone(),
            field: name.to_string(),
        })?;
        value.parse().map_err(|_| HwError::BadField {
            path: path.clone(),
            field: name.to_string(),
            value: value.to_string(),
            expected: "a non-negative integer number of clock ticks",
        })
    };
    Ok((field(11, "utime")?, field(12, "stime")?))
}

/// Parses `VmRSS` from `/proc/<pid>/status`, in bytes.
pub fn parse_status_vm_rss(text: &str) -> Result<u64, HwError> {
    kb_field(text, "VmRSS", &paths::canonical("proc/<pid>/status"))
}

/// Parses `Pss` from `/proc/<pid>/smaps_rollup`, in bytes.
pub fn parse_smaps_rollup_pss(text: &str) -> Result<u64, HwError> {
    kb_field(text, "Pss", &paths::canonical("proc/<pid>/smaps_rollup"))
}

/// A `Key:   <n> kB` line, in bytes.
fn kb_field(text: &str, key: &str, path: &Path) -> Result<u64, HwError> {
    let raw = text
        .lines()
        .find_map(|line| {
            let (k, rest) = line.split_once(':')?;
            (k == key).then_some(rest.trim())
        })
        .ok_or_else(|| HwError::MissingField {
            path: path.to_path_buf(),
            field: key.to_string(),
        })?;
    let bad = || HwError::BadField {
        path: path.to_path_buf(),
        field: key.to_string(),
        value: raw.to_string(),
        expected: "an integer number of kB",
    };
    match raw.split_whitespace().collect::<Vec<_>>().as_slice() {
        [n, "kB"] => n
            .parse::<u64>()
            .map_err(|_| bad())?
            .checked_mul(1024)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// The agent's own CPU seconds and RSS from `root/proc/self`. Each part is `None` when it
/// cannot be read; this never fails.
pub fn read_self(root: &Path) -> SelfUsage {
    read_self_with(&Paths::new(root), sysconf::clock_ticks_per_second())
}

/// [`read_self`] with the clock tick rate given.
fn read_self_with(paths: &Paths, ticks_per_second: Option<u64>) -> SelfUsage {
    let dir = paths.process_dir(None);
    let stat = dir.join(paths::process::STAT);
    let cpu_seconds_total = ticks_per_second.and_then(|tps| {
        let (utime, stime) = read_parsed(&stat, parse_pid_stat_times).ok()?;
        Some((utime + stime) as f64 / tps as f64)
    });
    let status = dir.join(paths::process::STATUS);
    let rss_bytes = read_parsed(&status, parse_status_vm_rss).ok();
    SelfUsage {
        cpu_seconds_total,
        rss_bytes,
    }
}

/// Memory of process `pid` under `root`: `VmRSS` from `proc/<pid>/status` (required; kernel
/// threads have none) and `Pss` from `proc/<pid>/smaps_rollup` (optional).
pub fn read_process(root: &Path, pid: u32) -> Result<ProcessMem, HwError> {
    let dir = Paths::new(root).process_dir(Some(pid));
    let status = dir.join(paths::process::STATUS);
    let rss_bytes = read_parsed(&status, parse_status_vm_rss)?;
    let smaps = dir.join(paths::process::SMAPS_ROLLUP);
    let pss_bytes = read_parsed(&smaps, parse_smaps_rollup_pss).ok();
    Ok(ProcessMem {
        rss_bytes,
        pss_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_survive_odd_command_names() {
        let line = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 \
                    1000 1000000 500 18446744073709551615";
        assert_eq!(parse_pid_stat_times(line).unwrap(), (250, 75));
        assert!(parse_pid_stat_times("4242 (x) S 1 2")
            .unwrap_err()
            .to_string()
            .contains("\"utime\" is missing"));
        let bad = line.replace(" 250 ", " x ");
        assert_eq!(
            parse_pid_stat_times(&bad).unwrap_err().to_string(),
            "/proc/<pid>/stat: field \"utime\" has value \"x\": expected a non-negative integer number of clock ticks"
        );
        assert!(parse_pid_stat_times("garbage").is_err());
    }

    #[test]
    fn kb_fields() {
        assert_eq!(
            parse_status_vm_rss("Name:\tsh\nVmRSS:\t    1628 kB\n").unwrap(),
            1628 * 1024
        );
        assert_eq!(
            parse_smaps_rollup_pss("Rss: 10 kB\nPss:   200 kB\nPss_Anon: 1 kB\n").unwrap(),
            200 * 1024
        );
        assert_eq!(
            parse_status_vm_rss("Name:\tkthreadd\n")
                .unwrap_err()
                .to_string(),
            "/proc/<pid>/status: field \"VmRSS\" is missing"
        );
        assert!(parse_status_vm_rss("VmRSS:\t12 MB\n").is_err());
    }

    #[test]
    fn self_usage_from_a_fake_root() {
        let dir = tempfile::tempdir().unwrap();
        let proc_self = dir.path().join("proc/self");
        std::fs::create_dir_all(&proc_self).unwrap();
        std::fs::write(
            proc_self.join("stat"),
            "1 (a) S 0 0 0 0 -1 0 0 0 0 0 300 100 0 0 20 0 1 0 1 1 1\n",
        )
        .unwrap();
        std::fs::write(proc_self.join("status"), "VmRSS:\t2048 kB\n").unwrap();
        let u = read_self_with(&Paths::new(dir.path()), Some(100));
        assert_eq!(u.cpu_seconds_total, Some(4.0));
        assert_eq!(u.rss_bytes, Some(2048 * 1024));
        let u = read_self_with(&Paths::new(dir.path()), None);
        assert_eq!(u.cpu_seconds_total, None);
        let empty = tempfile::tempdir().unwrap();
        let u = read_self_with(&Paths::new(empty.path()), Some(100));
        assert_eq!((u.cpu_seconds_total, u.rss_bytes), (None, None));
    }
}
