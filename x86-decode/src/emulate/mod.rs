//! # Instruction completion: the emulator a VMM runs when an instruction traps
//!
//! When a guest's memory access traps (MMIO, a write-protected or absent page, an instruction
//! the hypervisor could not finish), the VMM must finish the instruction itself: read it at
//! RIP, translate its guest-virtual addresses through the guest's page tables, perform the
//! access against RAM or a device, update registers and flags as the processor would, raise the
//! exception the processor would raise, and advance RIP. [`Emulator::emulate`] does all of that
//! through two traits the VMM implements: [`CpuState`] (registers, segment caches, control
//! registers, vector and mask registers) and [`Memory`] (guest-physical reads and writes, with
//! RAM told apart from devices and an atomic compare-exchange on RAM).
//!
//! ```text
//!  intercept bytes ─► fetch (CS checks, paging for execute, page-crossing via NeedMoreBytes)
//!                          │ decode (this crate's Decoder, mode from CR0/EFER/CS)
//!                          ▼
//!                     execute ── operands ─► segmentation (limits, types, canonical) ─► #GP/#SS
//!                          │                     ▼
//!                          │                paging (TranslationCache ─► walker) ─────────► #PF
//!                          │                     ▼
//!                          │                split at page boundaries, #AC, alignment #GP
//!                          │                     ▼
//!                          │        Memory: read / write / compare_exchange (LOCK on RAM)
//!                          ▼
//!                     registers and RFLAGS written last; RIP advanced; TF ─► #DB
//! ```
//!
//! ## What it completes
//!
//! * The `MOV` family: `MOV` (incl. `moffs` of every size), `MOVZX`, `MOVSX`, `MOVSXD`,
//!   `MOVNTI`, `MOVBE`, `MOVDIRI`, `MOVDIR64B`.
//! * `ADD`/`ADC`/`SUB`/`SBB`/`AND`/`OR`/`XOR`/`CMP`/`TEST`, `INC`/`DEC`/`NEG`/`NOT`, `XADD`,
//!   `MUL`/`IMUL` (1, 2 and 3 operands)/`DIV`/`IDIV` (#DE), shifts and rotates incl.
//!   `SHLD`/`SHRD`, `BT`/`BTS`/`BTR`/`BTC` (a register bit offset may reach outside the
//!   operand), `SETcc`, `CMOVcc`, `XCHG`, `CMPXCHG`, `CMPXCHG8B`, `CMPXCHG16B`.
//! * All seven string instructions (`MOVS`, `CMPS`, `STOS`, `LODS`, `SCAS`, `INS`, `OUTS`) with
//!   `REP`/`REPE`/`REPNE`: RCX/RSI/RDI at the address size, at most
//!   [`Options::max_rep_iterations`] iterations per call ([`Outcome::Incomplete`] until done).
//! * SSE moves (`MOVUPS`/`MOVUPD`/`MOVDQU`/`LDDQU`, `MOVAPS`/`MOVAPD`/`MOVDQA`/`MOVNTDQA`
//!   and the non-temporal stores with their #GP(0) alignment rule, `MOVSS`/`MOVSD`,
//!   `MOVD`/`MOVQ`), and the VEX and EVEX data moves `VMOVDQU*`/`VMOVDQA*`/`VMOVUPS`/`VMOVUPD`/
//!   `VMOVAPS`/`VMOVAPD` at every vector length, with EVEX merge- and zero-masking (masked-off
//!   elements are neither read nor written, so they cannot fault).
//! * Register-only forms of the integer instructions above are completed too.
//!
//! Anything else is [`Outcome::Unsupported`]: the VMM decides (usually: the intercept should
//! not have happened).
//!
//! ## Exactness
//!
//! * Every access is split at page boundaries into separately translated pieces; all pieces
//!   are translated before any byte is written.
//! * `LOCK`ed and implicitly locked (`XCHG` with memory) read-modify-writes on RAM end in one
//!   [`Memory::compare_exchange`] of 1, 2, 4, 8 or 16 aligned bytes (a misaligned operand is
//!   widened to the aligned block holding it). If it fails, the emulator changes nothing and
//!   returns [`Outcome::Retry`]. A locked operand that straddles a 16-byte block or a page
//!   (a split lock) is [`Unsupported::SplitLock`]. On a device, a locked operation is a read
//!   then a write; a failed `CMPXCHG` writes the old value back, as the processor does.
//! * `LOCK` on a form that cannot be locked, and undefined encodings, raise #UD; an
//!   instruction longer than 15 bytes raises #GP(0).
//! * Alignment: #AC(0) at CPL 3 with CR0.AM and RFLAGS.AC for misaligned integer and string
//!   accesses; #GP(0) for misaligned `MOVAPS`-class, `VMOVDQA*`-class, `CMPXCHG16B` and
//!   `MOVDIR64B` destinations.
//! * With RFLAGS.TF set, a completed instruction (or one iteration of a `REP` string
//!   instruction) ends in [`Outcome::SingleStep`]. RFLAGS.RF is cleared on completion.
//! * RIP advances by exactly the instruction length, wrapped to the code segment's width.
//! * Registers are written only after the last memory access succeeded.
//!
//! ## Not modelled
//!
//! Protection keys, the TSS I/O permission bitmap (`INS`/`OUTS` with CPL > IOPL are
//! [`Unsupported::IoPermission`]), `#AC` for vector moves, MPX, and feature gating by the
//! guest's CPUID (an instruction the guest's processor already executed up to the intercept is
//! taken to exist). The PAE PDPTEs are read from memory unless [`CpuState::pae_pdptes`]
//! supplies the loaded ones.
//!
//! ## Example
//!
//! ```
//! use x86_decode::emulate::{Emulator, Options, Outcome};
//! # use x86_decode::emulate::{CpuState, Memory, MemoryError, Region, SegmentRegister, SegmentAttributes};
//! # use x86_decode::Segment;
//! # struct Cpu { gpr: [u64; 16], rip: u64, rflags: u64 }
//! # impl CpuState for Cpu {
//! #     fn gpr(&mut self, i: usize) -> u64 { self.gpr[i] }
//! #     fn set_gpr(&mut self, i: usize, v: u64) { self.gpr[i] = v }
//! #     fn rip(&mut self) -> u64 { self.rip }
//! #     fn set_rip(&mut self, v: u64) { self.rip = v }
//! #     fn rflags(&mut self) -> u64 { self.rflags }
//! #     fn set_rflags(&mut self, v: u64) { self.rflags = v }
//! #     fn segment(&mut self, s: Segment) -> SegmentRegister {
//! #         let attributes = if s == Segment::CS { SegmentAttributes::CODE64 } else { SegmentAttributes::FLAT_DATA };
//! #         SegmentRegister { selector: 0, base: 0, limit: u32::MAX, attributes }
//! #     }
//! #     fn cr0(&mut self) -> u64 { 1 } // protected mode, paging off
//! #     fn cr3(&mut self) -> u64 { 0 }
//! #     fn cr4(&mut self) -> u64 { 0x20 }
//! #     fn efer(&mut self) -> u64 { 0x500 }
//! #     fn xcr0(&mut self) -> u64 { 1 }
//! #     fn vector(&mut self, _: usize) -> [u8; 64] { [0; 64] }
//! #     fn set_vector(&mut self, _: usize, _: [u8; 64]) {}
//! #     fn opmask(&mut self, _: usize) -> u64 { 0 }
//! # }
//! # struct Mmio { last: Option<(u64, u32)> }
//! # impl Memory for Mmio {
//! #     fn region(&mut self, _: u64) -> Region { Region::Device }
//! #     fn read(&mut self, _: u64, b: &mut [u8]) -> Result<(), MemoryError> { b.fill(0); Ok(()) }
//! #     fn write(&mut self, gpa: u64, d: &[u8]) -> Result<(), MemoryError> {
//! #         self.last = Some((gpa, u32::from_le_bytes(d.try_into().unwrap()))); Ok(())
//! #     }
//! #     fn compare_exchange(&mut self, gpa: u64, _: &[u8], _: &[u8]) -> Result<bool, MemoryError> {
//! #         Err(MemoryError::NotAtomic(gpa))
//! #     }
//! # }
//! let mut cpu = Cpu { gpr: [0; 16], rip: 0x1000, rflags: 2 };
//! cpu.gpr[0] = 0xfeed_f00d; // eax
//! let mut mmio = Mmio { last: None };
//! // mov [rip+0x10], eax — the bytes come with the intercept.
//! let mut emu = Emulator::new(Options::default());
//! let out = emu.emulate(&mut cpu, &mut mmio, &[0x89, 0x05, 0x10, 0, 0, 0]).unwrap();
//! assert_eq!(out, Outcome::Completed);
//! assert_eq!(mmio.last, Some((0x1016, 0xfeed_f00d)));
//! assert_eq!(cpu.rip, 0x1006);
//! ```

mod access;
mod alu;
mod cpu;
mod exec;
pub mod paging;
mod string;
mod vector;

pub use cpu::{bits, CpuState, Memory, MemoryError, Region, SegmentAttributes, SegmentRegister};
pub use paging::{PageFault, PageRights, PagingMode, PagingState, TranslationCache};

use crate::{Instruction, Vendor};

/// How the emulator behaves.
///
/// Fields may be added in a minor release: start from `Options::default()` and set the fields you
/// change (or use `..` struct update syntax) rather than writing every field out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// The most iterations of a `REP` string instruction per call (at least 1). The VMM calls
    /// again on [`Outcome::Incomplete`], after checking for pending interrupts.
    pub max_rep_iterations: u32,
    /// Set accessed and dirty flags in the guest's paging entries, as the processor does.
    pub update_accessed_dirty: bool,
    /// MAXPHYADDR of the virtual processor (paging-entry address bits above it are reserved).
    pub max_physical_bits: u8,
    /// Decode with this vendor's rules.
    pub vendor: Vendor,
    /// Keep the translations of one call for the next ones. Off by default: the guest changes
    /// its page tables and runs `INVLPG` without the VMM seeing it, so a VMM that turns this on
    /// must flush ([`Emulator::translation_cache`]) whenever it cannot rule that out (for
    /// example on every exit that is not an emulation of the same vCPU in a row). Translations
    /// seeded before a call are used by that call either way.
    pub keep_translations: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_rep_iterations: 1024,
            update_accessed_dirty: true,
            max_physical_bits: 52,
            vendor: Vendor::Intel,
            keep_translations: false,
        }
    }
}

/// An exception the guest must take. The VMM injects it (for #PF also writing CR2 from
/// [`PageFault::address`]); the emulator does not change CR2 itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exception {
    /// #DE (vector 0): division by zero or quotient overflow.
    DivideError,
    /// #UD (vector 6): undefined encoding, `LOCK` where not allowed, disabled SSE/AVX state.
    InvalidOpcode,
    /// #NM (vector 7): CR0.TS set for an SSE/AVX instruction.
    DeviceNotAvailable,
    /// #SS (vector 12) with its error code: a stack-segment limit or canonical violation.
    StackFault(u16),
    /// #GP (vector 13) with its error code.
    GeneralProtection(u16),
    /// #PF (vector 14): error code and CR2.
    PageFault(PageFault),
    /// #AC (vector 17), error code 0.
    AlignmentCheck,
}

impl Exception {
    /// The interrupt vector.
    #[must_use]
    pub const fn vector(self) -> u8 {
        match self {
            Exception::DivideError => 0,
            Exception::InvalidOpcode => 6,
            Exception::DeviceNotAvailable => 7,
            Exception::StackFault(_) => 12,
            Exception::GeneralProtection(_) => 13,
            Exception::PageFault(_) => 14,
            Exception::AlignmentCheck => 17,
        }
    }

    /// The error code pushed with the exception, if the vector has one.
    #[must_use]
    pub const fn error_code(self) -> Option<u32> {
        match self {
            Exception::StackFault(c) | Exception::GeneralProtection(c) => Some(c as u32),
            Exception::PageFault(p) => Some(p.error_code),
            Exception::AlignmentCheck => Some(0),
            _ => None,
        }
    }
}

/// Why an instruction is not completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unsupported {
    /// A valid instruction outside the emulator's set (see the module documentation).
    Instruction(Instruction),
    /// A locked operand that crosses a 16-byte block or a page on RAM (a split lock): no
    /// single compare-exchange covers it.
    SplitLock {
        /// The linear address of the operand.
        address: u64,
    },
    /// `INS`/`OUTS` at CPL > IOPL (or in virtual-8086 mode), where the TSS I/O permission
    /// bitmap decides.
    IoPermission,
}

/// The result of one [`Emulator::emulate`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The instruction completed: memory, registers and RFLAGS are updated and RIP points to
    /// the next instruction.
    Completed,
    /// Completed as for [`Outcome::Completed`] (for a `REP` string instruction, possibly only
    /// one iteration, with RIP unchanged), and RFLAGS.TF was set: inject a single-step #DB
    /// (DR6.BS).
    SingleStep,
    /// A `REP` string instruction made progress (RCX/RSI/RDI updated) but is not finished; RIP
    /// is unchanged. Call again (after delivering pending interrupts, if any).
    Incomplete,
    /// A locked operation lost a race on RAM (or a paging entry kept changing): the
    /// instruction's effect was not made. Call again. A `REP` string instruction that had
    /// already completed iterations in this call keeps them, with RCX/RSI/RDI (and RFLAGS)
    /// written back, exactly as for [`Incomplete`](Self::Incomplete); the call resumes there.
    Retry,
    /// The guest takes this exception. Nothing was changed, except the progress of a `REP`
    /// string instruction's completed iterations.
    Exception(Exception),
    /// The emulator does not complete this instruction; nothing was changed.
    Unsupported(Unsupported),
}

/// A failure of the VMM's own callbacks (not a guest-visible event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum EmulateError {
    /// A [`Memory`] call failed.
    #[error("guest memory access failed")]
    Memory(#[from] MemoryError),
}

/// The instruction-completion emulator. Holds the options and a [`TranslationCache`].
#[derive(Clone, Debug, Default)]
pub struct Emulator {
    options: Options,
    cache: TranslationCache,
}

impl Emulator {
    /// An emulator with `options` and an empty translation cache.
    #[must_use]
    pub fn new(options: Options) -> Self {
        Self {
            options,
            cache: TranslationCache::new(),
        }
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The translation cache, to seed it with an intercept's translation or flush it.
    pub fn translation_cache(&mut self) -> &mut TranslationCache {
        &mut self.cache
    }

    /// Completes the instruction at the virtual processor's RIP.
    ///
    /// `bytes` are instruction bytes the intercept supplied (starting at RIP; may be empty or
    /// short: the rest is fetched through CS and the page tables when the decoder needs it).
    ///
    /// # Errors
    ///
    /// [`EmulateError::Memory`] when a [`Memory`] call fails; guest-visible problems are
    /// [`Outcome::Exception`] instead.
    pub fn emulate<C: CpuState + ?Sized, M: Memory + ?Sized>(
        &mut self,
        cpu: &mut C,
        mem: &mut M,
        bytes: &[u8],
    ) -> Result<Outcome, EmulateError> {
        let mut ctx = access::Ctx::new(cpu, mem, &mut self.cache, &self.options);
        let result = exec::run(&mut ctx, bytes);
        if !self.options.keep_translations {
            self.cache.flush();
        }
        result
    }
}
