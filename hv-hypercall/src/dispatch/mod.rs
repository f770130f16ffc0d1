//! The host-side hypercall dispatcher.
//!
//! On a hypercall exit (a `vmcall`/`vmmcall` intercept, or the port-I/O trap of the hypercall
//! page), the VMM hands the dispatcher the VP's registers, guest memory and its handler:
//!
//! 1. read the input value (RCX, or EDX:EAX) and look the code up: `POST_MESSAGE`,
//!    `SIGNAL_EVENT`, or whatever [`HypercallHandler::shape`] declares; anything else answers
//!    `INVALID_HYPERCALL_CODE`;
//! 2. validate the input value against the call's shape (reserved bits, rep count and start,
//!    variable header) → `INVALID_HYPERCALL_INPUT`;
//! 3. fetch the input: fast calls from register pairs (RDX/R8, then XMM0–5 when XMM fast input is
//!    enabled; too large → `INVALID_HYPERCALL_INPUT`), memory calls from the input GPA (8-byte
//!    aligned, inside one page, inside guest memory → else `INVALID_ALIGNMENT`);
//! 4. validate the typed parameters (`HvPostMessage`: reserved zero, type non-zero with bit 31
//!    clear, payload ≤ 240; `HvSignalEvent`: reserved zero, flag < 2048 → `INVALID_PARAMETER`)
//!    and call the handler;
//! 5. write the output (memory, or the XMM registers after the input ones) and the result value.
//!
//! Rep calls may complete partially: a handler that processed fewer elements than asked with
//! `SUCCESS` either returns to the guest with `reps_completed` < count (the guest re-issues with
//! `rep_start` = reps completed, as Linux does) or, with [`RepContinuation::RetryInPlace`],
//! rewrites the input value's `rep_start` and asks the VMM to re-execute the instruction.
//!
//! The dispatcher never panics on guest input and always answers with a defined status. It does
//! not check the caller's privilege: the TLFS raises #UD for hypercalls from CPL > 0 or real
//! mode, which the VMM checks before dispatching.

mod decode;
mod handler;
mod regs;

pub use handler::{
    CallShape, GenericCall, HypercallHandler, PostMessageRequest, RepResult, SignalEventRequest,
};
pub use regs::{CallingConvention, Gpr, HypercallRegisters, X64Registers};

use zerocopy::FromBytes;

use crate::defs::{
    HvMessageType, HvStatus, HypercallCode, HypercallInput, HypercallOutput, MiscFeatures,
    PostMessageInput, SignalEventInput, EVENT_FLAGS_PER_SINT, MESSAGE_PAYLOAD_MAX, PAGE_SIZE,
};
use crate::memory::GuestMemory;
use decode::{check_block, check_disjoint, validate, CallLayout};

/// How a rep call that needs more time continues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RepContinuation {
    /// Return to the guest with `SUCCESS` and `reps_completed` < `rep_count`; the guest re-issues
    /// the call with `rep_start` = reps completed (Linux and Windows loop like this).
    #[default]
    ReturnToGuest,
    /// Rewrite `rep_start` in the input register and leave the instruction pointer on the
    /// hypercall instruction ([`DispatchOutcome::Retry`]), so the guest continues transparently.
    RetryInPlace,
}

/// Dispatcher options; they must match what CPUID advertises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchConfig {
    /// XMM fast input (0x40000003 EDX bit 4): fast calls may use XMM0–XMM5 for input (x64 only).
    pub xmm_fast_input: bool,
    /// XMM fast output (0x40000003 EDX bit 15): fast calls may return output in XMM registers.
    pub xmm_fast_output: bool,
    /// How partially completed rep calls continue.
    pub rep_continuation: RepContinuation,
}

impl DispatchConfig {
    /// The options matching an advertised 0x40000003 EDX.
    pub fn from_features(features: MiscFeatures) -> Self {
        Self {
            xmm_fast_input: features.xmm_fast_hypercall_input(),
            xmm_fast_output: features.xmm_fast_hypercall_output(),
            rep_continuation: RepContinuation::default(),
        }
    }
}

/// What the VMM does after a dispatch. Deliberately exhaustive: a VMM must carry out every
/// outcome, so a new one is a breaking change that its `match` points out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// The result value is in RAX (EDX:EAX); resume after the hypercall instruction.
    Completed(HypercallOutput),
    /// The input register holds an updated `rep_start`; resume *at* the hypercall instruction
    /// (with the port-I/O page, step RIP back over the 2-byte `out`).
    Retry(HypercallInput),
}

impl DispatchOutcome {
    /// The result value, for a completed call.
    pub fn result(self) -> Option<HypercallOutput> {
        match self {
            Self::Completed(r) => Some(r),
            Self::Retry(_) => None,
        }
    }
}

/// Largest input or output a call can have: one page.
const BLOCK_MAX: usize = PAGE_SIZE as usize;

/// The hypercall dispatcher of one VP: configuration plus scratch buffers (8 KiB), so that no
/// call touches the heap. Create one per vCPU thread.
pub struct Dispatcher {
    config: DispatchConfig,
    input: [u8; BLOCK_MAX],
    output: [u8; BLOCK_MAX],
}

impl core::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Internal: which call was decoded.
#[derive(Clone, Copy)]
enum Known {
    PostMessage,
    SignalEvent,
    Generic,
}

impl Dispatcher {
    /// A dispatcher with `config`.
    pub fn new(config: DispatchConfig) -> Self {
        Self {
            config,
            input: [0; BLOCK_MAX],
            output: [0; BLOCK_MAX],
        }
    }

    /// The configuration.
    pub fn config(&self) -> DispatchConfig {
        self.config
    }

    /// Decodes, validates and serves the hypercall in `regs`, then writes the result (and any
    /// output) back. See the [module documentation](self) for the steps.
    pub fn dispatch<R, M, H>(
        &mut self,
        convention: CallingConvention,
        regs: &mut R,
        memory: &M,
        handler: &mut H,
    ) -> DispatchOutcome
    where
        R: HypercallRegisters + ?Sized,
        M: GuestMemory + ?Sized,
        H: HypercallHandler + ?Sized,
    {
        let input = HypercallInput(convention.input(regs));
        let outcome = match self.run(convention, input, regs, memory, handler) {
            Ok(outcome) => outcome,
            Err(status) => DispatchOutcome::Completed(HypercallOutput::from_status(status)),
        };
        match outcome {
            DispatchOutcome::Completed(result) => convention.set_result(regs, result.0),
            DispatchOutcome::Retry(input) => convention.set_input(regs, input.0),
        }
        outcome
    }

    fn run<R, M, H>(
        &mut self,
        convention: CallingConvention,
        input: HypercallInput,
        regs: &mut R,
        memory: &M,
        handler: &mut H,
    ) -> Result<DispatchOutcome, HvStatus>
    where
        R: HypercallRegisters + ?Sized,
        M: GuestMemory + ?Sized,
        H: HypercallHandler + ?Sized,
    {
        let (known, shape) = match input.call_code() {
            HypercallCode::POST_MESSAGE => (Known::PostMessage, CallShape::POST_MESSAGE),
            HypercallCode::SIGNAL_EVENT => (Known::SignalEvent, CallShape::SIGNAL_EVENT),
            code => (
                Known::Generic,
                handler
                    .shape(code)
                    .ok_or(HvStatus::INVALID_HYPERCALL_CODE)?,
            ),
        };
        let layout = validate(input, shape)?;
        if layout.input_len > BLOCK_MAX || layout.output_len > BLOCK_MAX {
            // No page can hold it: the parameter list necessarily spans pages.
            return Err(if input.fast() {
                HvStatus::INVALID_HYPERCALL_INPUT
            } else {
                HvStatus::INVALID_ALIGNMENT
            });
        }

        // Fetch the input and prepare the output buffer.
        let out_range = layout.pending_output();
        let output_pairs = layout.output_len.div_ceil(16);
        let input_pairs = layout.input_len.div_ceil(16);
        let output_gpa = if input.fast() {
            let available = convention.fast_pairs(self.config.xmm_fast_input);
            if input_pairs > available {
                return Err(HvStatus::INVALID_HYPERCALL_INPUT);
            }
            if output_pairs > 0
                && (convention != CallingConvention::X64
                    || !self.config.xmm_fast_output
                    || input_pairs + output_pairs > CallingConvention::X64.fast_pairs(true))
            {
                return Err(HvStatus::INVALID_HYPERCALL_INPUT);
            }
            for i in 0..input_pairs {
                let pair = convention.fast_pair(regs, i);
                self.input[16 * i..16 * i + 8].copy_from_slice(&pair[0].to_le_bytes());
                self.input[16 * i + 8..16 * i + 16].copy_from_slice(&pair[1].to_le_bytes());
            }
            // Earlier output elements of a restarted rep call live in these registers already.
            for i in 0..output_pairs {
                let pair = convention.fast_pair(regs, input_pairs + i);
                self.output[16 * i..16 * i + 8].copy_from_slice(&pair[0].to_le_bytes());
                self.output[16 * i + 8..16 * i + 16].copy_from_slice(&pair[1].to_le_bytes());
            }
            None
        } else {
            let input_gpa = convention.input_gpa(regs);
            let output_gpa = convention.output_gpa(regs);
            check_block(input_gpa, layout.input_len)?;
            check_block(output_gpa, layout.output_len)?;
            check_disjoint(input_gpa, layout.input_len, output_gpa, layout.output_len)?;
            // A GPA is ignored when its block is empty.
            if layout.input_len > 0 {
                memory
                    .read(input_gpa, &mut self.input[..layout.input_len])
                    .map_err(|_| HvStatus::INVALID_ALIGNMENT)?;
            }
            // Reading the output block proves it lies in guest memory before the handler runs,
            // and keeps earlier elements of a restarted rep call.
            if layout.output_len > 0 {
                memory
                    .read(output_gpa, &mut self.output[..layout.output_len])
                    .map_err(|_| HvStatus::INVALID_ALIGNMENT)?;
            }
            Some(output_gpa)
        };
        if !layout.rep {
            self.output[..layout.output_len].fill(0);
        }

        let result = self.call(known, input, &layout, handler);

        // Write back what the call produced.
        let remaining = layout.rep_count - layout.rep_start;
        let completed = usize::from(result.completed).min(remaining);
        let written = if layout.rep {
            layout.rep_start * layout.output_element
                ..(layout.rep_start + completed) * layout.output_element
        } else if result.status.is_success() {
            out_range
        } else {
            0..0
        };
        if !written.is_empty() {
            match output_gpa {
                Some(gpa) => memory
                    .write(
                        gpa.wrapping_add(written.start as u64),
                        &self.output[written.clone()],
                    )
                    .map_err(|_| HvStatus::INVALID_ALIGNMENT)?,
                None => {
                    for i in written.start / 16..written.end.div_ceil(16) {
                        let lo = u64::from_le_bytes(word(&self.output, 16 * i));
                        let hi = u64::from_le_bytes(word(&self.output, 16 * i + 8));
                        convention.set_fast_pair(regs, input_pairs + i, [lo, hi]);
                    }
                }
            }
        }

        if !layout.rep {
            return Ok(DispatchOutcome::Completed(HypercallOutput::from_status(
                result.status,
            )));
        }
        let done = (layout.rep_start + completed) as u16;
        if result.status.is_success()
            && completed < remaining
            && self.config.rep_continuation == RepContinuation::RetryInPlace
        {
            return Ok(DispatchOutcome::Retry(input.with_rep_start(done)));
        }
        Ok(DispatchOutcome::Completed(
            HypercallOutput::from_status(result.status).with_reps_completed(done),
        ))
    }

    /// Parses the typed parameters and calls the handler.
    fn call<H: HypercallHandler + ?Sized>(
        &mut self,
        known: Known,
        input: HypercallInput,
        layout: &CallLayout,
        handler: &mut H,
    ) -> RepResult {
        let bytes = &self.input[..layout.input_len];
        match known {
            Known::PostMessage => {
                let Ok((block, _)) = PostMessageInput::read_from_prefix(bytes) else {
                    return RepResult::status(HvStatus::INVALID_HYPERCALL_INPUT);
                };
                let message_type = HvMessageType(block.message_type.get());
                let size = block.payload_size.get() as usize;
                if block.reserved.get() != 0
                    || !message_type.is_postable()
                    || size > MESSAGE_PAYLOAD_MAX
                {
                    return RepResult::status(HvStatus::INVALID_PARAMETER);
                }
                RepResult::status(handler.post_message(PostMessageRequest {
                    connection_id: block.connection_id.get(),
                    message_type,
                    payload: &block.payload[..size],
                }))
            }
            Known::SignalEvent => {
                let Ok((block, _)) = SignalEventInput::read_from_prefix(bytes) else {
                    return RepResult::status(HvStatus::INVALID_HYPERCALL_INPUT);
                };
                let flag_number = block.flag_number.get();
                if block.reserved.get() != 0 || u32::from(flag_number) >= EVENT_FLAGS_PER_SINT {
                    return RepResult::status(HvStatus::INVALID_PARAMETER);
                }
                RepResult::status(handler.signal_event(SignalEventRequest {
                    connection_id: block.connection_id.get(),
                    flag_number,
                }))
            }
            Known::Generic => {
                let (header, rest) = bytes.split_at(layout.header_len.min(bytes.len()));
                let (variable_header, elements) =
                    rest.split_at(layout.variable_len.min(rest.len()));
                let skip = (layout.rep_start * layout.input_element).min(elements.len());
                let call = GenericCall {
                    input,
                    header,
                    variable_header,
                    elements: &elements[skip..],
                };
                let out = layout.pending_output();
                handler.call(call, &mut self.output[out])
            }
        }
    }
}

fn word(buf: &[u8], at: usize) -> [u8; 8] {
    let mut w = [0; 8];
    w.copy_from_slice(&buf[at..at + 8]);
    w
}

#[cfg(test)]
mod tests;
