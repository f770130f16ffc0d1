//! Emulated devices and the port I/O bus that routes guest `in`/`out` to them.
//!
//! A device implements [`PortDevice`] and is registered on a [`PortBus`] for a range of
//! ports; the exit loop looks up the device for each port access and passes it the offset
//! into its range. Later devices (a hypercall port, VMBus) plug in the same way; MSR and MMIO
//! handlers will get buses of their own beside this one.

pub mod pm;
pub mod serial;

/// What the exit loop should do after a device handled a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortAction {
    /// Resume the guest.
    Continue,
    /// Stop the VM: the guest powered off with this exit status.
    PowerOff {
        /// The status the guest reported; 0 is success.
        status: u8,
    },
}

/// An error from a device while handling a port access.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The guest accessed a register with a width or direction the device does not have.
    #[error("unsupported {size}-byte {direction} at offset {offset:#x}")]
    UnsupportedAccess {
        /// Offset of the port in the device's range.
        offset: u16,
        /// Bytes accessed.
        size: usize,
        /// `"read"` or `"write"`.
        direction: &'static str,
    },
    /// Writing device output to the host failed.
    #[error("cannot write device output")]
    Output(#[source] std::io::Error),
}

/// A device reached through I/O ports.
pub trait PortDevice {
    /// A short name for traces and errors.
    fn name(&self) -> &'static str;

    /// Handles `in` from the port at `offset` in the device's range by filling `data`.
    fn read(&mut self, offset: u16, data: &mut [u8]) -> Result<(), DeviceError>;

    /// Handles `out` of `data` to the port at `offset` in the device's range.
    fn write(&mut self, offset: u16, data: &[u8]) -> Result<PortAction, DeviceError>;

    /// Pushes out anything buffered; called when the VM stops.
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// A port range is already taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ports {base:#x}+{len} for {device} overlap {existing}")]
pub struct OverlapError {
    /// The device being registered.
    pub device: &'static str,
    /// First port of its range.
    pub base: u16,
    /// Number of ports.
    pub len: u16,
    /// The device already registered there.
    pub existing: &'static str,
}

/// One device and the ports it answers.
struct Mapping {
    ports: core::ops::Range<u32>,
    device: Box<dyn PortDevice>,
}

/// Routes port numbers to devices.
#[derive(Default)]
pub struct PortBus {
    mappings: Vec<Mapping>,
    /// The MMIO test device (instruction completion's target).
    pub mmio: crate::emulate::MmioDevice,
}

impl core::fmt::Debug for PortBus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut list = f.debug_map();
        for m in &self.mappings {
            list.entry(
                &format_args!("{:#x}..{:#x}", m.ports.start, m.ports.end),
                &m.device.name(),
            );
        }
        list.finish()
    }
}

impl PortBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes ports `base..base + len` to `device`.
    pub fn register(
        &mut self,
        base: u16,
        len: u16,
        device: Box<dyn PortDevice>,
    ) -> Result<(), OverlapError> {
        let ports = u32::from(base)..u32::from(base) + u32::from(len);
        if let Some(existing) = self
            .mappings
            .iter()
            .find(|m| m.ports.start < ports.end && ports.start < m.ports.end)
        {
            return Err(OverlapError {
                device: device.name(),
                base,
                len,
                existing: existing.device.name(),
            });
        }
        self.mappings.push(Mapping { ports, device });
        Ok(())
    }

    /// The device answering `port`, and the port's offset in the device's range.
    pub fn find(&mut self, port: u16) -> Option<(&mut dyn PortDevice, u16)> {
        let port = u32::from(port);
        let mapping = self.mappings.iter_mut().find(|m| m.ports.contains(&port))?;
        // The offset is below the range length, a `u16`.
        let offset = (port - mapping.ports.start) as u16;
        Some((mapping.device.as_mut(), offset))
    }

    /// Flushes every device, returning the first error.
    pub fn flush(&mut self) -> Result<(), DeviceError> {
        let mut result = Ok(());
        for m in &mut self.mappings {
            let flushed = m.device.flush();
            if result.is_ok() {
                result = flushed;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy(&'static str);

    impl PortDevice for Dummy {
        fn name(&self) -> &'static str {
            self.0
        }
        fn read(&mut self, offset: u16, data: &mut [u8]) -> Result<(), DeviceError> {
            data.fill(offset as u8);
            Ok(())
        }
        fn write(&mut self, _: u16, _: &[u8]) -> Result<PortAction, DeviceError> {
            Ok(PortAction::Continue)
        }
    }

    #[test]
    fn routes_ports_and_rejects_overlaps() {
        let mut bus = PortBus::new();
        bus.register(0x3f8, 8, Box::new(Dummy("a"))).unwrap();
        bus.register(0xfff8, 8, Box::new(Dummy("b"))).unwrap();
        let err = bus.register(0x3f0, 9, Box::new(Dummy("c"))).unwrap_err();
        assert_eq!(err.existing, "a");

        let (device, offset) = bus.find(0x3fd).unwrap();
        assert_eq!((device.name(), offset), ("a", 5));
        let (device, offset) = bus.find(0xffff).unwrap();
        assert_eq!((device.name(), offset), ("b", 7));
        assert!(bus.find(0x3f7).is_none());
        assert!(bus.find(0x400).is_none());
    }
}
