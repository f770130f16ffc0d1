//! Hostile input: valid images with bytes flipped, fields set to extreme values, BAT entries
//! aimed at metadata or past the end, and files cut short or extended.
//!
//! Opening must give `Ok` or a typed error, never a panic. An image that opens must read
//! everywhere (in big chunks), take writes that read back, and never grow its storage without
//! bound (a [`MemStorage::with_limit`] refuses that with a typed error). Half of the cases
//! recompute the checksums after mutating, so the checks behind them are reached too.
//!
//! The second half pins the typed error for each classic bad field, and checks that parent
//! locators cannot lead [`Vhd::open_path`] outside the directories a [`ParentPolicy`] allows.

mod common;

use std::sync::OnceLock;

use common::{link_to, pattern, read_all, Rng, TempDir};
use proptest::prelude::*;
use vhd_format::defs::{checksum, DiskType};
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, BatProblem, CreateOptions, Disk, DiskError,
    IoError, MemStorage, OpenError, OpenOptions, ParentError, ParentLink, ParentPolicy, SizePolicy,
    StructureProblem, Vhd, Warning,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// How much a hostile image may grow while being written to.
const GROWTH_LIMIT: u64 = 4 * MIB;
/// Disks up to this size are read whole; larger ones are sampled.
const READ_ALL_UP_TO: u64 = 16 * MIB;

/// A valid image to start from.
struct Base {
    name: &'static str,
    bytes: Vec<u8>,
    /// The parent image of a differencing base.
    parent: Option<Vec<u8>>,
}

fn scribble(disk: &mut dyn Disk, seed: u64, n: usize, max_len: u64) {
    let mut rng = Rng::new(seed);
    let size = disk.size();
    for i in 0..n {
        let offset = rng.below(size);
        let len = (1 + rng.below(max_len)).min(size - offset) as usize;
        let data = if i % 5 == 4 {
            vec![0; len]
        } else {
            pattern(rng.next_u64(), len)
        };
        disk.write_at(offset, &data).unwrap();
    }
}

fn dynamic(size: u64, block: u32, seed: u64, writes: usize) -> Vec<u8> {
    let mut vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(size).block_size(block),
    )
    .unwrap();
    scribble(&mut vhd, seed, writes, 3 * u64::from(block));
    vhd.into_storage().into_vec()
}

fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let mut fixed =
            create_fixed(MemStorage::new(), &CreateOptions::new(64 * KIB + 1536)).unwrap();
        scribble(&mut fixed, 1, 6, 8 * KIB);
        let parent = dynamic(256 * KIB, 64 << 10, 5, 4);
        let parent_vhd =
            Vhd::open(MemStorage::from_vec(parent.clone()), OpenOptions::new()).unwrap();
        let link = link_to(&parent_vhd);
        let mut child = create_differencing(
            MemStorage::new(),
            Box::new(parent_vhd),
            &link,
            &CreateOptions::new(0).block_size(4096),
        )
        .unwrap();
        // Short writes leave partial bitmaps.
        scribble(&mut child, 6, 12, 3000);
        vec![
            Base {
                name: "fixed",
                bytes: fixed.into_storage().into_vec(),
                parent: None,
            },
            Base {
                name: "dynamic-512",
                bytes: dynamic(32 * KIB, 512, 2, 8),
                parent: None,
            },
            Base {
                name: "dynamic-4k",
                bytes: dynamic(256 * KIB + 512, 4096, 3, 8),
                parent: None,
            },
            Base {
                name: "dynamic-2m",
                bytes: dynamic(4 * MIB + 512, 2 << 20, 4, 1),
                parent: None,
            },
            Base {
                name: "differencing-4k",
                bytes: child.into_storage().into_vec(),
                parent: Some(parent),
            },
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// Where a field lives.
#[derive(Clone, Copy, Debug)]
enum Target {
    TailFooter,
    HeadFooter,
    Header,
}

/// (offset, width) of the interesting fields.
const FOOTER_FIELDS: &[(usize, usize)] = &[
    (8, 4),  // features
    (12, 4), // format version
    (16, 8), // data offset
    (40, 8), // original size
    (48, 8), // current size
    (56, 4), // geometry
    (60, 4), // disk type
    (84, 1), // saved state
];
const HEADER_FIELDS: &[(usize, usize)] = &[
    (8, 8),   // data offset (unused)
    (16, 8),  // table offset
    (24, 4),  // header version
    (28, 4),  // max table entries
    (32, 4),  // block size
    (40, 8),  // parent unique id
    (64, 8),  // parent name
    (576, 4), // locator 0: code
    (580, 4), // locator 0: data space
    (584, 4), // locator 0: data length
    (592, 8), // locator 0: data offset
    (600, 4), // locator 1: code
    (608, 4), // locator 1: data length
    (616, 8), // locator 1: data offset
];

/// Field values worth trying; `Len*` are relative to the (mutated) file length.
#[derive(Clone, Copy, Debug)]
enum Value {
    Small(u8),
    Sector,
    BatOffset,
    I32Max,
    Bit31,
    U32Max,
    U64Max,
    Len,
    LenMinusFooter,
    LenSectors,
    Random(u64),
}

impl Value {
    fn get(self, len: u64) -> u64 {
        match self {
            Self::Small(v) => u64::from(v % 4),
            Self::Sector => 512,
            Self::BatOffset => 1536,
            Self::I32Max => 0x7fff_ffff,
            Self::Bit31 => 0x8000_0000,
            Self::U32Max => 0xffff_ffff,
            Self::U64Max => u64::MAX,
            Self::Len => len,
            Self::LenMinusFooter => len.saturating_sub(512),
            Self::LenSectors => len / 512,
            Self::Random(v) => v,
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    /// XOR one byte (position taken modulo the length).
    Flip { at: u64, xor: u8 },
    /// Set a field of a structure to a value (big-endian, truncated to the field's width).
    Field {
        target: Target,
        field: usize,
        value: Value,
    },
    /// Set a BAT entry (index modulo the entries).
    Bat {
        index: u64,
        value: Value,
        alias: u64,
    },
    /// Overwrite a byte of an allocated block's bitmap.
    Bitmap { block: u64, byte: u64, value: u8 },
    /// Cut the file (position modulo the length).
    Truncate { at: u64 },
    /// Append bytes.
    Extend { by: u16, fill: u8 },
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u8>().prop_map(Value::Small),
        Just(Value::Sector),
        Just(Value::BatOffset),
        Just(Value::I32Max),
        Just(Value::Bit31),
        Just(Value::U32Max),
        Just(Value::U64Max),
        Just(Value::Len),
        Just(Value::LenMinusFooter),
        Just(Value::LenSectors),
        any::<u64>().prop_map(Value::Random),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let target = prop_oneof![
        Just(Target::TailFooter),
        Just(Target::HeadFooter),
        Just(Target::Header)
    ];
    prop_oneof![
        3 => (any::<u64>(), 1u8..).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        4 => (target, any::<usize>(), value())
            .prop_map(|(target, field, value)| Mutation::Field { target, field, value }),
        3 => (any::<u64>(), value(), any::<u64>())
            .prop_map(|(index, value, alias)| Mutation::Bat { index, value, alias }),
        2 => (any::<u64>(), any::<u64>(), any::<u8>())
            .prop_map(|(block, byte, value)| Mutation::Bitmap { block, byte, value }),
        1 => any::<u64>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<u16>(), any::<u8>()).prop_map(|(by, fill)| Mutation::Extend { by, fill }),
    ]
}

fn put(bytes: &mut [u8], at: u64, width: usize, value: u64) {
    let be = value.to_be_bytes();
    let at = at as usize;
    if let Some(dst) = bytes.get_mut(at..at + width) {
        dst.copy_from_slice(&be[8 - width..]);
    }
}

fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn get_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The BAT of the *unmutated* base (images we create put the header at 512, the BAT at 1536).
fn base_bat(base: &[u8]) -> Vec<u32> {
    if get_u32(base, base.len() - 512 + 60) == Some(2) {
        return Vec::new();
    }
    let entries = get_u32(base, 512 + 28).unwrap() as usize;
    (0..entries)
        .map(|i| get_u32(base, 1536 + 4 * i).unwrap())
        .collect()
}

fn mutate(bytes: &mut Vec<u8>, base: &[u8], m: &Mutation) {
    let len = bytes.len() as u64;
    match *m {
        Mutation::Flip { at, xor } => {
            if len > 0 {
                bytes[(at % len) as usize] ^= xor;
            }
        }
        Mutation::Field {
            target,
            field,
            value,
        } => {
            let (start, fields) = match target {
                Target::TailFooter => (len.saturating_sub(512), FOOTER_FIELDS),
                Target::HeadFooter => (0, FOOTER_FIELDS),
                Target::Header => (512, HEADER_FIELDS),
            };
            let (off, width) = fields[field % fields.len()];
            put(bytes, start + off as u64, width, value.get(len));
        }
        Mutation::Bat {
            index,
            value,
            alias,
        } => {
            let bat = base_bat(base);
            if !bat.is_empty() {
                let i = (index % bat.len() as u64) as usize;
                let v = match value {
                    // Alias another block.
                    Value::Random(_) if alias % 2 == 0 => {
                        u64::from(bat[(alias / 2 % bat.len() as u64) as usize])
                    }
                    v => v.get(len),
                };
                put(bytes, 1536 + 4 * i as u64, 4, v);
            }
        }
        Mutation::Bitmap { block, byte, value } => {
            let allocated: Vec<u32> = base_bat(base)
                .into_iter()
                .filter(|&e| e != u32::MAX)
                .collect();
            if !allocated.is_empty() {
                let sector = allocated[(block % allocated.len() as u64) as usize];
                let at = u64::from(sector) * 512 + byte % 512;
                if at < len {
                    bytes[at as usize] = value;
                }
            }
        }
        Mutation::Truncate { at } => {
            if len > 0 {
                bytes.truncate((at % len) as usize);
            }
        }
        Mutation::Extend { by, fill } => bytes.extend(std::iter::repeat_n(fill, usize::from(by))),
    }
}

/// Makes the checksums of both footers and of the header (wherever a footer says it is) valid.
fn fix_checksums(bytes: &mut [u8]) {
    let len = bytes.len();
    if len < 512 {
        return;
    }
    let mut header_offsets = Vec::new();
    for start in [len - 512, 0] {
        let footer = &mut bytes[start..start + 512];
        let sum = checksum(footer, 64);
        footer[64..68].copy_from_slice(&sum.to_be_bytes());
        header_offsets.push(get_u64(footer, 16).unwrap());
    }
    for h in header_offsets {
        if let Some(end) = h.checked_add(1024).filter(|&e| e <= len as u64) {
            let header = &mut bytes[h as usize..end as usize];
            let sum = checksum(header, 36);
            header[36..40].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Using whatever opened.

fn open(base: &Base, bytes: Vec<u8>, options: OpenOptions) -> Result<Vhd<MemStorage>, OpenError> {
    let limit = bytes.len() as u64 + GROWTH_LIMIT;
    let storage = MemStorage::from_vec(bytes).with_limit(limit);
    match &base.parent {
        Some(p) => {
            let parent = Vhd::open(MemStorage::from_vec(p.clone()), OpenOptions::new()).unwrap();
            Vhd::open_with_parent(storage, Box::new(parent), options)
        }
        None => Vhd::open(storage, options),
    }
}

/// Offsets to read on a disk too big to read whole: the ends, every allocated block (up to a
/// limit) and some random places.
fn sample_offsets(vhd: &Vhd<MemStorage>, rng: &mut Rng) -> Vec<u64> {
    let size = vhd.size();
    let mut out = vec![0, size.saturating_sub(MIB)];
    if let (Some(bat), Some(bs)) = (vhd.bat(), vhd.block_size()) {
        let allocated = bat.iter().enumerate().filter(|(_, &e)| e != u32::MAX);
        out.extend(allocated.take(32).map(|(i, _)| i as u64 * u64::from(bs)));
    }
    out.extend((0..16).map(|_| rng.below(size)));
    out
}

/// Reads, writes (reading each back), flushes and reopens an image that opened.
fn exercise(base: &Base, mut vhd: Vhd<MemStorage>, seed: u64) {
    let mut rng = Rng::new(seed);
    let size = vhd.size();
    let start_len = vhd.storage().as_slice().len() as u64;
    // Metadata accessors must cope with anything that opened.
    let _ = (
        vhd.footer().current_size.get(),
        vhd.header().map(|h| h.block_size.get()),
    );
    let _ = (
        vhd.parent_name(),
        vhd.parent_locators(),
        vhd.allocated_blocks(),
        vhd.chs_size(),
    );
    let _ = format!("{vhd:?} {:?} {:?}", vhd.footer(), vhd.header());
    let mut buf = vec![0u8; MIB as usize];
    let reads: Vec<u64> = if size <= READ_ALL_UP_TO {
        (0..size.div_ceil(MIB)).map(|i| i * MIB).collect()
    } else {
        sample_offsets(&vhd, &mut rng)
    };
    for offset in reads {
        let n = MIB.min(size - offset) as usize;
        vhd.read_at(offset, &mut buf[..n]).unwrap_or_else(|e| {
            panic!(
                "{}: read of {n} at {offset} on an image that opened: {e:?}",
                base.name
            )
        });
        let _ = vhd.is_unallocated(offset, n as u64);
    }
    if size == 0 {
        return;
    }
    // A writable open refuses blocks that share bytes of the file, so every write reads back.
    for i in 0..6 {
        let offset = match i {
            0 => 0,
            1 => size - 1,
            _ => rng.below(size),
        };
        let len = (1 + rng.below(8 * KIB)).min(size - offset) as usize;
        let data = if i % 3 == 2 {
            vec![0; len]
        } else {
            pattern(rng.next_u64(), len)
        };
        match vhd.write_at(offset, &data) {
            Ok(()) => {
                let mut back = vec![0u8; len];
                vhd.read_at(offset, &mut back).unwrap();
                assert!(
                    back == data,
                    "{}: write of {len} at {offset} does not read back",
                    base.name
                );
            }
            Err(DiskError::ReadOnly) => assert!(!vhd.is_writable()),
            Err(e) => {
                // Typed, and bounded: the storage never grew past its limit.
                let _ = format!("{e} {e:?}");
            }
        }
    }
    let _ = vhd.flush();
    let (storage, parent) = vhd.into_parts();
    assert!(storage.as_slice().len() as u64 <= start_len + GROWTH_LIMIT);
    let bytes = storage.into_vec();
    let _ = Vhd::probe(&MemStorage::from_vec(bytes.clone()));
    let reopened = match parent {
        Some(p) => Vhd::open_with_parent(MemStorage::from_vec(bytes), p, OpenOptions::new()),
        None => Vhd::open(MemStorage::from_vec(bytes), OpenOptions::new()),
    };
    if let Ok(v) = reopened {
        let n = MIB.min(v.size()) as usize;
        let _ = v.read_at(0, &mut buf[..n]);
    }
}

fn size_policy() -> impl Strategy<Value = SizePolicy> {
    prop_oneof![
        Just(SizePolicy::CurrentSize),
        Just(SizePolicy::Chs),
        Just(SizePolicy::Qemu)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_images_never_panic(
        which in 0usize..5,
        mutations in prop::collection::vec(mutation(), 1..5),
        fix in any::<bool>(),
        policy in size_policy(),
        ignore_parent_id in any::<bool>(),
        writable in prop::bool::weighted(0.8),
        seed in any::<u64>(),
    ) {
        let base = &bases()[which];
        let mut bytes = base.bytes.clone();
        for m in &mutations {
            mutate(&mut bytes, &base.bytes, m);
        }
        if fix {
            fix_checksums(&mut bytes);
        }
        let _ = Vhd::probe(&MemStorage::from_vec(bytes.clone()));
        let options = OpenOptions::new()
            .writable(writable)
            .size_policy(policy)
            .ignore_parent_id(ignore_parent_id);
        match open(base, bytes, options) {
            Ok(vhd) => {
                exercise(base, vhd, seed);
            }
            Err(e) => {
                // Typed and printable.
                let _ = format!("{e} {e:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The typed error for each classic bad field.

fn base(name: &str) -> &'static Base {
    bases().iter().find(|b| b.name == name).unwrap()
}

/// Applies `edit` to a copy of the base, fixes the checksums, and opens it read-only.
fn open_edited(name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Result<Vhd<MemStorage>, OpenError> {
    let base = base(name);
    let mut bytes = base.bytes.clone();
    edit(&mut bytes);
    fix_checksums(&mut bytes);
    open(base, bytes, OpenOptions::new().writable(true))
}

/// Sets a field of the tail footer and, on sparse images, of the copy at offset 0.
fn footer_field(bytes: &mut [u8], off: u64, width: usize, value: u64) {
    let len = bytes.len() as u64;
    put(bytes, len - 512 + off, width, value);
    if bytes.starts_with(b"conectix") {
        put(bytes, off, width, value);
    }
}

#[test]
fn extreme_fields_give_typed_errors() {
    let e = open_edited("dynamic-4k", |b| put(b, 512 + 28, 4, 0xffff_ffff)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BatOutOfRange {
                entries: 0xffff_ffff,
                ..
            }
        ),
        "{e:?}"
    );
    let e = open_edited("dynamic-4k", |b| put(b, 512 + 28, 4, 1)).unwrap_err();
    assert!(
        matches!(e, OpenError::BatTooSmall { entries: 1, .. }),
        "{e:?}"
    );
    for bs in [0u64, 3, 511, 3 << 20] {
        let e = open_edited("dynamic-4k", |b| put(b, 512 + 32, 4, bs)).unwrap_err();
        assert!(
            matches!(e, OpenError::BadBlockSize(x) if u64::from(x) == bs),
            "{bs}: {e:?}"
        );
    }
    // 2 GiB blocks: a legal size, but the allocated blocks cannot fit in the file.
    let e = open_edited("dynamic-4k", |b| put(b, 512 + 32, 4, 1 << 31)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BadBatEntry {
                problem: BatProblem::BeyondEof { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = open_edited("dynamic-4k", |b| put(b, 512 + 16, 8, u64::MAX)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BatOutOfRange {
                offset: u64::MAX,
                ..
            }
        ),
        "{e:?}"
    );
    for sector in [0u64, 1, 2, 3] {
        let first = base_bat(&base("dynamic-4k").bytes)
            .iter()
            .position(|&e| e != u32::MAX)
            .unwrap();
        let e =
            open_edited("dynamic-4k", |b| put(b, 1536 + 4 * first as u64, 4, sector)).unwrap_err();
        assert!(
            matches!(
                e,
                OpenError::BadBatEntry {
                    problem: BatProblem::OverlapsMetadata,
                    ..
                }
            ),
            "sector {sector}: {e:?}"
        );
    }
    let e = open_edited("dynamic-4k", |b| {
        let past = b.len() as u64 / 512;
        put(b, 1536, 4, past);
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BadBatEntry {
                problem: BatProblem::BeyondEof { .. },
                ..
            }
        ),
        "{e:?}"
    );
    // The header offset.
    for (bogus, want_cookie) in [(0u64, true), (u64::MAX - 100, false), (1 << 40, false)] {
        let e = open_edited("dynamic-4k", |b| footer_field(b, 16, 8, bogus)).unwrap_err();
        match e {
            OpenError::BadHeader {
                problem: StructureProblem::Cookie(_),
                ..
            } => assert!(want_cookie),
            OpenError::BadHeader {
                problem: StructureProblem::OutOfFile,
                ..
            } => assert!(!want_cookie),
            e => panic!("data offset {bogus}: {e:?}"),
        }
    }
    // A huge current size.
    let e = open_edited("dynamic-4k", |b| footer_field(b, 48, 8, u64::MAX)).unwrap_err();
    assert!(matches!(e, OpenError::BatTooSmall { .. }), "{e:?}");
    let e = open_edited("fixed", |b| footer_field(b, 48, 8, u64::MAX)).unwrap_err();
    assert!(matches!(e, OpenError::FixedTruncated { .. }), "{e:?}");
    // Unknown disk types and versions.
    for t in [0u64, 1, 5, 6, 0xffff_ffff] {
        let e = open_edited("dynamic-4k", |b| footer_field(b, 60, 4, t)).unwrap_err();
        assert!(
            matches!(e, OpenError::UnsupportedDiskType(DiskType(x)) if u64::from(x) == t),
            "{e:?}"
        );
    }
    let e = open_edited("fixed", |b| footer_field(b, 12, 4, 0x0002_0000)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BadFooter {
                problem: StructureProblem::Version(0x0002_0000),
                ..
            }
        ),
        "{e:?}"
    );
    let e = open_edited("dynamic-4k", |b| put(b, 512 + 24, 4, 0x0002_0000)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BadHeader {
                problem: StructureProblem::Version(_),
                ..
            }
        ),
        "{e:?}"
    );
    // Too small to hold a footer.
    let e = open_edited("fixed", |b| b.truncate(100)).unwrap_err();
    assert!(matches!(e, OpenError::TooSmall { len: 100 }), "{e:?}");
    // A fixed disk cut short.
    let e = open_edited("fixed", |b| {
        let footer = b[b.len() - 512..].to_vec();
        b.truncate(b.len() - 1024);
        b.extend_from_slice(&footer);
    })
    .unwrap_err();
    assert!(matches!(e, OpenError::FixedTruncated { .. }), "{e:?}");
}

#[test]
fn checksum_and_cookie_damage() {
    let base = base("dynamic-4k");
    // A bad checksum in both copies: refused, with the values.
    let mut bytes = base.bytes.clone();
    let len = bytes.len();
    bytes[len - 512 + 48] ^= 1;
    bytes[48] ^= 1;
    let e = open(base, bytes, OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BadFooter {
                problem: StructureProblem::Checksum { .. },
                ..
            }
        ),
        "{e:?}"
    );
    // A bad tail with a good head copy: opens, with the warning, and reads as before.
    let mut bytes = base.bytes.clone();
    bytes[len - 512] = b'X';
    let vhd = open(base, bytes, OpenOptions::new()).unwrap();
    assert_eq!(vhd.warnings(), &[Warning::TailFooterInvalid]);
    let good = open(base, base.bytes.clone(), OpenOptions::new()).unwrap();
    assert!(read_all(&vhd, MIB as usize) == read_all(&good, MIB as usize));
    // A header checksum error.
    let mut bytes = base.bytes.clone();
    bytes[512 + 100] ^= 0x40;
    let e = open(base, bytes, OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BadHeader {
                problem: StructureProblem::Checksum { .. },
                ..
            }
        ),
        "{e:?}"
    );
    // A fixed disk has no head copy to fall back on.
    let fixed = self::base("fixed");
    let mut bytes = fixed.bytes.clone();
    let n = bytes.len();
    bytes[n - 512] = b'X';
    let e = open(fixed, bytes, OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BadFooter {
                problem: StructureProblem::Cookie(_),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn differencing_needs_the_right_parent() {
    let base = base("differencing-4k");
    let storage = MemStorage::from_vec(base.bytes.clone());
    let e = Vhd::open(storage.clone(), OpenOptions::new()).unwrap_err();
    assert!(matches!(e, OpenError::NeedsParent { .. }), "{e:?}");
    // Another dynamic disk of the same size is not the parent.
    let stranger = dynamic(256 * KIB, 64 << 10, 5, 4);
    let stranger = Vhd::open(MemStorage::from_vec(stranger), OpenOptions::new()).unwrap();
    let e =
        Vhd::open_with_parent(storage.clone(), Box::new(stranger), OpenOptions::new()).unwrap_err();
    assert!(
        matches!(e, OpenError::ParentMismatch { found: Some(_), .. }),
        "{e:?}"
    );
    // A raw disk has no identity: only accepted when the id check is waived, with a warning.
    let raw =
        vhd_format::RawDisk::new(MemStorage::from_vec(vec![7; 256 * KIB as usize]), false).unwrap();
    let e = Vhd::open_with_parent(storage.clone(), Box::new(raw), OpenOptions::new()).unwrap_err();
    assert!(
        matches!(e, OpenError::ParentMismatch { found: None, .. }),
        "{e:?}"
    );
    let raw =
        vhd_format::RawDisk::new(MemStorage::from_vec(vec![7; 256 * KIB as usize]), false).unwrap();
    let vhd = Vhd::open_with_parent(
        storage,
        Box::new(raw),
        OpenOptions::new().ignore_parent_id(true),
    )
    .unwrap();
    assert_eq!(vhd.warnings(), &[Warning::ParentIdIgnored]);
}

/// Virtual PC before 2004 wrote a 511-byte footer: the file length is then 511 mod 512.
#[test]
fn old_511_byte_footers_open() {
    for name in ["fixed", "dynamic-4k", "dynamic-512"] {
        let base = base(name);
        let mut bytes = base.bytes.clone();
        assert_eq!(
            bytes.pop(),
            Some(0),
            "{name}: the last footer byte is reserved (zero)"
        );
        let vhd = open(base, bytes, OpenOptions::new().writable(true))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(vhd.warnings().is_empty(), "{name}: {:?}", vhd.warnings());
        let good = open(base, base.bytes.clone(), OpenOptions::new()).unwrap();
        let want = read_all(&good, MIB as usize);
        assert!(
            read_all(&vhd, MIB as usize) == want,
            "{name}: contents differ"
        );
        // Writing works; on a sparse disk the new block moves the footer, which is then
        // written whole.
        let mut vhd = vhd;
        let size = vhd.size();
        vhd.write_at(size - 700, &[0x5c; 700]).unwrap();
        let bytes = vhd.into_storage().into_vec();
        let expect_rem = if name == "fixed" { 511 } else { 0 };
        assert_eq!(bytes.len() % 512, expect_rem, "{name}");
        let vhd = open(base, bytes, OpenOptions::new()).unwrap();
        assert!(vhd.warnings().is_empty(), "{name}: {:?}", vhd.warnings());
        let mut got = read_all(&vhd, MIB as usize);
        assert!(got[got.len() - 700..].iter().all(|&b| b == 0x5c));
        got.truncate(got.len() - 700);
        assert!(
            got == want[..want.len() - 700],
            "{name}: contents differ after the write"
        );
    }
}

/// A block size of 2 GiB is legal; allocating such a block must fail cleanly on storage that
/// cannot hold it, not exhaust memory.
#[test]
fn huge_blocks_fail_cleanly_on_bounded_storage() {
    let mut bytes = dynamic(8 * MIB, 2 << 20, 0, 0);
    put(&mut bytes, 512 + 32, 4, 1 << 31);
    fix_checksums(&mut bytes);
    let storage = MemStorage::from_vec(bytes).with_limit(64 * MIB);
    let mut vhd = Vhd::open(storage, OpenOptions::new().writable(true)).unwrap();
    assert_eq!(vhd.block_size(), Some(1 << 31));
    let e = vhd.write_at(4096, &[1; 512]).unwrap_err();
    assert!(matches!(e, DiskError::Io(IoError::NoSpace { .. })), "{e:?}");
    assert!(vhd.storage().as_slice().len() as u64 <= 64 * MIB);
    let mut b = [9u8; 512];
    vhd.read_at(4096, &mut b).unwrap();
    assert_eq!(b, [0; 512], "a failed allocation must not become visible");
}

// ---------------------------------------------------------------------------------------------
// Parent locators are data from the file: they must not lead outside the allowed directories.

/// Writes a parent and a child (whose locators say `relative` and `absolute` and whose header
/// names `name`) into `dir`/`child.vhd`.
fn write_child(
    parent: &std::path::Path,
    child: &std::path::Path,
    rel: &str,
    abs: Option<String>,
    name: &str,
) {
    let p = Vhd::open_path(parent, OpenOptions::new(), &ParentPolicy::anywhere()).unwrap();
    let id = p.identity().unwrap();
    let link = ParentLink {
        unique_id: id.unique_id,
        timestamp: id.timestamp,
        name: name.into(),
        relative_path: Some(rel.into()),
        absolute_path: abs,
    };
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(child)
        .unwrap();
    create_differencing(file, Box::new(p), &link, &CreateOptions::new(0)).unwrap();
}

#[test]
fn locators_cannot_escape_the_allowed_directories() {
    let root = TempDir::new("locators");
    let outside = root.join("outside");
    let vms = root.join("vms");
    std::fs::create_dir(&outside).unwrap();
    std::fs::create_dir(&vms).unwrap();
    let secret = outside.join("secret.vhd");
    let file = common::create_file(&secret);
    create_dynamic(file, &CreateOptions::new(MIB)).unwrap();

    // A relative locator climbing out of the child's directory.
    let child = vms.join("child.vhd");
    write_child(
        &secret,
        &child,
        "..\\outside\\secret.vhd",
        None,
        "secret.vhd",
    );
    let e = Vhd::open_path(&child, OpenOptions::new(), &ParentPolicy::default()).unwrap_err();
    match e {
        OpenError::Parent(ParentError::NotFound { tried, .. }) => {
            assert!(
                tried
                    .iter()
                    .any(|(_, why)| *why == "outside the allowed directories"),
                "{tried:?}"
            );
        }
        e => panic!("{e:?}"),
    }
    // Allowed explicitly, it opens.
    let policy = ParentPolicy::default().allow_dir(&outside);
    Vhd::open_path(&child, OpenOptions::new(), &policy).unwrap();

    // An absolute locator is not followed by default.
    let child2 = vms.join("child2.vhd");
    write_child(
        &secret,
        &child2,
        "nothing-here.vhd",
        Some(secret.to_str().unwrap().into()),
        "gone.vhd",
    );
    let e = Vhd::open_path(&child2, OpenOptions::new(), &ParentPolicy::default()).unwrap_err();
    assert!(
        matches!(e, OpenError::Parent(ParentError::NotFound { .. })),
        "{e:?}"
    );
    Vhd::open_path(&child2, OpenOptions::new(), &ParentPolicy::anywhere()).unwrap();

    // A symlink inside the child's directory that points outside is still outside.
    std::os::unix::fs::symlink(&secret, vms.join("link.vhd")).unwrap();
    let child3 = vms.join("child3.vhd");
    write_child(&secret, &child3, ".\\link.vhd", None, "link.vhd");
    let e = Vhd::open_path(&child3, OpenOptions::new(), &ParentPolicy::default()).unwrap_err();
    assert!(
        matches!(e, OpenError::Parent(ParentError::NotFound { .. })),
        "{e:?}"
    );

    // A child that is its own parent (a loop) ends with an error, not a stack overflow.
    let looped = vms.join("loop.vhd");
    write_child(&secret, &looped, ".\\loop.vhd", None, "loop.vhd");
    let mut bytes = std::fs::read(&looped).unwrap();
    let own_id: [u8; 16] = bytes[68..84].try_into().unwrap();
    bytes[512 + 40..512 + 56].copy_from_slice(&own_id);
    fix_checksums(&mut bytes);
    std::fs::write(&looped, bytes).unwrap();
    let e = Vhd::open_path(&looped, OpenOptions::new(), &ParentPolicy::default()).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Parent(ParentError::TooDeep(_) | ParentError::Open { .. })
        ),
        "{e:?}"
    );
}
