//! Decimal formatting that stays inside the guest's own code.
//!
//! `core`'s integer `Display` is precompiled with SSE2 vector instructions, and on KVM
//! variants that run this guest in the instruction emulator those instructions cannot be
//! emulated (see the boot contract in `main.rs`). These wrappers print digits with plain
//! integer arithmetic, compiled with the guest's flags.

use core::fmt;

/// An unsigned integer printed in decimal.
#[derive(Debug, Clone, Copy)]
pub struct Dec(pub u64);

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = [0u8; 20];
        let mut n = self.0;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        // Only ASCII digits were written.
        f.write_str(core::str::from_utf8(&digits[at..]).unwrap_or("?"))
    }
}

/// A signed integer printed in decimal with an explicit sign.
#[derive(Debug, Clone, Copy)]
pub struct Signed(pub i64);

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 < 0 { "-" } else { "+" })?;
        Dec(self.0.unsigned_abs()).fmt(f)
    }
}
