//! Completing the instructions KVM's in-kernel emulator refuses.
//!
//! On the `kvm_pvm` variant these machines run, a guest that is not PVM-aware (ours) executes
//! entirely in KVM's instruction emulator, which knows only a handful of SSE instructions
//! (`movups`, `movaps`, `movdqu`, …). When it meets another one it stops the vCPU with
//! `KVM_EXIT_INTERNAL_ERROR` (emulation failure). Compiled Rust still emits a few of those for
//! zeroing and for `core`'s decimal formatting, so the VMM finishes them itself: it reads the
//! instruction at RIP through the vCPU's page tables, decodes it with `x86-decode`, performs it
//! on the vCPU's registers (`KVM_GET_FPU`/`KVM_SET_FPU`) and guest memory, and moves RIP past
//! it. This is the "instruction completion" half of a Hyper-V-style stack, kept to the forms
//! actually met:
//!
//! | bytes | instruction |
//! |---|---|
//! | `0F 57 /r`, `66 0F 57 /r`, `66 0F EF /r` | `xorps`/`xorpd`/`pxor xmm, xmm/m128` |
//! | `66 [REX.W] 0F 6E /r` | `movd`/`movq xmm, r/m32/64` |
//! | `66 [REX.W] 0F 7E /r` | `movd`/`movq r/m32/64, xmm` |
//! | `66 0F C4 /r ib` | `pinsrw xmm, r32/m16, imm8` |
//!
//! It completes only 64-bit code and accesses the page tables allow (a write to a writable
//! page, a user-mode access to a user page): anything else — another mode, a fault to
//! deliver — is [`CompleteError::Unsupported`] or [`CompleteError::Fault`], and goes to
//! `x86-decode`'s emulator, which decodes in the guest's mode and injects the fault.
//! Anything neither completes stays an unexpected exit with its register dump.

use kvm_bindings::{kvm_regs, kvm_sregs};
use x86_decode::{Decoder, Instruction, Mode, OpcodeMap, Register, Segment};

use crate::kvm::{KvmError, Vm};

/// Why an instruction could not be completed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// A vCPU ioctl failed.
    #[error("vcpu access failed")]
    Kvm(#[from] KvmError),
    /// RIP or the memory operand is not mapped, or not RAM.
    #[error("guest address {gva:#x} is not mapped to ram")]
    Unmapped {
        /// The guest-virtual address.
        gva: u64,
    },
    /// The bytes at RIP do not decode.
    #[error("the instruction at {rip:#x} does not decode: {reason}")]
    Decode {
        /// RIP.
        rip: u64,
        /// The decoder's reason.
        reason: String,
    },
    /// The access at `gva` faults (not mapped, or not allowed at this privilege or for a
    /// write): the guest must take a page fault, which this completer leaves to the emulator.
    #[error("the access at {gva:#x} faults")]
    Fault {
        /// The guest-virtual address.
        gva: u64,
    },
    /// A valid instruction this completer does not implement.
    #[error("no completion for `{bytes}` at {rip:#x}")]
    Unsupported {
        /// RIP.
        rip: u64,
        /// The instruction bytes, in hex.
        bytes: String,
    },
}

/// The kinds of instruction this completer performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Xor,
    MovToXmm,
    MovFromXmm,
    Pinsrw,
}

/// Completes the instruction at RIP. Returns its length on success.
pub fn complete(vm: &mut Vm) -> Result<usize, CompleteError> {
    let (mut regs, sregs) = vm.registers()?;
    let rip = regs.rip;
    // 64-bit mode only: CS.L with EFER.LMA.
    if sregs.cs.l == 0 || sregs.efer & (1 << 10) == 0 {
        return Err(CompleteError::Unsupported {
            rip,
            bytes: String::from("(not 64-bit code)"),
        });
    }
    let access = Access {
        user: sregs.cs.selector & 3 == 3,
        write_protect: sregs.cr0 & (1 << 16) != 0,
    };
    let mut window = [0u8; 15];
    read_virtual(vm, access, rip, &mut window)?;
    let insn = Decoder::new(Mode::Bits64)
        .decode(&window, rip)
        .map_err(|e| CompleteError::Decode {
            rip,
            reason: e.to_string(),
        })?;
    let unsupported = || CompleteError::Unsupported {
        rip,
        bytes: window[..insn.len()]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    if insn.map() != OpcodeMap::M0F || insn.encoding() != x86_decode::Encoding::Legacy {
        return Err(unsupported());
    }
    let op = match (insn.mandatory_prefix(), insn.opcode()) {
        (0 | 1, 0x57) | (1, 0xef) => Op::Xor,
        (1, 0x6e) => Op::MovToXmm,
        (1, 0x7e) => Op::MovFromXmm,
        (1, 0xc4) => Op::Pinsrw,
        _ => return Err(unsupported()),
    };
    let modrm = insn.modrm().ok_or_else(unsupported)?;
    let rex = insn.rex();
    let reg = usize::from((modrm >> 3) & 7 | (rex & 4) << 1);
    let rm = usize::from(modrm & 7 | (rex & 1) << 3);
    let wide = rex & 8 != 0;
    let mut fpu = vm.fpu()?;
    let memory = insn
        .has_memory()
        .then(|| effective_address(&insn, &regs, &sregs));

    match op {
        Op::Xor => {
            let mut source = [0u8; 16];
            match memory {
                Some(gva) => read_virtual(vm, access, gva, &mut source)?,
                None => source = fpu.xmm[rm],
            }
            for (d, s) in fpu.xmm[reg].iter_mut().zip(source) {
                *d ^= s;
            }
        }
        Op::MovToXmm => {
            let size = if wide { 8 } else { 4 };
            let mut value = [0u8; 8];
            match memory {
                Some(gva) => read_virtual(vm, access, gva, &mut value[..size])?,
                None => value = gpr(&regs, rm).to_le_bytes(),
            }
            fpu.xmm[reg] = [0; 16];
            fpu.xmm[reg][..size].copy_from_slice(&value[..size]);
        }
        Op::MovFromXmm => {
            let size = if wide { 8 } else { 4 };
            let bytes = fpu.xmm[reg];
            match memory {
                Some(gva) => write_virtual(vm, access, gva, &bytes[..size])?,
                None => {
                    let mut value = [0u8; 8];
                    value[..size].copy_from_slice(&bytes[..size]);
                    // A 32-bit destination zero-extends into the 64-bit register.
                    set_gpr(&mut regs, rm, u64::from_le_bytes(value));
                }
            }
        }
        Op::Pinsrw => {
            let mut word = [0u8; 2];
            match memory {
                Some(gva) => read_virtual(vm, access, gva, &mut word)?,
                None => word.copy_from_slice(&gpr(&regs, rm).to_le_bytes()[..2]),
            }
            let lane = usize::from(insn.immediate() as u8 & 7);
            fpu.xmm[reg][lane * 2..lane * 2 + 2].copy_from_slice(&word);
        }
    }
    if op != Op::MovFromXmm || memory.is_some() {
        vm.set_fpu(&fpu)?;
    }
    regs.rip = insn.next_ip();
    vm.set_general_registers(&regs)?;
    Ok(insn.len())
}

/// The memory operand's guest-virtual address (64-bit mode: flat segments except FS and GS,
/// whose bases count).
fn effective_address(insn: &Instruction, regs: &kvm_regs, sregs: &kvm_sregs) -> u64 {
    let base = match insn.memory_base() {
        Register::NONE => 0,
        Register::RIP => insn.next_ip(),
        r => gpr(regs, usize::from(r.number())),
    };
    let index = match insn.memory_index() {
        Register::NONE => 0,
        r => gpr(regs, usize::from(r.number())).wrapping_mul(u64::from(insn.memory_scale())),
    };
    let ea = base
        .wrapping_add(index)
        .wrapping_add(insn.memory_displacement());
    let ea = if insn.address_size() == 4 {
        ea & 0xffff_ffff
    } else {
        ea
    };
    match insn.memory_segment() {
        Segment::FS => ea.wrapping_add(sregs.fs.base),
        Segment::GS => ea.wrapping_add(sregs.gs.base),
        _ => ea,
    }
}

fn gpr(regs: &kvm_regs, n: usize) -> u64 {
    [
        regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi, regs.r8,
        regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
    ][n & 15]
}

fn set_gpr(regs: &mut kvm_regs, n: usize, value: u64) {
    let slot = match n & 15 {
        0 => &mut regs.rax,
        1 => &mut regs.rcx,
        2 => &mut regs.rdx,
        3 => &mut regs.rbx,
        4 => &mut regs.rsp,
        5 => &mut regs.rbp,
        6 => &mut regs.rsi,
        7 => &mut regs.rdi,
        8 => &mut regs.r8,
        9 => &mut regs.r9,
        10 => &mut regs.r10,
        11 => &mut regs.r11,
        12 => &mut regs.r12,
        13 => &mut regs.r13,
        14 => &mut regs.r14,
        _ => &mut regs.r15,
    };
    *slot = value;
}

/// Who accesses guest memory: user mode (CPL 3) or not, and whether CR0.WP makes read-only
/// pages read-only for the kernel too.
#[derive(Debug, Clone, Copy)]
struct Access {
    user: bool,
    write_protect: bool,
}

/// Calls `access(gpa, offset, len)` for each piece of guest-virtual `gva..gva + len` that lies
/// in one page, translated through the vCPU's page tables; a piece the tables do not map, or
/// do not allow to `who` (for a write when `write`), is a [`CompleteError::Fault`], found
/// before any piece is accessed.
fn by_page(
    vm: &Vm,
    who: Access,
    gva: u64,
    len: usize,
    write: bool,
    mut access: impl FnMut(u64, usize, usize) -> Result<(), crate::memory::MemoryError>,
) -> Result<(), CompleteError> {
    let mut pieces = [(0u64, 0usize, 0usize); 2];
    let mut count = 0;
    let mut done = 0;
    while done < len {
        let at = gva.wrapping_add(done as u64);
        let chunk = (4096 - (at & 0xfff) as usize).min(len - done);
        let (gpa, writable, user) = vm
            .translate_access(at)?
            .ok_or(CompleteError::Fault { gva: at })?;
        let denied = (who.user && !user) || (write && !writable && (who.user || who.write_protect));
        if denied || count == pieces.len() {
            return Err(CompleteError::Fault { gva: at });
        }
        pieces[count] = (gpa, done, chunk);
        count += 1;
        done += chunk;
    }
    for &(gpa, at, n) in &pieces[..count] {
        access(gpa, at, n).map_err(|_| CompleteError::Unmapped {
            gva: gva.wrapping_add(at as u64),
        })?;
    }
    Ok(())
}

/// Copies guest-virtual `gva..gva + buf.len()` into `buf`.
fn read_virtual(vm: &Vm, who: Access, gva: u64, buf: &mut [u8]) -> Result<(), CompleteError> {
    let memory = vm.memory();
    by_page(vm, who, gva, buf.len(), false, |gpa, at, n| {
        memory.read_at(gpa, &mut buf[at..at + n])
    })
}

/// Copies `data` to guest-virtual `gva`.
fn write_virtual(vm: &Vm, who: Access, gva: u64, data: &[u8]) -> Result<(), CompleteError> {
    let memory = vm.memory();
    by_page(vm, who, gva, data.len(), true, |gpa, at, n| {
        memory.write_at(gpa, &data[at..at + n])
    })
}
