//! Runs the `vmm` binary against real KVM: the built-in test guest must print its line and
//! power off cleanly, and small hand-assembled guests must stop with the right errors.
//!
//! Every test that needs KVM first checks that `/dev/kvm` can be opened; where it cannot, the
//! test prints `skipped: /dev/kvm not available (<reason>)` and passes. KVM is a property of
//! the machine, not a peer tool the test could install, so this holds under `CI=true` too.

mod common;

use common::assert_in_order;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The line the test guest prints last.
const GREETING: &str = "viridian guest: hello from long mode";
/// Longest a VMM run may take before the test kills it (a guest stuck in `hlt` under the
/// in-kernel irqchip would otherwise hang the test).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why KVM cannot be used here, if it cannot.
fn kvm_unavailable() -> Option<String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

macro_rules! require_kvm {
    () => {
        if let Some(reason) = kvm_unavailable() {
            println!("skipped: /dev/kvm not available ({reason})");
            return;
        }
    };
}

/// What one VMM run produced.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the VMM with `args`, killing it after [`TIMEOUT`].
fn vmm(args: &[&str]) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vmm");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("read vmm output");
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for vmm") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            child.kill().expect("kill vmm");
            let _ = child.wait();
            panic!("vmm {args:?} did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Writes a minimal static ELF64 executable: `code` loaded and entered at 1 MiB.
fn write_guest(name: &str, code: &[u8]) -> PathBuf {
    const BASE: u64 = 0x10_0000;
    const HEADERS: u64 = 64 + 56;
    let mut elf = Vec::new();
    // Elf64_Ehdr
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&62u16.to_le_bytes()); // e_machine: EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&BASE.to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [64u16, 56, 1, 0, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        elf.extend_from_slice(&half.to_le_bytes());
    }
    // Elf64_Phdr
    elf.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R X
    let size = code.len() as u64;
    for word in [HEADERS, BASE, BASE, size, size, 0x1000] {
        // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        elf.extend_from_slice(&word.to_le_bytes());
    }
    assert_eq!(elf.len() as u64, HEADERS);
    elf.extend_from_slice(code);

    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.elf"));
    std::fs::write(&path, elf).expect("write test guest");
    path
}

/// The one-guest demo's arguments for the tests: a short run with a known KVP key.
const DEMO: [&str; 9] = [
    "--single",
    "--run-ms",
    "1200",
    "--heartbeat-ms",
    "300",
    "--kvp",
    "Owner=ci",
    "--probe",
    "500",
];

/// The transcript's lines without their `[   12.345 ms] ` timestamps.
fn transcript(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .map(|line| {
            let (stamp, rest) = line
                .split_once("] ")
                .unwrap_or_else(|| panic!("no timestamp: {line:?}"));
            assert!(stamp.starts_with('[') && stamp.ends_with(" ms"), "{line:?}");
            rest
        })
        .collect()
}

#[test]
fn demo_transcript() {
    require_kvm!();
    let out = vmm(&DEMO);
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let lines = transcript(&out.stdout);
    assert_in_order(
        &lines,
        &[
            "host: vm created: 64 MiB ram, guest entry 0x100000, Hyper-V cpuid leaves 0x40000000-0x4000000a, no KVM signature",
            "viridian guest: hypervisor \"Microsoft Hv\", interface \"Hv#1\", max leaf 0x4000000a, 1 vp(s)",
            "viridian guest: guest os id 0x8076000001000000, hypercall page enabled at 0x",
            "viridian guest: HvSignalEvent(diagnostic connection 0x7f00) -> HV_STATUS_SUCCESS (0x0)",
            "viridian guest: reference time ",
            "viridian guest: synic enabled: sint 2 -> vector 0xf3, x2apic on",
            "viridian guest: vmbus: requesting version 5.3",
            "host: vmbus: guest connected, version 5.3, messages to vp 0",
            "viridian guest: vmbus: connected, version 5.3",
            "host: vmbus: all four integration-service channels open (",
            "host: kvp: set EXTERNAL/Owner = \"ci\" -> S_OK",
            "host: kvp: guest reports EXTERNAL/Owner = \"ci\"",
            "host: kvp: guest published AUTO/FullyQualifiedDomainName = \"viridian-guest.local\"",
            "host: kvp: guest published AUTO/IntegrationServicesVersion = \"1.0\"",
            "host: kvp: 4 keys enumerated in the guest's AUTO pool",
            "host: shutdown: asking the guest to shut down",
            "host: shutdown: guest answered S_OK, shutting down",
            "viridian guest: shutdown: the host asks for a shutdown within 30 s",
            "viridian guest: powering off for a shutdown",
            GREETING,
            "host: guest powered off after ",
            "host: measured: boot to all four channels open: ",
            "host: measured: heartbeat round trip: ",
            "host: measured: ",
            "host: measured: raw exit round trip (guest loop of 500 port writes): ",
        ],
    );
    // Instruction completion on the MMIO test device: AVX moves and CMPXCHG16B, which KVM's
    // emulator refuses, finished by x86-decode's emulator and checked by the guest.
    if out.stdout.contains("no AVX on this vCPU") {
        println!("note: the vCPU has no AVX; the instruction-completion lines are absent");
    } else {
        assert_in_order(
            &lines,
            &[
                "viridian guest: synic enabled: sint 2 -> vector 0xf3, x2apic on",
                "viridian guest: mmio: vmovdqu ymm stored 32 bytes to the device and loaded 32 back, both exact",
                "viridian guest: mmio: lock cmpxchg16b on the device: exchanged, then refused with the current value loaded",
                "host: mmio: the test device saw 16 accesses: write 32 at 0x100, read 32 at 0x200, ",
                "host: guest powered off after ",
            ],
        );
        let summary = lines
            .iter()
            .find(|l| l.starts_with("host: guest powered off after "))
            .unwrap();
        let emulated: u64 = summary
            .split(" by x86-decode's emulator")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(emulated >= 6, "{summary}");
        // With KVM_CAP_EXIT_ON_EMULATION_FAILURE the emulator starts from KVM's bytes.
        if out
            .stdout
            .contains("emulation failures exit with the instruction bytes")
        {
            assert!(
                summary.contains(&format!(
                    "{emulated} by x86-decode's emulator ({emulated} from the bytes in KVM's exit)"
                )),
                "{summary}"
            );
        }
    }
    // Each channel, opened on both sides and negotiated.
    for (relid, name, guest_name) in [
        (1, "heartbeat", "heartbeat"),
        (2, "shutdown", "shutdown"),
        (3, "time sync", "time sync"),
        (4, "kvp", "key/value pair exchange"),
    ] {
        let host = format!("host: vmbus: channel {relid} ({name}) open: ring GPADL 0x");
        let guest = format!("viridian guest: vmbus: channel {guest_name} open (relid {relid}, ");
        let negotiated = format!("host: ic: {name} negotiated (framework 3.0, message ");
        for want in [host, guest, negotiated] {
            assert!(
                lines.iter().any(|l| l.starts_with(&want)),
                "{want:?} missing"
            );
        }
    }
    // The guest reports the host's key back, and steps its clock on the first sample.
    assert_in_order(
        &lines,
        &["viridian guest: kvp: host set EXTERNAL/Owner = \"ci\""],
    );
    assert_in_order(
        &lines,
        &[
            "host: time sync: guest acknowledged the SYNC sample",
            "viridian guest: time sync (sync): clock set to ",
        ],
    );
    // Heartbeats: several, healthy, with consecutive sequence numbers.
    let seqs: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("host: heartbeat #"))
        .map(|rest| {
            assert!(rest.contains(": guest healthy, round trip "), "{rest}");
            rest.split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(seqs.len() >= 3, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    for bad in ["panic", "dropped", "error", "cannot", "ignored"] {
        assert!(!out.stdout.contains(bad), "{bad:?} in:\n{}", out.stdout);
    }
}

#[test]
fn vmbus_version_fallback() {
    require_kvm!();
    let out = vmm(&[
        "--single",
        "--vmbus-version",
        "4.0",
        "--run-ms",
        "200",
        "--probe",
        "0",
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let lines = transcript(&out.stdout);
    assert_in_order(
        &lines,
        &[
            "viridian guest: vmbus: requesting version 5.3",
            "viridian guest: vmbus: host refused the previous version, requesting 5.2",
            "viridian guest: vmbus: host refused the previous version, requesting 5.1",
            "viridian guest: vmbus: host refused the previous version, requesting 5.0",
            "viridian guest: vmbus: host refused the previous version, requesting 4.1",
            "viridian guest: vmbus: host refused the previous version, requesting 4.0",
            "host: vmbus: guest connected, version 4.0",
            "viridian guest: vmbus: connected, version 4.0",
            "host: vmbus: all four integration-service channels open (",
            GREETING,
        ],
    );
}

/// A negative scenario: the guest's deliberate mistakes get the documented answers, and the
/// VMM keeps running (the guest still opens its channels and shuts down cleanly).
fn negative(scenario: &str, expected: &[&str]) {
    let out = vmm(&["--scenario", scenario, "--run-ms", "200", "--probe", "0"]);
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let lines = transcript(&out.stdout);
    let mut all: Vec<&str> = expected.to_vec();
    all.extend([
        "host: vmbus: all four integration-service channels open (",
        "host: shutdown: guest answered S_OK, shutting down",
        GREETING,
    ]);
    assert_in_order(&lines, &all);
}

#[test]
fn negative_malformed_vmbus_messages_are_dropped() {
    require_kvm!();
    negative(
        "malformed-message",
        &[
            "host: vmbus: dropped a guest message: malformed message",
            "viridian guest: negative: HvPostMessage(unknown VMBus message type) -> HV_STATUS_SUCCESS (0x0), as documented",
            "host: vmbus: dropped a guest message: malformed message",
            "viridian guest: negative: HvPostMessage(2-byte VMBus message) -> HV_STATUS_SUCCESS (0x0), as documented",
            "viridian guest: negative: HvPostMessage(message type 0x55) -> HV_STATUS_INVALID_PARAMETER (0x5), as documented",
        ],
    );
}

#[test]
fn negative_unknown_connection_is_refused() {
    require_kvm!();
    negative(
        "unknown-connection",
        &[
            "viridian guest: negative: HvSignalEvent(connection 0x2fff) -> HV_STATUS_INVALID_CONNECTION_ID (0x12), as documented",
            "viridian guest: negative: HvPostMessage(connection 0x2fff) -> HV_STATUS_INVALID_CONNECTION_ID (0x12), as documented",
        ],
    );
}

#[test]
fn negative_reserved_synic_bits_fault() {
    require_kvm!();
    negative(
        "reserved-synic-bits",
        &["viridian guest: negative: wrmsr SINT2 and SCONTROL with reserved bits -> #GP twice, registers unchanged, as documented"],
    );
}

#[test]
fn negative_gpadl_outside_ram_is_refused() {
    require_kvm!();
    negative(
        "gpadl-outside-ram",
        &[
            "host: vmbus: dropped a guest message: GPADL 0x",
            "viridian guest: negative: GPADL with a page at 1 TiB -> GPADL_CREATED status 0xc0000001, as documented",
        ],
    );
}

#[test]
fn traces_exits() {
    require_kvm!();
    let out = vmm(&[
        "--single", "--trace", "--mem", "16", "--run-ms", "200", "--probe", "0",
    ]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert!(out.stdout.contains(GREETING));
    assert!(
        out.stderr.contains("io in  0x03fd -> [60] serial"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("io out 0x00f4 [00] power-off"),
        "{}",
        out.stderr
    );
    // The Hyper-V plumbing: synthetic MSR exits, the hypercall trap, the dispatcher, VMBus.
    for needle in [
        "wrmsr 0x40000000 (GUEST_OS_ID) <- 0x8076000001000000",
        "rdmsr 0x40000001 (HYPERCALL) -> 0x",
        "io out 0x0099 [5d] hypercall",
        "[hv] HvSignalEvent connection 0x7f00 flag 0 -> HV_STATUS_SUCCESS (0x0)",
        "[hv] HvPostMessage connection 0x4 type 0x1 (40 bytes) -> HV_STATUS_SUCCESS (0x0)",
        "[hv] HvSignalEvent connection 0x2001 flag 0 -> HV_STATUS_SUCCESS (0x0)",
        "wrmsr 0x40000080 (SCONTROL) <- 0x1",
        "rdmsr 0x40000020 (TIME_REF_COUNT) -> 0x",
        "[vmm] hyper-v: ",
    ] {
        assert!(
            out.stderr.contains(needle),
            "{needle:?} missing:\n{}",
            out.stderr
        );
    }
}

#[test]
fn synthetic_msr_faults_reach_the_guest_as_gp() {
    require_kvm!();
    // wrmsr 0x40000002 (VP_INDEX, read-only) with edx:eax = 0:1. The model refuses the write,
    // the VMM injects #GP, and with no IDT the guest triple-faults.
    // mov ecx, 0x40000002; mov eax, 1; xor edx, edx; wrmsr
    let code = [
        0xb9, 0x02, 0x00, 0x00, 0x40, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0x30,
    ];
    let guest = write_guest("vp_index_write", &code);
    let out = vmm(&["--trace", "--guest", guest.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr
            .contains("wrmsr 0x40000002 (VP_INDEX) <- 0x1 -> #GP"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("triple fault"), "{}", out.stderr);
}

#[test]
fn hypercall_port_before_the_page_is_enabled_is_no_device() {
    require_kvm!();
    // mov al, 0x5d; out 0x99, al — the trap port only serves hypercalls once the guest has
    // enabled the hypercall page.
    let guest = write_guest("early_hypercall", &[0xb0, 0x5d, 0xe6, 0x99]);
    let out = vmm(&["--guest", guest.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr
            .contains("1-byte write to port 0x99, which has no device (data 5d)"),
        "{}",
        out.stderr
    );
}

#[test]
fn reports_the_guest_failure_status() {
    require_kvm!();
    // mov al, 5; out 0xf4, al
    let guest = write_guest("status5", &[0xb0, 0x05, 0xe6, 0xf4]);
    let out = vmm(&["--guest", guest.to_str().unwrap()]);
    assert_eq!(out.code, Some(3), "stderr:\n{}", out.stderr);
    assert!(out.stderr.contains("failure status 5"), "{}", out.stderr);
}

#[test]
fn unknown_port_stops_with_a_register_dump() {
    require_kvm!();
    // mov al, 0x41; out 0x80, al
    let guest = write_guest("port80", &[0xb0, 0x41, 0xe6, 0x80]);
    let out = vmm(&["--guest", guest.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    let err = &out.stderr;
    assert!(
        err.contains("1-byte write to port 0x80, which has no device (data 41)"),
        "{err}"
    );
    // `out` exits with rip already past the instruction.
    assert!(err.contains("rip 0000000000100004"), "{err}");
    assert!(err.contains("rax 0000000000000041"), "{err}");
    assert!(err.contains("efer 0000000000000500"), "{err}");
}

#[test]
fn mmio_outside_ram_stops_the_vm() {
    require_kvm!();
    // mov [0xd0000000], eax (moffs64 form)
    let guest = write_guest("mmio", &[0xa3, 0, 0, 0, 0xd0, 0, 0, 0, 0]);
    let out = vmm(&["--guest", guest.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("4-byte mmio write at 0xd0000000"),
        "{}",
        out.stderr
    );
}

#[test]
fn hlt_without_power_off_is_an_error() {
    require_kvm!();
    let guest = write_guest("hlt", &[0xf4]);
    // With the in-kernel irqchip, KVM would sleep in `hlt` for good.
    let out = vmm(&["--no-irqchip", "--guest", guest.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("halted (hlt) without powering off"),
        "{}",
        out.stderr
    );
}

#[test]
fn triple_fault_is_an_error() {
    require_kvm!();
    // ud2, with no IDT: #UD, then #DF, then shutdown.
    let guest = write_guest("ud2", &[0x0f, 0x0b]);
    let out = vmm(&["--guest", guest.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("unexpected vcpu exit"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("registers:"), "{}", out.stderr);
}

#[test]
fn rejects_a_file_that_is_not_elf() {
    // Parsing happens before KVM is opened, so this needs no KVM.
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("not-elf.bin");
    std::fs::write(&path, [b'M', b'Z'].repeat(64)).unwrap();
    let out = vmm(&["--guest", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("not a loadable ELF"), "{}", out.stderr);
    assert!(out.stderr.contains("not an elf file"), "{}", out.stderr);
}

#[test]
fn help_and_usage_errors() {
    let out = vmm(&["--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.starts_with("usage: vmm"), "{}", out.stdout);
    let out = vmm(&["--mem", "1"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("--mem takes a whole number"),
        "{}",
        out.stderr
    );
}
