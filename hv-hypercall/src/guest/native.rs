//! x86-64 implementations of the guest-side traits: `cpuid`, `rdmsr`/`wrmsr`, a `call` into the
//! hypercall page, `rdtsc`, and identity-mapped guest memory.
//!
//! # Why this module uses `unsafe`
//!
//! These are the instructions a guest kernel needs to talk to the hypervisor, and they cannot be
//! expressed in safe Rust: inline assembly for `rdmsr`/`wrmsr` and the indirect call into the
//! hypervisor's code page, the `rdtsc` intrinsic, and volatile or atomic accesses through raw
//! pointers to memory the hypervisor writes concurrently. Each constructor whose use could break
//! memory safety is an `unsafe fn` with a stated contract; every `unsafe` block holds one
//! operation and says why it is sound. Nothing else in the crate uses `unsafe`. Memory-accessing
//! code here never creates Rust references to shared memory except `&AtomicU32`/`&AtomicU64`,
//! which are made for exactly that.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{CpuidAccess, HypercallInvoke, MsrAccess, MsrFault, TscSource};
use crate::defs::HvMsr;
use crate::memory::{GuestMemory, MemoryError};

/// `cpuid` on the current CPU (safe at any privilege level).
#[derive(Clone, Copy, Debug, Default)]
pub struct NativeCpuid;

impl CpuidAccess for NativeCpuid {
    fn cpuid(&mut self, function: u32) -> [u32; 4] {
        let r = core::arch::x86_64::__cpuid_count(function, 0);
        [r.eax, r.ebx, r.ecx, r.edx]
    }
}

/// `rdtsc` on the current CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct NativeTsc;

impl TscSource for NativeTsc {
    fn rdtsc(&mut self) -> u64 {
        // SAFETY: `rdtsc` only reads the time-stamp counter; it has no memory effects and every
        // x86-64 CPU implements it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
}

/// `rdmsr`/`wrmsr` of the synthetic MSRs (0x40000000–0x400001FF); other MSRs are refused with
/// [`MsrFault`] without executing anything.
#[derive(Debug)]
pub struct NativeMsr {
    _private: (),
}

impl NativeMsr {
    /// MSR access for the current CPU.
    ///
    /// # Safety
    ///
    /// The caller runs at CPL 0 inside a partition with the Hyper-V synthetic MSRs, and every
    /// page it hands to the hypervisor through this value (hypercall page, SIMP, SIEFP,
    /// reference TSC page, VP assist page) is memory it owns for that purpose: the hypervisor
    /// overwrites those pages at will.
    pub unsafe fn new() -> Self {
        Self { _private: () }
    }
}

impl MsrAccess for NativeMsr {
    fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault> {
        if !HvMsr::is_synthetic(msr) {
            return Err(MsrFault { msr });
        }
        let (lo, hi): (u32, u32);
        // SAFETY: `new`'s contract puts us at CPL 0 in a partition with synthetic MSRs;
        // reading one has no memory effects (a #GP for an unimplemented one goes to the
        // kernel's exception handler, as with any `rdmsr`).
        unsafe {
            asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
        }
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), MsrFault> {
        if !HvMsr::is_synthetic(msr) {
            return Err(MsrFault { msr });
        }
        // SAFETY: CPL 0 per `new`'s contract; the hypervisor may write the pages this MSR names,
        // which the contract says the caller owns for that purpose (the asm block is not
        // `nomem`, so the compiler assumes memory may change).
        unsafe {
            asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags));
        }
        Ok(())
    }
}

/// Calls the hypercall page at its address in the current address space.
#[derive(Debug)]
pub struct NativeHypercall {
    page: *const u8,
}

impl NativeHypercall {
    /// Hypercalls through the page at `page`.
    ///
    /// # Safety
    ///
    /// `page` is the virtual address of the hypercall page after the hypervisor enabled it (the
    /// `HYPERCALL` MSR read back enabled), mapped executable for as long as this value lives,
    /// and the caller runs at CPL 0. The GPAs later passed to [`HypercallInvoke::invoke`] for
    /// memory-based calls name pages the caller owns (the hypervisor writes the output page).
    pub unsafe fn new(page: *const u8) -> Self {
        Self { page }
    }
}

impl HypercallInvoke for NativeHypercall {
    fn invoke(&mut self, control: u64, rdx: u64, r8: u64) -> u64 {
        let result: u64;
        // SAFETY: per `new`'s contract `page` holds the hypervisor's hypercall code, which traps,
        // sets RAX and returns with `ret`. The call may read and write guest memory (the input
        // and output pages), so the block is not `nomem`; `clobber_abi("C")` covers every
        // register a called function may change; without `nostack` the stack is aligned for a
        // call and the red zone is not in use.
        unsafe {
            asm!(
                "call {page}",
                page = in(reg) self.page,
                inout("rcx") control => _,
                inout("rdx") rdx => _,
                inout("r8") r8 => _,
                out("rax") result,
                clobber_abi("C"),
            );
        }
        result
    }
}

/// Guest memory identity-mapped at a fixed virtual offset: GPA `x` lives at `base + x`.
///
/// Copies are volatile byte accesses (never torn into wider writes that could undo a concurrent
/// atomic update by the hypervisor); aligned 4/8-byte reads and the atomics use
/// `AtomicU32`/`AtomicU64` on the mapped address.
#[derive(Debug)]
pub struct IdentityMemory {
    base: *mut u8,
    len: u64,
}

impl IdentityMemory {
    /// Memory `[0, len)` mapped at `base`.
    ///
    /// # Safety
    ///
    /// `base..base + len` is mapped readable and writable for as long as this value lives, and
    /// no Rust reference that assumes exclusive or immutable access exists to any of it while
    /// this value is used (the hypervisor and other vCPUs may write it concurrently).
    pub unsafe fn new(base: *mut u8, len: u64) -> Self {
        Self { base, len }
    }

    fn check(&self, gpa: u64, len: u64, align: u64) -> Result<*mut u8, MemoryError> {
        if !gpa.is_multiple_of(align) {
            return Err(MemoryError::Unaligned { gpa, align });
        }
        match gpa.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.base.wrapping_add(gpa as usize)),
            _ => Err(MemoryError::OutOfRange { gpa, len }),
        }
    }

    fn atomic_u32(&self, gpa: u64) -> Result<&AtomicU32, MemoryError> {
        let ptr = self.check(gpa, 4, 4)?;
        // SAFETY: `check` proved the 4 bytes lie inside the mapping and are 4-byte aligned;
        // `new`'s contract keeps them valid for the lifetime of `self` and accessed only in ways
        // compatible with atomics (other atomics or the hypervisor).
        Ok(unsafe { AtomicU32::from_ptr(ptr.cast()) })
    }

    fn atomic_u64(&self, gpa: u64) -> Result<&AtomicU64, MemoryError> {
        let ptr = self.check(gpa, 8, 8)?;
        // SAFETY: as in `atomic_u32`, for 8 aligned bytes.
        Ok(unsafe { AtomicU64::from_ptr(ptr.cast()) })
    }
}

impl GuestMemory for IdentityMemory {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let ptr = self.check(gpa, buf.len() as u64, 1)?;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `check` proved `ptr + i` lies inside the mapping, valid for reads per
            // `new`'s contract; a volatile byte read tolerates concurrent writers.
            *b = unsafe { ptr.wrapping_add(i).read_volatile() };
        }
        Ok(())
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let ptr = self.check(gpa, data.len() as u64, 1)?;
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: `check` proved `ptr + i` lies inside the mapping, valid for writes per
            // `new`'s contract; a byte write never touches neighbouring bytes.
            unsafe { ptr.wrapping_add(i).write_volatile(b) };
        }
        Ok(())
    }

    fn compare_exchange_u32(
        &self,
        gpa: u64,
        current: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, MemoryError> {
        Ok(self
            .atomic_u32(gpa)?
            .compare_exchange(
                current.to_le(),
                new.to_le(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .map(u32::from_le)
            .map_err(u32::from_le))
    }

    fn compare_exchange_u64(
        &self,
        gpa: u64,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, MemoryError> {
        Ok(self
            .atomic_u64(gpa)?
            .compare_exchange(
                current.to_le(),
                new.to_le(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .map(u64::from_le)
            .map_err(u64::from_le))
    }

    fn fetch_or_u64(&self, gpa: u64, bits: u64) -> Result<u64, MemoryError> {
        Ok(u64::from_le(
            self.atomic_u64(gpa)?
                .fetch_or(bits.to_le(), Ordering::SeqCst),
        ))
    }

    fn read_u32(&self, gpa: u64) -> Result<u32, MemoryError> {
        if gpa.is_multiple_of(4) {
            return Ok(u32::from_le(self.atomic_u32(gpa)?.load(Ordering::SeqCst)));
        }
        let mut b = [0; 4];
        self.read(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn read_u64(&self, gpa: u64) -> Result<u64, MemoryError> {
        if gpa.is_multiple_of(8) {
            return Ok(u64::from_le(self.atomic_u64(gpa)?.load(Ordering::SeqCst)));
        }
        let mut b = [0; 8];
        self.read(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{read_reference_time, take_event_flags};

    #[test]
    fn cpuid_reads_the_vendor_leaf() {
        let [max, ..] = NativeCpuid.cpuid(0);
        assert!(max >= 1);
    }

    #[test]
    fn tsc_moves_forward() {
        let a = NativeTsc.rdtsc();
        let b = NativeTsc.rdtsc();
        assert!(b >= a);
    }

    #[test]
    fn msr_access_refuses_architectural_msrs() {
        // SAFETY: only the refusal path is exercised; no MSR instruction runs for these numbers.
        let mut msr = unsafe { NativeMsr::new() };
        assert_eq!(msr.read_msr(0x10), Err(MsrFault { msr: 0x10 }));
        assert_eq!(
            msr.write_msr(0xc000_0080, 0),
            Err(MsrFault { msr: 0xc000_0080 })
        );
    }

    #[test]
    fn identity_memory_over_a_host_buffer() {
        let mut backing = std::vec![0u64; 1024];
        // SAFETY: the buffer lives until the end of the test and is only accessed through `mem`.
        let mem = unsafe { IdentityMemory::new(backing.as_mut_ptr().cast(), 8192) };
        mem.write(3, &[1, 2, 3, 4, 5]).unwrap();
        let mut b = [0; 5];
        mem.read(3, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5]);
        assert_eq!(mem.read_u32(4).unwrap(), 0x0504_0302);
        assert_eq!(mem.read_u32(5).unwrap(), 0x0005_0403);
        assert_eq!(mem.compare_exchange_u32(8, 0, 9).unwrap(), Ok(0));
        assert_eq!(mem.compare_exchange_u32(8, 0, 9).unwrap(), Err(9));
        assert_eq!(mem.fetch_or_u64(16, 0b100).unwrap(), 0);
        assert_eq!(mem.read_u64(16).unwrap(), 0b100);
        assert_eq!(mem.compare_exchange_u64(16, 0b100, 7).unwrap(), Ok(0b100));
        assert!(matches!(
            mem.read(8190, &mut [0; 4]),
            Err(MemoryError::OutOfRange { .. })
        ));
        assert!(matches!(
            mem.fetch_or_u64(12, 1),
            Err(MemoryError::Unaligned { .. })
        ));
        // The portable guest code runs on it unchanged.
        let mut flags = std::vec::Vec::new();
        mem.fetch_or_u64(4096 + 256 * 2, 1 << 3).unwrap();
        assert_eq!(
            take_event_flags(&mem, 4096, 2, |f| flags.push(f)).unwrap(),
            1
        );
        assert_eq!(flags, [3]);
        assert_eq!(
            read_reference_time(&mem, 4096, &mut NativeTsc).unwrap(),
            None
        );
        assert_eq!(mem.read_u64(8).unwrap(), 9);
        assert_eq!(backing[1], 9);
    }
}
