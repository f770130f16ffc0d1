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

mod rt;

use vhd_format as _;
use vmbus_ring as _;
use hv_hypercall as _;
use vswitch_core as _;
use wim_image as _;
use x86_decode as _;

/// Runs every check and returns how many failed.
fn run_checks() -> i32 {
    let checks: &[(&str, fn() -> bool)] = &[];
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

/// The process entry point (no C runtime: linked with `-nostartfiles`).
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let failed = run_checks();
    rt::exit(failed)
}
