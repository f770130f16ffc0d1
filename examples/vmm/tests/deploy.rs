//! WIM deployment end to end: the test builds a small tree, `wimlib-imagex` captures it (LZX),
//! `vmm --deploy` lays it onto a new dynamic VHD as FAT32, and the built-in guest lists the
//! volume and checks files against the WIM's SHA-1 hashes. Skipped with a printed reason
//! without `/dev/kvm` or `wimlib-imagex` (a missing peer fails under `CI=true`).

mod common;

use std::path::Path;
use std::process::Command;

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deep")).unwrap();
    std::fs::write(root.join("readme.txt"), b"deployed by viridian\n").unwrap();
    let text: String = (0..400)
        .map(|i| format!("line {i} of a deployed file\n"))
        .collect();
    std::fs::write(root.join("docs/deep/list.txt"), text).unwrap();
    let blob: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("docs/blob.bin"), blob).unwrap();
    std::os::unix::fs::symlink("readme.txt", root.join("link")).unwrap();
}

#[test]
fn deploy_a_wim_image_and_check_it_in_the_guest() {
    if !common::kvm() || !common::have("wimlib-imagex") {
        return;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deploy");
    let _ = std::fs::remove_dir_all(&dir);
    tree(&dir.join("tree"));
    let wim = dir.join("image.wim");
    let status = Command::new("wimlib-imagex")
        .arg("capture")
        .arg(dir.join("tree"))
        .arg(&wim)
        .args(["deployed", "--compress=LZX"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let vhd = dir.join("deployed.vhd");
    let spec = format!("{}:1", wim.display());
    let out = common::run_vmm("300", &["--deploy", &spec, "--disk", vhd.to_str().unwrap()]);
    for line in [
        "onto ",
        "(FAT32, ",
        "3 files, 2 directories",
        "1 links left out",
        "viridian guest: storvsc: LUN 0 holds a FAT32 volume: checking the deployment, read-only",
        "viridian guest: deploy: found readme.txt (21 bytes)",
        "viridian guest: deploy: found docs/blob.bin (100000 bytes)",
        "viridian guest: deploy: found docs/deep/list.txt (",
        "viridian guest: deploy: readme.txt: SHA-1 ",
        "viridian guest: deploy: 4 files and 2 directories on the volume, all 3 WIM files present, 2 checked by SHA-1",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    // The hashes the guest checked are the WIM's: compare with wimlib's own listing.
    let listing = Command::new("wimlib-imagex")
        .args(["dir"])
        .arg(&wim)
        .args(["1", "--detailed"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_lowercase();
    for l in out.lines().filter(|l| l.contains("matches the WIM")) {
        let hex = l
            .split("SHA-1 ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .unwrap();
        assert!(
            listing.contains(hex),
            "{hex} is not in wimlib's listing:\n{listing}"
        );
    }
    // And peers read the disk: libvhdi sees a dynamic VHD, the boot sector is FAT32.
    if common::have("vhdiinfo") {
        let info = Command::new("vhdiinfo").arg(&vhd).output().unwrap();
        assert!(
            String::from_utf8_lossy(&info.stdout).contains("Dynamic"),
            "{info:?}"
        );
    }
    let disk = vhd_format::Vhd::open(
        std::fs::File::open(&vhd).unwrap(),
        vhd_format::OpenOptions::new(),
    )
    .unwrap();
    let mut boot = [0u8; 512];
    vhd_format::Disk::read_at(&disk, 0, &mut boot).unwrap();
    assert_eq!(
        (&boot[82..90], &boot[510..]),
        (&b"FAT32   "[..], &[0x55, 0xAA][..])
    );
}
