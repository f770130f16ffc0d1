//! Integer arithmetic with the processor's RFLAGS results (Intel SDM Vol. 2 instruction pages).
//!
//! Every function returns the result (masked to the operand size) and the flags it computes,
//! and the caller merges the written bits into RFLAGS. Where the SDM leaves a flag undefined,
//! the value here is a plausible one; comparisons against hardware mask those flags out.

use crate::rflags as rf;

pub(crate) const CF: u64 = rf::CF as u64;
pub(crate) const PF: u64 = rf::PF as u64;
pub(crate) const AF: u64 = rf::AF as u64;
pub(crate) const ZF: u64 = rf::ZF as u64;
pub(crate) const SF: u64 = rf::SF as u64;
pub(crate) const OF: u64 = rf::OF as u64;
pub(crate) const STATUS: u64 = rf::STATUS as u64;

/// The mask of an operand of `size` bytes.
pub(crate) const fn mask(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// The sign bit of an operand of `size` bytes.
pub(crate) const fn sign(size: u8) -> u64 {
    1 << (size as u32 * 8 - 1)
}

/// Sign-extends the low `size` bytes of `v`.
pub(crate) const fn sext(v: u64, size: u8) -> i64 {
    let shift = 64 - size as u32 * 8;
    ((v << shift) as i64) >> shift
}

/// ZF, SF and PF of a result.
pub(crate) fn szp(r: u64, size: u8) -> u64 {
    let r = r & mask(size);
    let mut f = 0;
    if r == 0 {
        f |= ZF;
    }
    if r & sign(size) != 0 {
        f |= SF;
    }
    if (r as u8).count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

/// `a + b + carry`.
pub(crate) fn add(a: u64, b: u64, carry: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let wide = u128::from(a) + u128::from(b) + u128::from(carry);
    let r = wide as u64 & m;
    let mut f = szp(r, size);
    if wide > u128::from(m) {
        f |= CF;
    }
    if (a ^ r) & (b ^ r) & sign(size) != 0 {
        f |= OF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    (r, f)
}

/// `a - b - borrow`.
pub(crate) fn sub(a: u64, b: u64, borrow: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let r = a.wrapping_sub(b).wrapping_sub(u64::from(borrow)) & m;
    let mut f = szp(r, size);
    if u128::from(a) < u128::from(b) + u128::from(borrow) {
        f |= CF;
    }
    if (a ^ b) & (a ^ r) & sign(size) != 0 {
        f |= OF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    (r, f)
}

/// The flags of a logical result (CF = OF = 0; AF undefined, here 0).
pub(crate) fn logic(r: u64, size: u8) -> (u64, u64) {
    let r = r & mask(size);
    (r, szp(r, size))
}

/// A shift or rotate: `Some((result, flags, written))`, or `None` when the masked count
/// leaves the operand and flags unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShiftOp {
    Rol,
    Ror,
    Rcl,
    Rcr,
    Shl,
    Shr,
    Sar,
}

pub(crate) fn shift(
    op: ShiftOp,
    v: u64,
    count: u64,
    size: u8,
    cf_in: bool,
) -> Option<(u64, u64, u64)> {
    let bits = u32::from(size) * 8;
    let m = mask(size);
    let v = v & m;
    let count = (count & if size == 8 { 63 } else { 31 }) as u32;
    if count == 0 {
        return None;
    }
    let msb = |x: u64| x & sign(size) != 0;
    let bool_flag = |b: bool, f: u64| if b { f } else { 0 };
    match op {
        ShiftOp::Shl | ShiftOp::Shr | ShiftOp::Sar => {
            let (r, cf, of) = match op {
                ShiftOp::Shl => {
                    let wide = u128::from(v) << count;
                    let r = wide as u64 & m;
                    let cf = (wide >> bits) & 1 != 0;
                    (r, cf, msb(r) != cf)
                }
                ShiftOp::Shr => {
                    let r = if count >= 64 { 0 } else { v >> count };
                    let cf = (v >> (count - 1).min(63)) & 1 != 0 && count <= 64;
                    (r & m, cf, msb(v))
                }
                _ => {
                    let s = sext(v, size);
                    let r = (s >> count.min(63)) as u64 & m;
                    let cf = (s >> (count - 1).min(63)) & 1 != 0;
                    (r, cf, false)
                }
            };
            let f = szp(r, size) | bool_flag(cf, CF) | bool_flag(of, OF);
            Some((r, f, STATUS))
        }
        ShiftOp::Rol | ShiftOp::Ror => {
            let c = count % bits;
            let (r, cf, of) = if op == ShiftOp::Rol {
                let r = if c == 0 {
                    v
                } else {
                    ((v << c) | (v >> (bits - c))) & m
                };
                let cf = r & 1 != 0;
                (r, cf, msb(r) != cf)
            } else {
                let r = if c == 0 {
                    v
                } else {
                    ((v >> c) | (v << (bits - c))) & m
                };
                (r, msb(r), msb(r) != (r & (sign(size) >> 1) != 0))
            };
            Some((r, bool_flag(cf, CF) | bool_flag(of, OF), CF | OF))
        }
        ShiftOp::Rcl | ShiftOp::Rcr => {
            let total = bits + 1;
            let c = count % total;
            if c == 0 {
                return None;
            }
            let x = u128::from(cf_in) << bits | u128::from(v);
            let tm = (1u128 << total) - 1;
            let rot = if op == ShiftOp::Rcl {
                ((x << c) | (x >> (total - c))) & tm
            } else {
                ((x >> c) | (x << (total - c))) & tm
            };
            let r = rot as u64 & m;
            let cf = (rot >> bits) & 1 != 0;
            let of = if op == ShiftOp::Rcl {
                msb(r) != cf
            } else {
                msb(v) != cf_in
            };
            Some((r, bool_flag(cf, CF) | bool_flag(of, OF), CF | OF))
        }
    }
}

/// `SHLD` (`left`) / `SHRD`: shifts `dst`, filling from `src`.
pub(crate) fn double_shift(
    left: bool,
    dst: u64,
    src: u64,
    count: u64,
    size: u8,
) -> Option<(u64, u64)> {
    let bits = u32::from(size) * 8;
    let m = mask(size);
    let (dst, src) = (dst & m, src & m);
    let count = (count & if size == 8 { 63 } else { 31 }) as u32;
    if count == 0 {
        return None;
    }
    let (r, cf) = if left {
        let x = u128::from(dst) << bits | u128::from(src);
        let r = ((x << count) >> bits) as u64 & m;
        let cf = (x >> (2 * bits - count)) & 1 != 0;
        (r, cf)
    } else {
        let x = u128::from(src) << bits | u128::from(dst);
        let r = (x >> count) as u64 & m;
        let cf = (x >> (count - 1)) & 1 != 0;
        (r, cf)
    };
    let mut f = szp(r, size);
    if cf {
        f |= CF;
    }
    if (r ^ dst) & sign(size) != 0 {
        f |= OF;
    }
    Some((r, f))
}

/// Does condition code `cc` (0–15) hold for `flags`?
pub(crate) fn condition(cc: u8, flags: u64) -> bool {
    let f = |b: u64| flags & b != 0;
    let r = match cc >> 1 {
        0 => f(OF),
        1 => f(CF),
        2 => f(ZF),
        3 => f(CF) || f(ZF),
        4 => f(SF),
        5 => f(PF),
        6 => f(SF) != f(OF),
        _ => f(ZF) || f(SF) != f(OF),
    };
    r != (cc & 1 != 0)
}
