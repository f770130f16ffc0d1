//! A readable snapshot of the vCPU registers, for errors.

use core::fmt;

use kvm_bindings::{kvm_dtable, kvm_regs, kvm_segment, kvm_sregs};

use crate::kvm::{KvmError, Vm};

/// How many instruction bytes at `rip` a dump shows.
const CODE_BYTES: usize = 16;

/// The vCPU registers at an exit, and the bytes at `rip` when they are in guest RAM.
#[derive(Debug, Clone)]
pub struct RegisterDump {
    /// General registers, `rip` and `rflags`.
    pub regs: kvm_regs,
    /// Segment, descriptor-table and control registers, and EFER.
    pub sregs: kvm_sregs,
    /// The instruction bytes at `rip` (guest-virtual equals guest-physical in the boot
    /// identity map; later guests may remap, so treat them as a hint).
    pub code: Option<[u8; CODE_BYTES]>,
}

impl RegisterDump {
    /// Reads the registers of `vm`'s vCPU.
    pub fn capture(vm: &Vm) -> Result<Self, KvmError> {
        let (regs, sregs) = vm.registers()?;
        let mut code = [0; CODE_BYTES];
        let code = vm.memory().read_at(regs.rip, &mut code).ok().map(|()| code);
        Ok(Self { regs, sregs, code })
    }
}

/// Names of the set status and control bits of `RFLAGS`.
fn rflags_names(rflags: u64) -> impl Iterator<Item = &'static str> {
    const FLAGS: [(u32, &str); 10] = [
        (0, "CF"),
        (2, "PF"),
        (4, "AF"),
        (6, "ZF"),
        (7, "SF"),
        (8, "TF"),
        (9, "IF"),
        (10, "DF"),
        (11, "OF"),
        (16, "RF"),
    ];
    FLAGS
        .into_iter()
        .filter(move |(bit, _)| rflags >> bit & 1 == 1)
        .map(|(_, name)| name)
}

struct Segment<'a>(&'a kvm_segment);

impl fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(
            f,
            "{:#06x} base {:#x} limit {:#x} type {:#x} s{} dpl{} p{} db{} l{} g{}{}",
            s.selector,
            s.base,
            s.limit,
            s.type_,
            s.s,
            s.dpl,
            s.present,
            s.db,
            s.l,
            s.g,
            if s.unusable != 0 { " unusable" } else { "" }
        )
    }
}

struct Table<'a>(&'a kvm_dtable);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "base {:#x} limit {:#x}", self.0.base, self.0.limit)
    }
}

impl fmt::Display for RegisterDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.regs;
        let s = &self.sregs;
        let flags: Vec<_> = rflags_names(r.rflags).collect();
        writeln!(
            f,
            "  rip {:016x}  rsp {:016x}  rflags {:016x} [{}]",
            r.rip,
            r.rsp,
            r.rflags,
            flags.join(" ")
        )?;
        let general = [
            ("rax", r.rax),
            ("rbx", r.rbx),
            ("rcx", r.rcx),
            ("rdx", r.rdx),
            ("rsi", r.rsi),
            ("rdi", r.rdi),
            ("rbp", r.rbp),
            ("r8 ", r.r8),
            ("r9 ", r.r9),
            ("r10", r.r10),
            ("r11", r.r11),
            ("r12", r.r12),
            ("r13", r.r13),
            ("r14", r.r14),
            ("r15", r.r15),
        ];
        for row in general.chunks(4) {
            let cells: Vec<_> = row
                .iter()
                .map(|(name, value)| format!("{name} {value:016x}"))
                .collect();
            writeln!(f, "  {}", cells.join("  "))?;
        }
        writeln!(
            f,
            "  cr0 {:016x}  cr2 {:016x}  cr3 {:016x}  cr4 {:016x}",
            s.cr0, s.cr2, s.cr3, s.cr4
        )?;
        writeln!(f, "  cr8 {:016x}  efer {:016x}", s.cr8, s.efer)?;
        for (name, seg) in [("cs", &s.cs), ("ss", &s.ss), ("ds", &s.ds), ("tr", &s.tr)] {
            writeln!(f, "  {name}  {}", Segment(seg))?;
        }
        writeln!(f, "  gdt {}  idt {}", Table(&s.gdt), Table(&s.idt))?;
        match &self.code {
            Some(code) => {
                let bytes: Vec<_> = code.iter().map(|b| format!("{b:02x}")).collect();
                write!(f, "  code at rip: {}", bytes.join(" "))
            }
            None => write!(f, "  code at rip: (outside guest ram)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_readably() {
        let dump = RegisterDump {
            regs: kvm_regs {
                rip: 0x10_0000,
                rsp: 0x3ff_fff8,
                rflags: 0x246,
                r15: 0xdead,
                ..Default::default()
            },
            sregs: kvm_sregs {
                cr0: 0x8001_0033,
                efer: 0x500,
                ..Default::default()
            },
            code: Some([0xf4; CODE_BYTES]),
        };
        let text = dump.to_string();
        assert!(text.contains("rip 0000000000100000"), "{text}");
        assert!(text.contains("[PF ZF IF]"), "{text}");
        assert!(text.contains("r15 000000000000dead"), "{text}");
        assert!(text.contains("cr0 0000000080010033"), "{text}");
        assert!(text.contains("efer 0000000000000500"), "{text}");
        assert!(text.contains("code at rip: f4 f4"), "{text}");
    }
}
