//! Synthetic MSR numbers (x64) and the layouts of the MSRs that are not SynIC registers
//! (TLFS "Partition Properties" / "Timers"; reference §5.5–§5.6).

use crate::macros::{bitfield, open_enum};

open_enum! {
    /// A synthetic MSR number. Every MSR the reference lists has a name; the per-index families
    /// (SINTx, STIMERx, CRASH_Px) also have constructors such as [`HvMsr::sint`].
    pub struct HvMsr(u32) {
        /// Guest OS identity (partition; see [`GuestOsId`](super::GuestOsId)).
        GUEST_OS_ID = 0x4000_0000,
        /// Hypercall page (partition; see [`HypercallMsr`]).
        HYPERCALL = 0x4000_0001,
        /// This VP's index (VP, read-only).
        VP_INDEX = 0x4000_0002,
        /// System reset (write bit 0).
        RESET = 0x4000_0003,
        /// VP run time in 100 ns units (VP).
        VP_RUNTIME = 0x4000_0010,
        /// Partition reference time in 100 ns units (partition, read-only).
        TIME_REF_COUNT = 0x4000_0020,
        /// Reference TSC page (partition; see [`GpaPageMsr`]).
        REFERENCE_TSC = 0x4000_0021,
        /// TSC frequency in Hz (read-only).
        TSC_FREQUENCY = 0x4000_0022,
        /// APIC timer frequency in Hz (read-only).
        APIC_FREQUENCY = 0x4000_0023,
        /// Synthetic APIC EOI (VP).
        EOI = 0x4000_0070,
        /// Synthetic APIC ICR (VP).
        ICR = 0x4000_0071,
        /// Synthetic APIC TPR (VP).
        TPR = 0x4000_0072,
        /// VP assist page (VP; see [`GpaPageMsr`]).
        VP_ASSIST_PAGE = 0x4000_0073,
        /// SynIC control (VP).
        SCONTROL = 0x4000_0080,
        /// SynIC version (VP, read-only, 1).
        SVERSION = 0x4000_0081,
        /// SynIC event flags page (VP).
        SIEFP = 0x4000_0082,
        /// SynIC message page (VP).
        SIMP = 0x4000_0083,
        /// End of message (VP, write-only).
        EOM = 0x4000_0084,
        /// Synthetic interrupt source 0.
        SINT0 = 0x4000_0090,
        /// Synthetic interrupt source 1.
        SINT1 = 0x4000_0091,
        /// Synthetic interrupt source 2 (VMBus).
        SINT2 = 0x4000_0092,
        /// Synthetic interrupt source 3.
        SINT3 = 0x4000_0093,
        /// Synthetic interrupt source 4.
        SINT4 = 0x4000_0094,
        /// Synthetic interrupt source 5.
        SINT5 = 0x4000_0095,
        /// Synthetic interrupt source 6.
        SINT6 = 0x4000_0096,
        /// Synthetic interrupt source 7.
        SINT7 = 0x4000_0097,
        /// Synthetic interrupt source 8.
        SINT8 = 0x4000_0098,
        /// Synthetic interrupt source 9.
        SINT9 = 0x4000_0099,
        /// Synthetic interrupt source 10.
        SINT10 = 0x4000_009a,
        /// Synthetic interrupt source 11.
        SINT11 = 0x4000_009b,
        /// Synthetic interrupt source 12.
        SINT12 = 0x4000_009c,
        /// Synthetic interrupt source 13.
        SINT13 = 0x4000_009d,
        /// Synthetic interrupt source 14.
        SINT14 = 0x4000_009e,
        /// Synthetic interrupt source 15.
        SINT15 = 0x4000_009f,
        /// Synthetic timer 0 configuration.
        STIMER0_CONFIG = 0x4000_00b0,
        /// Synthetic timer 0 count.
        STIMER0_COUNT = 0x4000_00b1,
        /// Synthetic timer 1 configuration.
        STIMER1_CONFIG = 0x4000_00b2,
        /// Synthetic timer 1 count.
        STIMER1_COUNT = 0x4000_00b3,
        /// Synthetic timer 2 configuration.
        STIMER2_CONFIG = 0x4000_00b4,
        /// Synthetic timer 2 count.
        STIMER2_COUNT = 0x4000_00b5,
        /// Synthetic timer 3 configuration.
        STIMER3_CONFIG = 0x4000_00b6,
        /// Synthetic timer 3 count.
        STIMER3_COUNT = 0x4000_00b7,
        /// Guest idle (reading it idles the VP).
        GUEST_IDLE = 0x4000_00f0,
        /// Crash parameter 0.
        CRASH_P0 = 0x4000_0100,
        /// Crash parameter 1.
        CRASH_P1 = 0x4000_0101,
        /// Crash parameter 2.
        CRASH_P2 = 0x4000_0102,
        /// Crash parameter 3.
        CRASH_P3 = 0x4000_0103,
        /// Crash parameter 4.
        CRASH_P4 = 0x4000_0104,
        /// Crash control (see [`CrashCtl`]).
        CRASH_CTL = 0x4000_0105,
        /// Reenlightenment control.
        REENLIGHTENMENT_CONTROL = 0x4000_0106,
        /// TSC emulation control.
        TSC_EMULATION_CONTROL = 0x4000_0107,
        /// TSC emulation status.
        TSC_EMULATION_STATUS = 0x4000_0108,
        /// TSC invariant control (bit 0 exposes the invariant TSC).
        TSC_INVARIANT_CONTROL = 0x4000_0118,
    }
}

/// The first MSR of the synthetic range.
pub const SYNTHETIC_MSR_FIRST: u32 = 0x4000_0000;
/// The last MSR of the range a VMM should route to the synthetic MSR model (and deny in a KVM
/// MSR filter so that accesses exit to user space; reference §6.3).
pub const SYNTHETIC_MSR_LAST: u32 = 0x4000_01ff;

impl HvMsr {
    /// `SINTn` for `n` in `0..16`; `None` otherwise.
    pub const fn sint(n: u8) -> Option<Self> {
        if n < 16 {
            Some(Self(Self::SINT0.0 + n as u32))
        } else {
            None
        }
    }

    /// `STIMERn_CONFIG` for `n` in `0..4`.
    pub const fn stimer_config(n: u8) -> Option<Self> {
        if n < 4 {
            Some(Self(Self::STIMER0_CONFIG.0 + 2 * n as u32))
        } else {
            None
        }
    }

    /// `STIMERn_COUNT` for `n` in `0..4`.
    pub const fn stimer_count(n: u8) -> Option<Self> {
        if n < 4 {
            Some(Self(Self::STIMER0_COUNT.0 + 2 * n as u32))
        } else {
            None
        }
    }

    /// `CRASH_Pn` for `n` in `0..5`.
    pub const fn crash_parameter(n: u8) -> Option<Self> {
        if n < 5 {
            Some(Self(Self::CRASH_P0.0 + n as u32))
        } else {
            None
        }
    }

    /// The SINT index when this is one of `SINT0..=SINT15`.
    pub const fn as_sint(self) -> Option<u8> {
        if self.0 >= Self::SINT0.0 && self.0 <= Self::SINT15.0 {
            Some((self.0 - Self::SINT0.0) as u8)
        } else {
            None
        }
    }

    /// Whether the number lies in the synthetic range a VMM routes here
    /// ([`SYNTHETIC_MSR_FIRST`]`..=`[`SYNTHETIC_MSR_LAST`]).
    pub const fn is_synthetic(msr: u32) -> bool {
        msr >= SYNTHETIC_MSR_FIRST && msr <= SYNTHETIC_MSR_LAST
    }
}

bitfield! {
    /// `HV_X64_MSR_HYPERCALL`: bit 0 enable, bit 1 locked, bits 11:2 reserved (zero),
    /// bits 63:12 the guest page number of the hypercall page.
    pub struct HypercallMsr(u64) {
        /// The hypervisor overlays the page with hypercall code.
        enable, with_enable: bool [0],
        /// The MSR is locked: further writes fault until reset.
        locked, with_locked: bool [1],
        /// Guest physical page number of the hypercall page.
        gpn, with_gpn: u64 [12..64],
    }
}

bitfield! {
    /// A "page MSR": bit 0 enable, bits 11:1 reserved, bits 63:12 a guest page number.
    /// The layout of `SIMP`, `SIEFP`, `REFERENCE_TSC` and `VP_ASSIST_PAGE`.
    pub struct GpaPageMsr(u64) {
        /// The page is enabled.
        enable, with_enable: bool [0],
        /// Guest physical page number.
        gpn, with_gpn: u64 [12..64],
    }
}

impl GpaPageMsr {
    /// The page's guest physical address.
    pub const fn gpa(self) -> u64 {
        self.gpn() << 12
    }
}

impl HypercallMsr {
    /// The page's guest physical address.
    pub const fn gpa(self) -> u64 {
        self.gpn() << 12
    }
}

bitfield! {
    /// `STIMERn_CONFIG`.
    pub struct StimerConfig(u64) {
        /// Timer enabled.
        enable, with_enable: bool [0],
        /// Periodic (otherwise one-shot).
        periodic, with_periodic: bool [1],
        /// Lazy (the timer may be delivered late).
        lazy, with_lazy: bool [2],
        /// Writing the count enables the timer.
        auto_enable, with_auto_enable: bool [3],
        /// APIC vector for direct mode.
        apic_vector, with_apic_vector: u8 [4..12],
        /// Direct mode: raise the APIC vector instead of posting a timer message.
        direct_mode, with_direct_mode: bool [12],
        /// The SINT that receives the timer message.
        sint, with_sint: u8 [16..20],
    }
}

bitfield! {
    /// `CRASH_CTL`.
    pub struct CrashCtl(u64) {
        /// The guest provides a crash message (CRASH_P3/P4 hold its GPA and size).
        crash_message, with_crash_message: bool [62],
        /// Notify: the guest crashed and CRASH_P0..P4 are valid.
        crash_notify, with_crash_notify: bool [63],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msr_numbers_match_the_reference() {
        assert_eq!(HvMsr::GUEST_OS_ID.0, 0x4000_0000);
        assert_eq!(HvMsr::HYPERCALL.0, 0x4000_0001);
        assert_eq!(HvMsr::VP_INDEX.0, 0x4000_0002);
        assert_eq!(HvMsr::TIME_REF_COUNT.0, 0x4000_0020);
        assert_eq!(HvMsr::REFERENCE_TSC.0, 0x4000_0021);
        assert_eq!(HvMsr::VP_ASSIST_PAGE.0, 0x4000_0073);
        assert_eq!(HvMsr::EOM.0, 0x4000_0084);
        assert_eq!(HvMsr::TSC_INVARIANT_CONTROL.0, 0x4000_0118);
        for n in 0..16u8 {
            let msr = HvMsr::sint(n).unwrap();
            assert_eq!(msr.0, 0x4000_0090 + u32::from(n));
            assert_eq!(msr.as_sint(), Some(n));
            assert_eq!(msr.name().unwrap(), std::format!("SINT{n}"));
        }
        assert_eq!(HvMsr::sint(16), None);
        assert_eq!(HvMsr::stimer_config(4), None);
        assert_eq!(HvMsr::stimer_count(4), None);
        for n in 0..4u8 {
            assert_eq!(
                HvMsr::stimer_config(n).unwrap().0,
                0x4000_00b0 + 2 * u32::from(n)
            );
            assert_eq!(
                HvMsr::stimer_count(n).unwrap().0,
                0x4000_00b1 + 2 * u32::from(n)
            );
            assert_eq!(
                HvMsr::stimer_config(n).unwrap().name().unwrap(),
                std::format!("STIMER{n}_CONFIG")
            );
        }
        for n in 0..5u8 {
            assert_eq!(
                HvMsr::crash_parameter(n).unwrap().0,
                0x4000_0100 + u32::from(n)
            );
        }
        assert_eq!(HvMsr::crash_parameter(5), None);
        assert_eq!(HvMsr::EOM.as_sint(), None);
        assert!(HvMsr::is_synthetic(0x4000_0118));
        assert!(!HvMsr::is_synthetic(0x4000_0200));
        assert!(!HvMsr::is_synthetic(0x3fff_ffff));
    }

    #[test]
    fn page_msr_layouts() {
        let h = HypercallMsr::new().with_enable(true).with_gpn(0x1234);
        assert_eq!(h.0, 0x0123_4001);
        assert_eq!(h.gpa(), 0x0123_4000);
        assert!(HypercallMsr(0x2).locked());
        assert_eq!(HypercallMsr(0xffc).reserved_bits(), 0xffc);
        assert_eq!(GpaPageMsr(0xffe).reserved_bits(), 0xffe);
        assert_eq!(GpaPageMsr(0x5001).gpa(), 0x5000);
        let c = StimerConfig::new()
            .with_enable(true)
            .with_apic_vector(0xed)
            .with_direct_mode(true)
            .with_sint(3);
        assert_eq!(c.0, 1 | 0xed << 4 | 1 << 12 | 3 << 16);
        assert_eq!(CrashCtl::DEFINED, 3 << 62);
    }
}
