//! Instruction completion with `x86-decode`'s emulator: the instructions KVM's emulator
//! refuses that touch memory — AVX `vmovdqu` stores and loads, `cmpxchg16b` on a device —
//! completed against guest RAM and the MMIO test device ([`MmioDevice`]), translating through
//! the guest's page tables.
//!
//! [`VmCpu`] is the emulator's view of the vCPU (`KVM_GET_REGS`/`SREGS`/`XSAVE`, written back
//! only if the instruction completed); [`VmMemory`] is guest RAM plus the device.

#![allow(unsafe_code)]

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs, kvm_xsave};
use x86_decode::emulate::{
    CpuState, Emulator, Exception, Memory, MemoryError, Options, Outcome, Region,
    SegmentAttributes, SegmentRegister,
};
use x86_decode::Segment;

use crate::kvm::{KvmError, Vm};
use crate::memory::GuestMemory;

/// Where the MMIO test device lives (one page, above RAM, inside the identity map).
pub const MMIO_BASE: u64 = 0xF000_0000;
/// Its size.
pub const MMIO_LEN: u64 = 0x1000;

/// A page of device memory that records its first [`MMIO_LOG_LEN`] accesses and counts all:
/// the guest's stores land in it, its loads read it.
#[derive(Debug)]
pub struct MmioDevice {
    bytes: Vec<u8>,
    /// The first accesses: (write?, offset, length). Bounded: a guest looping on the device
    /// must not grow host memory.
    pub log: Vec<(bool, u64, usize)>,
    /// Every access.
    pub accesses: u64,
}

/// The most accesses [`MmioDevice::log`] keeps.
pub const MMIO_LOG_LEN: usize = 64;

impl Default for MmioDevice {
    fn default() -> Self {
        // A recognisable initial content: byte i is i ^ 0xA5.
        Self {
            bytes: (0..MMIO_LEN).map(|i| (i as u8) ^ 0xA5).collect(),
            log: Vec::new(),
            accesses: 0,
        }
    }
}

impl MmioDevice {
    /// Whether `gpa` (and `len` bytes) lie in the device.
    pub fn contains(gpa: u64, len: usize) -> bool {
        gpa >= MMIO_BASE && gpa + len as u64 <= MMIO_BASE + MMIO_LEN
    }

    /// A read by the guest.
    pub fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        if !Self::contains(gpa, buf.len()) {
            return false;
        }
        let at = (gpa - MMIO_BASE) as usize;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        self.record(false, gpa - MMIO_BASE, buf.len());
        true
    }

    fn record(&mut self, write: bool, offset: u64, len: usize) {
        self.accesses += 1;
        if self.log.len() < MMIO_LOG_LEN {
            self.log.push((write, offset, len));
        }
    }

    /// A write by the guest.
    pub fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        if !Self::contains(gpa, data.len()) {
            return false;
        }
        let at = (gpa - MMIO_BASE) as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        self.record(true, gpa - MMIO_BASE, data.len());
        true
    }
}

/// Legacy XSAVE area offsets: XMM registers, then the upper YMM halves (XSTATE component 2).
const XSAVE_XMM: usize = 160;
const XSAVE_YMM_HI: usize = 576;
/// The XSAVE header's XSTATE_BV (which components hold data).
const XSAVE_HEADER: usize = 512;

/// The emulator's view of the vCPU.
pub struct VmCpu {
    regs: kvm_regs,
    sregs: kvm_sregs,
    xsave: kvm_xsave,
    xcr0: u64,
    vectors_dirty: bool,
}

fn segment(s: &kvm_segment) -> SegmentRegister {
    let attributes = u16::from(s.type_)
        | u16::from(s.s) << 4
        | u16::from(s.dpl) << 5
        // KVM marks a null selector's segment "unusable" and may leave P set: the emulator's
        // contract is that an unusable segment is not present.
        | u16::from(s.present != 0 && s.unusable == 0) << 7
        | u16::from(s.avl) << 12
        | u16::from(s.l) << 13
        | u16::from(s.db) << 14
        | u16::from(s.g) << 15;
    SegmentRegister {
        selector: s.selector,
        base: s.base,
        limit: s.limit,
        attributes: SegmentAttributes(attributes),
    }
}

impl VmCpu {
    /// Reads the vCPU's state.
    pub fn load(vm: &Vm) -> Result<Self, KvmError> {
        let (regs, sregs) = vm.registers()?;
        let xsave = vm.xsave()?;
        let xcr0 = vm.xcr0()?;
        Ok(Self {
            regs,
            sregs,
            xsave,
            xcr0,
            vectors_dirty: false,
        })
    }

    /// Writes the general registers (and the vector registers if they changed) back.
    pub fn store(&self, vm: &Vm) -> Result<(), KvmError> {
        vm.set_general_registers(&self.regs)?;
        if self.vectors_dirty {
            vm.set_xsave(&self.xsave)?;
        }
        Ok(())
    }

    fn xsave_bytes(&mut self) -> &mut [u8] {
        // SAFETY: `region` is a plain `[u32; 1024]`; viewing it as 4096 bytes is valid for
        // any content and the borrow keeps it exclusive.
        unsafe {
            core::slice::from_raw_parts_mut(self.xsave.region.as_mut_ptr().cast::<u8>(), 4096)
        }
    }
}

impl CpuState for VmCpu {
    fn gpr(&mut self, index: usize) -> u64 {
        let r = &self.regs;
        [
            r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ][index & 15]
    }

    fn set_gpr(&mut self, index: usize, value: u64) {
        let r = &mut self.regs;
        let slot = match index & 15 {
            0 => &mut r.rax,
            1 => &mut r.rcx,
            2 => &mut r.rdx,
            3 => &mut r.rbx,
            4 => &mut r.rsp,
            5 => &mut r.rbp,
            6 => &mut r.rsi,
            7 => &mut r.rdi,
            8 => &mut r.r8,
            9 => &mut r.r9,
            10 => &mut r.r10,
            11 => &mut r.r11,
            12 => &mut r.r12,
            13 => &mut r.r13,
            14 => &mut r.r14,
            _ => &mut r.r15,
        };
        *slot = value;
    }

    fn rip(&mut self) -> u64 {
        self.regs.rip
    }

    fn set_rip(&mut self, value: u64) {
        self.regs.rip = value;
    }

    fn rflags(&mut self) -> u64 {
        self.regs.rflags
    }

    fn set_rflags(&mut self, value: u64) {
        self.regs.rflags = value;
    }

    fn segment(&mut self, s: Segment) -> SegmentRegister {
        let sr = &self.sregs;
        segment(match s {
            Segment::ES => &sr.es,
            Segment::CS => &sr.cs,
            Segment::SS => &sr.ss,
            Segment::FS => &sr.fs,
            Segment::GS => &sr.gs,
            _ => &sr.ds,
        })
    }

    fn cr0(&mut self) -> u64 {
        self.sregs.cr0
    }

    fn cr3(&mut self) -> u64 {
        self.sregs.cr3
    }

    fn cr4(&mut self) -> u64 {
        self.sregs.cr4
    }

    fn efer(&mut self) -> u64 {
        self.sregs.efer
    }

    fn xcr0(&mut self) -> u64 {
        self.xcr0
    }

    fn vector(&mut self, index: usize) -> [u8; 64] {
        let mut v = [0u8; 64];
        if index < 16 {
            let x = self.xsave_bytes();
            v[..16].copy_from_slice(&x[XSAVE_XMM + 16 * index..][..16]);
            v[16..32].copy_from_slice(&x[XSAVE_YMM_HI + 16 * index..][..16]);
        }
        v
    }

    fn set_vector(&mut self, index: usize, value: [u8; 64]) {
        if index < 16 {
            let x = self.xsave_bytes();
            x[XSAVE_XMM + 16 * index..][..16].copy_from_slice(&value[..16]);
            x[XSAVE_YMM_HI + 16 * index..][..16].copy_from_slice(&value[16..32]);
            // XSTATE_BV: the SSE and AVX components now hold data (a clear bit would make the
            // restore treat them as in their initial, all-zero state).
            x[XSAVE_HEADER] |= 0b110;
            self.vectors_dirty = true;
        }
    }

    fn opmask(&mut self, _index: usize) -> u64 {
        0
    }
}

/// Guest RAM plus, for the emulator, the MMIO test device (`None`: RAM only, as the
/// instruction completer's page walks see it).
pub struct VmMemory<'a> {
    /// RAM.
    pub ram: &'a GuestMemory,
    /// The device.
    pub device: Option<&'a mut MmioDevice>,
}

impl Memory for VmMemory<'_> {
    fn region(&mut self, gpa: u64) -> Region {
        if self.device.is_some() && MmioDevice::contains(gpa, 1) {
            Region::Device
        } else {
            Region::Ram
        }
    }

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if self.device.as_mut().is_some_and(|d| d.read(gpa, buf)) {
            return Ok(());
        }
        self.ram
            .read_at(gpa, buf)
            .map_err(|_| MemoryError::Unmapped(gpa))
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        if self.device.as_mut().is_some_and(|d| d.write(gpa, data)) {
            return Ok(());
        }
        self.ram
            .write_at(gpa, data)
            .map_err(|_| MemoryError::Unmapped(gpa))
    }

    fn compare_exchange(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        let atoms = self
            .ram
            .atomic_bytes(gpa, current.len() as u64)
            .map_err(|_| MemoryError::NotAtomic(gpa))?;
        // One vCPU: no other writer runs while the VMM handles this exit, so comparing then
        // storing the bytes is atomic with respect to the guest.
        if atoms
            .iter()
            .zip(current)
            .any(|(a, c)| a.load(std::sync::atomic::Ordering::SeqCst) != *c)
        {
            return Ok(false);
        }
        for (a, n) in atoms.iter().zip(new) {
            a.store(*n, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(true)
    }
}

/// What the emulator's outcome means for the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// The instruction completed; the guest goes on after it.
    Completed,
    /// Progress was made or a race was lost (a `REP` instruction not finished, a locked
    /// operation to retry): the registers are stored and the guest executes the instruction
    /// again, which exits again.
    Resumed,
    /// The instruction faults (or single-steps): the registers, with any `REP` progress, are
    /// stored and the guest takes this vector, as the processor would have delivered it.
    Injected(u8),
}

/// Completes the instruction at RIP with the emulator; `Ok(None)` if the emulator does not
/// handle it (nothing changed then). Every other outcome is carried out on the vCPU: the
/// emulator's register state is stored whatever the outcome (a fault after `REP` progress
/// keeps the progress) and an exception or single-step trap is injected.
pub fn complete(
    vm: &Vm,
    device: &mut MmioDevice,
    bytes: &[u8],
) -> Result<Option<Finished>, KvmError> {
    let mut cpu = VmCpu::load(vm)?;
    let mut mem = VmMemory {
        ram: vm.memory(),
        device: Some(device),
    };
    let mut emulator = Emulator::new(Options::default());
    let outcome = match emulator.emulate(&mut cpu, &mut mem, bytes) {
        Ok(Outcome::Unsupported(_)) | Err(_) => return Ok(None),
        Ok(o) => o,
    };
    cpu.store(vm)?;
    Ok(Some(match outcome {
        Outcome::Completed => Finished::Completed,
        Outcome::SingleStep => {
            vm.set_single_step_cause()?;
            vm.inject_exception(1, None, None)?;
            Finished::Injected(1)
        }
        Outcome::Exception(e) => {
            let cr2 = match e {
                Exception::PageFault(f) => Some(f.address),
                _ => None,
            };
            vm.inject_exception(e.vector(), e.error_code(), cr2)?;
            Finished::Injected(e.vector())
        }
        // `Incomplete`, `Retry`, and whatever a later emulator adds: store and go again.
        _ => Finished::Resumed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_device_records_and_bounds_accesses() {
        let mut d = MmioDevice::default();
        let mut first = [0u8; 2];
        assert!(d.read(MMIO_BASE + 0x10, &mut first));
        assert_eq!(first, [0x10 ^ 0xA5, 0x11 ^ 0xA5]);
        assert!(d.write(MMIO_BASE + 0x100, &[1, 2, 3]));
        let mut b = [0u8; 3];
        assert!(d.read(MMIO_BASE + 0x100, &mut b));
        assert_eq!(b, [1, 2, 3]);
        assert_eq!(d.log[1..], [(true, 0x100, 3), (false, 0x100, 3)]);
        // Outside the page: not the device's.
        assert!(!d.write(MMIO_BASE + MMIO_LEN - 1, &[0, 0]));
        assert!(!d.read(MMIO_BASE - 1, &mut b));
        assert!(MmioDevice::contains(MMIO_BASE, 4096) && !MmioDevice::contains(MMIO_BASE, 4097));
        // A guest looping on the device: counted, but the log stays bounded.
        for _ in 0..100_000 {
            assert!(d.write(MMIO_BASE, &[0; 4]));
        }
        assert_eq!(d.accesses, 100_003);
        assert_eq!(d.log.len(), MMIO_LOG_LEN);
    }
}
