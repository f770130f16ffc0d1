//! Interop with the real peers, in both directions: qemu-img/qemu-io (QEMU's `vpc` driver) and
//! libvhdi (`vhdiinfo`, `vhdimount`).
//!
//! - qemu-made images read through this crate exactly as `qemu-img convert -O raw` reads them;
//! - images this crate makes (and fills) compare identical in qemu and in libvhdi, which also
//!   report our disk type, size, unique id and parent link;
//! - the hand-crafted differencing oracle of `shared/reference/vhd.md` §4.4 (sub-byte bitmap
//!   patterns that both peers get wrong) reads the spec-correct way here.
//!
//! A missing peer skips its tests (and fails them under `CI=true`); see [`common::peer`].

mod common;

use std::path::Path;

use common::{assert_same, create_file, pattern, read_all, run_ok, Mount, Rng, TempDir};
use vhd_format::defs::{checksum, Uuid};
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, CreateOptions, Disk, OpenOptions,
    ParentLink, ParentPolicy, SizePolicy, Vhd,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The top-level `"virtual-size"` of `qemu-img info --output=json -f vpc` (nested entries
/// describe the protocol layer and are indented deeper).
fn qemu_virtual_size(image: &Path) -> u64 {
    let out = run_ok(
        "qemu-img",
        &["info", "--output=json", "-f", "vpc", path_str(image)],
    );
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("    \"virtual-size\": "))
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no top-level virtual-size in:\n{}", out.stdout))
}

/// Reads all of `disk` and compares it with the file at `raw`, chunk by chunk.
fn assert_disk_equals_file(what: &str, disk: &dyn Disk, raw: &Path) {
    let bytes = std::fs::read(raw).unwrap();
    assert_eq!(
        disk.size(),
        bytes.len() as u64,
        "{what}: size differs from {}",
        raw.display()
    );
    assert_same(what, &read_all(disk, MIB as usize), &bytes);
}

fn open_file(path: &Path, policy: SizePolicy) -> Vhd<std::fs::File> {
    Vhd::open_path(
        path,
        OpenOptions::new().size_policy(policy),
        &ParentPolicy::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// a. qemu-made → ours.

#[test]
fn qemu_made_images_read_like_qemu_convert() {
    if !common::peer("qemu-img") || !common::peer("qemu-io") {
        return;
    }
    let dir = TempDir::new("qemu-made");
    let cases = [
        ("dynamic", false, "64M"),
        ("dynamic", true, "64M"),
        ("dynamic", false, "100M"),
        ("fixed", false, "100M"),
        ("fixed", true, "64M"),
    ];
    for (i, (subformat, force, size)) in cases.into_iter().enumerate() {
        let what = format!("qemu {subformat} {size} force_size={force}");
        let vhd = dir.join(&format!("q{i}.vhd"));
        let raw = dir.join(&format!("q{i}.raw"));
        let mut opts = format!("subformat={subformat}");
        if force {
            opts.push_str(",force_size=on");
        }
        run_ok(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "vpc",
                "-o",
                &opts,
                path_str(&vhd),
                size,
            ],
        );
        run_ok(
            "qemu-io",
            &[
                "-f",
                "vpc",
                "-c",
                "write -P 0xab 1M 4k",
                "-c",
                "write -P 0xcd 10M 1M",
                "-c",
                "write -P 0x5e 4000 3000",
                "-c",
                "write -P 0x77 2047k 2k",
                "-c",
                "write -P 0xef 63M 1M",
                path_str(&vhd),
            ],
        );
        run_ok(
            "qemu-img",
            &[
                "convert",
                "-f",
                "vpc",
                "-O",
                "raw",
                path_str(&vhd),
                path_str(&raw),
            ],
        );
        // qemu sizes its own non-force_size images by CHS; ours follows with SizePolicy::Qemu.
        let disk = open_file(&vhd, SizePolicy::Qemu);
        assert!(disk.warnings().is_empty(), "{what}: {:?}", disk.warnings());
        assert_eq!(disk.size(), qemu_virtual_size(&vhd), "{what}: virtual size");
        assert_disk_equals_file(&what, &disk, &raw);
        // qemu writes current_size = the CHS product when it rounds, so the default policy
        // agrees here too; with force_size the geometry is only approximate.
        let by_current = open_file(&vhd, SizePolicy::CurrentSize);
        assert_eq!(
            by_current.size(),
            disk.size(),
            "{what}: current_size vs qemu's size"
        );
        if force {
            assert_ne!(
                by_current.chs_size(),
                disk.size(),
                "{what}: expected a rounded geometry"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// b. ours → qemu.

/// Fills `disk` with a deterministic mix of writes (unaligned, block-crossing, zeros, the last
/// byte) and returns the contents it should now have.
fn fill(disk: &mut dyn Disk, seed: u64, whole_bytes_of_bitmap: bool) -> Vec<u8> {
    let size = disk.size();
    let mut model = read_all(disk, MIB as usize);
    let mut rng = Rng::new(seed);
    let mut writes: Vec<(u64, usize)> = (0..40)
        .map(|_| {
            let offset = rng.below(size - 1);
            (
                offset,
                (1 + rng.below(300 * KIB)).min(size - offset) as usize,
            )
        })
        .collect();
    writes.push((size - 1000, 1000));
    for (i, (mut offset, mut len)) in writes.into_iter().enumerate() {
        if whole_bytes_of_bitmap {
            // Runs of 8 whole sectors (4 KiB aligned): a whole bitmap byte each.
            offset &= !(4 * KIB - 1);
            len = (len as u64).next_multiple_of(4 * KIB).min(size - offset) as usize;
        }
        let data = if i % 5 == 4 {
            vec![0; len]
        } else {
            pattern(rng.next_u64(), len)
        };
        disk.write_at(offset, &data).unwrap();
        model[offset as usize..offset as usize + len].copy_from_slice(&data);
    }
    disk.flush().unwrap();
    assert_same(
        "our reads after filling",
        &read_all(disk, MIB as usize),
        &model,
    );
    model
}

/// Creates an image of `kind` (`fixed` or a dynamic block size) at `path` and fills it.
fn make_ours(path: &Path, kind: Option<u32>, size: u64, seed: u64) -> Vec<u8> {
    let opts = CreateOptions::new(size);
    let mut disk = match kind {
        None => create_fixed(create_file(path), &opts).unwrap(),
        Some(bs) => create_dynamic(create_file(path), &opts.block_size(bs)).unwrap(),
    };
    fill(&mut disk, seed, false)
}

#[test]
fn our_images_compare_identical_in_qemu() {
    if !common::peer("qemu-img") {
        return;
    }
    let dir = TempDir::new("ours-qemu");
    let kinds: [(Option<u32>, u64); 5] = [
        (None, 24 * MIB + 3 * 512),
        (Some(512 << 10), 40 * MIB + 5 * 512),
        (Some(2 << 20), 40 * MIB + 5 * 512),
        (Some(4 << 20), 41 * MIB + 512),
        (Some(64 << 10), 5 * MIB + 512),
    ];
    for (i, (kind, size)) in kinds.into_iter().enumerate() {
        let what = format!("ours {kind:?} {size}");
        let vhd = dir.join(&format!("o{i}.vhd"));
        let reference = dir.join(&format!("o{i}.raw"));
        let model = make_ours(&vhd, kind, size, 100 + i as u64);
        // The reference is our own reads of the closed image (and equals the model).
        let disk = open_file(&vhd, SizePolicy::CurrentSize);
        let dump = read_all(&disk, MIB as usize);
        assert_same(&what, &dump, &model);
        std::fs::write(&reference, &dump).unwrap();

        common::qemu_compare(&what, &vhd, &reference);
        assert_eq!(qemu_virtual_size(&vhd), size, "{what}: qemu's virtual size");

        let converted = dir.join(&format!("o{i}.conv.raw"));
        run_ok(
            "qemu-img",
            &[
                "convert",
                "-f",
                "vpc",
                "-O",
                "raw",
                path_str(&vhd),
                path_str(&converted),
            ],
        );
        assert_same(
            &format!("{what}: qemu-img convert"),
            &std::fs::read(&converted).unwrap(),
            &dump,
        );
        std::fs::remove_file(&converted).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// c. ours → libvhdi.

/// The value of `key` in `vhdiinfo` output (`\tKey\t\t: value`).
fn vhdiinfo_field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn check_vhdiinfo(image: &Path, disk_type: &str, size: u64, id: Uuid) -> String {
    let out = run_ok("vhdiinfo", &[path_str(image)]).stdout;
    assert_eq!(vhdiinfo_field(&out, "Disk type"), Some(disk_type), "{out}");
    let media = vhdiinfo_field(&out, "Media size").unwrap_or_else(|| panic!("{out}"));
    assert!(
        media.ends_with(&format!("({size} bytes)")),
        "media size {media:?}, want {size}:\n{out}"
    );
    let ident = id.to_string();
    assert_eq!(
        vhdiinfo_field(&out, "Identifier"),
        Some(ident.as_str()),
        "{out}"
    );
    out
}

#[test]
fn our_images_read_identically_in_libvhdi() {
    if !common::peer("vhdiinfo") || !common::peer("vhdimount") {
        return;
    }
    let dir = TempDir::new("ours-libvhdi");
    for (i, (kind, size, name)) in [
        (None, 12 * MIB + 512, "Fixed"),
        (Some(2 << 20), 20 * MIB + 3 * 512, "Dynamic"),
        (Some(512 << 10), 9 * MIB, "Dynamic"),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("ours {name} {kind:?}");
        let vhd = dir.join(&format!("l{i}.vhd"));
        let model = make_ours(&vhd, kind, size, 200 + i as u64);
        let disk = open_file(&vhd, SizePolicy::CurrentSize);
        check_vhdiinfo(&vhd, name, size, disk.footer().unique_id());
        let mount = Mount::vhdimount(&vhd, dir.join(&format!("m{i}")));
        assert_same(&what, &std::fs::read(mount.join("vhdi1")).unwrap(), &model);
    }
}

#[test]
fn our_differencing_chain_reads_identically_in_libvhdi() {
    if !common::peer("vhdiinfo") || !common::peer("vhdimount") {
        return;
    }
    let dir = TempDir::new("chain-libvhdi");
    let size = 20 * MIB + 4 * KIB;
    let parent_path = dir.join("p.vhd");
    let parent_model = make_ours(&parent_path, Some(2 << 20), size, 300);
    let parent = open_file(&parent_path, SizePolicy::CurrentSize);
    let parent_id = parent.footer().unique_id();
    let link = ParentLink {
        unique_id: parent_id,
        timestamp: parent.footer().timestamp(),
        name: "p.vhd".into(),
        relative_path: Some(".\\p.vhd".into()),
        absolute_path: Some("C:\\vms\\p.vhd".into()),
    };
    let child_path = dir.join("c.vhd");
    let mut child = create_differencing(
        create_file(&child_path),
        Box::new(parent),
        &link,
        &CreateOptions::new(0),
    )
    .unwrap();
    let child_id = child.footer().unique_id();
    // libvhdi 20210425 mishandles sub-byte bitmap runs (vhd.md §4.4): whole bytes only here.
    let child_model = fill(&mut child, 301, true);
    drop(child);
    let reopened = open_file(&child_path, SizePolicy::CurrentSize);
    assert_same(
        "our chain after reopen",
        &read_all(&reopened, MIB as usize),
        &child_model,
    );

    let out = check_vhdiinfo(&child_path, "Differential", size, child_id);
    let pid = parent_id.to_string();
    assert_eq!(
        vhdiinfo_field(&out, "Parent identifier"),
        Some(pid.as_str()),
        "{out}"
    );
    assert_eq!(
        vhdiinfo_field(&out, "Parent filename"),
        Some("p.vhd"),
        "{out}"
    );

    let mount = Mount::vhdimount(&child_path, dir.join("m"));
    let mut names: Vec<String> = std::fs::read_dir(dir.join("m"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["vhdi1", "vhdi2"],
        "vhdimount of a child shows the parent and the child"
    );
    assert_same(
        "libvhdi vhdi1 (the parent)",
        &std::fs::read(mount.join("vhdi1")).unwrap(),
        &parent_model,
    );
    assert_same(
        "libvhdi vhdi2 (the child's view)",
        &std::fs::read(mount.join("vhdi2")).unwrap(),
        &child_model,
    );
}

/// After `expand`, qemu-img and vhdiinfo both report the new size, and qemu reads the grown
/// disk as we do. libvhdi takes the media size from `original_size` (it reported the old size
/// when only `current_size` was updated); qemu takes it from the CHS geometry for creator
/// `qemu` (it reported the smaller CHS floor when the size was not rounded up to a geometry).
#[test]
fn expanded_images_report_the_new_size_in_qemu_and_libvhdi() {
    if !common::peer("qemu-img") || !common::peer("vhdiinfo") {
        return;
    }
    use vhd_format::defs::FourCc;
    let dir = TempDir::new("expand-peers");
    // (creator, None = fixed / Some(block size), size, new size). 512 KiB blocks from 10 to
    // 80 MiB need 160 BAT entries, more than the first BAT sector holds: the BAT moves.
    let cases: [(FourCc, Option<u32>, u64, u64); 5] = [
        (FourCc::WINDOWS, None, 10 * MIB, 20 * MIB + 3 * 512),
        (FourCc::WINDOWS, Some(512 << 10), 10 * MIB, 80 * MIB + 512),
        (FourCc::QEMU, None, 10 * MIB, 20 * MIB + 3 * 512),
        (FourCc::QEMU, Some(512 << 10), 10 * MIB, 80 * MIB + 512),
        (FourCc::VIRTUAL_PC, Some(2 << 20), 3 * MIB, 64 * MIB),
    ];
    for (i, (app, kind, size, new_size)) in cases.into_iter().enumerate() {
        let what = format!("{app} {kind:?} {size} -> {new_size}");
        let path = dir.join(&format!("e{i}.vhd"));
        let opts = CreateOptions::new(size).creator(app);
        let mut disk = match kind {
            None => create_fixed(create_file(&path), &opts).unwrap(),
            Some(bs) => create_dynamic(create_file(&path), &opts.block_size(bs)).unwrap(),
        };
        disk.write_at(0, &pattern(400 + i as u64, 64 * KIB as usize))
            .unwrap();
        disk.write_at(size - 4096, &pattern(500 + i as u64, 4096))
            .unwrap();
        vhd_format::ops::expand(&mut disk, new_size).unwrap_or_else(|e| panic!("{what}: {e}"));
        let grown = disk.current_size();
        assert!(grown >= new_size, "{what}: {grown}");
        if app == FourCc::WINDOWS {
            assert_eq!(grown, new_size, "{what}");
        }
        let id = disk.footer().unique_id();
        drop(disk);

        assert_eq!(qemu_virtual_size(&path), grown, "{what}: qemu-img info");
        let name = if kind.is_some() { "Dynamic" } else { "Fixed" };
        check_vhdiinfo(&path, name, grown, id);

        let ours = open_file(&path, SizePolicy::CurrentSize);
        assert_eq!(ours.size(), grown, "{what}");
        let raw = dir.join(&format!("e{i}.raw"));
        std::fs::write(&raw, read_all(&ours, MIB as usize)).unwrap();
        common::qemu_compare(&what, &path, &raw);
        std::fs::remove_file(&raw).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// d. The hand-crafted differencing oracle (vhd.md §4.4).

const P: u8 = 0xAA;
const C: u8 = 0x11;
const D: u8 = 0x22;

/// Builds the oracle child for `bitmap0` next to the qemu-made parent: footer copied from the
/// parent (type 4, creator `win `, version 0x000a0000, new id), header with the parent link and
/// both locators, block 0 at 0xC00 (sector 0 = 0x11, sectors 1–7 = 0x22, bitmap byte 0 =
/// `bitmap0`), block 5 fully present with 0x33.
fn oracle_child(parent_vhd: &[u8], bitmap0: u8, id: [u8; 16]) -> Vec<u8> {
    let parent_footer = &parent_vhd[parent_vhd.len() - 512..];
    let mut footer = parent_footer.to_vec();
    footer[60..64].copy_from_slice(&4u32.to_be_bytes());
    footer[28..32].copy_from_slice(b"win ");
    footer[32..36].copy_from_slice(&0x000a_0000u32.to_be_bytes());
    footer[68..84].copy_from_slice(&id);
    let sum = checksum(&footer, 64);
    footer[64..68].copy_from_slice(&sum.to_be_bytes());

    let block = 2 * MIB as usize;
    let block0 = 0xC00usize;
    let block5 = block0 + 512 + block;
    let mut file = vec![0u8; block5 + 512 + block];
    file[..512].copy_from_slice(&footer);

    let h = &mut file[512..1536];
    h[0..8].copy_from_slice(b"cxsparse");
    h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    h[16..24].copy_from_slice(&1536u64.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&32u32.to_be_bytes());
    h[32..36].copy_from_slice(&(block as u32).to_be_bytes());
    h[40..56].copy_from_slice(&parent_footer[68..84]);
    h[56..60].copy_from_slice(&parent_footer[24..28]);
    for (i, u) in "p.vhd".encode_utf16().enumerate() {
        h[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
    }
    let locators: [(&[u8; 4], &str, usize); 2] = [
        (b"W2ku", "C:\\vms\\p.vhd", 0x800),
        (b"W2ru", ".\\p.vhd", 0xA00),
    ];
    let mut payloads = Vec::new();
    for (i, (code, path, at)) in locators.into_iter().enumerate() {
        let bytes: Vec<u8> = path.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let e = &mut h[576 + 24 * i..600 + 24 * i];
        e[0..4].copy_from_slice(code);
        e[4..8].copy_from_slice(&512u32.to_be_bytes());
        e[8..12].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
        e[16..24].copy_from_slice(&(at as u64).to_be_bytes());
        payloads.push((at, bytes));
    }
    let sum = checksum(h, 36);
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    for (at, bytes) in payloads {
        file[at..at + bytes.len()].copy_from_slice(&bytes);
    }

    file[1536..2048].fill(0xFF);
    file[1536..1540].copy_from_slice(&((block0 / 512) as u32).to_be_bytes());
    file[1536 + 20..1536 + 24].copy_from_slice(&((block5 / 512) as u32).to_be_bytes());
    file[block0] = bitmap0;
    file[block0 + 512..block0 + 1024].fill(C);
    file[block0 + 1024..block0 + 512 * 9].fill(D);
    file[block5..block5 + 512].fill(0xFF);
    file[block5 + 512..].fill(0x33);
    file.extend_from_slice(&footer);
    file
}

/// The spec-correct contents of sectors 0..16 for bitmap byte 0 = `bitmap0` (MSB = sector 0).
fn oracle_expected(bitmap0: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for k in 0..16 {
        let in_child = k < 8 && bitmap0 & (0x80 >> k) != 0;
        let byte = match (in_child, k) {
            (true, 0) => C,
            (true, _) => D,
            (false, _) => P,
        };
        out.extend(std::iter::repeat_n(byte, 512));
    }
    out
}

fn sectors_as_text(bytes: &[u8]) -> String {
    bytes
        .chunks(512)
        .map(|s| match s[0] {
            C => 'C',
            D => 'c',
            P => 'P',
            0 => '0',
            _ => '?',
        })
        .collect()
}

#[test]
fn hand_crafted_differencing_oracle_reads_spec_correctly() {
    if !common::peer("qemu-img") || !common::peer("qemu-io") {
        return;
    }
    let dir = TempDir::new("oracle");
    let parent = dir.join("p.vhd");
    run_ok(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "force_size=on",
            path_str(&parent),
            "64M",
        ],
    );
    run_ok(
        "qemu-io",
        &[
            "-f",
            "vpc",
            "-c",
            "write -P 0xaa 0 8k",
            "-c",
            "write -P 0xbb 10M 64k",
            path_str(&parent),
        ],
    );
    let parent_bytes = std::fs::read(&parent).unwrap();
    let libvhdi = common::peer("vhdimount");
    let mut peer_notes = Vec::new();
    for (i, bitmap0) in [0xFFu8, 0x01, 0x0F, 0x80, 0x40].into_iter().enumerate() {
        let child = dir.join("c.vhd");
        let id = [0x40 + i as u8; 16];
        std::fs::write(&child, oracle_child(&parent_bytes, bitmap0, id)).unwrap();
        let disk = open_file(&child, SizePolicy::CurrentSize);
        assert!(
            disk.warnings().is_empty(),
            "{bitmap0:#04x}: {:?}",
            disk.warnings()
        );
        assert_eq!(disk.size(), 64 * MIB);
        let mut got = vec![0u8; 16 * 512];
        disk.read_at(0, &mut got).unwrap();
        let want = oracle_expected(bitmap0);
        assert_eq!(
            sectors_as_text(&got),
            sectors_as_text(&want),
            "bitmap byte 0 = {bitmap0:#04x}: sectors 0..16"
        );
        assert!(got == want, "{bitmap0:#04x}: sector contents");
        // Block 5 is in the child (hiding the parent's 0xBB); 20 MiB is in neither file.
        let mut b = vec![0u8; 64 * KIB as usize];
        disk.read_at(10 * MIB, &mut b).unwrap();
        assert!(b.iter().all(|&x| x == 0x33), "{bitmap0:#04x}: 10 MiB");
        disk.read_at(20 * MIB, &mut b).unwrap();
        assert!(b.iter().all(|&x| x == 0), "{bitmap0:#04x}: 20 MiB");
        disk.read_at(8 * KIB, &mut b).unwrap();
        assert!(
            b.iter().all(|&x| x == 0),
            "{bitmap0:#04x}: 8 KiB (past the parent's data)"
        );

        if libvhdi {
            let out = run_ok("vhdiinfo", &[path_str(&child)]).stdout;
            assert_eq!(
                vhdiinfo_field(&out, "Disk type"),
                Some("Differential"),
                "{out}"
            );
            assert_eq!(
                vhdiinfo_field(&out, "Parent filename"),
                Some("p.vhd"),
                "{out}"
            );
            let mount = Mount::vhdimount(&child, dir.join(&format!("m{i}")));
            let view = std::fs::read(mount.join("vhdi2")).unwrap();
            let theirs = sectors_as_text(&view[..16 * 512]);
            if theirs != sectors_as_text(&want) {
                peer_notes.push(format!(
                    "{bitmap0:#04x}: libvhdi {theirs}, spec {}",
                    sectors_as_text(&want)
                ));
            }
            // Whole-byte-consistent patterns (set bits running to the end of the byte) are
            // read correctly by libvhdi too; the others are its known bug (vhd.md §4.4).
            if matches!(bitmap0, 0xFF | 0x01 | 0x0F) {
                assert_eq!(
                    theirs,
                    sectors_as_text(&want),
                    "libvhdi disagrees on {bitmap0:#04x}"
                );
            }
            assert!(view[10 * MIB as usize..11 * MIB as usize]
                .iter()
                .all(|&x| x == 0x33));
        }
    }
    if !peer_notes.is_empty() {
        println!("libvhdi disagrees with the spec (known, vhd.md §4.4): {peer_notes:#?}");
    }
}
