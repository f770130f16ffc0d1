//! The whole demo (`vmm` with no scenario options): two guests on one switch, guest a with a
//! new dynamic VHD snapshotted live and merged back, both completing instructions KVM refuses.
//! Skipped with a printed reason without `/dev/kvm`.

mod common;

use common::assert_in_order as in_order;

/// The lines of VM `name` (`host[a]: ...` and `[a] viridian guest: ...`), timestamps removed.
fn lines_of<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    let host = format!("host[{name}]: ");
    let guest = format!("[{name}] viridian guest: ");
    stdout
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .filter(|rest| rest.starts_with(&host) || rest.starts_with(&guest))
        .collect()
}

#[test]
fn whole_demo_composes_disk_snapshot_network_and_completion() {
    if !common::kvm() {
        return;
    }
    let out = common::run_vmm("1000", &[]);
    let first = out.lines().next().unwrap_or_default();
    assert!(first.contains("host: demo: guest a gets "), "{out}");
    let dir = first
        .split("guest a gets ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .map(std::path::PathBuf::from)
        .and_then(|disk| disk.parent().map(std::path::Path::to_path_buf))
        .expect("the demo names its disk");

    let a = lines_of(&out, "a");
    // The sequential run and the random writes come after the snapshot.
    let merged = format!(
        "host[a]: snapshot: merged {} KiB from ",
        2048 + common::filled_kib()
    );
    in_order(
        &a,
        &[
            "host[a]: disk: ",
            "[a] viridian guest: storvsc: LUN 0 is \"Msft Virtual Disk\", 65536 sectors of 512 bytes (32 MiB)",
            "host[a]: snapshot: ",
            "[a] viridian guest: storvsc: wrote and read back 64 KiB across the 2 MiB block boundary",
            "[a] viridian guest: storvsc: 4 KiB random reads at queue depth 32: ",
            // The guest keeps 32 requests outstanding and the host drains them together.
            "host[a]: measured: storage: that phase took 128 requests in 4 drains (up to 32 per drain)",
            "[a] viridian guest: netvsc: 10.0.0.2 is at 02:00:00:00:00:0b",
            "[a] viridian guest: netvsc: 4 of 4 echo replies",
            "[a] viridian guest: netvsc: sent 100 frames to the peer in ",
            "[a] viridian guest: powering off for a shutdown",
            &merged,
            "host[a]: disk: ",
            "host[a]: network: 106 frames from the guest, ",
        ],
    );
    assert!(
        a.iter()
            .any(|l| l.contains("is now the read-only parent of")
                && l.ends_with("(1 writes so far)")),
        "{out}"
    );
    let b = lines_of(&out, "b");
    in_order(
        &b,
        &[
            "[b] viridian guest: netvsc: answered ARP for 10.0.0.2",
            "[b] viridian guest: netvsc: received all 100 burst frames in ",
            "[b] viridian guest: powering off for a shutdown",
        ],
    );
    // b is asked to shut down only after a powered off (everything a sent is on its way).
    let all: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .collect();
    in_order(
        &all,
        &[
            "[a] viridian guest: powering off for a shutdown",
            "host[b]: shutdown: asking the guest to shut down",
        ],
    );
    // Instruction completion in both guests, unless the vCPU has no AVX.
    if !out.contains("no AVX on this vCPU") {
        for lines in [&a, &b] {
            assert!(
                lines.iter().any(|l| {
                    l.contains(
                    "mmio: vmovdqu ymm stored 32 bytes to the device and loaded 32 back, both exact"
                )
                }),
                "{out}"
            );
        }
    }
    assert!(
        out.contains("host: demo: after the merge, vhd-format's check of demo.vhd is clean"),
        "{out}"
    );
    assert!(!dir.exists(), "the demo left {} behind", dir.display());
    for bad in [
        "panic",
        "error:",
        "failed",
        "cannot",
        "dropped a guest message",
    ] {
        assert!(!out.contains(bad), "{bad:?} in:\n{out}");
    }
}
