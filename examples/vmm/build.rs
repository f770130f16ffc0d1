//! Builds the test guest (`examples/guest`) and hands its ELF to the VMM.
//!
//! The guest is a `#![no_std]` binary with `panic = "abort"`, so it lives in its own workspace
//! and is built here with a nested `cargo build --release`. The nested build gets its own
//! target directory under `OUT_DIR`: the outer cargo holds the lock on its target directory
//! while build scripts run, so sharing it would deadlock. The ELF's path is passed to the
//! crate as `VIRIDIAN_GUEST_ELF`, and `src/main.rs` embeds it with `include_bytes!`.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let guest_dir = manifest_dir.join("..").join("guest");
    let guest_dir = guest_dir.canonicalize().unwrap_or(guest_dir);
    let out_dir = PathBuf::from(env_var("OUT_DIR"));
    let target_dir = out_dir.join("guest-target");

    for path in ["Cargo.toml", "Cargo.lock", "build.rs", "link.ld", "src"] {
        println!("cargo:rerun-if-changed={}", guest_dir.join(path).display());
    }
    // The guest also builds `hv-hypercall` from source (a path dependency).
    let hv_hypercall = manifest_dir.join("..").join("..").join("hv-hypercall");
    for path in ["Cargo.toml", "src"] {
        println!(
            "cargo:rerun-if-changed={}",
            hv_hypercall.join(path).display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guest_dir)
        .arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--offline")
        .arg("--manifest-path")
        .arg(guest_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Our stdout is read by the outer cargo as build-script directives: keep the nested
        // build's chatter away from it.
        .stdout(Stdio::from(std::io::stderr()));
    scrub_env(&mut cmd);

    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guest: {e}"));
    if !status.success() {
        panic!(
            "building the guest ({}) failed: {status}",
            guest_dir.display()
        );
    }

    let elf = target_dir
        .join("x86_64-unknown-linux-gnu")
        .join("release")
        .join("guest");
    assert!(
        elf.is_file(),
        "the guest build succeeded but {} is missing",
        elf.display()
    );
    println!("cargo:rustc-env=VIRIDIAN_GUEST_ELF={}", elf.display());
}

/// Removes the variables that the outer cargo sets for build scripts (or that the user set for
/// the outer build) and that would change what the nested build does: its target directory and
/// target, compiler flags and wrappers (`cargo clippy` sets `RUSTC_WORKSPACE_WRAPPER`), profile
/// overrides and coverage instrumentation. The guest's own manifest and `build.rs` decide how
/// it is built; the toolchain (`RUSTC`, `RUSTUP_TOOLCHAIN`), `CARGO_HOME`, the network
/// settings and the jobserver (`CARGO_MAKEFLAGS`) stay.
fn scrub_env(cmd: &mut Command) {
    const KEEP: &[&str] = &["CARGO_HOME", "CARGO_MAKEFLAGS", "CARGO_TERM_COLOR"];
    const KEEP_PREFIXES: &[&str] = &["CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_"];
    const REMOVE: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "LLVM_PROFILE_FILE",
    ];
    const REMOVE_PREFIXES: &[&str] = &["__CARGO", "CLIPPY_", "LLVM_PROFILE_"];

    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let cargo_var = key.starts_with("CARGO_")
            && !KEEP.contains(&key)
            && !KEEP_PREFIXES.iter().any(|p| key.starts_with(p));
        let other = REMOVE.contains(&key) || REMOVE_PREFIXES.iter().any(|p| key.starts_with(p));
        if cargo_var || other {
            cmd.env_remove(key);
        }
    }
}

/// A variable that cargo always sets for build scripts.
fn env_var(key: &str) -> OsString {
    env::var_os(key).unwrap_or_else(|| panic!("cargo did not set {key}"))
}
