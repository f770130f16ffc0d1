//! Where things are in guest-physical memory when the VM starts.
//!
//! ```text
//!  0x0000_0000 ┌──────────────────────────────┐
//!              │ (unused: catches null access) │
//!  0x0000_1000 │ GDT                           │
//!  0x0000_9000 │ PML4                          │
//!  0x0000_a000 │ PDPT                          │
//!  0x0000_b000 │ 4 page directories (0–4 GiB)  │
//!  0x0000_f000 │ (free)                        │
//!  0x0010_0000 │ guest image (ELF PT_LOAD)     │  IMAGE_BASE
//!          ... │                               │
//!  top − 64 KiB│ boot stack, grows down        │
//!  top         └──────────────────────────────┘  = guest RAM size
//! ```
//!
//! All of guest RAM is one KVM memory slot at guest-physical address 0; the page tables
//! identity-map the low 4 GiB with 2 MiB pages, so guest-virtual equals guest-physical.

use core::ops::Range;

/// One MiB, in bytes.
pub const MIB: u64 = 1 << 20;

/// Guest-physical address of the GDT.
pub const GDT_ADDR: u64 = 0x1000;
/// Guest-physical address of the top-level page table (PML4).
pub const PML4_ADDR: u64 = 0x9000;
/// Guest-physical address of the page-directory-pointer table.
pub const PDPT_ADDR: u64 = 0xa000;
/// Guest-physical address of the first page directory; the others follow, 4 KiB apart.
pub const PD_ADDR: u64 = 0xb000;
/// How much of the guest-physical address space the boot page tables identity-map.
pub const IDENTITY_MAP_SIZE: u64 = 4 << 30;

/// The lowest address a guest image may load at.
pub const IMAGE_BASE: u64 = MIB;
/// Size of the boot stack at the top of guest RAM.
pub const STACK_SIZE: u64 = 64 << 10;

/// The smallest guest RAM size the VMM accepts, in MiB.
pub const MIN_MEM_MIB: u64 = 4;
/// The largest guest RAM size the VMM accepts, in MiB: RAM stays below 3 GiB, inside the
/// identity map, leaving 3–4 GiB free for device windows.
pub const MAX_MEM_MIB: u64 = 3 << 10;

/// The guest-physical range a guest image may occupy in `mem_size` bytes of RAM: from
/// [`IMAGE_BASE`] up to the boot stack.
pub fn image_region(mem_size: u64) -> Range<u64> {
    IMAGE_BASE..mem_size.saturating_sub(STACK_SIZE)
}

/// The initial stack pointer for `mem_size` bytes of RAM: the top of RAM, less the 8 bytes a
/// `call` would have pushed, so the entry point sees the stack aligned as the System V ABI
/// expects at function entry (`rsp + 8` a multiple of 16).
pub fn stack_pointer(mem_size: u64) -> u64 {
    (mem_size & !0xf) - 8
}

// The boot structures sit below the image, and the page directories fit below it too.
const _: () = assert!(PD_ADDR + (IDENTITY_MAP_SIZE >> 30) * 0x1000 <= IMAGE_BASE);
const _: () = assert!(GDT_ADDR + 0x1000 <= PML4_ADDR);
// RAM fits in the identity map.
const _: () = assert!(MAX_MEM_MIB * MIB <= IDENTITY_MAP_SIZE);
// The smallest RAM still leaves room for an image between the image base and the stack.
const _: () = assert!(IMAGE_BASE + STACK_SIZE < MIN_MEM_MIB * MIB);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_is_aligned_like_after_a_call() {
        let rsp = stack_pointer(64 * MIB);
        assert_eq!((rsp + 8) % 16, 0);
        assert!(rsp < 64 * MIB);
        assert!(image_region(64 * MIB).end <= rsp);
    }
}
