//! The register seam: which registers carry a hypercall in each calling convention, and a trait
//! the VMM implements over its vCPU state.
//!
//! | | x64 | 32-bit x86 |
//! |---|---|---|
//! | input value | RCX | EDX:EAX |
//! | input GPA / fast pair 0 low | RDX | EBX:ECX |
//! | output GPA / fast pair 0 high | R8 | EDI:ESI |
//! | fast pairs 1–6 (XMM fast calls) | XMM0–XMM5 | — |
//! | result | RAX | EDX:EAX |

/// The general-purpose registers the hypercall ABI uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gpr {
    /// RAX / EAX.
    Rax,
    /// RCX / ECX.
    Rcx,
    /// RDX / EDX.
    Rdx,
    /// RBX / EBX.
    Rbx,
    /// RSI / ESI.
    Rsi,
    /// RDI / EDI.
    Rdi,
    /// R8 (x64 only).
    R8,
}

/// Which register convention the calling VP uses (from its current execution mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallingConvention {
    /// 64-bit mode: RCX, RDX, R8, RAX, XMM0–5.
    X64,
    /// 32-bit protected mode (or compatibility mode): register pairs, no XMM fast calls.
    X86,
}

impl CallingConvention {
    /// How many 16-byte register pairs a fast call can use: 1 (RDX/R8 or the 32-bit pairs), plus
    /// XMM0–XMM5 on x64 when XMM fast calls are enabled.
    pub const fn fast_pairs(self, xmm: bool) -> usize {
        match self {
            Self::X64 if xmm => 7,
            _ => 1,
        }
    }
}

/// Access to the calling VP's registers.
///
/// Implementations read and write the real vCPU state (e.g. a `kvm_regs` copy). The dispatcher
/// reads only what the call needs and writes only the result and any fast output registers.
pub trait HypercallRegisters {
    /// Reads a general-purpose register (the full 64 bits; the dispatcher truncates for x86).
    fn gpr(&mut self, reg: Gpr) -> u64;

    /// Writes a general-purpose register.
    fn set_gpr(&mut self, reg: Gpr, value: u64);

    /// Reads XMM`index`, `index` in `0..6`.
    fn xmm(&mut self, index: usize) -> u128;

    /// Writes XMM`index`, `index` in `0..6`.
    fn set_xmm(&mut self, index: usize, value: u128);
}

impl<T: HypercallRegisters + ?Sized> HypercallRegisters for &mut T {
    fn gpr(&mut self, reg: Gpr) -> u64 {
        (**self).gpr(reg)
    }
    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        (**self).set_gpr(reg, value)
    }
    fn xmm(&mut self, index: usize) -> u128 {
        (**self).xmm(index)
    }
    fn set_xmm(&mut self, index: usize, value: u128) {
        (**self).set_xmm(index, value)
    }
}

/// A plain copy of the registers the ABI uses: fill it from the vCPU, dispatch, write back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct X64Registers {
    /// RAX.
    pub rax: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RBX.
    pub rbx: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// R8.
    pub r8: u64,
    /// XMM0–XMM5.
    pub xmm: [u128; 6],
}

impl HypercallRegisters for X64Registers {
    fn gpr(&mut self, reg: Gpr) -> u64 {
        match reg {
            Gpr::Rax => self.rax,
            Gpr::Rcx => self.rcx,
            Gpr::Rdx => self.rdx,
            Gpr::Rbx => self.rbx,
            Gpr::Rsi => self.rsi,
            Gpr::Rdi => self.rdi,
            Gpr::R8 => self.r8,
        }
    }

    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        *match reg {
            Gpr::Rax => &mut self.rax,
            Gpr::Rcx => &mut self.rcx,
            Gpr::Rdx => &mut self.rdx,
            Gpr::Rbx => &mut self.rbx,
            Gpr::Rsi => &mut self.rsi,
            Gpr::Rdi => &mut self.rdi,
            Gpr::R8 => &mut self.r8,
        } = value;
    }

    fn xmm(&mut self, index: usize) -> u128 {
        self.xmm.get(index).copied().unwrap_or(0)
    }

    fn set_xmm(&mut self, index: usize, value: u128) {
        if let Some(x) = self.xmm.get_mut(index) {
            *x = value;
        }
    }
}

/// Reads a 64-bit value from a 32-bit register pair `high:low`.
pub(crate) fn read_pair(regs: &mut (impl HypercallRegisters + ?Sized), high: Gpr, low: Gpr) -> u64 {
    (regs.gpr(high) & 0xffff_ffff) << 32 | (regs.gpr(low) & 0xffff_ffff)
}

/// Writes a 64-bit value into a 32-bit register pair `high:low` (upper halves cleared, as a
/// 32-bit write to a 64-bit register does).
pub(crate) fn write_pair(
    regs: &mut (impl HypercallRegisters + ?Sized),
    high: Gpr,
    low: Gpr,
    value: u64,
) {
    regs.set_gpr(high, value >> 32);
    regs.set_gpr(low, value & 0xffff_ffff);
}

impl CallingConvention {
    /// Reads the hypercall input value.
    pub fn input(self, regs: &mut (impl HypercallRegisters + ?Sized)) -> u64 {
        match self {
            Self::X64 => regs.gpr(Gpr::Rcx),
            Self::X86 => read_pair(regs, Gpr::Rdx, Gpr::Rax),
        }
    }

    /// Writes the hypercall input value (for an in-place rep retry).
    pub fn set_input(self, regs: &mut (impl HypercallRegisters + ?Sized), value: u64) {
        match self {
            Self::X64 => regs.set_gpr(Gpr::Rcx, value),
            Self::X86 => write_pair(regs, Gpr::Rdx, Gpr::Rax, value),
        }
    }

    /// Reads the input GPA (fast: the first input qword).
    pub fn input_gpa(self, regs: &mut (impl HypercallRegisters + ?Sized)) -> u64 {
        match self {
            Self::X64 => regs.gpr(Gpr::Rdx),
            Self::X86 => read_pair(regs, Gpr::Rbx, Gpr::Rcx),
        }
    }

    /// Reads the output GPA (fast: the second input qword).
    pub fn output_gpa(self, regs: &mut (impl HypercallRegisters + ?Sized)) -> u64 {
        match self {
            Self::X64 => regs.gpr(Gpr::R8),
            Self::X86 => read_pair(regs, Gpr::Rdi, Gpr::Rsi),
        }
    }

    /// Writes the result value.
    pub fn set_result(self, regs: &mut (impl HypercallRegisters + ?Sized), value: u64) {
        match self {
            Self::X64 => regs.set_gpr(Gpr::Rax, value),
            Self::X86 => write_pair(regs, Gpr::Rdx, Gpr::Rax, value),
        }
    }

    /// Reads fast register pair `index` as (low, high) qwords.
    pub fn fast_pair(
        self,
        regs: &mut (impl HypercallRegisters + ?Sized),
        index: usize,
    ) -> [u64; 2] {
        match index {
            0 => [self.input_gpa(regs), self.output_gpa(regs)],
            _ => {
                let x = regs.xmm(index - 1);
                [x as u64, (x >> 64) as u64]
            }
        }
    }

    /// Writes fast register pair `index`.
    pub fn set_fast_pair(
        self,
        regs: &mut (impl HypercallRegisters + ?Sized),
        index: usize,
        pair: [u64; 2],
    ) {
        match (self, index) {
            (Self::X64, 0) => {
                regs.set_gpr(Gpr::Rdx, pair[0]);
                regs.set_gpr(Gpr::R8, pair[1]);
            }
            (Self::X86, 0) => {
                write_pair(regs, Gpr::Rbx, Gpr::Rcx, pair[0]);
                write_pair(regs, Gpr::Rdi, Gpr::Rsi, pair[1]);
            }
            _ => regs.set_xmm(index - 1, u128::from(pair[0]) | u128::from(pair[1]) << 64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_pairs_use_the_low_halves() {
        let mut r = X64Registers {
            rdx: 0xdead_0000_1111_2222,
            rax: 0xbeef_0000_3333_4444,
            rbx: 0xffff_ffff_0000_0001,
            rcx: 0x0000_0001_0000_0002,
            ..Default::default()
        };
        assert_eq!(CallingConvention::X86.input(&mut r), 0x1111_2222_3333_4444);
        assert_eq!(
            CallingConvention::X86.input_gpa(&mut r),
            0x0000_0001_0000_0002
        );
        CallingConvention::X86.set_result(&mut r, 0x0000_0005_0000_0003);
        assert_eq!((r.rdx, r.rax), (5, 3));
        CallingConvention::X64.set_result(&mut r, 7);
        assert_eq!(r.rax, 7);
    }

    #[test]
    fn fast_pairs() {
        let mut r = X64Registers::default();
        let c = CallingConvention::X64;
        c.set_fast_pair(&mut r, 0, [1, 2]);
        c.set_fast_pair(&mut r, 3, [3, 4]);
        assert_eq!((r.rdx, r.r8), (1, 2));
        assert_eq!(r.xmm[2], 3 | 4 << 64);
        assert_eq!(c.fast_pair(&mut r, 3), [3, 4]);
        assert_eq!(c.fast_pair(&mut r, 0), [1, 2]);
        assert_eq!(CallingConvention::X64.fast_pairs(true), 7);
        assert_eq!(CallingConvention::X64.fast_pairs(false), 1);
        assert_eq!(CallingConvention::X86.fast_pairs(true), 1);
        let mut r = X64Registers::default();
        CallingConvention::X86.set_fast_pair(&mut r, 0, [0x1_0000_0002, 0x3_0000_0004]);
        assert_eq!((r.rbx, r.rcx, r.rdi, r.rsi), (1, 2, 3, 4));
    }
}
