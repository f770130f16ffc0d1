//! The ring control page: the first 4 KiB page of every ring.

use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::macros::bitfield_word;

/// The control page at the start of each ring (one per direction). The data area begins on the
/// next page; all indices are byte offsets into the data area.
///
/// This layout documents the page and backs the golden tests. Live rings never hold a
/// reference to a `ControlPage` in shared memory: the ring code reads and writes each word
/// atomically through [`RingMemory`](crate::memory::RingMemory), using the offsets below.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ControlPage {
    /// Next byte offset the writer will write. Written by the writer only.
    pub write_index: U32,
    /// Next byte offset the reader will read. Written by the reader only.
    pub read_index: U32,
    /// Set non-zero by the *reader*: "do not interrupt me when the ring goes from empty to
    /// non-empty" (batched mode).
    pub interrupt_mask: U32,
    /// Set by a blocked *writer*: the number of free bytes it needs before the reader should
    /// signal it; zero when not waiting.
    pub pending_send_size: U32,
    /// Reserved (12 `u32` words).
    pub reserved1: [U32; 12],
    /// Feature bits, set by the writer of this ring ([`FeatureBits`]).
    pub feature_bits: U32,
    /// Reserved to the end of the page.
    pub reserved2: [u8; 4096 - 0x44],
}

const _: () = assert!(core::mem::size_of::<ControlPage>() == super::PAGE_SIZE);

impl core::fmt::Debug for ControlPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ControlPage")
            .field("write_index", &self.write_index.get())
            .field("read_index", &self.read_index.get())
            .field("interrupt_mask", &self.interrupt_mask.get())
            .field("pending_send_size", &self.pending_send_size.get())
            .field("feature_bits", &FeatureBits(self.feature_bits.get()))
            .finish_non_exhaustive()
    }
}

impl ControlPage {
    /// Byte offset of [`write_index`](Self::write_index).
    pub const WRITE_INDEX: usize = core::mem::offset_of!(ControlPage, write_index);
    /// Byte offset of [`read_index`](Self::read_index).
    pub const READ_INDEX: usize = core::mem::offset_of!(ControlPage, read_index);
    /// Byte offset of [`interrupt_mask`](Self::interrupt_mask).
    pub const INTERRUPT_MASK: usize = core::mem::offset_of!(ControlPage, interrupt_mask);
    /// Byte offset of [`pending_send_size`](Self::pending_send_size).
    pub const PENDING_SEND_SIZE: usize = core::mem::offset_of!(ControlPage, pending_send_size);
    /// Byte offset of [`feature_bits`](Self::feature_bits).
    pub const FEATURE_BITS: usize = core::mem::offset_of!(ControlPage, feature_bits);
}

const _: () = {
    assert!(ControlPage::WRITE_INDEX == 0x00);
    assert!(ControlPage::READ_INDEX == 0x04);
    assert!(ControlPage::INTERRUPT_MASK == 0x08);
    assert!(ControlPage::PENDING_SEND_SIZE == 0x0c);
    assert!(ControlPage::FEATURE_BITS == 0x40);
};

bitfield_word! {
    /// The control page's `feature_bits` word.
    ///
    /// Set by the *writer* of a ring. Bit 0 promises both "I set `pending_send_size` on this
    /// ring when I am blocked" and "as the reader of the opposite ring I signal when space frees
    /// up there". A reader signals a blocked writer only if that writer set the bit.
    pub struct FeatureBits(u32) {
        /// `feat_pending_send_sz`: the writer uses `pending_send_size`.
        0 => pending_send_size / with_pending_send_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn feature_bits_accessors() {
        let f = FeatureBits(0).with_pending_send_size(true);
        assert_eq!(f.0, 1);
        assert!(f.pending_send_size());
        assert!(!f.with_pending_send_size(false).pending_send_size());
        assert_eq!(FeatureBits(0x8001).unknown_bits(), 0x8000);
        let text = std::format!("{:?}", FeatureBits(0x8001));
        assert!(text.contains("pending_send_size: true") && text.contains("0x8000"));
    }

    #[test]
    fn control_page_bytes_at_reference_offsets() {
        let mut page = ControlPage::new_zeroed();
        page.write_index.set(0x1122_3344);
        page.read_index.set(0x10);
        page.interrupt_mask.set(1);
        page.pending_send_size.set(0x200);
        page.feature_bits.set(1);
        let b = page.as_bytes();
        assert_eq!(&b[0..4], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&b[4..8], &[0x10, 0, 0, 0]);
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(&b[12..16], &[0, 2, 0, 0]);
        assert_eq!(&b[0x40..0x44], &[1, 0, 0, 0]);
        assert!(b[0x10..0x40].iter().chain(&b[0x44..]).all(|&x| x == 0));
    }
}
