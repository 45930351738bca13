//! Link the `infermon` binary with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) where the C library that will load it understands them.
//!
//! A position-independent Rust binary carries one 24-byte `.rela.dyn` entry per pointer in its
//! read-only data (vtables, string tables); DT_RELR stores the same relocations as bitmaps. On
//! the `dist` build that is 284 KiB of relocations turned into 3 KiB, the difference between
//! 10.04 and 9.77 MiB (docs/PERFORMANCE.md, "Binary size"), at no cost at run time and with
//! ASLR kept. glibc applies DT_RELR from 2.36 on, and the linker records the dependency
//! (`GLIBC_ABI_DT_RELR`), so an older glibc refuses the binary with a message instead of
//! running it unrelocated. The flag is therefore only added when building natively for
//! glibc ≥ 2.36; `INFERMON_RELR=0` turns it off.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=INFERMON_RELR");
    if std::env::var("INFERMON_RELR").as_deref() == Ok("0") {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" || !native {
        return;
    }
    if glibc_version().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The running glibc's version from `getconf GNU_LIBC_VERSION` ("glibc 2.36"), `None` when it
/// cannot be read (then the flag is left out: the default link is always correct).
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
