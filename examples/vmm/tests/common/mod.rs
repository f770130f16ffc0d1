//! Helpers shared by the integration tests that run the VMM binary.
// Each test binary uses only some of the helpers.
#![allow(dead_code)]

use std::process::Command;

/// Whether `/dev/kvm` can be opened (else prints why the test skips).
pub fn kvm() -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(e) => {
            println!("skipped: /dev/kvm not available ({e})");
            false
        }
    }
}

/// Runs the VMM (at most two minutes) with a demo of `run_ms` and no exit probe, plus `args`;
/// asserts exit status 0 and returns its stdout.
pub fn run_vmm(run_ms: &str, args: &[&str]) -> String {
    let mut all = vec![
        "120",
        env!("CARGO_BIN_EXE_vmm"),
        "--run-ms",
        run_ms,
        "--probe",
        "0",
    ];
    all.extend_from_slice(args);
    let out = Command::new("timeout")
        .args(&all)
        .output()
        .expect("run the vmm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Whether `tool` is on the PATH (else prints why the test skips; under `CI=true` a missing
/// peer fails).
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing under CI=true"
        );
        println!("skipped: {tool} not installed");
    }
    found
}

/// Asserts that lines starting with each of `expected` appear in `lines` in this order.
pub fn assert_in_order(lines: &[&str], expected: &[&str]) {
    let mut at = 0;
    for want in expected {
        match lines[at..].iter().position(|l| l.starts_with(want)) {
            Some(i) => at += i + 1,
            None => panic!("{want:?} missing after line {at}:\n{}", lines.join("\n")),
        }
    }
}

/// The LBAs (512-byte sectors) of the built-in guest's random 4 KiB I/O, in order: its
/// xorshift over the upper 16 MiB of the disk (`examples/guest/src/storage.rs`).
pub fn random_lbas() -> Vec<u64> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    (0..128)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (16 << 20) / 512 + (seed % ((16 << 20) / 4096)) * 8
        })
        .collect()
}

/// The 4 KiB blocks (by first LBA, sorted, each once) the guest's queued writes fill with
/// [`random_block`]: the random writes and the sequential queue-depth run (1 MiB at 12 MiB).
pub fn filled_lbas() -> Vec<u64> {
    let mut lbas = random_lbas();
    lbas.extend(((12 << 20) / 512..(13 << 20) / 512).step_by(8));
    lbas.sort_unstable();
    lbas.dedup();
    lbas
}

/// What the guest's queued writes leave in the 4 KiB block at `lba`: one 8-byte value, the
/// guest's `RANDOM_FILL` xor the LBA, repeated (little-endian).
pub fn random_block(lba: u64) -> [u8; 4096] {
    let value = (0x7669_7269_6469_616E_u64 ^ lba).to_le_bytes();
    let mut block = [0u8; 4096];
    for (i, b) in block.iter_mut().enumerate() {
        *b = value[i % 8];
    }
    block
}

/// The KiB the guest's queued writes occupy (distinct 4 KiB blocks).
pub fn filled_kib() -> u64 {
    filled_lbas().len() as u64 * 4
}
