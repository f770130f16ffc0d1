//! Synthetic storage: a SCSI disk over a `vhd-format` disk ([`scsi`]), served to the guest on
//! a storvsp channel.

pub mod scsi;
pub mod storvsp;
