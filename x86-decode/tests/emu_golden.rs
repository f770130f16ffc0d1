//! Hand-written cases for what the hardware oracle cannot reach from user space: paging
//! faults with exact error codes and CR2 during fetch and data access, segmentation in real,
//! 16/32-bit protected and 64-bit mode, devices, `REP` resumption, single-step, the locked
//! retry protocol, `CMPXCHG16B`, `MOVDIRI`/`MOVDIR64B`, `INS`/`OUTS`, SSE/AVX state checks and
//! EVEX fault suppression.

mod emu_support;

use emu_support::*;
use x86_decode::emulate::paging::pf;
use x86_decode::emulate::{
    bits, Emulator, Exception, Options, Outcome, PageFault, SegmentAttributes, Unsupported,
};

const CODE: u64 = 0x7000_0000;
const DATA: u64 = 0x7001_0000;
/// Linear page mapped to a device.
const MMIO: u64 = 0x7001_3000;
const CODE_GPA: u64 = 0x8000;
const DATA_GPA: u64 = 0x9000;
const MMIO_GPA: u64 = 0xF000_0000;

struct Vm {
    cpu: TestCpu,
    mem: SparseMemory,
    tables: Tables,
    emu: Emulator,
}

/// 64-bit mode, CPL 0, 4-level paging: code page, three RAM pages, a device page, and the
/// page after the device page not present.
fn vm64() -> Vm {
    let mut mem = SparseMemory::new();
    let mut tables = Tables::new(&mut mem, 0x10_0000, 4);
    tables.map(&mut mem, CODE, CODE_GPA, P | RW, RW);
    for k in 0..3 {
        tables.map(
            &mut mem,
            DATA + k * 0x1000,
            DATA_GPA + k * 0x1000,
            P | RW,
            RW,
        );
    }
    tables.map(&mut mem, MMIO, MMIO_GPA, P | RW, RW);
    mem.devices.insert(MMIO_GPA >> 12);
    let mut cpu = TestCpu::long_mode(0x10_0000);
    cpu.rip = CODE;
    Vm {
        cpu,
        mem,
        tables,
        emu: Emulator::new(Options::default()),
    }
}

impl Vm {
    /// Makes the code and data pages user pages (for CPL 3 tests) and switches to CPL 3.
    fn make_user(&mut self) {
        let mut t = Tables {
            root: self.tables.root,
            next: self.tables.next,
            levels: 4,
        };
        t.map(&mut self.mem, CODE, CODE_GPA, P | US, RW | US);
        for k in 0..3 {
            t.map(
                &mut self.mem,
                DATA + k * 0x1000,
                DATA_GPA + k * 0x1000,
                P | RW | US,
                RW | US,
            );
        }
        self.tables.next = t.next;
        self.emu.translation_cache().flush();
        self.cpu.set_user();
    }

    /// No accessed/dirty updates (so compare-exchange counts are the instruction's own).
    fn without_ad_updates(&mut self) {
        self.emu = Emulator::new(Options {
            update_accessed_dirty: false,
            ..Options::default()
        });
    }

    fn run(&mut self, code: &[u8]) -> Outcome {
        let gpa = CODE_GPA + (self.cpu.rip - CODE);
        self.mem.write_bytes(gpa, code);
        self.emu
            .emulate(&mut self.cpu, &mut self.mem, &[])
            .expect("memory callbacks")
    }
}

fn gp0() -> Outcome {
    Outcome::Exception(Exception::GeneralProtection(0))
}

#[test]
fn mmio_store_rip_relative() {
    let mut vm = vm64();
    vm.cpu.gpr[0] = 0x1122_3344_5566_7788;
    // mov [rip + 0x12ffa], eax: next RIP is CODE + 6, so the target is MMIO.
    let out = vm.run(&[0x89, 0x05, 0xFA, 0x2F, 0x01, 0]);
    assert_eq!(out, Outcome::Completed);
    assert_eq!(vm.cpu.rip, CODE + 6);
    assert_eq!(
        vm.mem.device_log,
        vec![(MMIO_GPA, vec![0x88, 0x77, 0x66, 0x55], true)]
    );
}

#[test]
fn page_crossing_store_is_split_into_ram_and_device_parts() {
    let mut vm = vm64();
    // The last RAM page (DATA + 0x2000) is followed by the device page.
    vm.cpu.gpr[7] = MMIO - 2;
    vm.cpu.gpr[0] = 0x0807_0605_0403_0201;
    assert_eq!(vm.run(&[0x48, 0x89, 0x07]), Outcome::Completed); // mov [rdi], rax
    let mut ram = [0u8; 2];
    vm.mem.read_bytes(DATA_GPA + 0x2FFE, &mut ram);
    assert_eq!(ram, [1, 2]);
    assert_eq!(
        vm.mem.device_log,
        vec![(MMIO_GPA, vec![3, 4, 5, 6, 7, 8], true)]
    );
    // A crossing into a not-present page faults at the page start and writes nothing.
    vm.mem.device_log.clear();
    vm.cpu.rip = CODE;
    vm.cpu.gpr[7] = MMIO + 0xFFC;
    let out = vm.run(&[0x48, 0x89, 0x07]);
    let fault = PageFault {
        error_code: pf::W,
        address: MMIO + 0x1000,
    };
    assert_eq!(out, Outcome::Exception(Exception::PageFault(fault)));
    assert!(vm.mem.device_log.is_empty());
    assert_eq!(vm.cpu.rip, CODE);
}

#[test]
fn fetch_crosses_a_page_and_faults_on_the_second() {
    let mut vm = vm64();
    vm.cpu.rip = CODE + 0xFFD;
    vm.cpu.gpr[6] = DATA;
    vm.mem.write_u32(DATA_GPA, 0xCAFE_F00D);
    // mov eax, [rsi + 0x10000000] (8B 86 disp32): 3 bytes on the code page, 3 on the next.
    let bytes = [0x8B, 0x86, 0x00, 0x00, 0x00, 0x10];
    vm.mem.write_bytes(CODE_GPA + 0xFFD, &bytes[..3]);
    let out = vm
        .emu
        .emulate(&mut vm.cpu, &mut vm.mem, &bytes[..2])
        .unwrap();
    // The next page is not mapped: an execute fault at its first byte (I/D reported: NXE).
    let fault = PageFault {
        error_code: pf::ID,
        address: CODE + 0x1000,
    };
    assert_eq!(out, Outcome::Exception(Exception::PageFault(fault)));
    // Map it, put the rest there: the decoder's "need more bytes" drives the second fetch.
    vm.tables
        .map(&mut vm.mem, CODE + 0x1000, 0xB000, P | RW, RW);
    vm.mem.write_bytes(0xB000, &bytes[3..]);
    vm.tables
        .map(&mut vm.mem, DATA + 0x1000_0000, DATA_GPA, P, RW);
    vm.emu.translation_cache().flush();
    let out = vm
        .emu
        .emulate(&mut vm.cpu, &mut vm.mem, &bytes[..2])
        .unwrap();
    assert_eq!(out, Outcome::Completed);
    assert_eq!(vm.cpu.gpr[0], 0xCAFE_F00D);
    assert_eq!(vm.cpu.rip, CODE + 0x1003);
    // Execute-disable on the code page.
    vm.cpu.rip = CODE;
    let leaf = vm.tables.leaf(&vm.mem, CODE);
    vm.mem.write_u64(leaf, CODE_GPA | P | XD);
    vm.emu.translation_cache().flush();
    let fault = PageFault {
        error_code: pf::P | pf::ID,
        address: CODE,
    };
    assert_eq!(
        vm.run(&[0x90]),
        Outcome::Exception(Exception::PageFault(fault))
    );
}

#[test]
fn user_access_to_supervisor_page_and_accessed_dirty_updates() {
    let mut vm = vm64();
    let leaf = vm.tables.leaf(&vm.mem, DATA);
    assert_eq!(vm.mem.read_u64(leaf) & (A | D), 0);
    vm.cpu.gpr[7] = DATA + 8;
    assert_eq!(vm.run(&[0x89, 0x07]), Outcome::Completed); // mov [rdi], eax
    assert_eq!(vm.mem.read_u64(leaf) & (A | D), A | D);
    // CPL 3 writing a read-only user page.
    vm.make_user();
    vm.cpu.rip = CODE;
    let leaf = vm.tables.leaf(&vm.mem, DATA);
    vm.mem.write_u64(leaf, DATA_GPA | P | US | A | D);
    vm.emu.translation_cache().flush();
    let fault = PageFault {
        error_code: pf::P | pf::W | pf::U,
        address: DATA + 8,
    };
    assert_eq!(
        vm.run(&[0x89, 0x07]),
        Outcome::Exception(Exception::PageFault(fault))
    );
}

#[test]
fn rep_movsb_is_resumable_and_single_steps() {
    let mut vm = vm64();
    vm.emu = Emulator::new(Options {
        max_rep_iterations: 4,
        ..Options::default()
    });
    vm.mem.write_bytes(DATA_GPA, b"0123456789");
    vm.cpu.gpr[6] = DATA;
    vm.cpu.gpr[7] = MMIO + 0x10;
    vm.cpu.gpr[1] = 10;
    assert_eq!(vm.run(&[0xF3, 0xA4]), Outcome::Incomplete);
    assert_eq!(
        (vm.cpu.gpr[1], vm.cpu.gpr[6], vm.cpu.gpr[7], vm.cpu.rip),
        (6, DATA + 4, MMIO + 0x14, CODE)
    );
    assert_eq!(vm.run(&[0xF3, 0xA4]), Outcome::Incomplete);
    assert_eq!(vm.run(&[0xF3, 0xA4]), Outcome::Completed);
    assert_eq!((vm.cpu.gpr[1], vm.cpu.rip), (0, CODE + 2));
    // Ten one-byte device writes, in order.
    let writes: Vec<u8> = vm
        .mem
        .device_log
        .iter()
        .map(|(_, d, w)| {
            assert!(*w);
            assert_eq!(d.len(), 1);
            d[0]
        })
        .collect();
    assert_eq!(writes, b"0123456789");
    // With TF: one iteration per call, #DB after each, RIP stays until the last.
    vm.cpu.rip = CODE;
    vm.cpu.gpr[1] = 2;
    vm.cpu.rflags |= bits::RFLAGS_TF;
    assert_eq!(vm.run(&[0xF3, 0xAA]), Outcome::SingleStep); // rep stosb
    assert_eq!((vm.cpu.gpr[1], vm.cpu.rip), (1, CODE));
    assert_eq!(vm.run(&[0xF3, 0xAA]), Outcome::SingleStep);
    assert_eq!((vm.cpu.gpr[1], vm.cpu.rip), (0, CODE + 2));
}

#[test]
fn single_step_advances_rip_and_clears_rf() {
    let mut vm = vm64();
    vm.cpu.rflags |= bits::RFLAGS_TF | bits::RFLAGS_RF;
    vm.cpu.gpr[6] = DATA;
    assert_eq!(vm.run(&[0x8B, 0x06]), Outcome::SingleStep); // mov eax, [rsi]
    assert_eq!(vm.cpu.rip, CODE + 2);
    assert_eq!(vm.cpu.rflags & bits::RFLAGS_RF, 0);
    assert_ne!(vm.cpu.rflags & bits::RFLAGS_TF, 0);
}

#[test]
fn lost_race_retries_without_changing_anything() {
    let mut vm = vm64();
    vm.without_ad_updates();
    vm.cpu.gpr[7] = DATA + 6; // misaligned: widened to an aligned 8-byte compare-exchange
    vm.cpu.gpr[0] = 5;
    vm.mem.write_u32(DATA_GPA + 6, 10);
    vm.mem.fail_next_cmpxchg = 1;
    let before = vm.cpu.clone();
    assert_eq!(vm.run(&[0xF0, 0x01, 0x07]), Outcome::Retry); // lock add [rdi], eax
    assert_eq!(vm.cpu, before);
    let mut b = [0u8; 4];
    vm.mem.read_bytes(DATA_GPA + 6, &mut b);
    assert_eq!(u32::from_le_bytes(b), 10);
    assert_eq!(vm.run(&[0xF0, 0x01, 0x07]), Outcome::Completed);
    vm.mem.read_bytes(DATA_GPA + 6, &mut b);
    assert_eq!(u32::from_le_bytes(b), 15);
    assert_eq!(vm.mem.cmpxchg_calls, 2);
    // XCHG with memory is locked without a prefix.
    vm.cpu.rip = CODE;
    assert_eq!(vm.run(&[0x87, 0x07]), Outcome::Completed);
    assert_eq!(vm.mem.cmpxchg_calls, 3);
    // A locked operation on a device is a read and a write, no compare-exchange.
    vm.cpu.rip = CODE;
    vm.cpu.gpr[7] = MMIO;
    assert_eq!(vm.run(&[0xF0, 0x01, 0x07]), Outcome::Completed);
    assert_eq!(vm.mem.cmpxchg_calls, 3);
    assert_eq!(vm.mem.device_log.len(), 2);
    assert!(!vm.mem.device_log[0].2 && vm.mem.device_log[1].2);
}

#[test]
fn cmpxchg16b_is_one_atomic_compare_exchange() {
    let mut vm = vm64();
    vm.without_ad_updates();
    vm.cpu.gpr[7] = DATA + 0x20;
    vm.mem.write_u64(DATA_GPA + 0x20, 1);
    vm.mem.write_u64(DATA_GPA + 0x28, 2);
    vm.cpu.gpr[0] = 1; // rax
    vm.cpu.gpr[2] = 2; // rdx
    vm.cpu.gpr[3] = 0xB; // rbx
    vm.cpu.gpr[1] = 0xC; // rcx
    let insn = [0xF0, 0x48, 0x0F, 0xC7, 0x0F]; // lock cmpxchg16b [rdi]
    assert_eq!(vm.run(&insn), Outcome::Completed);
    assert_eq!(
        (
            vm.mem.read_u64(DATA_GPA + 0x20),
            vm.mem.read_u64(DATA_GPA + 0x28)
        ),
        (0xB, 0xC)
    );
    assert_eq!(vm.mem.cmpxchg_calls, 1);
    assert_ne!(vm.cpu.rflags & 0x40, 0);
    // Mismatch: RDX:RAX loaded, ZF clear.
    vm.cpu.rip = CODE;
    assert_eq!(vm.run(&insn), Outcome::Completed);
    assert_eq!((vm.cpu.gpr[0], vm.cpu.gpr[2]), (0xB, 0xC));
    assert_eq!(vm.cpu.rflags & 0x40, 0);
    // Not 16-byte aligned: #GP(0).
    vm.cpu.rip = CODE;
    vm.cpu.gpr[7] = DATA + 0x28;
    assert_eq!(vm.run(&insn), gp0());
}

#[test]
fn movdiri_and_movdir64b() {
    let mut vm = vm64();
    vm.cpu.gpr[7] = MMIO + 0x40;
    vm.cpu.gpr[0] = 0xDEAD_BEEF;
    assert_eq!(vm.run(&[0x0F, 0x38, 0xF9, 0x07]), Outcome::Completed); // movdiri [rdi], eax
    assert_eq!(
        vm.mem.device_log[0],
        (MMIO_GPA + 0x40, vec![0xEF, 0xBE, 0xAD, 0xDE], true)
    );
    // movdir64b rax, [rsi]: 64 bytes from DS:[rsi] to ES:[rax] in one write.
    let src: Vec<u8> = (0..64).collect();
    vm.mem.write_bytes(DATA_GPA + 0x100, &src);
    vm.cpu.rip = CODE;
    vm.cpu.gpr[6] = DATA + 0x100;
    vm.cpu.gpr[0] = MMIO + 0x80;
    assert_eq!(vm.run(&[0x66, 0x0F, 0x38, 0xF8, 0x06]), Outcome::Completed);
    assert_eq!(vm.mem.device_log[1], (MMIO_GPA + 0x80, src, true));
    vm.cpu.rip = CODE;
    vm.cpu.gpr[0] = MMIO + 0x90;
    assert_eq!(vm.run(&[0x66, 0x0F, 0x38, 0xF8, 0x06]), gp0());
}

#[test]
fn invalid_lock_divide_error_and_unsupported() {
    let mut vm = vm64();
    vm.cpu.gpr[7] = DATA;
    assert_eq!(
        vm.run(&[0xF0, 0x89, 0x07]),
        Outcome::Exception(Exception::InvalidOpcode)
    );
    vm.cpu.gpr[1] = 0;
    assert_eq!(
        vm.run(&[0xF7, 0xF1]),
        Outcome::Exception(Exception::DivideError)
    ); // div ecx
    match vm.run(&[0x0F, 0xA2]) {
        Outcome::Unsupported(Unsupported::Instruction(i)) => assert_eq!(i.len(), 2), // cpuid
        other => panic!("{other:?}"),
    }
    // A 16-byte prefix run is longer than 15 bytes: #GP(0).
    let mut long = vec![0x66; 15];
    long.push(0x90);
    assert_eq!(vm.run(&long), gp0());
    assert_eq!(vm.cpu.rip, CODE);
}

#[test]
fn ins_and_outs() {
    let mut vm = vm64();
    vm.cpu.gpr[2] = 0x3F8; // dx
    vm.cpu.gpr[6] = DATA;
    vm.cpu.gpr[1] = 3;
    vm.mem.write_bytes(DATA_GPA, b"abc");
    assert_eq!(vm.run(&[0xF3, 0x6E]), Outcome::Completed); // rep outsb
    let out: Vec<u8> = vm.mem.device_log.iter().map(|e| e.1[0]).collect();
    assert_eq!(out, b"abc");
    vm.cpu.rip = CODE;
    vm.cpu.gpr[7] = DATA + 0x10;
    assert_eq!(vm.run(&[0x66, 0x6D]), Outcome::Completed); // insw
    let mut w = [0u8; 2];
    vm.mem.read_bytes(DATA_GPA + 0x10, &mut w);
    assert_eq!(w, [0xF8, 0xF9]);
    assert_eq!(vm.cpu.gpr[7], DATA + 0x12);
    // CPL 3 with IOPL 0: the TSS bitmap would decide, which the emulator does not model.
    vm.make_user();
    vm.cpu.rip = CODE;
    assert_eq!(
        vm.run(&[0x6E]),
        Outcome::Unsupported(Unsupported::IoPermission)
    );
}

#[test]
fn sse_and_avx_state_checks() {
    let mut vm = vm64();
    vm.cpu.gpr[6] = DATA;
    vm.cpu.cr0 |= bits::CR0_TS;
    assert_eq!(
        vm.run(&[0x0F, 0x10, 0x06]),
        Outcome::Exception(Exception::DeviceNotAvailable)
    );
    vm.cpu.cr0 &= !bits::CR0_TS;
    vm.cpu.cr4 &= !bits::CR4_OSFXSR;
    assert_eq!(
        vm.run(&[0x0F, 0x10, 0x06]),
        Outcome::Exception(Exception::InvalidOpcode)
    );
    vm.cpu.cr4 |= bits::CR4_OSFXSR;
    vm.cpu.xcr0 = 1;
    assert_eq!(
        vm.run(&[0xC5, 0xF8, 0x10, 0x06]),
        Outcome::Exception(Exception::InvalidOpcode)
    );
    vm.cpu.xcr0 = 7;
    vm.mem.write_bytes(DATA_GPA, &[7; 16]);
    assert_eq!(vm.run(&[0xC5, 0xF8, 0x10, 0x06]), Outcome::Completed); // vmovups xmm0, [rsi]
    assert_eq!(
        &vm.cpu.zmm[0][..17],
        &[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0]
    );
    // movaps from a misaligned address: #GP(0).
    vm.cpu.rip = CODE;
    vm.cpu.gpr[6] = DATA + 8;
    assert_eq!(vm.run(&[0x0F, 0x28, 0x06]), gp0());
}

#[test]
fn evex_masked_store_does_not_touch_masked_off_elements() {
    let mut vm = vm64();
    // 64 bytes ending 32 bytes into the not-present page after the device page.
    vm.cpu.gpr[7] = MMIO + 0x1000 - 32;
    vm.cpu.zmm[0] = [0xAB; 64];
    vm.cpu.k[1] = 0xFF; // dwords 0..7: the 32 bytes before the page end
    let insn = [0x62, 0xF1, 0x7E, 0x49, 0x7F, 0x07]; // vmovdqu32 [rdi]{k1}, zmm0
    assert_eq!(vm.run(&insn), Outcome::Completed);
    assert_eq!(
        vm.mem.device_log,
        vec![(MMIO_GPA + 0xFE0, vec![0xAB; 32], true)]
    );
    vm.cpu.rip = CODE;
    vm.cpu.k[1] = 0x1FF;
    let fault = PageFault {
        error_code: pf::W,
        address: MMIO + 0x1000,
    };
    assert_eq!(
        vm.run(&insn),
        Outcome::Exception(Exception::PageFault(fault))
    );
    assert_eq!(
        vm.mem.device_log.len(),
        1,
        "nothing written when a later piece faults"
    );
}

/// Fault suppression covers canonical-form checks too: masked-off elements past the top of the
/// lower canonical half do not fault, a load or store of the enabled ones completes.
#[test]
fn evex_masked_off_elements_may_be_non_canonical() {
    const TOP: u64 = 0x7FFF_FFFF_F000;
    const TOP_GPA: u64 = 0x20_0000;
    for (insn, store) in [
        ([0x62, 0xF1, 0x7E, 0x49, 0x7F, 0x00], true), // vmovdqu32 [rax]{k1}, zmm0
        ([0x62, 0xF1, 0x7E, 0x49, 0x6F, 0x08], false), // vmovdqu32 zmm1{k1}, [rax]
    ] {
        let mut vm = vm64();
        vm.tables.map(&mut vm.mem, TOP, TOP_GPA, P | RW, RW);
        vm.mem.write_bytes(TOP_GPA + 0xFF0, &[0x5A; 16]);
        // Elements 0-3 (16 bytes) are the last canonical bytes; 4-15 would not be.
        vm.cpu.gpr[0] = TOP + 0xFF0;
        vm.cpu.k[1] = 0xF;
        vm.cpu.zmm[0] = [0xC3; 64];
        assert_eq!(vm.run(&insn), Outcome::Completed);
        let mut got = [0u8; 16];
        vm.mem.read_bytes(TOP_GPA + 0xFF0, &mut got);
        if store {
            assert_eq!(got, [0xC3; 16]);
        } else {
            assert_eq!(&vm.cpu.zmm[1][..16], &[0x5A; 16]);
        }
        // With an element past the canonical boundary enabled: #GP(0), nothing written.
        vm.cpu.rip = CODE;
        vm.cpu.k[1] = 0x1F;
        vm.mem.write_bytes(TOP_GPA + 0xFF0, &[0x5A; 16]);
        assert_eq!(vm.run(&insn), gp0());
        vm.mem.read_bytes(TOP_GPA + 0xFF0, &mut got);
        assert_eq!(got, [0x5A; 16]);
    }
}

/// `REP STOS` at linear address 0 in 64-bit mode: the bytes to the address-size wrap are 2^64,
/// which must not overflow (a panic in builds with overflow checks).
#[test]
fn rep_stos_at_linear_address_zero() {
    let mut vm = vm64();
    vm.tables.map(&mut vm.mem, 0, 0x30_0000, P | RW, RW);
    vm.cpu.gpr[1] = 16;
    vm.cpu.gpr[7] = 0;
    vm.cpu.gpr[0] = 0xAB;
    assert_eq!(vm.run(&[0xF3, 0xAA]), Outcome::Completed);
    assert_eq!((vm.cpu.gpr[1], vm.cpu.gpr[7]), (0, 16));
    let mut got = [0u8; 17];
    vm.mem.read_bytes(0x30_0000, &mut got);
    assert_eq!(&got[..16], &[0xAB; 16]);
    assert_eq!(got[16], 0);
}

#[test]
fn segmentation_in_protected_mode() {
    let mut cpu = TestCpu::protected32();
    let mut mem = SparseMemory::new();
    let mut emu = Emulator::new(Options::default());
    let mut run = |cpu: &mut TestCpu, mem: &mut SparseMemory, code: &[u8]| {
        cpu.rip = 0x1000;
        mem.write_bytes(0x1000, code);
        emu.emulate(cpu, mem, &[]).unwrap()
    };
    // DS: base 0x10000, limit 0xFFF.
    cpu.segs[3].base = 0x10000;
    cpu.segs[3].limit = 0xFFF;
    cpu.gpr[3] = 0xFFC;
    cpu.gpr[0] = 0x4433_2211;
    assert_eq!(run(&mut cpu, &mut mem, &[0x89, 0x03]), Outcome::Completed); // mov [ebx], eax
    assert_eq!(mem.read_u64(0x10FFC) as u32, 0x4433_2211);
    cpu.gpr[3] = 0xFFD;
    assert_eq!(run(&mut cpu, &mut mem, &[0x89, 0x03]), gp0());
    // Read-only data segment: writes #GP(0), reads fine.
    cpu.segs[3].attributes = SegmentAttributes(0xC091);
    cpu.gpr[3] = 0x10;
    assert_eq!(run(&mut cpu, &mut mem, &[0x89, 0x03]), gp0());
    assert_eq!(run(&mut cpu, &mut mem, &[0x8B, 0x03]), Outcome::Completed);
    // Expand-down, 32-bit: valid offsets are limit+1 ..= 0xFFFF_FFFF.
    cpu.segs[3].attributes = SegmentAttributes(0xC097);
    cpu.gpr[3] = 0x800;
    assert_eq!(run(&mut cpu, &mut mem, &[0x89, 0x03]), gp0());
    cpu.gpr[3] = 0x2000;
    cpu.gpr[0] = 0x4433_2211;
    assert_eq!(run(&mut cpu, &mut mem, &[0x89, 0x03]), Outcome::Completed);
    assert_eq!(mem.read_u64(0x12000) as u32, 0x4433_2211);
    // SS-relative beyond the stack limit: #SS(0).
    cpu.segs[2].limit = 0xFFFF;
    cpu.gpr[5] = 0xFFF8;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x8B, 0x45, 0x10]),
        Outcome::Exception(Exception::StackFault(0))
    );
    // An unusable ES (null selector) for MOVSB's destination: #GP(0).
    cpu.segs[3].attributes = SegmentAttributes::FLAT_DATA;
    cpu.segs[0].attributes = SegmentAttributes(0);
    assert_eq!(run(&mut cpu, &mut mem, &[0xA4]), gp0());
    // CS-relative read of an execute-only code segment: #GP(0).
    cpu.segs[1].attributes = SegmentAttributes(0xC099);
    assert_eq!(run(&mut cpu, &mut mem, &[0x2E, 0x8B, 0x03]), gp0());
    // A readable code segment can be read.
    cpu.segs[1].attributes = SegmentAttributes::CODE32;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x2E, 0x8B, 0x03]),
        Outcome::Completed
    );
}

#[test]
fn real_mode_addressing_wraps_at_16_bits() {
    let mut cpu = TestCpu::real_mode();
    let mut mem = SparseMemory::new();
    let mut emu = Emulator::new(Options::default());
    cpu.segs[1].base = 0x2000; // CS = 0x200
    cpu.segs[3].base = 0x10000; // DS = 0x1000
    cpu.rip = 0x10;
    mem.write_bytes(0x2010, &[0x8B, 0x00]); // mov ax, [bx+si]
    cpu.gpr[3] = 0xFFFF;
    cpu.gpr[6] = 2;
    mem.write_bytes(0x10001, &[0x34, 0x12]);
    assert_eq!(
        emu.emulate(&mut cpu, &mut mem, &[]).unwrap(),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[0] & 0xFFFF, 0x1234);
    assert_eq!(cpu.rip, 0x12);
    // A word at offset 0xFFFF exceeds the 64 KiB limit: #GP(0).
    cpu.rip = 0x10;
    cpu.gpr[3] = 0xFFFF;
    cpu.gpr[6] = 0;
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]).unwrap(), gp0());
    // lodsw with SI = 0xFFFE wraps SI to 0 (16-bit address size).
    cpu.rip = 0x20;
    mem.write_bytes(0x2020, &[0xAD]);
    cpu.gpr[6] = 0xFFFE;
    mem.write_bytes(0x1FFFE, &[0x78, 0x56]);
    assert_eq!(
        emu.emulate(&mut cpu, &mut mem, &[]).unwrap(),
        Outcome::Completed
    );
    assert_eq!((cpu.gpr[0] & 0xFFFF, cpu.gpr[6]), (0x5678, 0));
    // An instruction whose bytes run past IP 0xFFFF does not wrap to offset 0: #GP(0), and
    // nothing is done. `mov [bx+0x10], ax` = 89 47 10 with the 10 at offset 0x10000.
    cpu.segs[1].base = 0;
    cpu.rip = 0xFFFE;
    mem.write_bytes(0xFFFE, &[0x89, 0x47]);
    mem.write_bytes(0, &[0x10]);
    cpu.gpr[3] = 0x100;
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]).unwrap(), gp0());
    let mut untouched = [0u8; 2];
    mem.read_bytes(0x110, &mut untouched);
    assert_eq!((untouched, cpu.rip), ([0, 0], 0xFFFE));
}

#[test]
fn long_mode_segments_and_canonical_addresses() {
    let mut vm = vm64();
    vm.cpu.segs[4].base = DATA; // FS
    vm.cpu.gpr[7] = 0x10;
    vm.mem.write_u32(DATA_GPA + 0x10, 0x600D);
    assert_eq!(vm.run(&[0x64, 0x8B, 0x07]), Outcome::Completed); // mov eax, fs:[rdi]
    assert_eq!(vm.cpu.gpr[0], 0x600D);
    // DS/ES/SS bases are ignored in 64-bit mode.
    vm.cpu.rip = CODE;
    vm.cpu.segs[3].base = 0x1234_0000;
    vm.cpu.gpr[7] = DATA + 0x10;
    assert_eq!(vm.run(&[0x8B, 0x07]), Outcome::Completed);
    // Non-canonical: #GP(0), or #SS(0) through RSP/RBP.
    vm.cpu.rip = CODE;
    vm.cpu.gpr[7] = 0x8000_0000_0000;
    assert_eq!(vm.run(&[0x8B, 0x07]), gp0());
    vm.cpu.gpr[4] = 0x8000_0000_0000;
    assert_eq!(
        vm.run(&[0x8B, 0x44, 0x24, 0x08]),
        Outcome::Exception(Exception::StackFault(0))
    );
    // An access whose last byte is non-canonical.
    vm.cpu.gpr[7] = 0x7FFF_FFFF_FFFE;
    assert_eq!(vm.run(&[0x8B, 0x07]), gp0());
}

#[test]
fn alignment_check_at_cpl3() {
    let mut vm = vm64();
    vm.make_user();
    vm.cpu.rflags |= 1 << 18;
    vm.cpu.gpr[7] = DATA + 2;
    assert_eq!(
        vm.run(&[0x89, 0x07]),
        Outcome::Exception(Exception::AlignmentCheck)
    );
    // Without CR0.AM no check.
    vm.cpu.cr0 &= !bits::CR0_AM;
    assert_eq!(vm.run(&[0x89, 0x07]), Outcome::Completed);
}

#[test]
fn supplied_bytes_need_not_be_complete_or_present() {
    let mut vm = vm64();
    vm.cpu.gpr[7] = DATA;
    vm.cpu.gpr[0] = 0x99;
    // The bytes come with the intercept only; memory at RIP holds something else.
    vm.mem.write_bytes(CODE_GPA, &[0xCC; 16]);
    let out = vm
        .emu
        .emulate(&mut vm.cpu, &mut vm.mem, &[0x88, 0x07, 0xCC, 0xCC])
        .unwrap();
    assert_eq!(out, Outcome::Completed); // mov [rdi], al
    assert_eq!(vm.mem.read_u64(DATA_GPA) & 0xFF, 0x99);
    assert_eq!(vm.cpu.rip, CODE + 2);
}
