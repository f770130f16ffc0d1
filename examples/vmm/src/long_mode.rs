//! The x86-64 state a guest starts in: identity-mapped page tables, a flat GDT, and the
//! control registers for 64-bit long mode with SSE enabled.
//!
//! Pure definitions and construction: nothing here touches KVM. `kvm.rs` turns [`BootCpu`]
//! into KVM register state and `main.rs` writes the tables into guest RAM. Bit positions are
//! those of the Intel SDM, volume 3 (chapter 2 for the control registers, chapter 3 for
//! segment descriptors, chapter 4 for 4-level paging).

use zerocopy::little_endian::U64;
use zerocopy::IntoBytes;

use crate::layout;
use crate::memory::{GuestMemory, MemoryError};

/// `CR0` bits.
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor: `wait`/`fwait` honour `TS`.
    pub const MP: u64 = 1 << 1;
    /// x87 emulation: when set, x87 and SSE instructions fault. Kept clear.
    pub const EM: u64 = 1 << 2;
    /// Extension type (hardwired to 1 on modern processors).
    pub const ET: u64 = 1 << 4;
    /// Native x87 error reporting.
    pub const NE: u64 = 1 << 5;
    /// Write protect: supervisor writes honour read-only pages.
    pub const WP: u64 = 1 << 16;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// `CR4` bits.
pub mod cr4 {
    /// Physical address extension (required for long mode).
    pub const PAE: u64 = 1 << 5;
    /// The OS supports `fxsave`/`fxrstor`: enables SSE instructions.
    pub const OSFXSR: u64 = 1 << 9;
    /// `xsave` and XCR0 enabled (needed for AVX); set at boot when the vCPU has XSAVE.
    pub const OSXSAVE: u64 = 1 << 18;
    /// The OS handles SIMD floating-point exceptions (`#XM`).
    pub const OSXMMEXCPT: u64 = 1 << 10;
}

/// `IA32_EFER` bits.
pub mod efer {
    /// Long mode enable.
    pub const LME: u64 = 1 << 8;
    /// Long mode active.
    pub const LMA: u64 = 1 << 10;
}

/// Page-table entry bits.
pub mod pte {
    /// The entry is valid.
    pub const PRESENT: u64 = 1 << 0;
    /// Writes are allowed.
    pub const WRITABLE: u64 = 1 << 1;
    /// In a page directory entry: maps a 2 MiB page instead of pointing to a page table.
    pub const PAGE_SIZE: u64 = 1 << 7;
}

/// `CR0` at boot: protected mode with paging, native x87 errors, supervisor write protection,
/// and x87/SSE usable (`MP` set, `EM` clear).
pub const BOOT_CR0: u64 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG;
const _: () = assert!(
    BOOT_CR0 & cr0::EM == 0,
    "with EM set, SSE instructions fault"
);
/// `CR4` at boot: PAE paging, and SSE enabled with SIMD exceptions reported as `#XM`.
pub const BOOT_CR4: u64 = cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT;
/// `IA32_EFER` at boot: long mode enabled and active.
pub const BOOT_EFER: u64 = efer::LME | efer::LMA;

/// `RFLAGS` bit 1, which is always set.
pub const RFLAGS_RESERVED: u64 = 1 << 1;

/// Entries in one page table of any level.
pub const ENTRIES_PER_TABLE: usize = 512;
/// Bytes mapped by one page directory entry with [`pte::PAGE_SIZE`].
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// Bytes mapped by one page directory (512 large pages).
pub const PAGE_DIRECTORY_SPAN: u64 = LARGE_PAGE_SIZE * ENTRIES_PER_TABLE as u64;

/// One 4 KiB page table of any level, as it lies in memory.
pub type PageTable = [U64; ENTRIES_PER_TABLE];
const _: () = assert!(size_of::<PageTable>() == 4096);

/// A page table and the guest-physical address it goes to.
#[derive(Debug, Clone)]
pub struct PlacedTable {
    /// Guest-physical address of the table (4 KiB aligned).
    pub addr: u64,
    /// The entries.
    pub table: Box<PageTable>,
}

/// Builds 4-level page tables that identity-map `0..size` with 2 MiB pages: one PML4 at
/// `pml4`, one PDPT at `pdpt`, and `size / 1 GiB` (rounded up) page directories from
/// `pd_base` on, 4 KiB apart. `size` is at most 512 GiB (one PDPT).
pub fn identity_map(pml4: u64, pdpt: u64, pd_base: u64, size: u64) -> Vec<PlacedTable> {
    let directories = size.div_ceil(PAGE_DIRECTORY_SPAN);
    assert!(
        directories <= ENTRIES_PER_TABLE as u64,
        "one PDPT maps at most 512 GiB"
    );
    let table_entry = |addr: u64| U64::new(addr | pte::PRESENT | pte::WRITABLE);
    let empty = || Box::new([U64::ZERO; ENTRIES_PER_TABLE]);

    let mut pml4_table = empty();
    pml4_table[0] = table_entry(pdpt);
    let mut pdpt_table = empty();
    let mut tables = Vec::new();
    for (i, pdpt_entry) in pdpt_table.iter_mut().enumerate().take(directories as usize) {
        let addr = pd_base + i as u64 * 0x1000;
        *pdpt_entry = table_entry(addr);
        let mut pd = empty();
        for (j, entry) in pd.iter_mut().enumerate() {
            let page = i as u64 * PAGE_DIRECTORY_SPAN + j as u64 * LARGE_PAGE_SIZE;
            *entry = U64::new(page | pte::PRESENT | pte::WRITABLE | pte::PAGE_SIZE);
        }
        tables.push(PlacedTable { addr, table: pd });
    }
    tables.insert(
        0,
        PlacedTable {
            addr: pml4,
            table: pml4_table,
        },
    );
    tables.insert(
        1,
        PlacedTable {
            addr: pdpt,
            table: pdpt_table,
        },
    );
    tables
}

/// A segment descriptor in its unpacked form (Intel SDM vol. 3, 3.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentDescriptor {
    /// Base address (ignored in 64-bit mode for code and data).
    pub base: u32,
    /// 20-bit limit, in 4 KiB units when `granularity` is set.
    pub limit: u32,
    /// Access byte: present (bit 7), DPL (bits 5–6), S (bit 4), type (bits 0–3).
    pub access: u8,
    /// Flags nibble: granularity (bit 3), default size D/B (bit 2), long mode L (bit 1),
    /// available (bit 0).
    pub flags: u8,
}

impl SegmentDescriptor {
    /// Flat 64-bit code: present, DPL 0, execute/read, accessed; G and L set.
    pub const CODE64: Self = Self {
        base: 0,
        limit: 0xf_ffff,
        access: 0x9b,
        flags: 0xa,
    };
    /// Flat data: present, DPL 0, read/write, accessed; G and D/B set.
    pub const DATA: Self = Self {
        base: 0,
        limit: 0xf_ffff,
        access: 0x93,
        flags: 0xc,
    };

    /// The 8-byte descriptor as it is stored in the GDT.
    pub const fn encode(self) -> u64 {
        let base = self.base as u64;
        let limit = self.limit as u64;
        (limit & 0xffff)
            | (base & 0xff_ffff) << 16
            | (self.access as u64) << 40
            | (limit >> 16 & 0xf) << 48
            | (self.flags as u64 & 0xf) << 52
            | (base >> 24 & 0xff) << 56
    }

    /// The segment type (access bits 0–3).
    pub const fn segment_type(self) -> u8 {
        self.access & 0xf
    }
    /// The S bit: 1 for code and data, 0 for system segments.
    pub const fn s(self) -> u8 {
        self.access >> 4 & 1
    }
    /// The descriptor privilege level.
    pub const fn dpl(self) -> u8 {
        self.access >> 5 & 3
    }
    /// The present bit.
    pub const fn present(self) -> u8 {
        self.access >> 7
    }
    /// The available-for-software bit.
    pub const fn avl(self) -> u8 {
        self.flags & 1
    }
    /// The L bit: 64-bit code.
    pub const fn long(self) -> u8 {
        self.flags >> 1 & 1
    }
    /// The D/B bit: 32-bit default operand size / upper bound.
    pub const fn db(self) -> u8 {
        self.flags >> 2 & 1
    }
    /// The granularity bit: limit in 4 KiB units.
    pub const fn granularity(self) -> u8 {
        self.flags >> 3 & 1
    }
    /// The limit in bytes, as the processor caches it (scaled by the granularity).
    pub const fn byte_limit(self) -> u32 {
        if self.granularity() == 1 {
            self.limit << 12 | 0xfff
        } else {
            self.limit
        }
    }
}

/// The boot GDT: null, 64-bit code, data.
pub const GDT: [SegmentDescriptor; 3] = [
    SegmentDescriptor {
        base: 0,
        limit: 0,
        access: 0,
        flags: 0,
    },
    SegmentDescriptor::CODE64,
    SegmentDescriptor::DATA,
];
/// The GDT limit: its size in memory (8 bytes per descriptor), minus one.
pub const GDT_LIMIT: u16 = (GDT.len() * size_of::<u64>() - 1) as u16;
/// Selector of the code segment in [`GDT`].
pub const CODE_SELECTOR: u16 = 0x08;
/// Selector of the data segment in [`GDT`] (used for DS, ES, FS, GS and SS).
pub const DATA_SELECTOR: u16 = 0x10;

/// A segment register: its selector and the descriptor it refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRegister {
    /// The selector (GDT index times 8).
    pub selector: u16,
    /// The descriptor the selector names.
    pub descriptor: SegmentDescriptor,
}

/// The vCPU state at the guest's entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootCpu {
    /// Entry point.
    pub rip: u64,
    /// Initial stack pointer.
    pub rsp: u64,
    /// Initial flags (interrupts off).
    pub rflags: u64,
    /// `CR0`.
    pub cr0: u64,
    /// `CR3`: the PML4.
    pub cr3: u64,
    /// `CR4`.
    pub cr4: u64,
    /// `IA32_EFER`.
    pub efer: u64,
    /// Guest-physical address of the GDT.
    pub gdt_base: u64,
    /// GDT limit (size in bytes, minus one).
    pub gdt_limit: u16,
    /// Guest-physical address of the IDT.
    pub idt_base: u64,
    /// IDT limit. An empty IDT (limit 0) turns any exception into a triple fault, which the
    /// VMM reports with the registers at the fault.
    pub idt_limit: u16,
    /// `CS`.
    pub code: SegmentRegister,
    /// `DS`, `ES`, `FS`, `GS` and `SS`.
    pub data: SegmentRegister,
}

impl BootCpu {
    /// 64-bit long mode with paging through the tables at [`layout::PML4_ADDR`], the GDT at
    /// [`layout::GDT_ADDR`], no IDT, SSE enabled, interrupts off.
    pub fn long_mode(entry: u64, stack_pointer: u64) -> Self {
        Self {
            rip: entry,
            rsp: stack_pointer,
            rflags: RFLAGS_RESERVED,
            cr0: BOOT_CR0,
            cr3: layout::PML4_ADDR,
            cr4: BOOT_CR4,
            efer: BOOT_EFER,
            gdt_base: layout::GDT_ADDR,
            gdt_limit: GDT_LIMIT,
            idt_base: 0,
            idt_limit: 0,
            code: SegmentRegister {
                selector: CODE_SELECTOR,
                descriptor: GDT[usize::from(CODE_SELECTOR >> 3)],
            },
            data: SegmentRegister {
                selector: DATA_SELECTOR,
                descriptor: GDT[usize::from(DATA_SELECTOR >> 3)],
            },
        }
    }
}

/// Writes the boot page tables and the GDT into guest RAM at their [`layout`] addresses.
pub fn write_boot_structures(memory: &GuestMemory) -> Result<(), MemoryError> {
    let tables = identity_map(
        layout::PML4_ADDR,
        layout::PDPT_ADDR,
        layout::PD_ADDR,
        layout::IDENTITY_MAP_SIZE,
    );
    for placed in &tables {
        memory.write_at(placed.addr, placed.table.as_bytes())?;
    }
    let gdt = GDT.map(|d| U64::new(d.encode()));
    memory.write_at(layout::GDT_ADDR, gdt.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Translates `va` through `tables` the way the MMU does (4-level, 2 MiB leaves).
    fn translate(tables: &[PlacedTable], cr3: u64, va: u64) -> Option<u64> {
        let table_at = |addr: u64| tables.iter().find(|t| t.addr == addr).map(|t| &t.table);
        let addr_mask = 0x000f_ffff_ffff_f000;
        let mut table = table_at(cr3)?;
        for level in [39, 30, 21] {
            let entry = table[(va >> level & 0x1ff) as usize].get();
            if entry & pte::PRESENT == 0 || entry & pte::WRITABLE == 0 {
                return None;
            }
            if level == 21 {
                assert_ne!(entry & pte::PAGE_SIZE, 0, "leaf must be a 2 MiB page");
                return Some(
                    (entry & addr_mask & !(LARGE_PAGE_SIZE - 1)) | (va & (LARGE_PAGE_SIZE - 1)),
                );
            }
            assert_eq!(entry & pte::PAGE_SIZE, 0);
            table = table_at(entry & addr_mask)?;
        }
        None
    }

    #[test]
    fn identity_maps_the_low_4_gib() {
        let tables = identity_map(0x9000, 0xa000, 0xb000, 4 << 30);
        assert_eq!(tables.len(), 2 + 4);
        let addrs: Vec<u64> = tables.iter().map(|t| t.addr).collect();
        assert_eq!(addrs, [0x9000, 0xa000, 0xb000, 0xc000, 0xd000, 0xe000]);
        for va in [
            0,
            0xfff,
            0x10_0000,
            0x20_0123,
            0x3fff_ffff,
            0x4000_0000,
            0xffff_fff8,
        ] {
            assert_eq!(translate(&tables, 0x9000, va), Some(va), "va {va:#x}");
        }
        assert_eq!(translate(&tables, 0x9000, 4 << 30), None);
        assert_eq!(translate(&tables, 0x9000, 1 << 39), None);
    }

    #[test]
    fn rounds_partial_gigabytes_up() {
        let tables = identity_map(0x1000, 0x2000, 0x3000, (1 << 30) + 1);
        assert_eq!(tables.len(), 2 + 2);
    }

    #[test]
    fn encodes_flat_descriptors() {
        assert_eq!(SegmentDescriptor::CODE64.encode(), 0x00af_9b00_0000_ffff);
        assert_eq!(SegmentDescriptor::DATA.encode(), 0x00cf_9300_0000_ffff);
        let code = SegmentDescriptor::CODE64;
        assert_eq!(
            (code.segment_type(), code.s(), code.dpl(), code.present()),
            (0xb, 1, 0, 1)
        );
        assert_eq!((code.long(), code.db(), code.granularity()), (1, 0, 1));
        assert_eq!(code.byte_limit(), 0xffff_ffff);
        let odd = SegmentDescriptor {
            base: 0x1234_5678,
            limit: 0xa_bcde,
            access: 0x89,
            flags: 0x1,
        };
        assert_eq!(odd.encode(), 0x121a_8934_5678_bcde);
        assert_eq!(odd.byte_limit(), 0xa_bcde);
    }

    #[test]
    fn boot_cpu_is_long_mode_with_sse() {
        let cpu = BootCpu::long_mode(0x10_0000, 0x3ff_fff8);
        assert_ne!(cpu.cr0 & cr0::PG, 0);
        assert_ne!(cpu.cr0 & cr0::MP, 0);
        assert_eq!(cpu.cr0 & cr0::EM, 0);
        assert_eq!(
            cpu.cr4 & (cr4::OSFXSR | cr4::OSXMMEXCPT),
            cr4::OSFXSR | cr4::OSXMMEXCPT
        );
        assert_eq!(cpu.efer, efer::LME | efer::LMA);
        assert_eq!(cpu.gdt_limit, 23);
        assert_eq!(cpu.code.descriptor, SegmentDescriptor::CODE64);
    }

    #[test]
    fn writes_boot_structures_into_ram() {
        let mem = GuestMemory::new(4 << 20).unwrap();
        write_boot_structures(&mem).unwrap();
        let mut entry = [0; 8];
        mem.read_at(layout::PML4_ADDR, &mut entry).unwrap();
        assert_eq!(u64::from_le_bytes(entry), layout::PDPT_ADDR | 3);
        mem.read_at(layout::GDT_ADDR + 8, &mut entry).unwrap();
        assert_eq!(
            u64::from_le_bytes(entry),
            SegmentDescriptor::CODE64.encode()
        );
    }
}
