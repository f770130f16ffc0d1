//! A minimal ELF64 loader for the guest image.
//!
//! Accepts what a static, non-PIE x86-64 executable is: `ET_EXEC`, `EM_X86_64`, 64-bit,
//! little-endian. Only the file header and the program headers are read; each `PT_LOAD`
//! segment is copied to its physical address (`p_paddr`) in guest RAM and the rest of its
//! memory size (`.bss`) zero-filled. The VMM identity-maps guest memory, so each segment's
//! virtual address must equal its physical address.
//!
//! Layouts follow the System V ABI's "ELF-64 Object File Format" (`Elf64_Ehdr`,
//! `Elf64_Phdr`). Parsing never panics on malformed input: every offset and size is checked
//! against the file, and every segment against the guest-physical region it may occupy.

use core::ops::Range;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::memory::{GuestMemory, MemoryError};

/// `e_ident[0..4]`: the ELF magic number.
pub const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// `e_ident[EI_CLASS]` for 64-bit objects.
pub const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]` for little-endian objects.
pub const ELFDATA2LSB: u8 = 1;
/// `e_ident[EI_VERSION]` and `e_version`: the current ELF version.
pub const EV_CURRENT: u8 = 1;
/// `e_type` of an executable file.
pub const ET_EXEC: u16 = 2;
/// `e_machine` of AMD64 / Intel 64.
pub const EM_X86_64: u16 = 62;
/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;

/// Index of the class byte in `e_ident`.
const EI_CLASS: usize = 4;
/// Index of the data-encoding byte in `e_ident`.
const EI_DATA: usize = 5;
/// Index of the version byte in `e_ident`.
const EI_VERSION: usize = 6;

/// `Elf64_Ehdr`: the file header at offset 0.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Elf64Header {
    /// Magic, class, data encoding, version, OS ABI and padding.
    pub e_ident: [u8; 16],
    /// Object file type (`ET_EXEC` for an executable).
    pub e_type: U16,
    /// Target architecture.
    pub e_machine: U16,
    /// Object file version.
    pub e_version: U32,
    /// Virtual address of the entry point.
    pub e_entry: U64,
    /// File offset of the program header table.
    pub e_phoff: U64,
    /// File offset of the section header table.
    pub e_shoff: U64,
    /// Processor-specific flags.
    pub e_flags: U32,
    /// Size of this header.
    pub e_ehsize: U16,
    /// Size of one program header table entry.
    pub e_phentsize: U16,
    /// Number of program header table entries.
    pub e_phnum: U16,
    /// Size of one section header table entry.
    pub e_shentsize: U16,
    /// Number of section header table entries.
    pub e_shnum: U16,
    /// Section header index of the section-name string table.
    pub e_shstrndx: U16,
}
const _: () = assert!(size_of::<Elf64Header>() == 64);

/// `Elf64_Phdr`: one entry of the program header table.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Elf64ProgramHeader {
    /// Segment type (`PT_LOAD` for a loadable segment).
    pub p_type: U32,
    /// Segment attributes (read, write, execute).
    pub p_flags: U32,
    /// File offset of the segment's contents.
    pub p_offset: U64,
    /// Virtual address of the segment in memory.
    pub p_vaddr: U64,
    /// Physical address of the segment in memory.
    pub p_paddr: U64,
    /// Size of the segment's contents in the file.
    pub p_filesz: U64,
    /// Size of the segment in memory (the rest past `p_filesz` is zero).
    pub p_memsz: U64,
    /// Alignment of the segment.
    pub p_align: U64,
}
const _: () = assert!(size_of::<Elf64ProgramHeader>() == 56);

/// Why a byte string is not an ELF image this loader accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// The file is shorter than the ELF header.
    #[error("file is {len} bytes, shorter than the 64-byte elf header")]
    TruncatedHeader {
        /// Length of the file.
        len: usize,
    },
    /// The file does not start with the ELF magic number.
    #[error("not an elf file (magic {magic:02x?})")]
    BadMagic {
        /// The first four bytes of the file.
        magic: [u8; 4],
    },
    /// The file is not a 64-bit little-endian ELF of the current version.
    #[error("unsupported elf encoding (class {class}, data {data}, version {version})")]
    UnsupportedEncoding {
        /// `e_ident[EI_CLASS]`.
        class: u8,
        /// `e_ident[EI_DATA]`.
        data: u8,
        /// `e_ident[EI_VERSION]`.
        version: u8,
    },
    /// The file is not an x86-64 executable.
    #[error("not an x86-64 executable (e_type {e_type}, e_machine {e_machine})")]
    NotX86Executable {
        /// `e_type`.
        e_type: u16,
        /// `e_machine`.
        e_machine: u16,
    },
    /// The program header entry size is not that of `Elf64_Phdr`.
    #[error("program header entry size is {size}, expected 56")]
    BadProgramHeaderSize {
        /// `e_phentsize`.
        size: u16,
    },
    /// The program header table reaches past the end of the file.
    #[error("program header table ({count} entries at offset {offset:#x}) is outside the file ({len} bytes)")]
    ProgramHeadersOutsideFile {
        /// `e_phoff`.
        offset: u64,
        /// `e_phnum`.
        count: u16,
        /// Length of the file.
        len: usize,
    },
    /// A segment's contents reach past the end of the file.
    #[error(
        "segment {index} (offset {offset:#x}, {size:#x} bytes) is outside the file ({len} bytes)"
    )]
    SegmentOutsideFile {
        /// Index of the program header.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        size: u64,
        /// Length of the file.
        len: usize,
    },
    /// A segment has more bytes in the file than in memory, or its memory wraps around.
    #[error(
        "segment {index} has file size {file_size:#x} and memory size {mem_size:#x} at {addr:#x}"
    )]
    BadSegmentSize {
        /// Index of the program header.
        index: usize,
        /// `p_paddr`.
        addr: u64,
        /// `p_filesz`.
        file_size: u64,
        /// `p_memsz`.
        mem_size: u64,
    },
    /// A segment's virtual address differs from its physical address.
    #[error("segment {index} is not identity-mapped (vaddr {vaddr:#x}, paddr {paddr:#x})")]
    NotIdentityMapped {
        /// Index of the program header.
        index: usize,
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_paddr`.
        paddr: u64,
    },
    /// The entry point lies in no loadable segment.
    #[error("entry point {entry:#x} is not inside a loadable segment")]
    EntryOutsideSegments {
        /// `e_entry`.
        entry: u64,
    },
}

/// Why a parsed image cannot be placed in guest RAM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A segment lies outside the guest-physical region that images may use.
    #[error("segment {index} ({start:#x}..{end:#x}) is outside the image region {region:#x?}")]
    SegmentOutsideRegion {
        /// Index of the program header.
        index: usize,
        /// First guest-physical address of the segment.
        start: u64,
        /// Guest-physical address just past the segment.
        end: u64,
        /// The region images may use (it lies inside guest RAM).
        region: Range<u64>,
    },
    /// Copying into guest RAM failed.
    #[error("cannot copy the image into guest ram")]
    Memory(#[source] MemoryError),
}

/// One loadable segment, validated against the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index of its program header.
    pub index: usize,
    /// Guest-physical (and, identity-mapped, virtual) address.
    pub addr: u64,
    /// Where its contents start in the file.
    pub file_offset: usize,
    /// How many bytes come from the file.
    pub file_size: usize,
    /// How many bytes it occupies in memory (at least `file_size`).
    pub mem_size: u64,
}

impl Segment {
    /// The guest-physical range the segment occupies.
    pub fn range(&self) -> Range<u64> {
        // `parse` checked that this does not overflow.
        self.addr..self.addr + self.mem_size
    }
}

/// A parsed ELF executable: its entry point and loadable segments, borrowing the file.
#[derive(Debug)]
pub struct ElfImage<'a> {
    bytes: &'a [u8],
    entry: u64,
    segments: Vec<Segment>,
}

impl<'a> ElfImage<'a> {
    /// Parses and validates `bytes` as a static x86-64 ELF64 executable.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let (header, _) = Elf64Header::read_from_prefix(bytes)
            .map_err(|_| ElfError::TruncatedHeader { len: bytes.len() })?;
        let ident = header.e_ident;
        let magic = [ident[0], ident[1], ident[2], ident[3]];
        if magic != ELF_MAGIC {
            return Err(ElfError::BadMagic { magic });
        }
        let (class, data, version) = (ident[EI_CLASS], ident[EI_DATA], ident[EI_VERSION]);
        if class != ELFCLASS64
            || data != ELFDATA2LSB
            || version != EV_CURRENT
            || header.e_version.get() != u32::from(EV_CURRENT)
        {
            return Err(ElfError::UnsupportedEncoding {
                class,
                data,
                version,
            });
        }
        let (e_type, e_machine) = (header.e_type.get(), header.e_machine.get());
        if e_type != ET_EXEC || e_machine != EM_X86_64 {
            return Err(ElfError::NotX86Executable { e_type, e_machine });
        }

        let segments = Self::load_segments(bytes, &header)?;
        let entry = header.e_entry.get();
        if !segments.iter().any(|s| s.range().contains(&entry)) {
            return Err(ElfError::EntryOutsideSegments { entry });
        }
        Ok(Self {
            bytes,
            entry,
            segments,
        })
    }

    /// Reads the program header table and validates its `PT_LOAD` entries.
    fn load_segments(bytes: &[u8], header: &Elf64Header) -> Result<Vec<Segment>, ElfError> {
        let entry_size = header.e_phentsize.get();
        let count = header.e_phnum.get();
        if count == 0 {
            // No program headers: nothing loads, and the entry check reports it.
            return Ok(Vec::new());
        }
        if usize::from(entry_size) != size_of::<Elf64ProgramHeader>() {
            return Err(ElfError::BadProgramHeaderSize { size: entry_size });
        }
        let offset = header.e_phoff.get();
        let outside = ElfError::ProgramHeadersOutsideFile {
            offset,
            count,
            len: bytes.len(),
        };
        let table = usize::try_from(offset)
            .ok()
            .and_then(|start| {
                let end = start.checked_add(usize::from(count) * usize::from(entry_size))?;
                bytes.get(start..end)
            })
            .ok_or(outside)?;

        let mut segments = Vec::new();
        for (index, raw) in table.chunks_exact(usize::from(entry_size)).enumerate() {
            let (phdr, _) = Elf64ProgramHeader::read_from_prefix(raw)
                .expect("chunks are exactly one program header long");
            if phdr.p_type.get() != PT_LOAD || phdr.p_memsz.get() == 0 {
                continue;
            }
            segments.push(Self::segment(bytes, index, &phdr)?);
        }
        Ok(segments)
    }

    /// Validates one `PT_LOAD` program header against the file.
    fn segment(bytes: &[u8], index: usize, phdr: &Elf64ProgramHeader) -> Result<Segment, ElfError> {
        let (offset, file_size) = (phdr.p_offset.get(), phdr.p_filesz.get());
        let (vaddr, addr, mem_size) = (phdr.p_vaddr.get(), phdr.p_paddr.get(), phdr.p_memsz.get());
        if file_size > mem_size || addr.checked_add(mem_size).is_none() {
            return Err(ElfError::BadSegmentSize {
                index,
                addr,
                file_size,
                mem_size,
            });
        }
        if vaddr != addr {
            return Err(ElfError::NotIdentityMapped {
                index,
                vaddr,
                paddr: addr,
            });
        }
        let file_range = usize::try_from(offset).ok().and_then(|start| {
            let end = start.checked_add(usize::try_from(file_size).ok()?)?;
            (end <= bytes.len()).then_some(start..end)
        });
        let Some(file_range) = file_range else {
            return Err(ElfError::SegmentOutsideFile {
                index,
                offset,
                size: file_size,
                len: bytes.len(),
            });
        };
        Ok(Segment {
            index,
            addr,
            file_offset: file_range.start,
            file_size: file_range.len(),
            mem_size,
        })
    }

    /// The entry point (a guest-physical address, identity-mapped).
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The loadable segments, in program header order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Copies every segment into `memory` and zero-fills its tail. Each segment must lie
    /// inside `region`, a part of guest RAM that images may occupy.
    pub fn load(&self, memory: &GuestMemory, region: Range<u64>) -> Result<(), LoadError> {
        // Check every segment before writing any, so a failed load leaves RAM untouched.
        for segment in &self.segments {
            let range = segment.range();
            if range.start < region.start || range.end > region.end {
                return Err(LoadError::SegmentOutsideRegion {
                    index: segment.index,
                    start: range.start,
                    end: range.end,
                    region,
                });
            }
        }
        for segment in &self.segments {
            let contents = &self.bytes[segment.file_offset..][..segment.file_size];
            memory
                .write_at(segment.addr, contents)
                .map_err(LoadError::Memory)?;
            let tail = segment.file_size as u64;
            memory
                .fill(segment.addr + tail, segment.mem_size - tail, 0)
                .map_err(LoadError::Memory)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x10_0000;
    const CODE: &[u8] = &[0xb0, 0x00, 0xe6, 0xf4, 0xf4]; // mov al, 0; out 0xf4, al; hlt

    /// A minimal executable: header, one program header, then `CODE`, loaded at `BASE` with
    /// `bss` extra zero bytes.
    fn tiny_elf(bss: u64) -> Vec<u8> {
        let code_offset = (size_of::<Elf64Header>() + size_of::<Elf64ProgramHeader>()) as u64;
        let mut e_ident = [0; 16];
        e_ident[..4].copy_from_slice(&ELF_MAGIC);
        e_ident[EI_CLASS] = ELFCLASS64;
        e_ident[EI_DATA] = ELFDATA2LSB;
        e_ident[EI_VERSION] = EV_CURRENT;
        let header = Elf64Header {
            e_ident,
            e_type: ET_EXEC.into(),
            e_machine: EM_X86_64.into(),
            e_version: 1.into(),
            e_entry: BASE.into(),
            e_phoff: 64.into(),
            e_shoff: 0.into(),
            e_flags: 0.into(),
            e_ehsize: 64.into(),
            e_phentsize: 56.into(),
            e_phnum: 1.into(),
            e_shentsize: 0.into(),
            e_shnum: 0.into(),
            e_shstrndx: 0.into(),
        };
        let phdr = Elf64ProgramHeader {
            p_type: PT_LOAD.into(),
            p_flags: 5.into(),
            p_offset: code_offset.into(),
            p_vaddr: BASE.into(),
            p_paddr: BASE.into(),
            p_filesz: (CODE.len() as u64).into(),
            p_memsz: (CODE.len() as u64 + bss).into(),
            p_align: 0x1000.into(),
        };
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(phdr.as_bytes());
        bytes.extend_from_slice(CODE);
        bytes
    }

    /// Rewrites the single program header of a `tiny_elf`.
    fn edit_phdr(bytes: &mut [u8], edit: impl FnOnce(&mut Elf64ProgramHeader)) {
        let (mut phdr, _) = Elf64ProgramHeader::read_from_prefix(&bytes[64..]).unwrap();
        edit(&mut phdr);
        bytes[64..120].copy_from_slice(phdr.as_bytes());
    }

    #[test]
    fn loads_segment_and_zero_fills_bss() {
        let bytes = tiny_elf(16);
        let image = ElfImage::parse(&bytes).unwrap();
        assert_eq!(image.entry(), BASE);
        assert_eq!(image.segments().len(), 1);

        let mem = GuestMemory::new(4 << 20).unwrap();
        mem.fill(BASE, 64, 0xcc).unwrap();
        image.load(&mem, BASE..(4 << 20)).unwrap();
        let mut loaded = [0xff; 24];
        mem.read_at(BASE, &mut loaded).unwrap();
        assert_eq!(&loaded[..CODE.len()], CODE);
        assert!(loaded[CODE.len()..CODE.len() + 16].iter().all(|&b| b == 0));
        assert!(loaded[CODE.len() + 16..].iter().all(|&b| b == 0xcc));
    }

    #[test]
    fn parses_the_built_guest() {
        let bytes = include_bytes!(env!("VIRIDIAN_GUEST_ELF"));
        let image = ElfImage::parse(bytes).unwrap();
        let mem = GuestMemory::new(4 << 20).unwrap();
        let region = crate::layout::image_region(mem.size());
        image.load(&mem, region).unwrap();
        assert!(image
            .segments()
            .iter()
            .any(|s| s.range().contains(&image.entry())));
    }

    #[test]
    fn rejects_truncated_header() {
        let bytes = tiny_elf(0);
        assert_eq!(
            ElfImage::parse(&bytes[..63]).unwrap_err(),
            ElfError::TruncatedHeader { len: 63 }
        );
        assert_eq!(
            ElfImage::parse(&[]).unwrap_err(),
            ElfError::TruncatedHeader { len: 0 }
        );
    }

    #[test]
    fn rejects_foreign_files() {
        let mut bytes = tiny_elf(0);
        bytes[0] = b'M';
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::BadMagic { .. })
        ));

        let mut bytes = tiny_elf(0);
        bytes[EI_CLASS] = 1;
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::UnsupportedEncoding { class: 1, .. })
        ));

        let mut bytes = tiny_elf(0);
        bytes[18] = 3; // e_machine = EM_386
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::NotX86Executable { e_machine: 3, .. })
        ));
    }

    #[test]
    fn rejects_program_headers_outside_file() {
        let bytes = tiny_elf(0);
        assert!(matches!(
            ElfImage::parse(&bytes[..100]),
            Err(ElfError::ProgramHeadersOutsideFile { offset: 64, .. })
        ));
        let mut bytes = tiny_elf(0);
        bytes[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // e_phoff
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::ProgramHeadersOutsideFile { .. })
        ));
    }

    #[test]
    fn rejects_segment_outside_file() {
        let bytes = tiny_elf(0);
        let short = &bytes[..bytes.len() - 1];
        assert!(matches!(
            ElfImage::parse(short),
            Err(ElfError::SegmentOutsideFile { index: 0, .. })
        ));

        let mut bytes = tiny_elf(0);
        edit_phdr(&mut bytes, |p| p.p_offset = u64::MAX.into());
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::SegmentOutsideFile { index: 0, .. })
        ));
    }

    #[test]
    fn rejects_bad_segment_sizes() {
        let mut bytes = tiny_elf(0);
        edit_phdr(&mut bytes, |p| p.p_memsz = 1.into());
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::BadSegmentSize { .. })
        ));

        let mut bytes = tiny_elf(0);
        edit_phdr(&mut bytes, |p| {
            p.p_paddr = (u64::MAX - 2).into();
            p.p_vaddr = (u64::MAX - 2).into();
        });
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::BadSegmentSize { .. })
        ));
    }

    #[test]
    fn rejects_entry_outside_segments_and_non_identity_segments() {
        let mut bytes = tiny_elf(0);
        bytes[24..32].copy_from_slice(&0x1234u64.to_le_bytes()); // e_entry
        assert_eq!(
            ElfImage::parse(&bytes).unwrap_err(),
            ElfError::EntryOutsideSegments { entry: 0x1234 }
        );

        let mut bytes = tiny_elf(0);
        edit_phdr(&mut bytes, |p| p.p_vaddr = 0xffff_8000_0000_0000.into());
        assert!(matches!(
            ElfImage::parse(&bytes),
            Err(ElfError::NotIdentityMapped { index: 0, .. })
        ));
    }

    #[test]
    fn rejects_segment_outside_ram() {
        let bytes = tiny_elf(8 << 20); // 8 MiB of bss does not fit in 4 MiB of RAM.
        let image = ElfImage::parse(&bytes).unwrap();
        let mem = GuestMemory::new(4 << 20).unwrap();
        let region = crate::layout::image_region(mem.size());
        let err = image.load(&mem, region).unwrap_err();
        assert!(matches!(
            err,
            LoadError::SegmentOutsideRegion {
                index: 0,
                start: BASE,
                ..
            }
        ));
        // Nothing was written.
        let mut buf = [0xff; 5];
        mem.read_at(BASE, &mut buf).unwrap();
        assert_eq!(buf, [0; 5]);
    }

    #[test]
    fn rejects_segment_below_image_base() {
        let mut bytes = tiny_elf(0);
        edit_phdr(&mut bytes, |p| {
            p.p_paddr = 0x9000.into();
            p.p_vaddr = 0x9000.into();
        });
        bytes[24..32].copy_from_slice(&0x9000u64.to_le_bytes());
        let image = ElfImage::parse(&bytes).unwrap();
        let mem = GuestMemory::new(4 << 20).unwrap();
        assert!(matches!(
            image.load(&mem, crate::layout::image_region(4 << 20)),
            Err(LoadError::SegmentOutsideRegion { start: 0x9000, .. })
        ));
    }
}
