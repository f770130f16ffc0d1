//! Reading the reference TSC page with sequence retry (TLFS "Partition Reference TSC
//! Mechanism").

use core::sync::atomic::{fence, Ordering};

use super::{MsrAccess, MsrFault};
use crate::defs::{
    HvMsr, TscScaleOffset, REFERENCE_TSC_OFFSET_OFFSET, REFERENCE_TSC_SCALE_OFFSET,
    REFERENCE_TSC_SEQUENCE_OFFSET, TSC_SEQUENCE_INVALID,
};
use crate::memory::{GuestMemory, MemoryError};

/// `rdtsc`.
pub trait TscSource {
    /// The current TSC.
    fn rdtsc(&mut self) -> u64;
}

impl<T: TscSource + ?Sized> TscSource for &mut T {
    fn rdtsc(&mut self) -> u64 {
        (**self).rdtsc()
    }
}

/// How often [`read_reference_time`] retries while the host keeps changing the page.
pub const TSC_READ_RETRIES: u32 = 1000;

/// Reads reference time from the TSC page at `page_gpa`: sequence, then TSC, scale and offset,
/// then the sequence again; retries while it changes. `Ok(None)` when the page is invalid
/// (sequence 0) or kept changing for [`TSC_READ_RETRIES`] rounds: read `TIME_REF_COUNT` then.
pub fn read_reference_time<M, T>(
    memory: &M,
    page_gpa: u64,
    tsc: &mut T,
) -> Result<Option<u64>, MemoryError>
where
    M: GuestMemory + ?Sized,
    T: TscSource + ?Sized,
{
    let seq_gpa = page_gpa.wrapping_add(REFERENCE_TSC_SEQUENCE_OFFSET as u64);
    for _ in 0..TSC_READ_RETRIES {
        let sequence = memory.read_u32(seq_gpa)?;
        if sequence == TSC_SEQUENCE_INVALID {
            return Ok(None);
        }
        fence(Ordering::Acquire);
        let now = tsc.rdtsc();
        let scale = memory.read_u64(page_gpa.wrapping_add(REFERENCE_TSC_SCALE_OFFSET as u64))?;
        let offset =
            memory.read_u64(page_gpa.wrapping_add(REFERENCE_TSC_OFFSET_OFFSET as u64))? as i64;
        fence(Ordering::Acquire);
        if memory.read_u32(seq_gpa)? == sequence {
            return Ok(Some(TscScaleOffset { scale, offset }.reference_time(now)));
        }
    }
    Ok(None)
}

/// Reference time from the TSC page, falling back to the `TIME_REF_COUNT` MSR.
pub fn reference_time<M, T, R>(
    memory: &M,
    page_gpa: u64,
    tsc: &mut T,
    msr: &mut R,
) -> Result<u64, MsrFault>
where
    M: GuestMemory + ?Sized,
    T: TscSource + ?Sized,
    R: MsrAccess + ?Sized,
{
    match read_reference_time(memory, page_gpa, tsc) {
        Ok(Some(t)) => Ok(t),
        _ => msr.read_msr(HvMsr::TIME_REF_COUNT.0),
    }
}
