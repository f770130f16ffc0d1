//! `nostd-check`: links every viridian library crate, built with `default-features = false`,
//! into a freestanding `#![no_std]` executable and calls into each of them.
//!
//! The binary is its own program: `_start` runs the checks below, then exits through the
//! `exit_group` system call with the number of failed checks as the status. `scripts/test`
//! builds it and runs it, so it proves both that the crates *link* without `std` and that what
//! they compute without `std` is right.
//!
//! Each crate's issue adds a check here when the crate gains code; a crate without one yet is
//! still linked (see `Cargo.toml`), so a `std` dependency in it breaks this build.

#![no_std]
#![no_main]
// The entry point, the allocator and the exit system call are inherently unsafe; each block says why.
#![allow(unsafe_code)]

extern crate alloc;

// The C memory functions (`memcpy`, `memset` …): this binary links no C library. Shared with
// the test guest, which has the same need.
#[path = "../../guest/src/mem.rs"]
mod mem;
mod rt;

/// A named check: returns whether it passed.
type Check = (&'static str, fn() -> bool);

use hv_hypercall as _;
use vmbus_ring as _;
use vswitch_core as _;
use wim_image as _;
use x86_decode as _;

/// Runs every check and returns how many failed.
fn run_checks() -> i32 {
    let checks: &[Check] = &[
        ("vhd-format: CHS geometry and footer checksum", vhd_defs),
        (
            "vhd-format: dynamic disk write/read/check in memory",
            vhd_dynamic,
        ),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        if check() {
            rt::write_stdout(b"ok   ");
        } else {
            rt::write_stdout(b"FAIL ");
            failed += 1;
        }
        rt::write_stdout(name.as_bytes());
        rt::write_stdout(b"\n");
    }
    failed
}

// The process entry point (no C runtime: linked with `-nostartfiles`). The kernel enters
// `_start` with `rsp` 16-byte aligned, but Rust functions expect the alignment a `call`
// leaves (`rsp` ≡ 8 mod 16), so `_start` aligns the stack and calls the Rust entry.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym nostd_main,
);

/// Runs the checks and exits with the number that failed.
extern "C" fn nostd_main() -> ! {
    let failed = run_checks();
    rt::exit(failed)
}

/// The definitions layer: the spec's CHS table and a self-consistent footer, `core` only.
fn vhd_defs() -> bool {
    use vhd_format::defs::{DiskType, Footer, Geometry, Uuid, VhdTime};
    let g = Geometry::for_size(1 << 30);
    let footer = Footer::new(DiskType::FIXED, 1 << 30, None, VhdTime(0), Uuid([1; 16]));
    (g.cylinders, g.heads, g.sectors_per_track) == (2080, 16, 63) && footer.checksum_ok()
}

/// The I/O layer with only `alloc`: create, write, reopen, read back, check.
fn vhd_dynamic() -> bool {
    use vhd_format::defs::Uuid;
    use vhd_format::{create_dynamic, ops, CreateOptions, Disk, MemStorage, OpenOptions, Vhd};
    let options = CreateOptions::new(1 << 20)
        .block_size(64 << 10)
        .unique_id(Uuid([2; 16]));
    let Ok(mut disk) = create_dynamic(MemStorage::new(), &options) else {
        return false;
    };
    if disk.write_at(70_000, b"no_std").is_err() {
        return false;
    }
    let Ok(disk) = Vhd::open(disk.into_storage(), OpenOptions::new()) else {
        return false;
    };
    let mut buf = [0u8; 6];
    disk.read_at(70_000, &mut buf).is_ok()
        && &buf == b"no_std"
        && ops::check(disk.storage()).is_ok_and(|r| r.is_clean())
}
