//! `x86-decode` emulator benchmarks: the host-side cost of completing one intercepted
//! instruction, excluding the VM exit itself (≈ 21 µs for a user-space exit on the project's
//! machines), so the figures show how much of an exit's budget completion takes.
//!
//! - `mmio_store/cold`: `mov [rip+disp], eax` to a device page under 4-level paging, with an
//!   empty translation cache: the instruction is fetched through a full 4-level walk and the
//!   store's address is translated by another one (two walks, eight paging-entry reads), then
//!   decoded, checked, and written to the device.
//! - `mmio_store/warm`: the same with the emulator's `TranslationCache` kept between calls
//!   (`Options::keep_translations`; "warm" = both the code page and the device page are
//!   cached: what a VMM gets by keeping translations while it can rule out page-table changes,
//!   or by seeding the cache with the intercept's GVA→GPA for the data and fetch pages).
//! - `rep_movsb_4k_ram_to_device`: `rep movsb` of 4096 bytes from a RAM page to a device page,
//!   completed in one call (iteration cap 4096): 4096 one-byte device writes in order.
//! - `lock_cmpxchg16b_ram/{cold,warm}`: `lock cmpxchg16b [rdi]` on RAM, through a real
//!   `lock cmpxchg16b` on the host in the memory callback, without and with kept translations.
//!
//! Peer: no other Rust (or C) library completes intercepted instructions behind a
//! register/memory callback interface that can be called in-process (OpenVMM's `x86emu` is not
//! published as a crate; KVM's emulator is in the kernel). For scale, the run also times the
//! decode step alone with this crate's decoder and with iced-x86 on the same bytes.
// The host-side 16-byte compare-exchange needs `lock cmpxchg16b` (inline assembly).
#![allow(unsafe_code)]

use criterion::{criterion_group, Criterion};
use std::hint::black_box;

use x86_decode::emulate::{
    bits, CpuState, Emulator, Memory, MemoryError, Options, Outcome, Region, SegmentAttributes,
    SegmentRegister,
};
use x86_decode::Segment;

const CODE: u64 = 0x7000_0000;
const RAM_PAGE: u64 = 0x7000_1000;
const MMIO: u64 = 0x7000_2000;
const CODE_GPA: u64 = 0x1_0000;
const RAM_GPA: u64 = 0x1_1000;
const MMIO_GPA: u64 = 0xFE00_0000;
const ROOT: u64 = 0x1000;

/// Guest RAM (256 KiB at GPA 0) plus one device page that counts its writes.
struct Guest {
    ram: Vec<u8>,
    device_writes: u64,
    device_last: u64,
}

impl Memory for Guest {
    fn region(&mut self, gpa: u64) -> Region {
        if gpa >> 12 == MMIO_GPA >> 12 {
            Region::Device
        } else {
            Region::Ram
        }
    }
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let at = gpa as usize;
        let src = self
            .ram
            .get(at..at + buf.len())
            .ok_or(MemoryError::Unmapped(gpa))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        if gpa >> 12 == MMIO_GPA >> 12 {
            self.device_writes += 1;
            self.device_last = data.iter().fold(0, |a, &b| a << 8 | u64::from(b));
            return Ok(());
        }
        let at = gpa as usize;
        self.ram
            .get_mut(at..at + data.len())
            .ok_or(MemoryError::Unmapped(gpa))?
            .copy_from_slice(data);
        Ok(())
    }
    fn compare_exchange(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        let at = gpa as usize;
        let cell = self
            .ram
            .get_mut(at..at + current.len())
            .ok_or(MemoryError::Unmapped(gpa))?;
        if current.len() == 16 {
            return Ok(cmpxchg16b(cell, current, new));
        }
        // Single-threaded bench: a plain compare-and-write stands in for the smaller sizes.
        if cell == current {
            cell.copy_from_slice(new);
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// `lock cmpxchg16b` on `cell` (16 bytes, 16-byte aligned: the emulator's contract).
fn cmpxchg16b(cell: &mut [u8], current: &[u8], new: &[u8]) -> bool {
    let q =
        |b: &[u8], k: usize| u64::from_le_bytes(b[k * 8..k * 8 + 8].try_into().unwrap_or([0; 8]));
    let ptr = cell.as_mut_ptr();
    assert!(cell.len() == 16 && (ptr as usize).is_multiple_of(16));
    let ok: u8;
    // SAFETY: `ptr` points to 16 writable, 16-byte-aligned bytes (checked above); rbx is
    // swapped in and out because the compiler reserves it.
    unsafe {
        core::arch::asm!(
            "xchg rbx, {nlo}",
            "lock cmpxchg16b [{p}]",
            "sete {ok}",
            "xchg rbx, {nlo}",
            p = in(reg) ptr,
            nlo = inout(reg) q(new, 0) => _,
            ok = out(reg_byte) ok,
            inout("rax") q(current, 0) => _,
            inout("rdx") q(current, 1) => _,
            in("rcx") q(new, 1),
        );
    }
    ok != 0
}

/// A 64-bit vCPU at CPL 0 with 4-level paging rooted at `ROOT`.
#[derive(Clone)]
struct Vcpu {
    gpr: [u64; 16],
    rip: u64,
    rflags: u64,
}

impl CpuState for Vcpu {
    fn gpr(&mut self, i: usize) -> u64 {
        self.gpr[i]
    }
    fn set_gpr(&mut self, i: usize, v: u64) {
        self.gpr[i] = v;
    }
    fn rip(&mut self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, v: u64) {
        self.rip = v;
    }
    fn rflags(&mut self) -> u64 {
        self.rflags
    }
    fn set_rflags(&mut self, v: u64) {
        self.rflags = v;
    }
    fn segment(&mut self, s: Segment) -> SegmentRegister {
        let attributes = if s == Segment::CS {
            SegmentAttributes::CODE64
        } else {
            SegmentAttributes::FLAT_DATA
        };
        SegmentRegister {
            selector: 0,
            base: 0,
            limit: u32::MAX,
            attributes,
        }
    }
    fn cr0(&mut self) -> u64 {
        bits::CR0_PE | bits::CR0_PG | bits::CR0_WP
    }
    fn cr3(&mut self) -> u64 {
        ROOT
    }
    fn cr4(&mut self) -> u64 {
        bits::CR4_PAE | bits::CR4_OSFXSR
    }
    fn efer(&mut self) -> u64 {
        bits::EFER_LME | bits::EFER_LMA | bits::EFER_NXE
    }
    fn xcr0(&mut self) -> u64 {
        7
    }
    fn vector(&mut self, _: usize) -> [u8; 64] {
        [0; 64]
    }
    fn set_vector(&mut self, _: usize, _: [u8; 64]) {}
    fn opmask(&mut self, _: usize) -> u64 {
        0
    }
}

/// Page tables mapping CODE, RAM_PAGE and MMIO (4 KiB pages, A/D already set), and the code.
fn guest(code: &[u8]) -> Guest {
    let mut ram = vec![0u8; 0x4_0000];
    let mut put =
        |at: u64, v: u64| ram[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
    let (pml4, pdpt, pd, pt) = (ROOT, 0x2000, 0x3000, 0x4000);
    let idx = |la: u64, shift: u32| (la >> shift) & 0x1FF;
    put(pml4 + idx(CODE, 39) * 8, pdpt | 0x23);
    put(pdpt + idx(CODE, 30) * 8, pd | 0x23);
    put(pd + idx(CODE, 21) * 8, pt | 0x23);
    for (la, gpa) in [(CODE, CODE_GPA), (RAM_PAGE, RAM_GPA), (MMIO, MMIO_GPA)] {
        put(pt + idx(la, 12) * 8, gpa | 0x63);
    }
    ram[CODE_GPA as usize..CODE_GPA as usize + code.len()].copy_from_slice(code);
    Guest {
        ram,
        device_writes: 0,
        device_last: 0,
    }
}

fn vcpu() -> Vcpu {
    Vcpu {
        gpr: [0; 16],
        rip: CODE,
        rflags: 2,
    }
}

/// `mov [rip + disp32], eax` aimed at MMIO + 0x10.
fn mmio_store_bytes() -> [u8; 6] {
    let disp = (MMIO + 0x10 - (CODE + 6)) as u32;
    let d = disp.to_le_bytes();
    [0x89, 0x05, d[0], d[1], d[2], d[3]]
}

fn emulator_benches(c: &mut Criterion) {
    let store = mmio_store_bytes();
    let mut g = c.benchmark_group("x86_emu");
    // "Warm": the emulator keeps its translations between calls (see `Options`).
    let warm = Options {
        keep_translations: true,
        ..Options::default()
    };

    // Sanity: each case completes and does what it should before it is timed.
    {
        let mut mem = guest(&store);
        let mut cpu = vcpu();
        cpu.gpr[0] = 0xAABB_CCDD;
        let out = Emulator::new(Options::default()).emulate(&mut cpu, &mut mem, &[]);
        assert_eq!(out, Ok(Outcome::Completed));
        assert_eq!(
            (mem.device_writes, mem.device_last, cpu.rip),
            (1, 0xDDCC_BBAA, CODE + 6)
        );
    }

    g.bench_function("mmio_store/cold", |b| {
        let mut mem = guest(&store);
        let mut cpu = vcpu();
        b.iter(|| {
            cpu.rip = CODE;
            let mut emu = Emulator::new(Options::default());
            black_box(emu.emulate(&mut cpu, &mut mem, &[]))
        })
    });
    g.bench_function("mmio_store/warm", |b| {
        let mut mem = guest(&store);
        let mut cpu = vcpu();
        let mut emu = Emulator::new(warm);
        b.iter(|| {
            cpu.rip = CODE;
            black_box(emu.emulate(&mut cpu, &mut mem, &[]))
        })
    });
    g.bench_function("mmio_store/warm_bytes_supplied", |b| {
        let mut mem = guest(&store);
        let mut cpu = vcpu();
        let mut emu = Emulator::new(warm);
        b.iter(|| {
            cpu.rip = CODE;
            black_box(emu.emulate(&mut cpu, &mut mem, &store))
        })
    });

    // rep movsb, 4 KiB from RAM to the device.
    let movsb = [0xF3, 0xA4];
    let opts = Options {
        max_rep_iterations: 4096,
        ..Options::default()
    };
    {
        let mut mem = guest(&movsb);
        let mut cpu = vcpu();
        cpu.gpr[1] = 4096;
        cpu.gpr[6] = RAM_PAGE;
        cpu.gpr[7] = MMIO;
        let out = Emulator::new(opts).emulate(&mut cpu, &mut mem, &[]);
        assert_eq!(out, Ok(Outcome::Completed));
        assert_eq!((mem.device_writes, cpu.gpr[1]), (4096, 0));
    }
    g.bench_function("rep_movsb_4k_ram_to_device", |b| {
        let mut mem = guest(&movsb);
        let mut cpu = vcpu();
        let mut emu = Emulator::new(opts);
        b.iter(|| {
            cpu.rip = CODE;
            cpu.gpr[1] = 4096;
            cpu.gpr[6] = RAM_PAGE;
            cpu.gpr[7] = MMIO;
            black_box(emu.emulate(&mut cpu, &mut mem, &[]))
        })
    });

    // lock cmpxchg16b [rdi] on RAM: alternately succeeds (memory = RDX:RAX) — the loop keeps
    // RDX:RAX equal to memory so every iteration takes the success path.
    let cx16 = [0xF0, 0x48, 0x0F, 0xC7, 0x0F];
    g.bench_function("lock_cmpxchg16b_ram/cold", |b| {
        let mut mem = guest(&cx16);
        let mut cpu = vcpu();
        let mut emu = Emulator::new(Options::default());
        cpu.gpr[7] = RAM_PAGE;
        let mut n = 0u64;
        b.iter(|| {
            cpu.rip = CODE;
            cpu.gpr[0] = n;
            cpu.gpr[2] = n;
            cpu.gpr[3] = n + 1;
            cpu.gpr[1] = n + 1;
            let out = emu.emulate(&mut cpu, &mut mem, &[]);
            debug_assert_eq!(cpu.rflags & 0x40, 0x40);
            n += 1;
            black_box(out)
        })
    });

    g.bench_function("lock_cmpxchg16b_ram/warm", |b| {
        let mut mem = guest(&cx16);
        let mut cpu = vcpu();
        let mut emu = Emulator::new(warm);
        cpu.gpr[7] = RAM_PAGE;
        let mut n = 0u64;
        b.iter(|| {
            cpu.rip = CODE;
            cpu.gpr[0] = n;
            cpu.gpr[2] = n;
            cpu.gpr[3] = n + 1;
            cpu.gpr[1] = n + 1;
            let out = emu.emulate(&mut cpu, &mut mem, &[]);
            debug_assert_eq!(cpu.rflags & 0x40, 0x40);
            n += 1;
            black_box(out)
        })
    });

    // For scale: decoding the MMIO store alone.
    g.bench_function("decode_only/x86-decode", |b| {
        let d = x86_decode::Decoder::new(x86_decode::Mode::Bits64);
        b.iter(|| black_box(d.decode(black_box(&store), CODE)))
    });
    g.bench_function("decode_only/iced-x86", |b| {
        b.iter(|| {
            let mut d = iced_x86::Decoder::with_ip(
                64,
                black_box(&store),
                CODE,
                iced_x86::DecoderOptions::NONE,
            );
            black_box(d.decode())
        })
    });
    g.finish();
}

criterion_group!(x86_emu, emulator_benches);

fn main() {
    x86_emu();
    Criterion::default().configure_from_args().final_summary();
}
