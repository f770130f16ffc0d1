//! The guest side (`no_std`): issuing hypercalls through the hypercall page, setting up the
//! hypercall page and the SynIC, consuming messages and event flags, and reading the reference
//! TSC page.
//!
//! Every hardware access goes through a narrow trait so the logic runs in tests against the host
//! half of this crate: [`HypercallInvoke`] ("call the hypercall page with these registers"),
//! [`MsrAccess`], [`CpuidAccess`], [`TscSource`], and [`GuestMemory`] for the pages shared with
//! the hypervisor. On x86-64 the [`native`] module implements them with `call`, `rdmsr`,
//! `wrmsr`, `cpuid`, `rdtsc` and volatile/atomic accesses to identity-mapped memory.

mod setup;
mod synic;
mod tsc;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub mod native;

pub use setup::{
    detect, disable_synic, enable_hypercalls, enable_synic, HvInfo, SetupError, SynicSetup,
};
pub use synic::{receive_message, take_event_flags, SynicError};
pub use tsc::{read_reference_time, reference_time, TscSource, TSC_READ_RETRIES};

use thiserror::Error;
use zerocopy::IntoBytes;

use crate::defs::{
    HvMessageType, HvStatus, HypercallCode, HypercallInput, HypercallOutput, PostMessageInput,
    SignalEventInput, MESSAGE_PAYLOAD_MAX, PAGE_SIZE,
};
use crate::memory::{GuestMemory, MemoryError};

/// Calls the hypercall page.
pub trait HypercallInvoke {
    /// Calls offset 0 of the hypercall page with RCX = `control`, RDX = `rdx`, R8 = `r8` and
    /// returns RAX (the result value).
    fn invoke(&mut self, control: u64, rdx: u64, r8: u64) -> u64;
}

impl<T: HypercallInvoke + ?Sized> HypercallInvoke for &mut T {
    fn invoke(&mut self, control: u64, rdx: u64, r8: u64) -> u64 {
        (**self).invoke(control, rdx, r8)
    }
}

/// The guest faulted (#GP) on an MSR access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("msr {msr:#x} faulted")]
pub struct MsrFault {
    /// The MSR.
    pub msr: u32,
}

/// `rdmsr` / `wrmsr`.
pub trait MsrAccess {
    /// Reads `msr`.
    fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault>;
    /// Writes `msr`.
    fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), MsrFault>;
}

impl<T: MsrAccess + ?Sized> MsrAccess for &mut T {
    fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault> {
        (**self).read_msr(msr)
    }
    fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), MsrFault> {
        (**self).write_msr(msr, value)
    }
}

/// `cpuid`.
pub trait CpuidAccess {
    /// EAX, EBX, ECX, EDX of leaf `function` (sub-leaf 0).
    fn cpuid(&mut self, function: u32) -> [u32; 4];
}

/// A hypercall that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HypercallError {
    /// The hypervisor answered with a non-success status.
    #[error("the hypervisor answered {status}")]
    Status {
        /// The status.
        status: HvStatus,
        /// Rep calls: elements completed before the failure.
        completed: u16,
    },
    /// A message payload longer than 240 bytes.
    #[error("payload of {len} bytes exceeds 240")]
    PayloadTooLarge {
        /// The payload length.
        len: usize,
    },
    /// A message type a guest may not post (zero, or bit 31 set).
    #[error("message type {message_type:?} cannot be posted")]
    InvalidMessageType {
        /// The type.
        message_type: HvMessageType,
    },
    /// An input or output block larger than a page, or a rep count beyond 4095.
    #[error("a {len}-byte block or rep list does not fit one hypercall")]
    TooLarge {
        /// The offending length.
        len: usize,
    },
    /// The hypervisor returned a result that does not fit the call (reps completed going
    /// backwards or beyond the count, reserved bits set).
    #[error("malformed hypercall result {result:#x}")]
    MalformedResult {
        /// The result value.
        result: u64,
    },
    /// The input or output page could not be accessed.
    #[error("hypercall page access failed")]
    Memory(#[source] MemoryError),
}

/// Issues hypercalls through a hypercall page, with one input and one output page for
/// memory-based calls (each page-aligned, owned by this value while it lives).
#[derive(Debug)]
pub struct Hypercalls<I, M> {
    invoker: I,
    memory: M,
    input_gpa: u64,
    output_gpa: u64,
}

impl<I: HypercallInvoke, M: GuestMemory> Hypercalls<I, M> {
    /// Hypercalls through `invoker`, staging memory-based parameters in the pages at
    /// `input_gpa` and `output_gpa` (accessed through `memory`).
    pub fn new(invoker: I, memory: M, input_gpa: u64, output_gpa: u64) -> Self {
        Self {
            invoker,
            memory,
            input_gpa,
            output_gpa,
        }
    }

    /// The guest memory the pages live in.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// A fast call with up to 16 bytes of input in RDX and R8.
    pub fn call_fast(&mut self, input: HypercallInput, rdx: u64, r8: u64) -> HypercallOutput {
        HypercallOutput(self.invoker.invoke(input.with_fast(true).0, rdx, r8))
    }

    /// A memory-based simple call: `input_block` is copied to the input page, the call is made,
    /// and `output` is filled from the output page on success.
    pub fn call_slow(
        &mut self,
        input: HypercallInput,
        input_block: &[u8],
        output: &mut [u8],
    ) -> Result<HypercallOutput, HypercallError> {
        check_len(input_block.len())?;
        check_len(output.len())?;
        self.memory
            .write(self.input_gpa, input_block)
            .map_err(HypercallError::Memory)?;
        let result = HypercallOutput(self.invoker.invoke(
            input.with_fast(false).0,
            self.input_gpa,
            self.output_gpa,
        ));
        if result.is_success() && !output.is_empty() {
            self.memory
                .read(self.output_gpa, output)
                .map_err(HypercallError::Memory)?;
        }
        Ok(result)
    }

    /// `HvCallPostMessage` (memory-based).
    pub fn post_message(
        &mut self,
        connection_id: u32,
        message_type: HvMessageType,
        payload: &[u8],
    ) -> Result<(), HypercallError> {
        if !message_type.is_postable() {
            return Err(HypercallError::InvalidMessageType { message_type });
        }
        let block = PostMessageInput::new(connection_id, message_type.0, payload)
            .ok_or(HypercallError::PayloadTooLarge { len: payload.len() })?;
        debug_assert!(payload.len() <= MESSAGE_PAYLOAD_MAX);
        let result = self.call_slow(
            HypercallInput::simple(HypercallCode::POST_MESSAGE),
            block.as_bytes(),
            &mut [],
        )?;
        status_result(result, 0)
    }

    /// `HvCallSignalEvent` (fast: the 8-byte input in RDX).
    pub fn signal_event(
        &mut self,
        connection_id: u32,
        flag_number: u16,
    ) -> Result<(), HypercallError> {
        let input = SignalEventInput::new(connection_id, flag_number).to_u64();
        let result = self.call_fast(
            HypercallInput::simple(HypercallCode::SIGNAL_EVENT),
            input,
            0,
        );
        status_result(result, 0)
    }

    /// A memory-based rep call of `code` over `elements` (each `element_size` bytes) after a
    /// fixed `header`, collecting `output_element_size` bytes per element into `output`.
    ///
    /// Re-issues the call with `rep_start` = reps completed until every element is done, as the
    /// TLFS asks of callers; stops with [`HypercallError::MalformedResult`] if the hypervisor
    /// makes no progress. Returns the number of elements (all of them) on success.
    pub fn call_rep(
        &mut self,
        code: HypercallCode,
        header: &[u8],
        elements: &[u8],
        element_size: usize,
        output_element_size: usize,
        output: &mut [u8],
    ) -> Result<u16, HypercallError> {
        let count = elements.len().checked_div(element_size).unwrap_or(0);
        if count == 0
            || count > usize::from(crate::defs::MAX_REP_COUNT)
            || !elements.len().is_multiple_of(element_size)
        {
            return Err(HypercallError::TooLarge {
                len: elements.len(),
            });
        }
        let out_len = count * output_element_size;
        check_len(header.len() + elements.len())?;
        check_len(out_len)?;
        if output.len() < out_len {
            return Err(HypercallError::TooLarge { len: out_len });
        }
        self.memory
            .write(self.input_gpa, header)
            .and_then(|()| {
                self.memory
                    .write(self.input_gpa.wrapping_add(header.len() as u64), elements)
            })
            .map_err(HypercallError::Memory)?;
        let count = count as u16;
        let mut start = 0u16;
        loop {
            let control = HypercallInput::rep(code, count).with_rep_start(start);
            let result = HypercallOutput(self.invoker.invoke(
                control.0,
                self.input_gpa,
                self.output_gpa,
            ));
            let done = result.reps_completed();
            if result.reserved_bits() != 0 || done > count || (result.is_success() && done <= start)
            {
                return Err(HypercallError::MalformedResult { result: result.0 });
            }
            if !result.is_success() {
                return Err(HypercallError::Status {
                    status: result.call_status(),
                    completed: done,
                });
            }
            if done == count {
                break;
            }
            start = done;
        }
        if out_len > 0 {
            self.memory
                .read(self.output_gpa, &mut output[..out_len])
                .map_err(HypercallError::Memory)?;
        }
        Ok(count)
    }
}

fn check_len(len: usize) -> Result<(), HypercallError> {
    if len as u64 > PAGE_SIZE {
        Err(HypercallError::TooLarge { len })
    } else {
        Ok(())
    }
}

fn status_result(result: HypercallOutput, completed: u16) -> Result<(), HypercallError> {
    if result.is_success() {
        Ok(())
    } else {
        Err(HypercallError::Status {
            status: result.call_status(),
            completed,
        })
    }
}

#[cfg(test)]
mod tests;
