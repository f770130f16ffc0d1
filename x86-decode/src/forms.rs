//! Hand-written structure tables: which bytes follow each legacy opcode.
//!
//! Derived from the opcode maps in the Intel SDM Vol. 2 Appendix A (tables) and the
//! AMD APM Vol. 3 Appendix A. A *form* says whether a ModRM byte follows and what immediate or
//! displacement comes after it; it is all a decoder needs to find an instruction's length.
//! Whether an opcode is *defined* is a separate question answered by [`crate::validity`].
//!
//! The `0F 38` map always has a ModRM byte and no immediate; `0F 3A` always has ModRM and an
//! 8-bit immediate. VEX/EVEX/XOP forms follow from the map (see `decode.rs`).

/// No ModRM, no immediate.
pub(crate) const N: u8 = 0;
/// ModRM.
pub(crate) const M: u8 = 1;
/// ModRM, 8-bit immediate.
pub(crate) const MB: u8 = 2;
/// ModRM, 16/32-bit immediate (by operand size).
pub(crate) const MZ: u8 = 3;
/// 8-bit immediate.
pub(crate) const B: u8 = 4;
/// 16-bit immediate.
pub(crate) const W: u8 = 5;
/// 16/32-bit immediate (by operand size).
pub(crate) const Z: u8 = 6;
/// 16/32/64-bit immediate (`MOV r, imm`: 64-bit with REX.W).
pub(crate) const V: u8 = 7;
/// 8-bit relative branch.
pub(crate) const R8: u8 = 8;
/// 16/32-bit relative branch (vendor-dependent in 64-bit mode).
pub(crate) const RZ: u8 = 9;
/// `moffs` address of address size.
pub(crate) const MO: u8 = 10;
/// Far pointer `ptr16:16` / `ptr16:32`.
pub(crate) const FP: u8 = 11;
/// `ENTER`: 16-bit then 8-bit immediate.
pub(crate) const EN: u8 = 12;
/// Group 3 byte form (`F6`): ModRM, 8-bit immediate only for `/0` and `/1` (`TEST`).
pub(crate) const G3B: u8 = 13;
/// Group 3 (`F7`): ModRM, 16/32-bit immediate only for `/0` and `/1`.
pub(crate) const G3Z: u8 = 14;
/// `C7`: ModRM + 16/32-bit immediate, except `C7 F8` (`XBEGIN`) which takes a relative
/// displacement of operand size.
pub(crate) const G11Z: u8 = 15;
/// ModRM whose `mod` field is ignored: always a register operand (`MOV` to/from CR/DR).
pub(crate) const MR: u8 = 16;
/// 3DNow!: ModRM, then the opcode byte.
pub(crate) const M3D: u8 = 17;
/// `0F 78`: ModRM, plus two 8-bit immediates with a `66` (`EXTRQ`) or `F2` (`INSERTQ`) prefix.
pub(crate) const X78: u8 = 18;
/// `0F FF` (`UD0`): ModRM on Intel, nothing on AMD.
pub(crate) const UD0: u8 = 19;
/// A prefix or escape byte: never an opcode on its own.
pub(crate) const P: u8 = 20;

/// The one-byte map. `C4`, `C5`, `62` and `8F` are listed with their legacy forms (`LES`, `LDS`,
/// `BOUND`, `POP`); the decoder checks for VEX/EVEX/XOP before consulting this table.
#[rustfmt::skip]
pub(crate) static PRIMARY: [u8; 256] = [
    // 0    1    2    3    4    5    6    7    8    9    A    B    C    D    E    F
    M,   M,   M,   M,   B,   Z,   N,   N,   M,   M,   M,   M,   B,   Z,   N,   P,   // 0
    M,   M,   M,   M,   B,   Z,   N,   N,   M,   M,   M,   M,   B,   Z,   N,   N,   // 1
    M,   M,   M,   M,   B,   Z,   P,   N,   M,   M,   M,   M,   B,   Z,   P,   N,   // 2
    M,   M,   M,   M,   B,   Z,   P,   N,   M,   M,   M,   M,   B,   Z,   P,   N,   // 3
    N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   // 4
    N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   // 5
    N,   N,   M,   M,   P,   P,   P,   P,   Z,   MZ,  B,   MB,  N,   N,   N,   N,   // 6
    R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  R8,  // 7
    MB,  MZ,  MB,  MB,  M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // 8
    N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   FP,  N,   N,   N,   N,   N,   // 9
    MO,  MO,  MO,  MO,  N,   N,   N,   N,   B,   Z,   N,   N,   N,   N,   N,   N,   // A
    B,   B,   B,   B,   B,   B,   B,   B,   V,   V,   V,   V,   V,   V,   V,   V,   // B
    MB,  MB,  W,   N,   M,   M,   MB,  G11Z, EN, N,   W,   N,   N,   B,   N,   N,   // C
    M,   M,   M,   M,   B,   B,   N,   N,   M,   M,   M,   M,   M,   M,   M,   M,   // D
    R8,  R8,  R8,  R8,  B,   B,   B,   B,   RZ,  RZ,  FP,  R8,  N,   N,   N,   N,   // E
    P,   N,   P,   P,   N,   N,   G3B, G3Z, N,   N,   N,   N,   N,   N,   M,   M,   // F
];

/// The two-byte map (`0F xx`). `0F 38` and `0F 3A` are escapes.
#[rustfmt::skip]
pub(crate) static SECONDARY: [u8; 256] = [
    // 0    1    2    3    4    5    6    7    8    9    A    B    C    D    E    F
    M,   M,   M,   M,   N,   N,   N,   N,   N,   N,   N,   N,   N,   M,   N,   M3D, // 0
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // 1
    MR,  MR,  MR,  MR,  MR,  N,   MR,  N,   M,   M,   M,   M,   M,   M,   M,   M,   // 2
    N,   N,   N,   N,   N,   N,   N,   N,   P,   N,   P,   N,   N,   N,   N,   N,   // 3
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // 4
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // 5
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // 6
    MB,  MB,  MB,  MB,  M,   M,   M,   N,   X78, M,   M,   M,   M,   M,   M,   M,   // 7
    RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  RZ,  // 8
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // 9
    N,   N,   N,   M,   MB,  M,   M,   M,   N,   N,   N,   M,   MB,  M,   M,   M,   // A
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   MB,  M,   M,   M,   M,   M,   // B
    M,   M,   MB,  M,   MB,  MB,  MB,  M,   N,   N,   N,   N,   N,   N,   N,   N,   // C
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // D
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   // E
    M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   M,   UD0, // F
];

/// Does VEX/EVEX map 1 opcode `op` take an 8-bit immediate? (`PSHUFx`, shift-by-immediate
/// groups, `CMPPS`, `PINSRW`, `PEXTRW`, `SHUFPS`.)
pub(crate) const fn map1_has_imm8(op: u8) -> bool {
    matches!(op, 0x70..=0x73 | 0xC2 | 0xC4..=0xC6)
}
