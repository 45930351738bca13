//! Open files: a hub holds three per node store (the file, its WAL and shared memory) plus a
//! connection per pushing node, more than the 1 024 a service gets by default (systemd's soft
//! `LimitNOFILE`). It raises its soft limit to the hard one at start.

/// Raises the soft open-files limit to the hard limit; returns the limit now in force, or
/// `None` where it cannot be read.
pub fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        raise()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Open files a hub needs for `nodes` nodes: three per store, one connection per node, and
/// room for the registry, readers and the process itself.
pub fn open_files_needed(nodes: u64) -> u64 {
    nodes * 4 + 64
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn raise() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` into the struct we own, passed by a valid
    // pointer; `setrlimit` only reads it. Neither keeps the pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
    Some(u64::from(lim.rlim_cur))
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_limit_after_raising_is_the_hard_limit() {
        let now = super::raise_open_files().unwrap();
        let hard: u64 = std::fs::read_to_string("/proc/self/limits")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(4).map(str::to_string))
            .map(|v| {
                if v == "unlimited" {
                    u64::MAX
                } else {
                    v.parse().unwrap()
                }
            })
            .unwrap();
        assert_eq!(now, hard);
    }
}
