//! Link options for release builds of `airtable-mcp` on x86_64 Linux with rustc's default linker
//! (rust-lld, Rust 1.90 and later). Neither changes the code, only where it lies in the binary
//! and how it is relocated; both are measured by `tools/bench.sh` (peak RSS and cold start).
//!
//! - **Code layout.** The linker places the functions a session runs next to each other
//!   (`tools/symbol-order.txt`, written by `tools/symbol-order.sh` from profiled runs: start-up
//!   and the read tools first, then the rest of a call of every tool). The kernel maps a
//!   binary's code in blocks around each page a process touches, so scattered hot functions keep
//!   most of the 23 MB of `.text` resident; packed, a read session touches a few MB of it.
//! - **Packed relocations** (`-z pack-relative-relocs`, DT_RELR): the 80,000 relative
//!   relocations of the position-independent binary take a few KB instead of 1.9 MB, which the
//!   loader reads at every start. The loader must know DT_RELR (glibc 2.36 and later), so this
//!   is only done when the build machine's glibc has it: a binary built for another machine
//!   (cross builds, release archives built on older glibc) keeps classic relocations.
//!
//! A linker chosen by hand (`RUSTC_LINKER`, `-C linker` in the flags) is left alone.
//! `AIRTABLE_MCP_SYMBOL_ORDER=0` and `AIRTABLE_MCP_PACK_RELOCS=0` turn either off.

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tools/symbol-order.txt");
    println!("cargo::rerun-if-env-changed=AIRTABLE_MCP_SYMBOL_ORDER");
    println!("cargo::rerun-if-env-changed=AIRTABLE_MCP_PACK_RELOCS");
    if !default_lld_release_build() {
        return;
    }
    let bin_arg = |arg: &str| println!("cargo::rustc-link-arg-bin=airtable-mcp={arg}");
    if var("AIRTABLE_MCP_SYMBOL_ORDER") != "0" {
        let file = Path::new(&var("CARGO_MANIFEST_DIR")).join("tools/symbol-order.txt");
        if file.is_file() {
            bin_arg(&format!("-Wl,--symbol-ordering-file={}", file.display()));
            // The file names functions of one build; those a later change renamed are skipped.
            bin_arg("-Wl,--no-warn-symbol-ordering");
        }
    }
    if var("AIRTABLE_MCP_PACK_RELOCS") != "0" && var("HOST") == var("TARGET") && host_has_relr() {
        bin_arg("-Wl,-z,pack-relative-relocs");
    }
}

fn var(k: &str) -> String {
    env::var(k).unwrap_or_default()
}

/// A release build for x86_64-unknown-linux-gnu linked by rustc's default linker (rust-lld).
fn default_lld_release_build() -> bool {
    let target_ok = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // A linker set in the config (RUSTC_LINKER) or the flags may not know these options.
    let default_linker =
        env::var_os("RUSTC_LINKER").is_none() && !var("CARGO_ENCODED_RUSTFLAGS").contains("link");
    var("PROFILE") == "release" && target_ok && default_linker && rustc_minor() >= Some(90)
}

/// The minor version of the compiler ("rustc 1.95.0 (…)" gives 95).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-V").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// The build machine's glibc loads DT_RELR (2.36 and later; `getconf GNU_LIBC_VERSION` says
/// "glibc 2.36").
fn host_has_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(Some(major)), Some(Some(minor))) if (major, minor) >= (2, 36))
}
