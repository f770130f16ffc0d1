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
//! It completes only 64-bit code and accesses the guest's page tables allow. It walks them
//! itself, with `x86-decode`'s page walker over guest RAM (4- and 5-level paging, U/S, R/W
//! with CR0.WP, NX, SMEP, SMAP with RFLAGS.AC, reserved bits), and sets the accessed and dirty
//! bits as the processor would. (`KVM_TRANSLATE` cannot do this: x86 KVM reports every
//! mapping writable and not user-accessible, whatever the tables say.) Anything else —
//! another mode, a fault to deliver — is [`CompleteError::Unsupported`] or
//! [`CompleteError::Fault`], and goes to `x86-decode`'s emulator, which decodes in the guest's
//! mode and injects the fault. Anything neither completes stays an unexpected exit with its
//! register dump.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use x86_decode::emulate::paging::{self, AccessKind, PagingState, WalkError};
use x86_decode::emulate::Options;
use x86_decode::{Decoder, Instruction, Mode, OpcodeMap, Register, Segment};

use crate::emulate::VmMemory;
use crate::kvm::{KvmError, Vm};
use crate::memory::GuestMemory;

/// Why an instruction could not be completed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// A vCPU ioctl failed.
    #[error("vcpu access failed")]
    Kvm(#[from] KvmError),
    /// RIP or the memory operand translates to an address that is not RAM, or the page
    /// tables that map it are not in RAM.
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
    /// The access at `gva` faults (not mapped, not allowed at this privilege, for a write or
    /// for a fetch, or not canonical): the guest must take the fault, which this completer
    /// leaves to the emulator.
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

/// The vCPU state an instruction completion reads and changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuState {
    /// General registers and RIP.
    pub regs: kvm_regs,
    /// Segments, control registers, EFER.
    pub sregs: kvm_sregs,
    /// x87 and SSE registers.
    pub fpu: kvm_fpu,
}

/// What a completion changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// The instruction's length.
    pub len: usize,
    /// Whether the vector registers changed (the general registers always do: RIP).
    pub fpu_changed: bool,
}

/// Completes the instruction at RIP. Returns its length on success.
pub fn complete(vm: &mut Vm) -> Result<usize, CompleteError> {
    let (regs, sregs) = vm.registers()?;
    let fpu = vm.fpu()?;
    let mut cpu = CpuState { regs, sregs, fpu };
    let done = complete_on(&mut cpu, vm.memory())?;
    if done.fpu_changed {
        vm.set_fpu(&cpu.fpu)?;
    }
    vm.set_general_registers(&cpu.regs)?;
    Ok(done.len)
}

/// Completes the instruction at `cpu`'s RIP against `memory`, updating `cpu` (and guest
/// memory, for a store) only if it completes. The accessed and dirty bits of the paging
/// entries walked are set either way, as the processor may set them for an access that
/// faults later.
pub fn complete_on(cpu: &mut CpuState, memory: &GuestMemory) -> Result<Completed, CompleteError> {
    let CpuState {
        mut regs,
        sregs,
        mut fpu,
    } = *cpu;
    let rip = regs.rip;
    // 64-bit mode only: CS.L with EFER.LMA.
    if sregs.cs.l == 0 || sregs.efer & (1 << 10) == 0 {
        return Err(CompleteError::Unsupported {
            rip,
            bytes: String::from("(not 64-bit code)"),
        });
    }
    let mmu = Mmu::new(&sregs, regs.rflags, memory);
    let (window, fetched) = mmu.fetch(rip)?;
    let insn = Decoder::new(Mode::Bits64)
        .decode(&window[..fetched], rip)
        .map_err(|e| {
            if fetched < window.len() {
                // The instruction goes on into the page that could not be fetched.
                CompleteError::Fault {
                    gva: rip.wrapping_add(fetched as u64),
                }
            } else {
                CompleteError::Decode {
                    rip,
                    reason: e.to_string(),
                }
            }
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
    let operand = insn
        .has_memory()
        .then(|| effective_address(&insn, &regs, &sregs));

    match op {
        Op::Xor => {
            let mut source = [0u8; 16];
            match operand {
                Some(gva) => mmu.read(gva, &mut source)?,
                None => source = fpu.xmm[rm],
            }
            for (d, s) in fpu.xmm[reg].iter_mut().zip(source) {
                *d ^= s;
            }
        }
        Op::MovToXmm => {
            let size = if wide { 8 } else { 4 };
            let mut value = [0u8; 8];
            match operand {
                Some(gva) => mmu.read(gva, &mut value[..size])?,
                None => value = gpr(&regs, rm).to_le_bytes(),
            }
            fpu.xmm[reg] = [0; 16];
            fpu.xmm[reg][..size].copy_from_slice(&value[..size]);
        }
        Op::MovFromXmm => {
            let size = if wide { 8 } else { 4 };
            let bytes = fpu.xmm[reg];
            match operand {
                Some(gva) => mmu.write(gva, &bytes[..size])?,
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
            match operand {
                Some(gva) => mmu.read(gva, &mut word)?,
                None => word.copy_from_slice(&gpr(&regs, rm).to_le_bytes()[..2]),
            }
            let lane = usize::from(insn.immediate() as u8 & 7);
            fpu.xmm[reg][lane * 2..lane * 2 + 2].copy_from_slice(&word);
        }
    }
    regs.rip = insn.next_ip();
    *cpu = CpuState { regs, sregs, fpu };
    Ok(Completed {
        len: insn.len(),
        fpu_changed: op != Op::MovFromXmm,
    })
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

/// The pieces of one access, one per page: (guest-physical address, offset in the access,
/// length).
type Pieces = [(u64, usize, usize); 2];

/// Guest-virtual accesses of one instruction, translated through the guest's page tables with
/// the rights of its privilege level.
struct Mmu<'a> {
    paging: PagingState,
    /// CPL 3.
    user: bool,
    /// RFLAGS.AC (with CR4.SMAP, supervisor data accesses may reach user pages).
    ac: bool,
    memory: &'a GuestMemory,
}

impl<'a> Mmu<'a> {
    fn new(sregs: &kvm_sregs, rflags: u64, memory: &'a GuestMemory) -> Self {
        Self {
            paging: PagingState {
                cr0: sregs.cr0,
                cr3: sregs.cr3,
                cr4: sregs.cr4,
                efer: sregs.efer,
                pdptes: None,
                // What the emulator assumes too: every address bit a paging entry can hold.
                max_physical_bits: Options::default().max_physical_bits,
            },
            user: sregs.cs.selector & 3 == 3,
            ac: rflags & (1 << 18) != 0,
            memory,
        }
    }

    /// The guest-physical address of `gva` for an access of `kind`; sets the accessed (and
    /// for a write, dirty) bits of the entries used.
    fn translate(&self, gva: u64, kind: AccessKind) -> Result<u64, CompleteError> {
        let access = paging::Access {
            kind,
            user: self.user,
            ac: self.ac,
        };
        // Paging structures must be RAM; accessed/dirty updates are compare-exchanges.
        let mut ram = VmMemory {
            ram: self.memory,
            device: None,
        };
        match paging::translate(&mut ram, &self.paging, gva, access, true) {
            Ok(t) => Ok(t.gpa),
            Err(WalkError::Memory(_)) => Err(CompleteError::Unmapped { gva }),
            // A page fault, a non-canonical address, or tables that kept changing under the
            // walk: the emulator decides (and delivers the fault).
            Err(_) => Err(CompleteError::Fault { gva }),
        }
    }

    /// Translates `gva..gva + len` page by page for `kind` (at most two pages: accesses are
    /// 16 bytes at most); every piece is translated before any is accessed, so an access that
    /// faults on its second page changes nothing.
    fn pieces(
        &self,
        gva: u64,
        len: usize,
        kind: AccessKind,
    ) -> Result<(Pieces, usize), CompleteError> {
        let mut pieces = [(0u64, 0usize, 0usize); 2];
        let mut count = 0;
        let mut done = 0;
        while done < len {
            let at = gva.wrapping_add(done as u64);
            if count == pieces.len() {
                return Err(CompleteError::Fault { gva: at });
            }
            let chunk = (4096 - (at & 0xfff) as usize).min(len - done);
            pieces[count] = (self.translate(at, kind)?, done, chunk);
            count += 1;
            done += chunk;
        }
        Ok((pieces, count))
    }

    /// Copies guest-virtual `gva..gva + buf.len()` into `buf`.
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), CompleteError> {
        let (pieces, count) = self.pieces(gva, buf.len(), AccessKind::Read)?;
        for &(gpa, at, n) in &pieces[..count] {
            self.memory
                .read_at(gpa, &mut buf[at..at + n])
                .map_err(|_| CompleteError::Unmapped {
                    gva: gva.wrapping_add(at as u64),
                })?;
        }
        Ok(())
    }

    /// Copies `data` to guest-virtual `gva`.
    fn write(&self, gva: u64, data: &[u8]) -> Result<(), CompleteError> {
        let (pieces, count) = self.pieces(gva, data.len(), AccessKind::Write)?;
        for &(gpa, at, n) in &pieces[..count] {
            self.memory
                .write_at(gpa, &data[at..at + n])
                .map_err(|_| CompleteError::Unmapped {
                    gva: gva.wrapping_add(at as u64),
                })?;
        }
        Ok(())
    }

    /// Fetches up to 15 instruction bytes at `rip`: all of them, or those up to the end of
    /// `rip`'s page when the next page cannot be fetched (the instruction may end before it;
    /// the decoder says). Returns the window and how many bytes it holds.
    fn fetch(&self, rip: u64) -> Result<([u8; 15], usize), CompleteError> {
        let mut window = [0u8; 15];
        let first = (4096 - (rip & 0xfff) as usize).min(window.len());
        let gpa = self.translate(rip, AccessKind::Execute)?;
        self.memory
            .read_at(gpa, &mut window[..first])
            .map_err(|_| CompleteError::Unmapped { gva: rip })?;
        if first == window.len() {
            return Ok((window, first));
        }
        let next = rip.wrapping_add(first as u64);
        let fetched = match self.translate(next, AccessKind::Execute) {
            Ok(gpa) => self
                .memory
                .read_at(gpa, &mut window[first..])
                .map_or(first, |()| window.len()),
            Err(CompleteError::Fault { .. } | CompleteError::Unmapped { .. }) => first,
            Err(e) => return Err(e),
        };
        Ok((window, fetched))
    }
}

#[cfg(test)]
mod tests;
