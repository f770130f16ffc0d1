//! The guest's CPUID: what KVM supports on this host, with the hypervisor leaves replaced by
//! `hv-hypercall`'s Hyper-V set.

use hv_hypercall::defs::{CpuidLeaf, HYPERVISOR_PRESENT_ECX_BIT};
use kvm_bindings::kvm_cpuid_entry2;

/// The hypervisor CPUID range (Intel and AMD reserve 0x40000000–0x4FFFFFFF for hypervisors).
/// KVM's own leaves (the `"KVMKVMKVM"` signature at 0x40000000 and its feature leaf) live
/// here; a guest that sees them picks KVM over Hyper-V, so the whole range is replaced.
pub const HYPERVISOR_LEAVES: core::ops::RangeInclusive<u32> = 0x4000_0000..=0x4fff_ffff;

/// Merges `hyperv` into `supported` (`KVM_GET_SUPPORTED_CPUID`): drops every entry in
/// [`HYPERVISOR_LEAVES`], appends the Hyper-V leaves and sets the hypervisor-present bit
/// (CPUID.1:ECX bit 31).
pub fn guest_cpuid(supported: &[kvm_cpuid_entry2], hyperv: &[CpuidLeaf]) -> Vec<kvm_cpuid_entry2> {
    let mut entries: Vec<kvm_cpuid_entry2> = supported
        .iter()
        .filter(|e| !HYPERVISOR_LEAVES.contains(&e.function))
        .copied()
        .map(|mut e| {
            if e.function == 1 {
                e.ecx |= HYPERVISOR_PRESENT_ECX_BIT;
            }
            e
        })
        .collect();
    entries.extend(hyperv.iter().map(|leaf| kvm_cpuid_entry2 {
        function: leaf.function,
        index: 0,
        flags: 0,
        eax: leaf.eax,
        ebx: leaf.ebx,
        ecx: leaf.ecx,
        edx: leaf.edx,
        ..Default::default()
    }));
    entries
}

#[cfg(test)]
mod tests {
    use hv_hypercall::cpuid_builder::Enlightenments;

    use super::*;

    fn entry(function: u32, ebx: u32, ecx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            ebx,
            ecx,
            ..Default::default()
        }
    }

    #[test]
    fn replaces_kvm_leaves_with_hyper_v() {
        let kvm_sig = u32::from_le_bytes(*b"KVMK");
        let supported = [
            entry(0, 0x756e_6547, 0),
            entry(1, 0, 0x0000_0001),
            entry(0x4000_0000, kvm_sig, 0),
            entry(0x4000_0001, 0, 0),
            entry(0x4000_0100, kvm_sig, 0),
            entry(0x8000_0000, 0, 0),
        ];
        let hv = Enlightenments::linux_vmbus(1).cpuid_leaves().unwrap();
        let merged = guest_cpuid(&supported, hv.as_slice());

        assert!(merged.iter().all(|e| e.ebx != kvm_sig), "{merged:#x?}");
        let leaf = |f: u32| {
            merged
                .iter()
                .filter(|e| e.function == f)
                .collect::<Vec<_>>()
        };
        assert_eq!(leaf(0).len(), 1);
        assert_eq!(leaf(0x8000_0000).len(), 1);
        assert_eq!(leaf(1)[0].ecx, 0x8000_0001);
        assert!(leaf(0x4000_0100).is_empty());
        let vendor = leaf(0x4000_0000);
        assert_eq!(vendor.len(), 1);
        let mut name = [0u8; 12];
        name[..4].copy_from_slice(&vendor[0].ebx.to_le_bytes());
        name[4..8].copy_from_slice(&vendor[0].ecx.to_le_bytes());
        name[8..].copy_from_slice(&vendor[0].edx.to_le_bytes());
        assert_eq!(&name, b"Microsoft Hv");
        assert_eq!(vendor[0].eax, 0x4000_000a);
        assert_eq!(leaf(0x4000_0001)[0].eax, u32::from_le_bytes(*b"Hv#1"));
        for f in 0x4000_0000..=0x4000_000a {
            assert_eq!(leaf(f).len(), 1, "leaf {f:#x}");
        }
        assert_eq!(merged.len(), 3 + 11);
    }
}
