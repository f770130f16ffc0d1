//! # `x86-decode`: an x86/x86-64 instruction decoder and instruction-completion emulator
//!
//! When a guest's memory access traps (MMIO, a write-protected page, an instruction the
//! hypervisor could not finish), the VMM decodes the instruction at RIP to complete it. This
//! crate is that decoder: `no_std`, allocation-free, `unsafe`-free, and exact about lengths,
//! validity, prefixes and memory operands in 16-, 32- and 64-bit mode. The [`emulate`] module
//! is the emulator that then completes the instruction: guest page-table walk, segmentation,
//! the access against RAM or a device (atomically for locked operations), registers, flags,
//! exceptions and RIP, checked instruction by instruction against the processor itself.
//!
//! The references are the Intel® 64 and IA-32 Architectures Software Developer's Manual, Vol. 2
//! (chapter 2 "Instruction Format", appendix A "Opcode Map") and the AMD64 Architecture
//! Programmer's Manual, Vol. 3 (chapter 1 and appendix A).
//!
//! ```text
//!  bytes ──► prefixes ──► escape / VEX / EVEX / XOP ──► opcode ──► ModRM ─► SIB ─► disp ─► imm
//!             (any order,    (map, pp, W, L, vvvv,        │          (16/32/64-bit addressing,
//!              repeated)      aaa, z, b)                   │           RIP/EIP-relative)
//!                                                          ▼
//!                      forms.rs (hand-written: what follows each opcode)
//!                      validity.rs + generated/ (is this encoding defined?)
//!                                                          ▼
//!                                              Instruction (Copy, 56 bytes)
//!                                                          │ on demand
//!                                                          ▼
//!            semantic.rs ─► gp.rs (integer, string, system) / vector.rs (x87, vector moves)
//!                        ─► operands.rs (operand list, access size), RFLAGS effects
//! ```
//!
//! ## Example
//!
//! ```
//! use x86_decode::{Decoder, DecodeError, Mode, Register, Segment};
//!
//! let d = Decoder::new(Mode::Bits64);
//! // mov dword [rip+0x10], 1   (RIP-relative: relative to the end of the whole instruction)
//! let i = d.decode(&[0xC7, 0x05, 0x10, 0, 0, 0, 1, 0, 0, 0], 0x1000).unwrap();
//! assert_eq!(i.len(), 10);
//! assert_eq!(i.memory_base(), Register::RIP);
//! assert_eq!(i.ip_relative_target(), Some(0x1000 + 10 + 0x10));
//! assert_eq!(i.memory_segment(), Segment::DS);
//!
//! // A window cut short is "need more bytes", not "invalid".
//! assert_eq!(d.decode(&[0xC7, 0x05, 0x10], 0), Err(DecodeError::NeedMoreBytes { have: 3 }));
//! ```
//!
//! ## What is decoded
//!
//! * **Structure, whole ISA.** Every legacy, 3DNow!, VEX, EVEX and XOP instruction: its length,
//!   validity (in the requested mode, with the requested vendor's rules), prefixes (all legacy
//!   prefixes in any order and repetition, REX rules, mandatory-prefix selection), the opcode
//!   map and byte, ModRM/SIB, the memory operand (segment incl. defaults and the 64-bit rules
//!   for overrides, base, index incl. VSIB, scale, displacement, address size, RIP/EIP-relative
//!   target; EVEX compressed `disp8*N` applied), immediates and near-branch targets, the
//!   15-byte limit and LOCK validity.
//! * **Semantic level.** [`Instruction::mnemonic`], [`Instruction::operands`] (every operand
//!   with its kind, register and size; immediates with their sign extension; near and far
//!   branch targets; the implicit `[rSI]`/`es:[rDI]` string operands with their segment rules),
//!   [`Instruction::memory_size`] and [`Instruction::flags`] (RFLAGS read / written / undefined)
//!   for: all general-purpose integer instructions (incl. BMI1/2, ADX, TBM, MOVBE, MOVDIRI,
//!   RAO-INT, CMPccXADD), the string instructions (REP/REPE/REPNE are [`Prefixes::REP`] and
//!   [`Prefixes::REPNE`]), the system instructions (descriptor tables, CR/DR/segment moves,
//!   MSRs, VMX, SVM, SEV-SNP, TDX, SGX leaves, CET, XSAVE family, fences and cache control,
//!   user interrupts, `IN`/`OUT`, `HLT`, `IRET`, ...), the x87 memory forms, and every
//!   MMX/SSE/AVX/AVX-512 instruction that moves data to or from memory (loads, stores,
//!   non-temporal moves, VEX masked moves, EVEX moves whose masking is [`Instruction::op_mask`]
//!   and [`Prefixes::ZEROING`], broadcasts, inserts/extracts, compress/expand, down-converting
//!   stores, gathers/scatters, `KMOV`). Outside that set (vector arithmetic, register-only
//!   vector forms, AMX, x87 register forms) these return `None`.
//! * **Not covered**: semantic level for the rest of the ISA (see above); the formatter prints
//!   those with their encoding and memory operand only (see [`Display`]).
//! * **Completion** ([`emulate`]): the MOV family, integer arithmetic/logic/shifts/bit tests,
//!   exchanges incl. `CMPXCHG16B`, the string instructions with `REP`, SSE moves and the VEX/EVEX
//!   data moves with masking, through [`emulate::CpuState`] and [`emulate::Memory`] traits;
//!   the page walker is [`emulate::paging`].
//!
//! ## How validity is known
//!
//! The structure of each opcode (ModRM? immediate? displacement?) is hand-written in
//! `forms.rs` from the SDM/APM opcode maps. Whether an encoding is *defined* — a vast table of
//! facts (which opcode, mandatory prefix, ModRM `reg`/`rm`, VEX.L/W, EVEX L'L/b/aaa/z
//! combinations exist) — and each EVEX memory form's `disp8*N` factor are generated by
//! `examples/gen_tables.rs`, which probes iced-x86 (MIT), a mature decoder, as an oracle and
//! writes deduplicated tables to `src/generated/validity.rs`. iced-x86 is never a dependency
//! of the library.
//!
//! ## Decisions
//!
//! * **APX REX2 (`D5` in 64-bit mode)**: following iced-x86 1.22, `D5` is an invalid opcode in
//!   64-bit mode (it is `AAD` elsewhere) and is not decoded as the APX REX2 prefix. APX
//!   hardware is not yet something guests run on; revisit when it is.
//! * **Vendor**: [`Vendor::Intel`] by default. [`Vendor::Amd`] selects 16-bit near branches with
//!   `66` in 64-bit mode, `LOCK MOV CR0` as `MOV CR8`, and `UD0` without ModRM.
//! * **Truncated before invalid**: if the window ends inside an instruction whose structure is
//!   known, the result is [`DecodeError::NeedMoreBytes`] even if the encoding turns out to be
//!   undefined, unless the instruction would exceed 15 bytes ([`InvalidReason::TooLong`]).
//!   An undefined opcode whose length is not known is reported invalid at once (iced-x86 may
//!   report such a short window as "no more bytes").
//! * **Register-distinctness rules** (#UD when a VEX gather's destination, mask and index, or an
//!   EVEX gather's destination and index, or an AVX512-FP16 complex multiply's destination and
//!   a source, are the same register) are checked by hand in `decode.rs`.
//! * **Segment overrides**: in 64-bit mode `ES`/`CS`/`SS`/`DS` prefixes are ignored (they
//!   neither apply nor cancel an `FS`/`GS` prefix) and the last `FS`/`GS` wins; elsewhere the
//!   last segment prefix wins.
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | nothing yet; reserved for heap-backed conveniences |
//! | `std` | yes | nothing beyond `alloc` yet (errors implement `core::error::Error` in every build); implies `alloc` |
//! | `formatter` | yes | [`Instruction::display`], a diagnostic formatter; needs only `core` |
//!
//! With `default-features = false` the crate is `#![no_std]` and needs only `core`.

#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc --all-features`) marks items
// that need a feature; builds without every feature cannot link to the items they leave out.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

mod decode;
mod defs;
pub mod emulate;
mod error;
#[cfg(feature = "formatter")]
mod format;
mod forms;
mod generated;
mod gp;
mod instruction;
mod mnemonic;
mod operands;
mod semantic;
mod validity;
mod vector;

pub use decode::{Decoder, MAX_INSTRUCTION_LEN};
pub use defs::{Encoding, Mode, OpcodeMap, Register, Segment, Vendor};
pub use error::{DecodeError, InvalidReason};
#[cfg(feature = "formatter")]
pub use format::Display;
pub use instruction::{Instruction, Prefixes};
pub use operands::{Operand, OperandKind, Operands};
pub use semantic::{rflags, FlagsEffect, Mnemonic};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
