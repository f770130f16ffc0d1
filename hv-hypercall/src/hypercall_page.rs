//! Hypercall-page generation (TLFS "Establishing the Hypercall Interface"; reference §5.5, §6.3).
//!
//! The guest picks a page and writes its GPA to `HV_X64_MSR_HYPERCALL`; the hypervisor fills it
//! with code, and the guest calls offset 0 with the hypercall registers loaded. Three trap
//! conventions are generated:
//!
//! | kind | code at offset 0 (after the optional `endbr64` = `F3 0F 1E FA`) | exit |
//! |---|---|---|
//! | [`Vmcall`](HypercallPageKind::Vmcall) | `0F 01 C1` `vmcall`; `C3` `ret` | Intel VM exit |
//! | [`Vmmcall`](HypercallPageKind::Vmmcall) | `0F 01 D9` `vmmcall`; `C3` `ret` | AMD VM exit |
//! | [`PortIo`](HypercallPageKind::PortIo) | `E6 ib` `out imm8, al`; `C3` `ret` | `KVM_EXIT_IO` |
//!
//! The port-I/O form exists for hypervisors such as KVM without in-kernel Hyper-V support, where
//! `vmcall` is handled as a *KVM* hypercall inside the kernel and never reaches user space. The
//! immediate port keeps RDX (the input GPA) intact; the trap writes only AL, which the result
//! overwrites anyway. When the exit arrives RIP already points past the `out`.
//!
//! Pages start with `endbr64` by default: a guest with CET indirect-branch tracking would fault
//! on an indirect call to a page without it (Linux checks and disables IBT otherwise), and on
//! CPUs or modes without CET it is a no-op. The rest of the page is `int3` (`CC`).

use thiserror::Error;

use crate::defs::PAGE_SIZE;

/// `endbr64`.
pub const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
/// `vmcall`.
pub const VMCALL: [u8; 3] = [0x0f, 0x01, 0xc1];
/// `vmmcall`.
pub const VMMCALL: [u8; 3] = [0x0f, 0x01, 0xd9];
/// Opcode of `out imm8, al`.
pub const OUT_IMM8_AL: u8 = 0xe6;
/// `ret`.
pub const RET: u8 = 0xc3;
/// `int3`, the filler after the code.
pub const INT3: u8 = 0xcc;

/// I/O ports that KVM's in-kernel devices (or a usual VMM) claim, which a port-I/O hypercall
/// page must not use: the PICs (0x20/0x21, 0xA0/0xA1), the PIT (0x40–0x43) and its speaker gate
/// (0x61), the RTC (0x70/0x71) and the POST/delay port (0x80).
pub const RESERVED_PORTS: [u8; 12] = [
    0x20, 0x21, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71, 0x80, 0xa0, 0xa1,
];

/// An error choosing a hypercall page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HypercallPageError {
    /// The port is claimed by an in-kernel device, so the exit would never reach the VMM.
    #[error("i/o port {port:#x} is claimed by an in-kernel device")]
    ReservedPort {
        /// The refused port.
        port: u8,
    },
}

/// How the hypercall page traps into the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HypercallPageKind {
    /// Intel VMX: `vmcall`.
    Vmcall,
    /// AMD SVM: `vmmcall`.
    Vmmcall,
    /// A port write the VMM sees as an I/O exit: `out port, al`.
    PortIo {
        /// The port (0–255).
        port: u8,
    },
}

impl HypercallPageKind {
    /// A port-I/O page on `port`, refusing [`RESERVED_PORTS`].
    pub fn port_io(port: u8) -> Result<Self, HypercallPageError> {
        if RESERVED_PORTS.contains(&port) {
            return Err(HypercallPageError::ReservedPort { port });
        }
        Ok(Self::PortIo { port })
    }

    /// The trapping instruction's bytes.
    fn trap(self) -> ([u8; 3], usize) {
        match self {
            Self::Vmcall => (VMCALL, 3),
            Self::Vmmcall => (VMMCALL, 3),
            Self::PortIo { port } => ([OUT_IMM8_AL, port, 0], 2),
        }
    }
}

/// A hypercall page's content choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HypercallPage {
    /// The trap convention.
    pub kind: HypercallPageKind,
    /// Start with `endbr64` (the default).
    pub endbr64: bool,
}

impl HypercallPage {
    /// A page of `kind` starting with `endbr64`.
    pub const fn new(kind: HypercallPageKind) -> Self {
        Self {
            kind,
            endbr64: true,
        }
    }

    /// Offset of the trapping instruction within the page.
    pub const fn trap_offset(self) -> u64 {
        if self.endbr64 {
            ENDBR64.len() as u64
        } else {
            0
        }
    }

    /// Length of the trapping instruction (how far RIP moves past it).
    pub fn trap_len(self) -> u64 {
        self.kind.trap().1 as u64
    }

    /// The code bytes at offset 0 (without the filler).
    pub fn code(self) -> ([u8; 8], usize) {
        let mut code = [0; 8];
        let mut len = 0;
        if self.endbr64 {
            code[..4].copy_from_slice(&ENDBR64);
            len = 4;
        }
        let (trap, n) = self.kind.trap();
        code[len..len + n].copy_from_slice(&trap[..n]);
        len += n;
        code[len] = RET;
        (code, len + 1)
    }

    /// Fills `page` with the hypercall code followed by `int3`.
    pub fn write_to(self, page: &mut [u8; PAGE_SIZE as usize]) {
        let (code, len) = self.code();
        page.fill(INT3);
        page[..len].copy_from_slice(&code[..len]);
    }

    /// The full page.
    pub fn bytes(self) -> [u8; PAGE_SIZE as usize] {
        let mut page = [0; PAGE_SIZE as usize];
        self.write_to(&mut page);
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_bytes() {
        let p = HypercallPage::new(HypercallPageKind::Vmcall);
        let (c, n) = p.code();
        assert_eq!(&c[..n], &[0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x01, 0xc1, 0xc3]);
        let p = HypercallPage {
            kind: HypercallPageKind::Vmmcall,
            endbr64: false,
        };
        let (c, n) = p.code();
        assert_eq!(&c[..n], &[0x0f, 0x01, 0xd9, 0xc3]);
        let p = HypercallPage::new(HypercallPageKind::port_io(0xe9).unwrap());
        let (c, n) = p.code();
        assert_eq!(&c[..n], &[0xf3, 0x0f, 0x1e, 0xfa, 0xe6, 0xe9, 0xc3]);
        assert_eq!((p.trap_offset(), p.trap_len()), (4, 2));
        let page = p.bytes();
        assert_eq!(page[7], INT3);
        assert_eq!(page[4095], INT3);
    }

    #[test]
    fn reserved_ports_are_refused() {
        for port in RESERVED_PORTS {
            assert_eq!(
                HypercallPageKind::port_io(port),
                Err(HypercallPageError::ReservedPort { port })
            );
        }
        assert!(HypercallPageKind::port_io(0x99).is_ok());
    }
}
