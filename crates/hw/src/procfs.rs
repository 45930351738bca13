//! `/proc/stat`, `/proc/meminfo` and `/proc/vmstat`: parsers on strings, and the readers that
//! feed them.

use infermon_model::raw::{CpuTimes, MemoryRaw, Reading, VmstatRaw};

use crate::error::HwError;
use crate::fsread::read_parsed;
use crate::paths::{self, Paths};

/// Parses `/proc/stat`: the aggregate `cpu ` line and the number of `cpuN` lines.
///
/// Errors name `/proc/stat`, the column and the bad value.
pub fn parse_proc_stat(text: &str) -> Result<CpuTimes, HwError> {
    let path = paths::canonical(paths::PROC_STAT);
    if text.trim().is_empty() {
        return Err(HwError::Empty { path });
    }
    let mut aggregate = None;
    let mut n_cpus: u32 = 0;
    for line in text.lines() {
        let mut tokens = line.split_whitespace();
        match tokens.next() {
            Some("cpu") => aggregate = Some(line),
            Some(first)
                if first.len() > 3
                    && first.starts_with("cpu")
                    && first[3..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                n_cpus += 1;
            }
            _ => {}
        }
    }
    let Some(line) = aggregate else {
        return Err(HwError::MissingField {
            path,
            field: "cpu".into(),
        });
    };
    if n_cpus == 0 {
        return Err(HwError::malformed(&path, "no \"cpuN\" lines"));
    }
    const COLUMNS: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut values = [0u64; 8];
    let mut tokens = line.split_whitespace().skip(1);
    for (slot, column) in values.iter_mut().zip(COLUMNS) {
        let field = format!("cpu {column}");
        let Some(token) = tokens.next() else {
            return Err(HwError::MissingField { path, field });
        };
        *slot = token.parse().map_err(|_| HwError::BadField {
            path: path.clone(),
            field,
            value: token.to_string(),
            expected: "a non-negative integer number of ticks",
        })?;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values;
    Ok(CpuTimes {
        user,
        nice,
        system,
        idle,
        iowait,
        irq,
        softirq,
        steal,
        n_cpus,
    })
}

/// Parses `/proc/meminfo` into bytes. `MemTotal`, `MemFree`, `MemAvailable`, `SwapTotal` and
/// `SwapFree` are required and must be `<integer> kB`.
pub fn parse_meminfo(text: &str) -> Result<MemoryRaw, HwError> {
    let path = paths::canonical(paths::PROC_MEMINFO);
    if text.trim().is_empty() {
        return Err(HwError::Empty { path });
    }
    let kb = |field: &str| -> Result<u64, HwError> {
        let raw = text
            .lines()
            .find_map(|line| {
                let (key, rest) = line.split_once(':')?;
                (key.trim() == field).then_some(rest.trim())
            })
            .ok_or_else(|| HwError::MissingField {
                path: path.clone(),
                field: field.to_string(),
            })?;
        let bad = || HwError::BadField {
            path: path.clone(),
            field: field.to_string(),
            value: raw.to_string(),
            expected: "an integer number of kB",
        };
        let number = match raw.split_whitespace().collect::<Vec<_>>().as_slice() {
            [number, "kB"] => *number,
            _ => return Err(bad()),
        };
        let kib: u64 = number.parse().map_err(|_| bad())?;
        kib.checked_mul(1024).ok_or_else(bad)
    };
    Ok(MemoryRaw {
        total_bytes: kb("MemTotal")?,
        available_bytes: kb("MemAvailable")?,
        free_bytes: kb("MemFree")?,
        swap_total_bytes: kb("SwapTotal")?,
        swap_free_bytes: kb("SwapFree")?,
    })
}

/// Parses `/proc/vmstat` for `pswpin`, `pswpout` and `pgmajfault`; `page_size` (bytes) is
/// recorded alongside so pages can be turned into bytes later.
pub fn parse_vmstat(text: &str, page_size: u64) -> Result<VmstatRaw, HwError> {
    let path = paths::canonical(paths::PROC_VMSTAT);
    if text.trim().is_empty() {
        return Err(HwError::Empty { path });
    }
    let counter = |field: &str| -> Result<u64, HwError> {
        let raw = text
            .lines()
            .find_map(|line| {
                let mut tokens = line.split_whitespace();
                (tokens.next() == Some(field)).then(|| tokens.collect::<Vec<_>>().join(" "))
            })
            .ok_or_else(|| HwError::MissingField {
                path: path.clone(),
                field: field.to_string(),
            })?;
        raw.parse().map_err(|_| HwError::BadField {
            path: path.clone(),
            field: field.to_string(),
            value: raw,
            expected: "a non-negative integer",
        })
    };
    Ok(VmstatRaw {
        pswpin: counter("pswpin")?,
        pswpout: counter("pswpout")?,
        pgmajfault: counter("pgmajfault")?,
        page_size,
    })
}

/// `root/proc/stat`.
pub(crate) fn read_cpu(paths: &Paths) -> Reading<CpuTimes> {
    Reading::from_result(read_parsed(&paths.at(paths::PROC_STAT), parse_proc_stat))
}

/// `root/proc/meminfo`.
pub(crate) fn read_memory(paths: &Paths) -> Reading<MemoryRaw> {
    Reading::from_result(read_parsed(&paths.at(paths::PROC_MEMINFO), parse_meminfo))
}

/// `root/proc/vmstat`; without a page size the reading is unavailable.
pub(crate) fn read_vmstat(paths: &Paths, page_size: Option<u64>) -> Reading<VmstatRaw> {
    let path = paths.at(paths::PROC_VMSTAT);
    let Some(page_size) = page_size else {
        return Reading::unavailable(format!(
            "{}: page size unknown (sysconf(_SC_PAGESIZE) failed)",
            path.display()
        ));
    };
    Reading::from_result(read_parsed(&path, |t| parse_vmstat(t, page_size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  152155 0 20749 82578 574 0 146 3681 0 0\n\
        cpu0 59035 0 7488 61434 131 0 19 1905 0 0\n\
        cpu1 93120 0 13261 21143 443 0 126 1776 0 0\n\
        intr 648967 0 0\nctxt 511723\nbtime 1763779000\n";

    #[test]
    fn proc_stat() {
        let t = parse_proc_stat(STAT).unwrap();
        assert_eq!(
            t,
            CpuTimes {
                user: 152155,
                nice: 0,
                system: 20749,
                idle: 82578,
                iowait: 574,
                irq: 0,
                softirq: 146,
                steal: 3681,
                n_cpus: 2,
            }
        );
    }

    #[test]
    fn proc_stat_errors() {
        let e = parse_proc_stat("cpu  1 2 x 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/stat: field \"cpu system\" has value \"x\": expected a non-negative integer number of ticks"
        );
        let e = parse_proc_stat("cpu  1 2 3 4\ncpu0 1 2 3 4\n").unwrap_err();
        assert_eq!(e.to_string(), "/proc/stat: field \"cpu iowait\" is missing");
        let e = parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\n").unwrap_err();
        assert_eq!(e.to_string(), "/proc/stat: field \"cpu\" is missing");
        let e = parse_proc_stat("cpu  1 2 3 4 5 6 7 8\n").unwrap_err();
        assert_eq!(e.to_string(), "/proc/stat: no \"cpuN\" lines");
        assert_eq!(
            parse_proc_stat("").unwrap_err().to_string(),
            "/proc/stat: file is empty"
        );
    }

    const MEMINFO: &str = "MemTotal:       24684092 kB\nMemFree:        21557172 kB\n\
        MemAvailable:   23288364 kB\nBuffers:           12736 kB\nSwapTotal:       2097148 kB\n\
        SwapFree:        2097148 kB\nHugePages_Total:       0\n";

    #[test]
    fn meminfo() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total_bytes, 24684092 * 1024);
        assert_eq!(m.free_bytes, 21557172 * 1024);
        assert_eq!(m.available_bytes, 23288364 * 1024);
        assert_eq!(m.swap_total_bytes, 2097148 * 1024);
        assert_eq!(m.swap_free_bytes, 2097148 * 1024);
    }

    #[test]
    fn meminfo_errors() {
        let bad = MEMINFO.replace("24684092 kB", "abc kB");
        assert_eq!(
            parse_meminfo(&bad).unwrap_err().to_string(),
            "/proc/meminfo: field \"MemTotal\" has value \"abc kB\": expected an integer number of kB"
        );
        let no_unit = MEMINFO.replace("24684092 kB", "24684092");
        assert!(parse_meminfo(&no_unit)
            .unwrap_err()
            .to_string()
            .contains("\"24684092\""));
        let missing = MEMINFO.replace("MemAvailable:   23288364 kB\n", "");
        assert_eq!(
            parse_meminfo(&missing).unwrap_err().to_string(),
            "/proc/meminfo: field \"MemAvailable\" is missing"
        );
        let negative = MEMINFO.replace("21557172", "-5");
        assert!(parse_meminfo(&negative).is_err());
    }

    #[test]
    fn vmstat() {
        let v = parse_vmstat(
            "nr_free_pages 5\npswpin 12\npswpout 34\npgmajfault 1206\n",
            4096,
        )
        .unwrap();
        assert_eq!(
            (v.pswpin, v.pswpout, v.pgmajfault, v.page_size),
            (12, 34, 1206, 4096)
        );
        let e = parse_vmstat("pswpin 12\npswpout 3.5\npgmajfault 1\n", 4096).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/vmstat: field \"pswpout\" has value \"3.5\": expected a non-negative integer"
        );
        let e = parse_vmstat("pswpin 12\npgmajfault 1\n", 4096).unwrap_err();
        assert_eq!(e.to_string(), "/proc/vmstat: field \"pswpout\" is missing");
        // A name that merely starts with the field's name is not the field.
        let e = parse_vmstat("pswpin_x 1\npswpout 1\npgmajfault 1\n", 4096).unwrap_err();
        assert_eq!(e.to_string(), "/proc/vmstat: field \"pswpin\" is missing");
    }
}
