//! Power management: the power-off port.
//!
//! Protocol: a one-byte `out` to [`POWER_OFF_PORT`] powers the VM off; the byte is the
//! guest's exit status, 0 for success. The VMM stops running the vCPU and reports the
//! status. Reads and wider writes are errors: the port has no other function.

use super::{DeviceError, PortAction, PortDevice};

/// The power-off port.
pub const POWER_OFF_PORT: u16 = 0xf4;

/// The power-off device.
#[derive(Debug, Default)]
pub struct PowerOff;

impl PortDevice for PowerOff {
    fn name(&self) -> &'static str {
        "power-off"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Result<(), DeviceError> {
        Err(DeviceError::UnsupportedAccess {
            offset,
            size: data.len(),
            direction: "read",
        })
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> Result<PortAction, DeviceError> {
        match data {
            [status] => Ok(PortAction::PowerOff { status: *status }),
            _ => Err(DeviceError::UnsupportedAccess {
                offset,
                size: data.len(),
                direction: "write",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_write_powers_off_with_status() {
        let mut pm = PowerOff;
        assert_eq!(
            pm.write(0, &[0]).unwrap(),
            PortAction::PowerOff { status: 0 }
        );
        assert_eq!(
            pm.write(0, &[7]).unwrap(),
            PortAction::PowerOff { status: 7 }
        );
        assert!(pm.write(0, &[0, 0]).is_err());
        assert!(pm.read(0, &mut [0]).is_err());
    }
}
