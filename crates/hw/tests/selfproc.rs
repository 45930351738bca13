//! Agent self-cost and per-process memory on a recorded tree and on the real `/proc`.

mod common;

use common::{fake_root, write};
use infermon_hw::{read_process, read_self, ProcessMem};

#[test]
fn recorded_process_files() {
    // Recorded from a shell on the development VM (see tests/fixtures/README.md).
    let root = fake_root(&["host/recorded_vm"]);
    let r = root.path();
    let me = read_self(r);
    assert_eq!(me.rss_bytes, Some(1628 * 1024));
    // utime 83 + stime 0 ticks; USER_HZ is 100 on Linux.
    assert_eq!(me.cpu_seconds_total, Some(0.83));

    // The same files as another pid.
    common::copy_tree(&r.join("proc/self"), &r.join("proc/14128"));
    assert_eq!(
        read_process(r, 14128).unwrap(),
        ProcessMem {
            rss_bytes: 1628 * 1024,
            pss_bytes: Some(200 * 1024)
        }
    );
}

#[test]
fn pss_is_optional_rss_is_not() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    write(
        r,
        "proc/7/status",
        "Name:\tllama-server\nVmRSS:\t 4194304 kB\n",
    );
    assert_eq!(
        read_process(r, 7).unwrap(),
        ProcessMem {
            rss_bytes: 4194304 * 1024,
            pss_bytes: None
        }
    );
    write(r, "proc/8/status", "Name:\tkthreadd\n");
    let e = read_process(r, 8).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: field \"VmRSS\" is missing",
            r.join("proc/8/status").display()
        )
    );
    let e = read_process(r, 9).unwrap_err().to_string();
    assert!(
        e.contains("proc/9/status: no such file or directory"),
        "{e}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn the_real_self() {
    let me = read_self(std::path::Path::new("/"));
    assert!(me.cpu_seconds_total.unwrap() >= 0.0);
    assert!(me.rss_bytes.unwrap() > 0);
    let mem = read_process(std::path::Path::new("/"), std::process::id()).unwrap();
    assert!(mem.rss_bytes > 0);
}
