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
//!
//! A build optimised for size (the `dist` profile) is also linked with identical code folding
//! (`--icf=all`), when the linker is the rust-lld rustc uses by default on x86-64 Linux: 78 KiB
//! of identical functions and constants kept once. Rust gives no guarantee that two functions
//! have distinct addresses, so folding them changes no behaviour. `INFERMON_ICF=0` turns it off.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=INFERMON_RELR");
    println!("cargo:rerun-if-env-changed=INFERMON_ICF");
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
    if size_build() && links_with_rust_lld() {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
}

/// Whether this is a build optimised for size (the `dist` profile): only there is identical
/// code folded, so everyday and test builds link as rustc does by default.
fn size_build() -> bool {
    matches!(std::env::var("OPT_LEVEL").as_deref(), Ok("s" | "z"))
}

/// Whether the link goes through the rust-lld that rustc uses by default on
/// x86_64-unknown-linux-gnu since 1.90 (`--icf` is an lld and gold option, not GNU ld's): no
/// linker chosen in the flags, and a rustc new enough.
fn links_with_rust_lld() -> bool {
    if std::env::var("INFERMON_ICF").as_deref() == Ok("0")
        || std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu")
        || std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
    {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "link-self-contained", "fuse-ld", "link-arg"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let minor = text
        .lines()
        .find_map(|l| l.strip_prefix("release: 1."))
        .and_then(|v| v.split('.').next()?.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
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
