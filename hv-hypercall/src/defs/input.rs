//! The hypercall input value (the "control" word the guest passes) and the result value the
//! hypervisor returns (TLFS "Hypercall Inputs" / "Hypercall Outputs"; reference §5.2).

use super::{HvStatus, HypercallCode};
use crate::macros::bitfield;

bitfield! {
    /// The 64-bit hypercall input value: RCX on x64, EDX:EAX on 32-bit x86.
    ///
    /// | bits | field |
    /// |---|---|
    /// | 15:0 | call code |
    /// | 16 | fast (parameters in registers) |
    /// | 26:17 | variable header size, in qwords |
    /// | 30:27 | reserved, must be zero |
    /// | 31 | nested (route to the L0 hypervisor) |
    /// | 43:32 | rep count |
    /// | 47:44 | reserved, must be zero |
    /// | 59:48 | rep start index |
    /// | 63:60 | reserved, must be zero |
    pub struct HypercallInput(u64) {
        /// The call code (raw; see [`HypercallInput::call_code`]).
        code, with_code: u16 [0..16],
        /// Fast call: input (and output) in registers rather than guest memory.
        fast, with_fast: bool [16],
        /// Size of the variable header in 8-byte units.
        variable_header_size, with_variable_header_size: u16 [17..27],
        /// Nested: the call is meant for the L0 hypervisor of a nested setup.
        nested, with_nested: bool [31],
        /// Rep count: how many elements a rep call processes (0 for simple calls).
        rep_count, with_rep_count: u16 [32..44],
        /// Rep start index: the first element still to process.
        rep_start, with_rep_start: u16 [48..60],
    }
}

impl HypercallInput {
    /// The call code as an open enum.
    pub const fn call_code(self) -> HypercallCode {
        HypercallCode(self.code())
    }

    /// A simple (non-rep) call of `code`.
    pub const fn simple(code: HypercallCode) -> Self {
        Self::new().with_code(code.0)
    }

    /// A rep call of `code` over `count` elements, starting at element 0.
    pub const fn rep(code: HypercallCode, count: u16) -> Self {
        Self::new().with_code(code.0).with_rep_count(count)
    }
}

bitfield! {
    /// The 64-bit hypercall result value: RAX on x64, EDX:EAX on 32-bit x86.
    ///
    /// | bits | field |
    /// |---|---|
    /// | 15:0 | status ([`HvStatus`]) |
    /// | 31:16 | reserved |
    /// | 43:32 | reps completed |
    /// | 63:44 | reserved |
    pub struct HypercallOutput(u64) {
        /// The status code (raw; see [`HypercallOutput::call_status`]).
        status_code, with_status_code: u16 [0..16],
        /// Reps completed: for rep calls, how many elements are done (counting from element 0).
        reps_completed, with_reps_completed: u16 [32..44],
    }
}

impl HypercallOutput {
    /// A result with `status` and no reps completed.
    pub const fn from_status(status: HvStatus) -> Self {
        Self::new().with_status_code(status.0)
    }

    /// The status as an open enum.
    pub const fn call_status(self) -> HvStatus {
        HvStatus(self.status_code())
    }

    /// Whether the status is `SUCCESS`.
    pub const fn is_success(self) -> bool {
        self.status_code() == HvStatus::SUCCESS.0
    }
}

/// The largest rep count (and rep start) the 12-bit fields can hold.
pub const MAX_REP_COUNT: u16 = 0xfff;

/// The largest variable header size (in qwords) the 10-bit field can hold.
pub const MAX_VARIABLE_HEADER_QWORDS: u16 = 0x3ff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_fields_sit_where_the_reference_puts_them() {
        let v = HypercallInput::new()
            .with_code(0x5c)
            .with_fast(true)
            .with_variable_header_size(0x3ff)
            .with_nested(true)
            .with_rep_count(0xfff)
            .with_rep_start(0xabc);
        assert_eq!(v.0 & 0xffff, 0x5c);
        assert_eq!(v.0 >> 16 & 1, 1);
        assert_eq!(v.0 >> 17 & 0x3ff, 0x3ff);
        assert_eq!(v.0 >> 31 & 1, 1);
        assert_eq!(v.0 >> 32 & 0xfff, 0xfff);
        assert_eq!(v.0 >> 48 & 0xfff, 0xabc);
        assert_eq!(v.reserved_bits(), 0);
        // Reserved: 30:27, 47:44, 63:60.
        let reserved = (0xf << 27) | (0xf << 44) | (0xf << 60);
        assert_eq!(HypercallInput::DEFINED, !reserved);
        assert_eq!(HypercallInput(u64::MAX).reserved_bits(), reserved);
    }

    #[test]
    fn builders_truncate_to_field_width() {
        let v = HypercallInput::new().with_rep_count(0xffff);
        assert_eq!(v.rep_count(), 0xfff);
        assert_eq!(v.reserved_bits(), 0);
        assert_eq!(v.rep_start(), 0);
    }

    #[test]
    fn output_fields() {
        let r = HypercallOutput::from_status(HvStatus::INVALID_ALIGNMENT).with_reps_completed(7);
        assert_eq!(r.0, 0x4 | 7 << 32);
        assert_eq!(r.call_status(), HvStatus::INVALID_ALIGNMENT);
        assert!(!r.is_success());
        assert_eq!(HypercallOutput::DEFINED, 0xffff | 0xfff << 32);
    }

    #[test]
    fn debug_prints_fields() {
        let s = std::format!("{:?}", HypercallInput::simple(HypercallCode::POST_MESSAGE));
        assert!(s.contains("code: 92"), "{s}");
        let s = std::format!("{:?}", HypercallInput(1 << 63));
        assert!(s.contains("reserved_bits: 0x8000000000000000"), "{s}");
    }
}
