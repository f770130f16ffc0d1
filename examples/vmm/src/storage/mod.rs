//! Synthetic storage: a SCSI disk over a `vhd-format` disk ([`scsi`]), served to the guest on
//! a storvsp channel ([`storvsp`]), with live snapshots ([`snapshot`]).

pub mod scsi;
pub mod snapshot;
pub mod storvsp;

/// The VMM's disk: a VHD file (a differencing child after a snapshot).
pub type VmDisk = scsi::ScsiDisk<vhd_format::Vhd<std::fs::File>>;
