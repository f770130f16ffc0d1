//! The checked-in seed corpus of `fuzz/`: how it is made, and a check that it stays valid.
//!
//! Regenerate with `cargo test -p vhd-format --test fuzz_seeds -- --ignored`. Every image is
//! deterministic (fixed unique ids and timestamps), tiny (under 64 KiB) and opens cleanly, so
//! the fuzzer starts from inputs that reach the deep code paths.

mod common;

use std::path::{Path, PathBuf};

use common::{pattern, Rng};
use vhd_format::defs::{checksum, DiskType, Uuid, VhdTime};
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, CreateOptions, Disk, MemStorage,
    OpenOptions, ParentLink, RawDisk, Vhd,
};

/// Must match `CONTROL_LEN` in `fuzz/fuzz_targets/open_read_write.rs`.
const CONTROL_LEN: usize = 64;
/// Must match `PARAMS_LEN` in `fuzz/fuzz_targets/structures.rs`.
const PARAMS_LEN: usize = 32;
/// Must match `CONTROL_LEN` in `fuzz/fuzz_targets/ops.rs`.
const OPS_CONTROL_LEN: usize = 4;
/// The operations of `fuzz/fuzz_targets/ops.rs`, by control byte 0.
const OPS: [&str; 6] = ["check", "repair", "inspect", "compact", "expand", "merge"];
const MAX_SEED: usize = 64 << 10;

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target)
}

fn opts(size: u64, id: u8) -> CreateOptions {
    CreateOptions::new(size)
        .unique_id(Uuid([id; 16]))
        .timestamp(VhdTime(0x3000_0000))
}

fn scribble(disk: &mut dyn Disk, seed: u64, n: usize, max_len: u64) {
    let mut rng = Rng::new(seed);
    let size = disk.size();
    for _ in 0..n {
        let offset = rng.below(size);
        let len = (1 + rng.below(max_len)).min(size - offset) as usize;
        disk.write_at(offset, &pattern(rng.next_u64(), len))
            .unwrap();
    }
}

/// The images: (name, bytes).
fn images() -> Vec<(&'static str, Vec<u8>)> {
    let mut fixed = create_fixed(MemStorage::new(), &opts(8 << 10, 1)).unwrap();
    scribble(&mut fixed, 1, 3, 2000);
    let empty = create_dynamic(MemStorage::new(), &opts(8 << 20, 2)).unwrap();
    let mut d512 = create_dynamic(MemStorage::new(), &opts(16 << 10, 3).block_size(512)).unwrap();
    scribble(&mut d512, 3, 4, 1500);
    let mut d4k = create_dynamic(MemStorage::new(), &opts(64 << 10, 4).block_size(4096)).unwrap();
    scribble(&mut d4k, 4, 3, 5000);
    // A differencing child with partial bitmaps over a small parent.
    let parent = create_dynamic(MemStorage::new(), &opts(32 << 10, 5).block_size(4096)).unwrap();
    let id = parent.identity().unwrap();
    let link = ParentLink {
        unique_id: id.unique_id,
        timestamp: id.timestamp,
        name: "p.vhd".into(),
        relative_path: Some(".\\p.vhd".into()),
        absolute_path: Some("C:\\vms\\p.vhd".into()),
    };
    let mut child = create_differencing(
        MemStorage::new(),
        Box::new(parent),
        &link,
        &opts(0, 6).block_size(4096),
    )
    .unwrap();
    scribble(&mut child, 6, 4, 700);
    vec![
        ("fixed", fixed.into_storage().into_vec()),
        ("dynamic-empty-2m-blocks", empty.into_storage().into_vec()),
        ("dynamic-512-blocks", d512.into_storage().into_vec()),
        ("dynamic-4k-blocks", d4k.into_storage().into_vec()),
        ("differencing", child.into_storage().into_vec()),
    ]
}

/// The seeds of each target: (target, file name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let images = images();
    for (name, image) in &images {
        // No operations (control block of zeros), then a few pseudo-random ones.
        for (variant, control) in [
            ("", vec![0u8; CONTROL_LEN]),
            ("-ops", Rng::new(name.len() as u64).bytes(CONTROL_LEN)),
        ] {
            let mut bytes = control;
            bytes.extend_from_slice(image);
            out.push(("open_read_write", format!("seed-{name}{variant}"), bytes));
        }
    }
    // Every operation on every image, then the hostile cases compaction and merging once
    // trusted: a locator offset of 2^40 (compact grew the file to 1 TiB) and 2 GiB blocks in
    // a file of a few KiB (compact and merge allocated a whole block).
    let ops_seed = |op: usize, image: &[u8]| {
        let mut bytes = vec![op as u8, 0x01, 0x00, 0];
        assert_eq!(bytes.len(), OPS_CONTROL_LEN);
        bytes.extend_from_slice(image);
        bytes
    };
    for (name, image) in &images {
        for (op, op_name) in OPS.iter().enumerate() {
            out.push(("ops", format!("seed-{name}-{op_name}"), ops_seed(op, image)));
        }
    }
    let mut far_locator = images[3].1.clone();
    put(&mut far_locator, 512 + 576, b"W2ru");
    put(&mut far_locator, 512 + 576 + 4, &512u32.to_be_bytes());
    put(&mut far_locator, 512 + 576 + 8, &8u32.to_be_bytes());
    put(
        &mut far_locator,
        512 + 576 + 16,
        &(1u64 << 40).to_be_bytes(),
    );
    fix_header_checksum(&mut far_locator);
    out.push((
        "ops",
        "seed-hostile-far-locator-compact".into(),
        ops_seed(3, &far_locator),
    ));
    let mut huge_blocks = images[1].1.clone();
    put(&mut huge_blocks, 512 + 32, &(1u32 << 31).to_be_bytes());
    fix_header_checksum(&mut huge_blocks);
    out.push((
        "ops",
        "seed-hostile-2g-blocks-compact".into(),
        ops_seed(3, &huge_blocks),
    ));
    let mut huge_child = images[4].1.clone();
    put(&mut huge_child, 512 + 32, &(1u32 << 31).to_be_bytes());
    // Drop the child's blocks: with 2 GiB blocks they would lie beyond the file.
    let entries = u32::from_be_bytes(huge_child[512 + 28..512 + 32].try_into().unwrap());
    let bat = u64::from_be_bytes(huge_child[512 + 16..512 + 24].try_into().unwrap()) as usize;
    huge_child[bat..bat + 4 * entries as usize].fill(0xff);
    fix_header_checksum(&mut huge_child);
    out.push((
        "ops",
        "seed-hostile-2g-blocks-merge".into(),
        ops_seed(5, &huge_child),
    ));
    let structures = |params_seed: u64, body: &[u8]| {
        let mut bytes = Rng::new(params_seed).bytes(PARAMS_LEN);
        bytes.extend_from_slice(body);
        bytes
    };
    let (_, fixed) = &images[0];
    out.push((
        "structures",
        "seed-fixed-footer".into(),
        structures(1, &fixed[fixed.len() - 512..]),
    ));
    let (_, child) = &images[4];
    out.push((
        "structures",
        "seed-footer-and-header".into(),
        structures(2, &child[..1536]),
    ));
    // The child's first block sits after the BAT and the two locators: a partial bitmap.
    out.push((
        "structures",
        "seed-bitmap".into(),
        structures(3, &child[3072..3072 + 512]),
    ));
    out
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

/// Recomputes the checksum of the dynamic header at 512 (where this crate puts it).
fn fix_header_checksum(bytes: &mut [u8]) {
    let sum = checksum(&bytes[512..1536], 36);
    put(bytes, 512 + 36, &sum.to_be_bytes());
}

#[test]
#[ignore = "writes fuzz/seeds; run explicitly to regenerate"]
fn regenerate_fuzz_seeds() {
    for (target, name, bytes) in seeds() {
        let dir = seeds_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Every checked-in seed of `open_read_write` and `ops` is a small image that opens without warnings
/// (with an in-memory raw parent for a differencing one, as the fuzz target does), and every
/// generated seed is checked in.
#[test]
fn fuzz_seeds_are_small_valid_images() {
    let mut checked = 0;
    for target in ["open_read_write", "structures", "ops"] {
        let dir = seeds_dir(target);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                bytes.len() < MAX_SEED,
                "{} is {} bytes",
                path.display(),
                bytes.len()
            );
            let control_len = match target {
                "open_read_write" => CONTROL_LEN,
                "ops" => OPS_CONTROL_LEN,
                _ => continue,
            };
            let image = MemStorage::from_vec(bytes[control_len..].to_vec());
            let (footer, _) = Vhd::probe(&image).unwrap();
            let vhd = if footer.disk_type() == DiskType::DIFFERENCING {
                let parent = RawDisk::new(
                    MemStorage::from_vec(vec![1; footer.current_size.get() as usize]),
                    false,
                )
                .unwrap();
                Vhd::open_with_parent(
                    image,
                    Box::new(parent),
                    OpenOptions::new().ignore_parent_id(true),
                )
            } else {
                Vhd::open(image, OpenOptions::new())
            }
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            let expected: &[_] = if footer.disk_type() == DiskType::DIFFERENCING {
                &[vhd_format::Warning::ParentIdIgnored]
            } else {
                &[]
            };
            assert_eq!(vhd.warnings(), expected, "{}", path.display());
            checked += 1;
        }
    }
    for (target, name, _) in seeds() {
        assert!(
            seeds_dir(target).join(&name).is_file(),
            "seed {target}/{name} is not checked in"
        );
    }
    assert!(checked >= 5);
}
