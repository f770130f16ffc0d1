//! Atomicity: a locked instruction completed by the emulator races the same instruction run
//! natively on another thread, on the same RAM. The outcomes must be exactly those the
//! hardware allows: every fetch-and-add returns a distinct old value and none is lost, a
//! 128-bit counter advanced by `CMPXCHG16B` on both sides is never torn, and a misaligned
//! locked operation (widened by the emulator to an aligned compare-exchange) does not disturb
//! its neighbours' concurrent updates.
#![cfg(target_arch = "x86_64")]
// Native locked instructions and atomic views of the shared page; each block says why.
#![allow(unsafe_code, clippy::multiple_unsafe_ops_per_block)]

mod emu_support;

use emu_support::*;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Barrier;
use x86_decode::emulate::{Emulator, Memory, MemoryError, Options, Outcome, Region};

/// Guest RAM page 0 (GPA 0..0x1000) is a host page shared with a native thread; everything
/// else (page tables) is private.
struct Shared<'a> {
    page: &'a [AtomicU64; 512],
    private: SparseMemory,
}

impl Shared<'_> {
    fn base(&self) -> *mut u8 {
        self.page.as_ptr() as *mut u8
    }
}

impl Memory for Shared<'_> {
    fn region(&mut self, _: u64) -> Region {
        Region::Ram
    }
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if gpa >= 0x1000 {
            return self.private.read(gpa, buf);
        }
        for (k, b) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds of the shared page; byte-wise atomic loads tolerate concurrent
            // writers.
            *b = unsafe { AtomicU8::from_ptr(self.base().add(gpa as usize + k)) }
                .load(Ordering::SeqCst);
        }
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        if gpa >= 0x1000 {
            return self.private.write(gpa, data);
        }
        for (k, b) in data.iter().enumerate() {
            // SAFETY: as in `read`.
            unsafe { AtomicU8::from_ptr(self.base().add(gpa as usize + k)) }
                .store(*b, Ordering::SeqCst);
        }
        Ok(())
    }
    fn compare_exchange(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        if gpa >= 0x1000 {
            return self.private.compare_exchange(gpa, current, new);
        }
        let p = self.base().wrapping_add(gpa as usize);
        // SAFETY: `gpa` is aligned to the size (the emulator's contract) and inside the page.
        let ok = unsafe {
            match current.len() {
                1 => AtomicU8::from_ptr(p)
                    .compare_exchange(current[0], new[0], Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                2 => AtomicU16::from_ptr(p.cast())
                    .compare_exchange(le16(current), le16(new), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                4 => AtomicU32::from_ptr(p.cast())
                    .compare_exchange(le32(current), le32(new), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                8 => AtomicU64::from_ptr(p.cast())
                    .compare_exchange(le64(current), le64(new), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok(),
                16 => cmpxchg16b(p, current, new),
                n => panic!("compare-exchange of {n} bytes"),
            }
        };
        Ok(ok)
    }
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().unwrap())
}
fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap())
}

/// `lock cmpxchg16b [p]`; `p` 16-byte aligned.
unsafe fn cmpxchg16b(p: *mut u8, current: &[u8], new: &[u8]) -> bool {
    let (mut lo, mut hi) = (le64(&current[..8]), le64(&current[8..]));
    let (nlo, nhi) = (le64(&new[..8]), le64(&new[8..]));
    let ok: u8;
    // SAFETY: the caller guarantees `p` is valid and aligned; rbx is saved around the
    // instruction because the compiler may use it.
    unsafe {
        core::arch::asm!(
            "xchg rbx, {nlo}",
            "lock cmpxchg16b [{p}]",
            "sete {ok}",
            "xchg rbx, {nlo}",
            p = in(reg) p,
            nlo = inout(reg) nlo => _,
            ok = out(reg_byte) ok,
            inout("rax") lo,
            inout("rdx") hi,
            in("rcx") nhi,
        );
    }
    let _ = (lo, hi);
    ok != 0
}

/// A 64-bit CPU whose page tables identity-map GPA 0..0x1000 (user-irrelevant, CPL 0).
fn setup(page: &[AtomicU64; 512]) -> (TestCpu, Shared<'_>) {
    let mut private = SparseMemory::new();
    let mut t = Tables::new(&mut private, 0x10_0000, 4);
    t.map(&mut private, 0, 0, P | RW | A | D, RW);
    let cpu = TestCpu::long_mode(0x10_0000);
    (cpu, Shared { page, private })
}

/// Runs one instruction to completion, retrying on `Retry`; returns the number of retries.
fn complete(emu: &mut Emulator, cpu: &mut TestCpu, mem: &mut Shared<'_>, bytes: &[u8]) -> u64 {
    let mut retries = 0;
    loop {
        cpu.rip = 0x4000_0000;
        match emu.emulate(cpu, mem, bytes).expect("memory") {
            Outcome::Completed => return retries,
            Outcome::Retry => retries += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
}

const N: u64 = 20_000;

/// Sets the flag when dropped, so the native thread stops even if the emulator thread panics.
struct Finish<'a>(&'a AtomicBool);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn locked_xadd_races_native_xadd() {
    let page: &[AtomicU64; 512] = Box::leak(Box::new([const { AtomicU64::new(0) }; 512]));
    let counter = &page[8]; // GPA 0x40
    let barrier = Barrier::new(2);
    // The native thread keeps incrementing for as long as the emulator runs (at least N).
    let finished = AtomicBool::new(false);
    let (emulated, native) = std::thread::scope(|s| {
        let e = s.spawn(|| {
            let (mut cpu, mut mem) = setup(page);
            let mut emu = Emulator::new(Options::default());
            let _finish = Finish(&finished);
            let mut olds = Vec::with_capacity(N as usize);
            let mut retries = 0;
            barrier.wait();
            for _ in 0..N {
                cpu.gpr[0] = 1;
                cpu.gpr[7] = 0x40;
                // lock xadd [rdi], rax
                retries += complete(
                    &mut emu,
                    &mut cpu,
                    &mut mem,
                    &[0xF0, 0x48, 0x0F, 0xC1, 0x07],
                );
                olds.push(cpu.gpr[0]);
            }
            (olds, retries)
        });
        let n = s.spawn(|| {
            let mut olds = Vec::with_capacity(N as usize);
            barrier.wait();
            while olds.len() < N as usize || !finished.load(Ordering::SeqCst) {
                let mut v: u64 = 1;
                // SAFETY: `counter` is a valid, aligned u64.
                unsafe {
                    core::arch::asm!("lock xadd [{p}], {v}", p = in(reg) counter.as_ptr(), v = inout(reg) v);
                }
                olds.push(v);
            }
            olds
        });
        (e.join().unwrap(), n.join().unwrap())
    });
    let (emu_olds, retries) = emulated;
    let total = N + native.len() as u64;
    assert_eq!(
        counter.load(Ordering::SeqCst),
        total,
        "an increment was lost"
    );
    let mut all: Vec<u64> = emu_olds.iter().chain(&native).copied().collect();
    all.sort_unstable();
    assert!(
        all.iter().copied().eq(0..total),
        "old values are not a permutation"
    );
    println!(
        "lock xadd: {N} emulated + {} native increments, {retries} emulator retries",
        native.len()
    );
}

#[test]
fn cmpxchg16b_counter_is_never_torn() {
    let page: &[AtomicU64; 512] = Box::leak(Box::new([const { AtomicU64::new(0) }; 512]));
    let (lo, hi) = (&page[16], &page[17]); // GPA 0x80, 16-byte aligned
    let barrier = Barrier::new(2);
    let finished = AtomicBool::new(false);
    let native_done = std::thread::scope(|s| {
        s.spawn(|| {
            let (mut cpu, mut mem) = setup(page);
            let mut emu = Emulator::new(Options::default());
            let _finish = Finish(&finished);
            barrier.wait();
            let mut done = 0;
            while done < N {
                // Read both halves with the instruction itself: a failing CMPXCHG16B loads them,
                // a succeeding one (RCX:RBX = RDX:RAX) writes back what was there.
                cpu.gpr[7] = 0x80;
                cpu.gpr[3] = cpu.gpr[0];
                cpu.gpr[1] = cpu.gpr[2];
                complete(
                    &mut emu,
                    &mut cpu,
                    &mut mem,
                    &[0xF0, 0x48, 0x0F, 0xC7, 0x0F],
                );
                let (a, d) = (cpu.gpr[0], cpu.gpr[2]);
                assert_eq!(a, d, "torn 128-bit value seen by the emulator");
                cpu.gpr[3] = a + 1;
                cpu.gpr[1] = d + 1;
                complete(
                    &mut emu,
                    &mut cpu,
                    &mut mem,
                    &[0xF0, 0x48, 0x0F, 0xC7, 0x0F],
                );
                if cpu.rflags & 0x40 != 0 {
                    done += 1;
                }
            }
        });
        let native = s.spawn(|| {
            barrier.wait();
            let mut done = 0u64;
            while done < N || !finished.load(Ordering::SeqCst) {
                let cur = [lo.load(Ordering::SeqCst), hi.load(Ordering::SeqCst)];
                let bytes = |v: [u64; 2]| {
                    let mut b = [0u8; 16];
                    b[..8].copy_from_slice(&v[0].to_le_bytes());
                    b[8..].copy_from_slice(&v[1].to_le_bytes());
                    b
                };
                // SAFETY: `lo` is 16-byte aligned (page offset 0x80) and valid.
                if unsafe {
                    cmpxchg16b(
                        lo.as_ptr().cast(),
                        &bytes(cur),
                        &bytes([cur[0] + 1, cur[1] + 1]),
                    )
                } {
                    done += 1;
                }
            }
            done
        });
        native.join().unwrap()
    });
    let total = N + native_done;
    assert_eq!(
        (lo.load(Ordering::SeqCst), hi.load(Ordering::SeqCst)),
        (total, total)
    );
}

#[test]
fn misaligned_locked_add_does_not_disturb_neighbours() {
    let page: &[AtomicU64; 512] = Box::leak(Box::new([const { AtomicU64::new(0) }; 512]));
    let word = &page[32]; // GPA 0x100
    let barrier = Barrier::new(2);
    let finished = AtomicBool::new(false);
    let native_adds = std::thread::scope(|s| {
        s.spawn(|| {
            let (mut cpu, mut mem) = setup(page);
            let mut emu = Emulator::new(Options::default());
            let _finish = Finish(&finished);
            barrier.wait();
            for _ in 0..N {
                cpu.gpr[7] = 0x101;
                cpu.gpr[0] = 1;
                // lock add word [rdi], ax — bytes 1..2 of the qword, widened to 4 or 8 bytes.
                complete(&mut emu, &mut cpu, &mut mem, &[0xF0, 0x66, 0x01, 0x07]);
            }
        });
        let native = s.spawn(|| {
            barrier.wait();
            let hi: *mut u32 = word.as_ptr().cast::<u32>().wrapping_add(1);
            let mut n = 0u64;
            while n < N || !finished.load(Ordering::SeqCst) {
                // SAFETY: bytes 4..7 of the aligned qword.
                unsafe { core::arch::asm!("lock add dword ptr [{p}], 1", p = in(reg) hi) };
                n += 1;
            }
            n
        });
        native.join().unwrap()
    });
    let v = word.load(Ordering::SeqCst);
    assert_eq!((v >> 8) & 0xFFFF, N, "emulated misaligned adds");
    assert_eq!(
        v >> 32,
        native_adds & 0xFFFF_FFFF,
        "native adds on the neighbouring dword"
    );
    assert_eq!(v & 0xFF, 0);
    assert_eq!((v >> 24) & 0xFF, 0);
}
