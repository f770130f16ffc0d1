//! The chunk codecs of WIM resources: XPRESS (Huffman), LZX (WIM variant) and LZMS.
//!
//! A compressed resource is a sequence of independently compressed chunks; the container layer
//! (chunk tables, solid resources, stored chunks whose compressed size equals their size) lives
//! elsewhere in the crate. This module only turns one compressed chunk into its bytes.

/// The chunk compression formats a WIM resource can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// XPRESS with Huffman coding (`[MS-XCA]` "LZ77+Huffman"), WIM framing.
    Xpress,
    /// LZX, WIM variant (E8 translation over the whole chunk, no LZX-DELTA header).
    Lzx,
    /// LZMS (Windows 8 and later; solid resources of ESD files).
    Lzms,
}
