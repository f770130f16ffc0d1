//! Decode errors.

/// Why a byte string is not a valid instruction in the requested mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The instruction would be longer than 15 bytes (#GP(0) on hardware).
    #[error("instruction longer than 15 bytes")]
    TooLong,
    /// The opcode, or this combination of opcode, mandatory prefix, ModRM and VEX/EVEX/XOP
    /// fields, is not defined in this mode (#UD).
    #[error("undefined opcode or operand form")]
    Undefined,
    /// A `LOCK` prefix on an instruction or form that cannot be locked (#UD).
    #[error("lock prefix not allowed")]
    Lock,
    /// A `66`, `F2`, `F3`, `LOCK` or REX prefix in front of a VEX, EVEX or XOP prefix (#UD).
    #[error("legacy prefix before a vex, evex or xop prefix")]
    PrefixBeforeVex,
    /// A reserved bit of a VEX/EVEX/XOP prefix has the wrong value, or a register number is out
    /// of range (for example `CR9` or `DR8`).
    #[error("reserved encoding")]
    Reserved,
}

/// The result of a failed decode. "Need more bytes" (the window was cut short) and "invalid"
/// are kept apart so that an emulator can fetch the rest of an instruction that crosses a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes given end before the instruction does; `have` bytes were available. Supplying
    /// more bytes (up to 15 in all) may make the decode succeed.
    #[error("instruction truncated after {have} bytes")]
    NeedMoreBytes {
        /// How many bytes the window held.
        have: usize,
    },
    /// The bytes are not a valid instruction, whatever follows them.
    #[error("invalid instruction: {0}")]
    Invalid(InvalidReason),
}
