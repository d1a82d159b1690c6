//! Build script: packs the daemon binary's relative relocations where the C library can
//! read them packed.
//!
//! A position-independent executable carries one 24-byte relocation for every pointer in its
//! read-only data (47,000 in this one: 1.1 MiB), which the loader reads once at start and
//! which then stays mapped and resident for as long as the daemon runs. Packed (`DT_RELR`,
//! glibc 2.36 and later) they take a few kilobytes. Older C libraries cannot load such a
//! binary, so the flag is only given when building for the C library of the machine that
//! builds, and that library is recent enough.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let native = var("HOST") == var("TARGET");
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && native
        && glibc_reads_packed_relocations()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether this machine's glibc is 2.36 or later (`getconf GNU_LIBC_VERSION` prints
/// `glibc 2.36`); false when that cannot be told.
fn glibc_reads_packed_relocations() -> bool {
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut numbers = version.split('.').map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (2, 36),
        _ => false,
    }
}
