//! The two traits a VMM implements: the virtual processor's state and guest-physical memory.

use crate::defs::Segment;

/// A segment register with its cached descriptor, in the layout VMX, SVM, KVM and the Hyper-V
/// register interface share: the base, the byte-granular limit (already expanded by `G`), and
/// the descriptor's attribute bits 40–55 as [`SegmentAttributes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SegmentRegister {
    /// The visible selector.
    pub selector: u16,
    /// The cached base address.
    pub base: u64,
    /// The cached limit in bytes (with `G` = 1 already scaled: `0xFFFF_FFFF` for a flat segment).
    pub limit: u32,
    /// The cached attributes.
    pub attributes: SegmentAttributes,
}

/// Descriptor attribute bits (descriptor bits 40–55): type, S, DPL, P, AVL, L, D/B, G.
///
/// A segment register that is unusable (VMX's "unusable" bit, a null selector loaded in
/// protected mode) has `P` = 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct SegmentAttributes(pub u16);

impl SegmentAttributes {
    /// A present, writable, accessed data segment, DPL 0, 32-bit (`D/B` = 1), 4 KiB granular.
    pub const FLAT_DATA: Self = Self(0xC093);
    /// A present, readable, accessed 64-bit code segment, DPL 0 (`L` = 1).
    pub const CODE64: Self = Self(0xA09B);
    /// A present, readable, accessed 32-bit code segment, DPL 0.
    pub const CODE32: Self = Self(0xC09B);
    /// Real-mode data and code segments (present, writable/readable, 16-bit).
    pub const REAL_MODE: Self = Self(0x0093);

    /// The 4-bit type field.
    #[must_use]
    pub const fn segment_type(self) -> u8 {
        (self.0 & 0xF) as u8
    }
    /// `S`: code or data (1) rather than a system segment (0).
    #[must_use]
    pub const fn code_or_data(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// Descriptor privilege level.
    #[must_use]
    pub const fn dpl(self) -> u8 {
        ((self.0 >> 5) & 3) as u8
    }
    /// `P`: present (and usable).
    #[must_use]
    pub const fn present(self) -> bool {
        self.0 & 0x80 != 0
    }
    /// `L`: 64-bit code segment.
    #[must_use]
    pub const fn long(self) -> bool {
        self.0 & 0x2000 != 0
    }
    /// `D/B`: 32-bit default size (code), 32-bit stack pointer / 4 GiB expand-down bound (data).
    #[must_use]
    pub const fn default_big(self) -> bool {
        self.0 & 0x4000 != 0
    }
    /// Is this a code segment (type bit 3)?
    #[must_use]
    pub const fn is_code(self) -> bool {
        self.0 & 0x8 != 0
    }
    /// Data: writable (type bit 1). Code: readable (type bit 1).
    #[must_use]
    pub const fn writable_or_readable(self) -> bool {
        self.0 & 0x2 != 0
    }
    /// Data: expand-down (type bit 2).
    #[must_use]
    pub const fn expand_down(self) -> bool {
        !self.is_code() && self.0 & 0x4 != 0
    }
}

/// Control-register and EFER bits the emulator reads.
pub mod bits {
    /// CR0.PE: protected mode.
    pub const CR0_PE: u64 = 1 << 0;
    /// CR0.EM: x87/SSE emulation (SSE instructions raise #UD).
    pub const CR0_EM: u64 = 1 << 2;
    /// CR0.TS: task switched (x87/SSE/AVX instructions raise #NM).
    pub const CR0_TS: u64 = 1 << 3;
    /// CR0.WP: supervisor writes honour read-only pages.
    pub const CR0_WP: u64 = 1 << 16;
    /// CR0.AM: alignment mask (with RFLAGS.AC at CPL 3, misaligned accesses raise #AC).
    pub const CR0_AM: u64 = 1 << 18;
    /// CR0.PG: paging.
    pub const CR0_PG: u64 = 1 << 31;
    /// CR4.PSE: 4 MiB pages in 32-bit paging.
    pub const CR4_PSE: u64 = 1 << 4;
    /// CR4.PAE: PAE (and 4/5-level) paging.
    pub const CR4_PAE: u64 = 1 << 5;
    /// CR4.OSFXSR: the OS supports SSE (else SSE instructions raise #UD).
    pub const CR4_OSFXSR: u64 = 1 << 9;
    /// CR4.LA57: 5-level paging.
    pub const CR4_LA57: u64 = 1 << 12;
    /// CR4.OSXSAVE: XSAVE and XCR0 enabled (needed for AVX).
    pub const CR4_OSXSAVE: u64 = 1 << 18;
    /// CR4.SMEP: supervisor-mode execution prevention.
    pub const CR4_SMEP: u64 = 1 << 20;
    /// CR4.SMAP: supervisor-mode access prevention.
    pub const CR4_SMAP: u64 = 1 << 21;
    /// EFER.LME: long mode enable.
    pub const EFER_LME: u64 = 1 << 8;
    /// EFER.LMA: long mode active.
    pub const EFER_LMA: u64 = 1 << 10;
    /// EFER.NXE: execute-disable bit enabled.
    pub const EFER_NXE: u64 = 1 << 11;
    /// XCR0 bits for SSE and AVX state.
    pub const XCR0_SSE_AVX: u64 = 0b110;
    /// XCR0 bits for AVX-512 state (opmask, ZMM0–15 upper halves, ZMM16–31).
    pub const XCR0_AVX512: u64 = 0b1110_0000;
    /// RFLAGS.TF: single-step.
    pub const RFLAGS_TF: u64 = 1 << 8;
    /// RFLAGS.VM: virtual-8086 mode.
    pub const RFLAGS_VM: u64 = 1 << 17;
    /// RFLAGS.RF: resume flag (cleared when an instruction completes).
    pub const RFLAGS_RF: u64 = 1 << 16;
}

/// The virtual processor's state, as the emulator reads and writes it.
///
/// Getters take `&mut self` so that an implementation can fetch registers lazily from the
/// hypervisor and cache them. The emulator writes registers only after every memory access of
/// the instruction succeeded, so an instruction that faults leaves them untouched (except the
/// progress registers of a partly completed `REP` string instruction, as on hardware).
pub trait CpuState {
    /// General-purpose register `index` (0 = RAX … 15 = R15), all 64 bits.
    fn gpr(&mut self, index: usize) -> u64;
    /// Sets general-purpose register `index` (all 64 bits; the emulator merges partial writes).
    fn set_gpr(&mut self, index: usize, value: u64);
    /// RIP.
    fn rip(&mut self) -> u64;
    /// Sets RIP.
    fn set_rip(&mut self, value: u64);
    /// RFLAGS.
    fn rflags(&mut self) -> u64;
    /// Sets RFLAGS.
    fn set_rflags(&mut self, value: u64);
    /// A segment register with its cached descriptor.
    fn segment(&mut self, segment: Segment) -> SegmentRegister;
    /// CR0.
    fn cr0(&mut self) -> u64;
    /// CR3.
    fn cr3(&mut self) -> u64;
    /// CR4.
    fn cr4(&mut self) -> u64;
    /// IA32_EFER.
    fn efer(&mut self) -> u64;
    /// XCR0 (only read for VEX/EVEX instructions).
    fn xcr0(&mut self) -> u64;
    /// Vector register `index` (0–31) as its full 512-bit `ZMM` image, little-endian. A VMM
    /// without AVX-512 returns its `XMM`/`YMM` bytes and zeroes above them.
    fn vector(&mut self, index: usize) -> [u8; 64];
    /// Sets vector register `index` (0–31) from its full 512-bit image. Bytes above the width
    /// the VMM's virtual processor has are zero when the instruction defines them so, and may be
    /// ignored.
    fn set_vector(&mut self, index: usize, value: [u8; 64]);
    /// AVX-512 opmask register `index` (0–7).
    fn opmask(&mut self, index: usize) -> u64;
    /// The four PAE page-directory-pointer-table entries the processor loaded with CR3, if the
    /// VMM has them (VMX keeps them in the VMCS). `None` (the default) makes the walker read
    /// them from memory at CR3.
    fn pae_pdptes(&mut self) -> Option<[u64; 4]> {
        None
    }
}

/// What lives at a guest-physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// Ordinary RAM: may be shared with other virtual processors, so locked operations on it
    /// go through [`Memory::compare_exchange`], and consecutive elements of a string
    /// instruction may be moved as one block.
    Ram,
    /// A device (MMIO): every access is passed on as the instruction makes it, element by
    /// element and in order; locked operations are a read then a write.
    Device,
}

/// Why a guest-physical access failed (reported by the VMM's [`Memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// Nothing is mapped at the address.
    #[error("nothing mapped at guest-physical address {0:#x}")]
    Unmapped(u64),
    /// The device refused or failed the access.
    #[error("device access at guest-physical address {0:#x} failed")]
    Device(u64),
    /// The address is not RAM, so it cannot be compared and exchanged atomically.
    #[error("guest-physical address {0:#x} does not support compare-exchange")]
    NotAtomic(u64),
    /// No device answers at this I/O port.
    #[error("no device at i/o port {0:#x}")]
    Port(u16),
}

/// Guest-physical memory.
///
/// The emulator splits every access at page boundaries: each `read`/`write` is one translated
/// guest-physical range inside one 4 KiB page, at most 64 bytes long, except the block moves of
/// `REP MOVS`/`REP STOS` between RAM pages, which pass up to 256 bytes at once.
pub trait Memory {
    /// What lives at `gpa`. The answer is assumed to hold for the whole 4 KiB page.
    fn region(&mut self, gpa: u64) -> Region;
    /// Reads `buf.len()` bytes at `gpa`.
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError>;
    /// Writes `data` at `gpa`.
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError>;
    /// Atomically: if the `current.len()` bytes at `gpa` equal `current`, replace them with
    /// `new` and return `true`; otherwise return `false`. Sizes are 1, 2, 4, 8 or 16 and `gpa`
    /// is aligned to the size (the emulator widens misaligned locked accesses). Only called for
    /// [`Region::Ram`]; a 16-byte compare-exchange must itself be atomic (`CMPXCHG16B`).
    fn compare_exchange(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError>;
    /// Atomically compare-exchanges `current.len()` (2 to 16) bytes at `gpa` that straddle a
    /// 16-byte boundary inside one page (a *split lock*; x86 hosts can do this with a locked
    /// `CMPXCHG` on the unaligned address). The default refuses with
    /// [`MemoryError::NotAtomic`], which the emulator reports as
    /// [`Unsupported::SplitLock`](super::Unsupported::SplitLock).
    fn compare_exchange_split(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        let _ = (current, new);
        Err(MemoryError::NotAtomic(gpa))
    }
    /// Reads `buf.len()` (1, 2 or 4) bytes from I/O port `port` (`INS`). The default has no
    /// ports.
    fn read_port(&mut self, port: u16, buf: &mut [u8]) -> Result<(), MemoryError> {
        let _ = buf;
        Err(MemoryError::Port(port))
    }
    /// Writes `data` (1, 2 or 4 bytes) to I/O port `port` (`OUTS`). The default has no ports.
    fn write_port(&mut self, port: u16, data: &[u8]) -> Result<(), MemoryError> {
        let _ = data;
        Err(MemoryError::Port(port))
    }
}
