//! Power management: the VMM's power-off port.
//!
//! Protocol (the VMM's `devices/pm.rs` implements the other side): a one-byte `out` to port
//! [`POWER_OFF_PORT`] stops the VM; the byte is the guest's exit status, 0 for success.

use crate::cpu;

/// The power-off port.
pub const POWER_OFF_PORT: u16 = 0xf4;

/// The exit status the guest reports when it powers off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The guest did what it was built to do.
    Success = 0,
    /// The guest failed (a panic).
    Failure = 1,
}

/// Powers the VM off with `status`. If the VMM does not stop the VM, halts for good.
pub fn power_off(status: Status) -> ! {
    cpu::outb(POWER_OFF_PORT, status as u8);
    loop {
        cpu::halt();
    }
}
