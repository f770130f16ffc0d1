//! The emulator, fed an arbitrary virtual processor (mode, control registers, segment caches,
//! general and vector registers, flags), arbitrary instruction bytes and arbitrary guest memory
//! (which also holds the page tables it walks), never panics and only ends in documented
//! outcomes:
//!
//! - compare-exchange is only ever asked for 1/2/4/8/16 aligned bytes on RAM, split ones stay
//!   inside a page, every memory piece stays inside one 4 KiB page and is at most 256 bytes
//!   (64 except for `REP MOVS`/`STOS` block moves on RAM);
//! - RIP moves only when the instruction completed (or single-stepped);
//! - `Retry`, `Unsupported` and exceptions other than those a `REP` string instruction raises
//!   after progress leave every register unchanged.
//!
//! Run: `cd x86-decode && cargo +nightly fuzz run emulate fuzz/corpus/emulate fuzz/seeds/emulate`

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use x86_decode::emulate::{
    CpuState, Emulator, Memory, MemoryError, Options, Outcome, Region, SegmentAttributes,
    SegmentRegister,
};
use x86_decode::{Segment, Vendor};

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
struct Seg {
    selector: u16,
    base: u32,
    limit: u32,
    attributes: u16,
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
struct Cpu {
    gpr: [u64; 16],
    rip: u16,
    rflags: u32,
    segs: [Seg; 6],
    mode: u8,
    cr0_extra: u8,
    cr4: u32,
    efer_nxe: bool,
    xcr0: u8,
    vec: [u64; 4],
    k: [u64; 8],
}

struct Fuzzed {
    cpu: Cpu,
    cr0: u64,
    cr4: u64,
    efer: u64,
    zmm: [[u8; 64]; 32],
}

impl CpuState for Fuzzed {
    fn gpr(&mut self, i: usize) -> u64 {
        self.cpu.gpr[i]
    }
    fn set_gpr(&mut self, i: usize, v: u64) {
        self.cpu.gpr[i] = v;
    }
    fn rip(&mut self) -> u64 {
        u64::from(self.cpu.rip)
    }
    fn set_rip(&mut self, v: u64) {
        self.cpu.rip = v as u16;
    }
    fn rflags(&mut self) -> u64 {
        u64::from(self.cpu.rflags)
    }
    fn set_rflags(&mut self, v: u64) {
        self.cpu.rflags = v as u32;
    }
    fn segment(&mut self, s: Segment) -> SegmentRegister {
        let f = self.cpu.segs[usize::from(s.0).min(5)];
        SegmentRegister {
            selector: f.selector,
            base: u64::from(f.base),
            limit: f.limit,
            attributes: SegmentAttributes(f.attributes),
        }
    }
    fn cr0(&mut self) -> u64 {
        self.cr0
    }
    fn cr3(&mut self) -> u64 {
        0x1000
    }
    fn cr4(&mut self) -> u64 {
        self.cr4
    }
    fn efer(&mut self) -> u64 {
        self.efer
    }
    fn xcr0(&mut self) -> u64 {
        u64::from(self.cpu.xcr0)
    }
    fn vector(&mut self, i: usize) -> [u8; 64] {
        self.zmm[i]
    }
    fn set_vector(&mut self, i: usize, v: [u8; 64]) {
        self.zmm[i] = v;
    }
    fn opmask(&mut self, i: usize) -> u64 {
        self.cpu.k[i]
    }
}

/// 64 KiB of guest RAM repeated over the whole physical space; pages with bit 12 set above
/// 1 MiB are devices.
struct Ram {
    bytes: Vec<u8>,
}

const RAM: usize = 0x10000;

impl Ram {
    fn check(gpa: u64, len: usize) {
        assert!(len >= 1 && len <= 256, "piece of {len} bytes");
        assert_eq!(
            gpa >> 12,
            (gpa + len as u64 - 1) >> 12,
            "piece crosses a page: {gpa:#x}+{len}"
        );
    }
    fn at(&mut self, gpa: u64, len: usize) -> &mut [u8] {
        let start = gpa as usize % RAM;
        let start = start.min(RAM - len);
        &mut self.bytes[start..start + len]
    }
    fn is_device(gpa: u64) -> bool {
        gpa >= 0x10_0000 && gpa & 0x1000 != 0
    }
}

impl Memory for Ram {
    fn region(&mut self, gpa: u64) -> Region {
        if Self::is_device(gpa) {
            Region::Device
        } else {
            Region::Ram
        }
    }
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        Self::check(gpa, buf.len());
        if gpa >> 40 == 0xFF {
            return Err(MemoryError::Unmapped(gpa));
        }
        buf.copy_from_slice(self.at(gpa, buf.len()));
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        Self::check(gpa, data.len());
        self.at(gpa, data.len()).copy_from_slice(data);
        Ok(())
    }
    fn compare_exchange(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        let n = current.len();
        assert!(matches!(n, 1 | 2 | 4 | 8 | 16) && new.len() == n);
        assert_eq!(gpa % n as u64, 0, "misaligned compare-exchange");
        assert!(!Self::is_device(gpa), "compare-exchange on a device");
        let cell = self.at(gpa, n);
        if cell == current {
            cell.copy_from_slice(new);
            Ok(true)
        } else {
            Ok(false)
        }
    }
    fn compare_exchange_split(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        Self::check(gpa, current.len());
        assert!(current.len() <= 16 && new.len() == current.len());
        let cell = self.at(gpa, current.len());
        if cell == current {
            cell.copy_from_slice(new);
            Ok(true)
        } else {
            Ok(false)
        }
    }
    fn read_port(&mut self, port: u16, buf: &mut [u8]) -> Result<(), MemoryError> {
        assert!(matches!(buf.len(), 1 | 2 | 4));
        buf.fill(port as u8);
        Ok(())
    }
    fn write_port(&mut self, _port: u16, data: &[u8]) -> Result<(), MemoryError> {
        assert!(matches!(data.len(), 1 | 2 | 4));
        Ok(())
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    cpu: Cpu,
    code: Vec<u8>,
    supplied: u8,
    /// (offset, bytes) patches over a memory image that starts as a repeating pattern; page
    /// tables live at 0x1000.. and are mostly built from these.
    patches: Vec<(u16, [u8; 8])>,
    rep_cap: u8,
    update_ad: bool,
    max_phys: u8,
    amd: bool,
}

fuzz_target!(|input: Input| {
    let mut bytes = vec![0u8; RAM];
    // A plausible default: identity-ish 4-level tables at 0x1000 with 2 MiB pages, so that
    // paging often succeeds and the instruction gets executed.
    for (k, b) in bytes.iter_mut().enumerate() {
        *b = (k as u8).wrapping_mul(29);
    }
    let put = |bytes: &mut Vec<u8>, at: usize, v: u64| {
        bytes[at..at + 8].copy_from_slice(&v.to_le_bytes())
    };
    put(&mut bytes, 0x1000, 0x2000 | 0x7);
    put(&mut bytes, 0x2000, 0x3000 | 0x7);
    for k in 0..512 {
        put(&mut bytes, 0x3000 + k * 8, (k as u64) << 21 | 0x87);
    }
    for (off, patch) in input.patches.iter().take(64) {
        let at = usize::from(*off).min(RAM - 8);
        bytes[at..at + 8].copy_from_slice(patch);
    }
    let rip = u64::from(input.cpu.rip);
    let code = &input.code[..input.code.len().min(16)];
    let at = (rip as usize % RAM).min(RAM - code.len());
    bytes[at..at + code.len()].copy_from_slice(code);
    let mut mem = Ram { bytes };

    let c = &input.cpu;
    let (cr0, cr4, efer) = match c.mode % 5 {
        // Real mode.
        0 => (0, 0, 0),
        // Protected mode, paging off.
        1 => (1, u64::from(c.cr4) & !0x20, 0),
        // 32-bit paging / PAE.
        2 => (0x8000_0001, u64::from(c.cr4) & !0x1000, 0),
        // Long mode (4- or 5-level).
        _ => (0x8000_0001, u64::from(c.cr4) | 0x20, 0x500),
    };
    let cr0 = cr0
        | (u64::from(c.cr0_extra) & 0x2E) << 1
        | u64::from(c.cr0_extra & 1) << 16
        | u64::from(c.cr0_extra >> 7) << 18;
    let efer = efer | if c.efer_nxe { 0x800 } else { 0 };
    let mut zmm = [[0u8; 64]; 32];
    for (n, z) in zmm.iter_mut().enumerate() {
        for (k, b) in z.iter_mut().enumerate() {
            *b = (c.vec[n % 4] >> (k % 8 * 8)) as u8;
        }
    }
    let mut cpu = Fuzzed {
        cpu: c.clone(),
        cr0,
        cr4,
        efer,
        zmm,
    };
    let opts = Options {
        max_rep_iterations: u32::from(input.rep_cap % 64),
        update_accessed_dirty: input.update_ad,
        max_physical_bits: input.max_phys,
        keep_translations: input.rep_cap & 0x80 != 0,
        vendor: if input.amd {
            Vendor::Amd
        } else {
            Vendor::Intel
        },
    };
    let mut emu = Emulator::new(opts);
    let supplied = &code[..usize::from(input.supplied).min(code.len())];
    for call in 0..4 {
        let before = cpu.cpu.clone();
        let before_zmm = cpu.zmm;
        let out = emu.emulate(&mut cpu, &mut mem, if call == 0 { supplied } else { &[] });
        match out {
            Ok(Outcome::Completed | Outcome::SingleStep) => break,
            Ok(Outcome::Incomplete) => {
                assert_eq!(cpu.cpu.rip, before.rip, "RIP moved on Incomplete");
            }
            Ok(Outcome::Retry | Outcome::Unsupported(_)) => {
                assert_eq!(cpu.cpu, before, "state changed on Retry/Unsupported");
                assert!(cpu.zmm == before_zmm);
                break;
            }
            Ok(Outcome::Exception(_)) => {
                assert_eq!(cpu.cpu.rip, before.rip, "RIP moved on an exception");
                // Only a REP string instruction's progress registers (and flags) may change.
                let mut b = before.clone();
                let mut a = cpu.cpu.clone();
                for r in [0, 1, 6, 7] {
                    b.gpr[r] = 0;
                    a.gpr[r] = 0;
                }
                b.rflags = 0;
                a.rflags = 0;
                assert_eq!(a, b, "state changed on an exception");
                assert!(cpu.zmm == before_zmm);
                break;
            }
            Ok(_) => break,
            Err(_) => break,
        }
    }
});
