//! A 16550-style UART, transmit side only: what the guest sends appears on the host.
//!
//! Enough of the register set for a polled driver: the transmitter is always ready (the line
//! status register reads "transmitter empty"), received data is never available, and the
//! configuration registers keep what the guest writes to them. Output is buffered by line and
//! written to the host at each newline (and when the VM stops).

use std::io::Write;

use super::{DeviceError, PortAction, PortDevice};

/// Base port of the first serial port (COM1).
pub const COM1_BASE: u16 = 0x3f8;
/// Number of ports a 16550 occupies.
pub const PORT_COUNT: u16 = 8;

/// Register offsets from the base port.
pub mod reg {
    /// Receive buffer (read) / transmit holding register (write); divisor low with DLAB.
    pub const DATA: u16 = 0;
    /// Interrupt enable; divisor high with DLAB.
    pub const IER: u16 = 1;
    /// Interrupt identification (read) / FIFO control (write).
    pub const IIR_FCR: u16 = 2;
    /// Line control.
    pub const LCR: u16 = 3;
    /// Modem control.
    pub const MCR: u16 = 4;
    /// Line status.
    pub const LSR: u16 = 5;
    /// Modem status.
    pub const MSR: u16 = 6;
    /// Scratch.
    pub const SCRATCH: u16 = 7;
}

/// `LCR` bit: the divisor latch is mapped at offsets 0 and 1.
pub const LCR_DLAB: u8 = 1 << 7;
/// `LSR` value: transmit holding register empty (bit 5) and transmitter empty (bit 6).
pub const LSR_TRANSMITTER_EMPTY: u8 = 0x60;
/// `IIR` value: no interrupt pending.
pub const IIR_NONE_PENDING: u8 = 0x01;

/// The most bytes of one line held before they are written out.
pub const MAX_LINE: usize = 4096;

/// A serial port whose output goes to `W`.
#[derive(Debug)]
pub struct Serial<W: Write> {
    out: W,
    line: Vec<u8>,
    ier: u8,
    lcr: u8,
    mcr: u8,
    scratch: u8,
    divisor: u16,
}

impl<W: Write> Serial<W> {
    /// A serial port in its reset state, writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::new(),
            ier: 0,
            lcr: 0,
            mcr: 0,
            scratch: 0,
            divisor: 0,
        }
    }

    /// The host side of the port (for tests).
    #[cfg(test)]
    pub fn output(&self) -> &W {
        &self.out
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    fn transmit(&mut self, byte: u8) -> Result<(), DeviceError> {
        self.line.push(byte);
        // A guest that never ends its line must not grow host memory: long lines go out in
        // pieces.
        if byte == b'\n' || self.line.len() >= MAX_LINE {
            self.flush_line()?;
        }
        Ok(())
    }

    fn flush_line(&mut self) -> Result<(), DeviceError> {
        if !self.line.is_empty() {
            self.out
                .write_all(&self.line)
                .map_err(DeviceError::Output)?;
            self.line.clear();
        }
        self.out.flush().map_err(DeviceError::Output)
    }

    fn read_register(&self, offset: u16) -> u8 {
        let [divisor_low, divisor_high] = self.divisor.to_le_bytes();
        match offset {
            reg::DATA if self.dlab() => divisor_low,
            reg::IER if self.dlab() => divisor_high,
            reg::DATA => 0, // nothing received
            reg::IER => self.ier,
            reg::IIR_FCR => IIR_NONE_PENDING,
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => LSR_TRANSMITTER_EMPTY,
            reg::MSR => 0,
            reg::SCRATCH => self.scratch,
            _ => 0xff, // outside the register block
        }
    }

    fn write_register(&mut self, offset: u16, value: u8) -> Result<(), DeviceError> {
        let [divisor_low, divisor_high] = self.divisor.to_le_bytes();
        match offset {
            reg::DATA if self.dlab() => self.divisor = u16::from_le_bytes([value, divisor_high]),
            reg::IER if self.dlab() => self.divisor = u16::from_le_bytes([divisor_low, value]),
            reg::DATA => self.transmit(value)?,
            reg::IER => self.ier = value & 0x0f,
            reg::IIR_FCR | reg::LSR | reg::MSR => {} // FIFO control is a no-op; status is read-only
            reg::LCR => self.lcr = value,
            reg::MCR => self.mcr = value & 0x1f,
            reg::SCRATCH => self.scratch = value,
            _ => {} // outside the register block
        }
        Ok(())
    }
}

impl<W: Write> PortDevice for Serial<W> {
    fn name(&self) -> &'static str {
        "serial"
    }

    /// Each byte of `data` is one read of the register (as `rep insb` does).
    fn read(&mut self, offset: u16, data: &mut [u8]) -> Result<(), DeviceError> {
        data.fill(self.read_register(offset));
        Ok(())
    }

    /// Each byte of `data` is one write to the register (as `rep outsb` does).
    fn write(&mut self, offset: u16, data: &[u8]) -> Result<PortAction, DeviceError> {
        for &byte in data {
            self.write_register(offset, byte)?;
        }
        Ok(PortAction::Continue)
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        self.flush_line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmits_by_line() {
        let mut serial = Serial::new(Vec::new());
        serial.write(reg::DATA, b"hi").unwrap();
        assert!(serial.output().is_empty());
        serial.write(reg::DATA, b"\nrest").unwrap();
        assert_eq!(serial.output(), b"hi\n");
        serial.flush().unwrap();
        assert_eq!(serial.output(), b"hi\nrest");
    }

    #[test]
    fn a_line_without_end_goes_out_in_pieces() {
        let mut serial = Serial::new(Vec::new());
        for _ in 0..3 * MAX_LINE + 5 {
            serial.write(reg::DATA, b"x").unwrap();
        }
        assert_eq!(serial.output().len(), 3 * MAX_LINE);
        assert!(serial.line.len() < MAX_LINE);
    }

    #[test]
    fn reports_transmitter_empty() {
        let mut serial = Serial::new(Vec::new());
        let mut lsr = [0];
        serial.read(reg::LSR, &mut lsr).unwrap();
        assert_eq!(lsr, [LSR_TRANSMITTER_EMPTY]);
    }

    #[test]
    fn divisor_latch_hides_the_data_register() {
        let mut serial = Serial::new(Vec::new());
        serial.write(reg::LCR, &[LCR_DLAB | 0x03]).unwrap();
        serial.write(reg::DATA, &[0x01]).unwrap();
        serial.write(reg::IER, &[0x00]).unwrap();
        serial.write(reg::LCR, &[0x03]).unwrap();
        serial.flush().unwrap();
        assert!(serial.output().is_empty());
        serial.write(reg::LCR, &[LCR_DLAB]).unwrap();
        let mut low = [0];
        serial.read(reg::DATA, &mut low).unwrap();
        assert_eq!(low, [0x01]);
    }
}
