//! Pure validation of a hypercall input value against a call's shape, and the block sizes that
//! follow from it (TLFS "Hypercall Inputs", "Common Hypercall Status Codes").

use super::handler::CallShape;
use crate::defs::{HvStatus, HypercallInput, PAGE_SIZE};

/// Where the parts of a validated call's input and output lie, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallLayout {
    /// Whether this is a rep call.
    pub rep: bool,
    /// Fixed header size.
    pub header_len: usize,
    /// Variable header size.
    pub variable_len: usize,
    /// One input element.
    pub input_element: usize,
    /// One output element.
    pub output_element: usize,
    /// Rep start index (0 for simple calls).
    pub rep_start: usize,
    /// Rep count (0 for simple calls).
    pub rep_count: usize,
    /// Total input size: header + variable header + all elements.
    pub input_len: usize,
    /// Total output size: the output block or all output elements.
    pub output_len: usize,
}

impl CallLayout {
    /// Byte range of the output elements still to produce (rep) or the output block (simple).
    pub fn pending_output(&self) -> core::ops::Range<usize> {
        if self.rep {
            self.rep_start * self.output_element..self.output_len
        } else {
            0..self.output_len
        }
    }
}

/// Checks the input value against `shape` exactly as the TLFS lists it for
/// `HV_STATUS_INVALID_HYPERCALL_INPUT`: reserved bits set; a rep count or rep start on a simple
/// call; a zero rep count or a rep start not below the rep count on a rep call; a variable header
/// on a call that takes none.
pub(crate) fn validate(input: HypercallInput, shape: CallShape) -> Result<CallLayout, HvStatus> {
    if input.reserved_bits() != 0 {
        return Err(HvStatus::INVALID_HYPERCALL_INPUT);
    }
    let variable_len = usize::from(input.variable_header_size()) * 8;
    let layout = match shape {
        CallShape::Simple {
            input_size,
            output_size,
            variable_header,
        } => {
            if input.rep_count() != 0 || input.rep_start() != 0 {
                return Err(HvStatus::INVALID_HYPERCALL_INPUT);
            }
            if !variable_header && variable_len != 0 {
                return Err(HvStatus::INVALID_HYPERCALL_INPUT);
            }
            CallLayout {
                rep: false,
                header_len: usize::from(input_size),
                variable_len,
                input_element: 0,
                output_element: 0,
                rep_start: 0,
                rep_count: 0,
                input_len: usize::from(input_size) + variable_len,
                output_len: usize::from(output_size),
            }
        }
        CallShape::Rep {
            header_size,
            input_element_size,
            output_element_size,
            variable_header,
        } => {
            let count = usize::from(input.rep_count());
            let start = usize::from(input.rep_start());
            if count == 0 || start >= count {
                return Err(HvStatus::INVALID_HYPERCALL_INPUT);
            }
            if !variable_header && variable_len != 0 {
                return Err(HvStatus::INVALID_HYPERCALL_INPUT);
            }
            let input_element = usize::from(input_element_size);
            let output_element = usize::from(output_element_size);
            CallLayout {
                rep: true,
                header_len: usize::from(header_size),
                variable_len,
                input_element,
                output_element,
                rep_start: start,
                rep_count: count,
                input_len: usize::from(header_size) + variable_len + input_element * count,
                output_len: output_element * count,
            }
        }
    };
    Ok(layout)
}

/// Checks a memory-based block: 8-byte aligned, inside one page. The TLFS answers
/// `HV_STATUS_INVALID_ALIGNMENT` for both (and for a block outside guest memory).
pub(crate) fn check_block(gpa: u64, len: usize) -> Result<(), HvStatus> {
    if len == 0 {
        return Ok(());
    }
    if !gpa.is_multiple_of(8) || (gpa % PAGE_SIZE) + len as u64 > PAGE_SIZE {
        return Err(HvStatus::INVALID_ALIGNMENT);
    }
    Ok(())
}

/// Checks that the input and output blocks do not overlap. The TLFS's alignment rules say the
/// two parameter lists "cannot overlap or cross page boundaries", so both get
/// `HV_STATUS_INVALID_ALIGNMENT`. (Each block already lies within one page.)
pub(crate) fn check_disjoint(
    input: u64,
    input_len: usize,
    output: u64,
    output_len: usize,
) -> Result<(), HvStatus> {
    if input_len == 0 || output_len == 0 {
        return Ok(());
    }
    let input_end = input.saturating_add(input_len as u64);
    let output_end = output.saturating_add(output_len as u64);
    if input < output_end && output < input_end {
        return Err(HvStatus::INVALID_ALIGNMENT);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::HypercallCode;

    const REP: CallShape = CallShape::Rep {
        header_size: 16,
        input_element_size: 8,
        output_element_size: 16,
        variable_header: false,
    };

    fn simple() -> HypercallInput {
        HypercallInput::simple(HypercallCode::POST_MESSAGE)
    }

    #[test]
    fn table_of_input_value_rules() {
        let bad = HvStatus::INVALID_HYPERCALL_INPUT;
        type Case = (HypercallInput, CallShape, Result<(usize, usize), HvStatus>);
        let cases: &[Case] = &[
            (simple(), CallShape::POST_MESSAGE, Ok((256, 0))),
            (
                simple().with_fast(true).with_nested(true),
                CallShape::SIGNAL_EVENT,
                Ok((8, 0)),
            ),
            (
                HypercallInput(simple().0 | 1 << 27),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                HypercallInput(simple().0 | 1 << 30),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                HypercallInput(simple().0 | 1 << 44),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                HypercallInput(simple().0 | 1 << 47),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                HypercallInput(simple().0 | 1 << 60),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                HypercallInput(simple().0 | 1 << 63),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                simple().with_rep_count(1),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                simple().with_rep_start(1),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                simple().with_variable_header_size(1),
                CallShape::POST_MESSAGE,
                Err(bad),
            ),
            (
                simple().with_variable_header_size(2),
                CallShape::Simple {
                    input_size: 8,
                    output_size: 8,
                    variable_header: true,
                },
                Ok((24, 8)),
            ),
            (simple().with_rep_count(3), REP, Ok((16 + 24, 48))),
            (
                simple().with_rep_count(3).with_rep_start(2),
                REP,
                Ok((16 + 24, 48)),
            ),
            (simple(), REP, Err(bad)),
            (simple().with_rep_count(3).with_rep_start(3), REP, Err(bad)),
            (simple().with_rep_count(3).with_rep_start(4), REP, Err(bad)),
            (
                simple().with_rep_count(3).with_variable_header_size(1),
                REP,
                Err(bad),
            ),
        ];
        for (i, &(input, shape, expected)) in cases.iter().enumerate() {
            let got = validate(input, shape).map(|l| (l.input_len, l.output_len));
            assert_eq!(got, expected, "case {i}: {input:?}");
        }
    }

    #[test]
    fn pending_output_of_a_restarted_rep_call() {
        let l = validate(simple().with_rep_count(4).with_rep_start(3), REP).unwrap();
        assert_eq!(l.pending_output(), 48..64);
        let l = validate(simple(), CallShape::SIGNAL_EVENT).unwrap();
        assert_eq!(l.pending_output(), 0..0);
    }

    #[test]
    fn table_of_block_rules() {
        let bad = Err(HvStatus::INVALID_ALIGNMENT);
        assert_eq!(check_block(0x1000, 256), Ok(()));
        assert_eq!(check_block(0x1f00, 256), Ok(()));
        assert_eq!(check_block(0x1f08, 256), bad);
        assert_eq!(check_block(0x1004, 8), bad);
        assert_eq!(check_block(0x1001, 0), Ok(()));
        assert_eq!(check_block(0x1000, 4096), Ok(()));
        assert_eq!(check_block(0x1000, 4097), bad);
        assert_eq!(check_block(u64::MAX - 7, 8), Ok(()));
    }

    #[test]
    fn input_and_output_must_not_overlap() {
        let bad = Err(HvStatus::INVALID_ALIGNMENT);
        assert_eq!(check_disjoint(0x1000, 16, 0x1010, 16), Ok(()));
        assert_eq!(check_disjoint(0x1010, 16, 0x1000, 16), Ok(()));
        assert_eq!(check_disjoint(0x1000, 16, 0x1008, 16), bad);
        assert_eq!(check_disjoint(0x1008, 16, 0x1000, 16), bad);
        assert_eq!(check_disjoint(0x1000, 64, 0x1010, 8), bad);
        assert_eq!(check_disjoint(0x1000, 0, 0x1000, 16), Ok(()));
        assert_eq!(check_disjoint(0x1000, 16, 0x1000, 0), Ok(()));
        // An empty block is ignored even where it points inside the other one.
        assert_eq!(check_disjoint(0x1008, 0, 0x1000, 16), Ok(()));
        assert_eq!(check_disjoint(0x1000, 16, 0x1008, 0), Ok(()));
        assert_eq!(check_disjoint(u64::MAX - 7, 8, u64::MAX - 15, 16), bad);
    }
}
