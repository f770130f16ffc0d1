//! The chunk codecs of WIM resources: XPRESS (Huffman), LZX (WIM variant) and LZMS.
//!
//! A compressed resource is a sequence of independently compressed chunks; the container layer
//! (chunk tables, solid resources, stored chunks whose compressed size equals their size) lives
//! elsewhere in the crate. This module only turns one compressed chunk into its bytes.
//!
//! The interface the container layer calls (being built; keep these signatures):
//!
//! * `pub struct Decompressor` — reusable state for one codec: create once (per thread), then
//!   decompress any number of chunks with no further allocation (needs `alloc`).
//! * `Decompressor::new(codec: Codec) -> Decompressor` and `Decompressor::codec(&self) -> Codec`.
//! * `Decompressor::decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(),
//!   DecompressError>`: `input` is one compressed chunk, `output.len()` its exact uncompressed
//!   size (within each codec's chunk-size limit; zero or larger sizes are an error). Stored
//!   chunks (compressed size = uncompressed size) never reach it: the container copies them.
//! * `pub enum DecompressError` — `thiserror`, `#[non_exhaustive]`, typed reasons with input
//!   offsets where meaningful.

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
