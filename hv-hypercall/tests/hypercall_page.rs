//! The generated hypercall pages, decoded by an independent decoder (iced-x86) in 64-bit and
//! 32-bit mode: the instructions, their operands, and the `int3` filler.
//!
//! The port-I/O page is executed for real by the reference VMM's tests; this checks its bytes.

use hv_hypercall::hypercall_page::{HypercallPage, HypercallPageKind};
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

fn decode(bytes: &[u8], bitness: u32) -> Vec<Instruction> {
    let mut decoder = Decoder::with_ip(bitness, bytes, 0, DecoderOptions::NONE);
    let mut out = Vec::new();
    while decoder.can_decode() {
        let insn = decoder.decode();
        assert!(
            !insn.is_invalid(),
            "invalid instruction at {:#x}",
            insn.ip()
        );
        out.push(insn);
    }
    out
}

fn check(page: HypercallPage, trap: Mnemonic) {
    for bitness in [64, 32] {
        let bytes = page.bytes();
        let insns = decode(&bytes, bitness);
        let mut it = insns.iter();
        if page.endbr64 {
            let i = it.next().unwrap();
            assert_eq!(i.code(), Code::Endbr64, "{bitness}-bit");
            assert_eq!(i.len(), 4);
        }
        let t = it.next().unwrap();
        assert_eq!(t.mnemonic(), trap, "{bitness}-bit");
        assert_eq!(t.ip(), page.trap_offset());
        assert_eq!(t.len() as u64, page.trap_len());
        if trap == Mnemonic::Out {
            assert_eq!(t.code(), Code::Out_imm8_AL);
            assert_eq!(t.op0_kind(), OpKind::Immediate8);
            assert_eq!(t.op1_register(), Register::AL);
            if let HypercallPageKind::PortIo { port } = page.kind {
                assert_eq!(t.immediate8(), port);
            }
        }
        let r = it.next().unwrap();
        assert_eq!(r.mnemonic(), Mnemonic::Ret, "{bitness}-bit");
        // Everything after the code is int3.
        let rest: Vec<_> = it.collect();
        assert_eq!(rest.len() as u64, 4096 - r.next_ip());
        assert!(rest.iter().all(|i| i.mnemonic() == Mnemonic::Int3));
    }
}

#[test]
fn vmcall_page() {
    check(
        HypercallPage::new(HypercallPageKind::Vmcall),
        Mnemonic::Vmcall,
    );
    check(
        HypercallPage {
            kind: HypercallPageKind::Vmcall,
            endbr64: false,
        },
        Mnemonic::Vmcall,
    );
}

#[test]
fn vmmcall_page() {
    check(
        HypercallPage::new(HypercallPageKind::Vmmcall),
        Mnemonic::Vmmcall,
    );
}

#[test]
fn port_io_pages() {
    for port in [0x00u8, 0x99, 0xe9, 0xff] {
        let kind = HypercallPageKind::port_io(port).unwrap();
        check(HypercallPage::new(kind), Mnemonic::Out);
        check(
            HypercallPage {
                kind,
                endbr64: false,
            },
            Mnemonic::Out,
        );
    }
}
