//! A polled, transmit-only driver for a 16550-compatible UART.

use crate::cpu;

/// Base port of the first serial port (COM1).
pub const COM1: u16 = 0x3f8;

/// Register offsets from the base port (with the divisor latch off).
mod reg {
    /// Transmitter holding register (write).
    pub const DATA: u16 = 0;
    /// Interrupt enable register.
    pub const IER: u16 = 1;
    /// Line control register.
    pub const LCR: u16 = 3;
    /// Line status register (read).
    pub const LSR: u16 = 5;
}

/// `LCR` value for 8 data bits, no parity, one stop bit, divisor latch off.
const LCR_8N1: u8 = 0x03;
/// `LSR` bit: the transmitter holding register is empty and takes another byte.
const LSR_THR_EMPTY: u8 = 1 << 5;

/// One serial port, addressed by its base I/O port.
#[derive(Debug)]
pub struct Serial {
    base: u16,
}

impl Serial {
    /// The first serial port.
    pub const fn com1() -> Self {
        Self { base: COM1 }
    }

    /// Puts the port in a known state: interrupts off, 8N1.
    pub fn init(&mut self) {
        cpu::outb(self.base + reg::IER, 0);
        cpu::outb(self.base + reg::LCR, LCR_8N1);
    }

    /// Sends one byte, waiting until the transmitter takes it.
    pub fn write_byte(&mut self, byte: u8) {
        while cpu::inb(self.base + reg::LSR) & LSR_THR_EMPTY == 0 {
            core::hint::spin_loop();
        }
        cpu::outb(self.base + reg::DATA, byte);
    }

    /// Sends a string byte by byte.
    pub fn write_str(&mut self, s: &str) {
        for byte in s.bytes() {
            self.write_byte(byte);
        }
    }
}

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Serial::write_str(self, s);
        Ok(())
    }
}
