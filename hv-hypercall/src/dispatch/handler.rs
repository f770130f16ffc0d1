//! The handler seam: what a VMM implements to serve hypercalls once the dispatcher has decoded
//! and validated them.

use crate::defs::{HvMessageType, HvStatus, HypercallCode, HypercallInput};

/// A validated `HvCallPostMessage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostMessageRequest<'a> {
    /// The connection to post to (the handler maps it to a port, a VP and a SINT).
    pub connection_id: u32,
    /// The message type: non-zero, bit 31 clear.
    pub message_type: HvMessageType,
    /// The payload, at most 240 bytes.
    pub payload: &'a [u8],
}

/// A validated `HvCallSignalEvent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalEventRequest {
    /// The connection whose port's event flag to set.
    pub connection_id: u32,
    /// The flag number, below 2048 (the handler checks it against the port's flag count).
    pub flag_number: u16,
}

/// The shape of a hypercall: what the dispatcher needs to validate counts and sizes and to
/// fetch the input. Sizes are in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallShape {
    /// A simple call: rep count and rep start must be zero.
    Simple {
        /// Fixed input size.
        input_size: u16,
        /// Output size.
        output_size: u16,
        /// Whether the call takes a variable header (otherwise its size must be zero).
        variable_header: bool,
    },
    /// A rep call: rep count must be non-zero and rep start below it.
    Rep {
        /// Fixed input header size (before any variable header and the elements).
        header_size: u16,
        /// Size of one input element.
        input_element_size: u16,
        /// Size of one output element.
        output_element_size: u16,
        /// Whether the call takes a variable header.
        variable_header: bool,
    },
}

impl CallShape {
    /// The shape of `HvCallPostMessage`: 256 bytes in, nothing out.
    pub const POST_MESSAGE: Self = Self::Simple {
        input_size: 256,
        output_size: 0,
        variable_header: false,
    };

    /// The shape of `HvCallSignalEvent`: 8 bytes in, nothing out.
    pub const SIGNAL_EVENT: Self = Self::Simple {
        input_size: 8,
        output_size: 0,
        variable_header: false,
    };
}

/// A validated call of a code the handler declared with [`HypercallHandler::shape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenericCall<'a> {
    /// The input value as the guest passed it.
    pub input: HypercallInput,
    /// The fixed input header (the whole input of a simple call without variable header).
    pub header: &'a [u8],
    /// The variable header (`variable_header_size × 8` bytes).
    pub variable_header: &'a [u8],
    /// Rep calls: the input elements still to process, from `rep_start` to `rep_count`.
    pub elements: &'a [u8],
}

impl GenericCall<'_> {
    /// The call code.
    pub fn code(&self) -> HypercallCode {
        self.input.call_code()
    }
}

/// What a handler reports for a call.
///
/// A rep handler that answers `SUCCESS` must complete at least one element: with zero it would
/// send the guest (or, with in-place retry, the VP) around the same call forever. (The guest side
/// of this crate refuses such a hypervisor with `MalformedResult`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepResult {
    /// The status. `SUCCESS` with fewer elements than asked means "more time needed": the
    /// dispatcher returns early and the guest continues at `rep_start + completed`.
    pub status: HvStatus,
    /// Rep calls: elements processed by this invocation, counting from `rep_start`.
    /// Ignored for simple calls.
    pub completed: u16,
}

impl RepResult {
    /// A simple call's result.
    pub const fn status(status: HvStatus) -> Self {
        Self {
            status,
            completed: 0,
        }
    }
}

/// Serves hypercalls. The dispatcher calls exactly one method per valid hypercall.
pub trait HypercallHandler {
    /// `HvCallPostMessage` (0x5C): queue the message for the connection's target.
    /// Typical errors: `INVALID_CONNECTION_ID`, `INSUFFICIENT_BUFFERS`, `INVALID_SYNIC_STATE`.
    fn post_message(&mut self, request: PostMessageRequest<'_>) -> HvStatus;

    /// `HvCallSignalEvent` (0x5D): set the connection's event flag.
    /// Typical errors: `INVALID_CONNECTION_ID`, `INVALID_PARAMETER` (flag beyond the port's).
    fn signal_event(&mut self, request: SignalEventRequest) -> HvStatus;

    /// The shape of any other code this handler serves; `None` (the default) makes the dispatcher
    /// answer `INVALID_HYPERCALL_CODE`.
    fn shape(&self, code: HypercallCode) -> Option<CallShape> {
        let _ = code;
        None
    }

    /// Serves a code declared with [`shape`](Self::shape). `output` is the output block (simple
    /// calls; written back on success) or the output elements from `rep_start` on (rep calls;
    /// the first `completed` elements are written back).
    fn call(&mut self, call: GenericCall<'_>, output: &mut [u8]) -> RepResult {
        let _ = (call, output);
        RepResult::status(HvStatus::INVALID_HYPERCALL_CODE)
    }
}

impl<T: HypercallHandler + ?Sized> HypercallHandler for &mut T {
    fn post_message(&mut self, request: PostMessageRequest<'_>) -> HvStatus {
        (**self).post_message(request)
    }
    fn signal_event(&mut self, request: SignalEventRequest) -> HvStatus {
        (**self).signal_event(request)
    }
    fn shape(&self, code: HypercallCode) -> Option<CallShape> {
        (**self).shape(code)
    }
    fn call(&mut self, call: GenericCall<'_>, output: &mut [u8]) -> RepResult {
        (**self).call(call, output)
    }
}
