//! The two `sysconf` values this crate needs: page size and clock ticks per second.

/// Bytes per page (`_SC_PAGESIZE`), `None` when the system does not say.
pub(crate) fn page_size() -> Option<u64> {
    #[cfg(unix)]
    {
        sysconf(libc::_SC_PAGESIZE)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Clock ticks per second (`_SC_CLK_TCK`, the unit of `/proc/<pid>/stat` times).
pub(crate) fn clock_ticks_per_second() -> Option<u64> {
    #[cfg(unix)]
    {
        sysconf(libc::_SC_CLK_TCK)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A positive `sysconf` value.
#[cfg(unix)]
#[allow(unsafe_code)]
fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: `sysconf` takes an integer by value, touches no memory of ours and is
    // thread-safe; for a name it does not know it returns -1, which is filtered out below.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn linux_answers_both() {
        let page = super::page_size().unwrap();
        assert!(page.is_power_of_two() && page >= 4096, "{page}");
        assert!(super::clock_ticks_per_second().unwrap() > 0);
    }
}
