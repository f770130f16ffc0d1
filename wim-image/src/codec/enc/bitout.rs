//! Bit writers for the XPRESS and LZX bitstreams: 16-bit little-endian words filled from
//! their most significant bit.
//!
//! Both writers stop at the end of their buffer: once a word or byte does not fit they only
//! count, and [`finish`](WordWriter::finish) reports `None`, so a chunk that does not shrink
//! costs no more than the bits written until then, and nothing is written out of bounds.

/// LZX: a plain word stream, plus the raw bytes of uncompressed blocks.
pub(crate) struct WordWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
    buf: u32,
    count: u32,
    overflow: bool,
}

impl<'a> WordWriter<'a> {
    pub(crate) fn new(out: &'a mut [u8]) -> Self {
        WordWriter {
            out,
            pos: 0,
            buf: 0,
            count: 0,
            overflow: false,
        }
    }

    fn put_word(&mut self, w: u16) {
        match self.out.get_mut(self.pos..self.pos + 2) {
            Some(s) => s.copy_from_slice(&w.to_le_bytes()),
            None => self.overflow = true,
        }
        self.pos += 2;
    }

    /// Appends the low `n` bits of `bits` (`n` at most 16).
    #[inline(always)]
    pub(crate) fn bits(&mut self, bits: u32, n: u32) {
        debug_assert!(n <= 16 && bits >> n == 0);
        self.buf = (self.buf << n) | bits;
        self.count += n;
        if self.count >= 16 {
            self.count -= 16;
            self.put_word((self.buf >> self.count) as u16);
        }
    }

    /// Appends up to 32 bits.
    pub(crate) fn long_bits(&mut self, bits: u32, n: u32) {
        if n > 16 {
            self.bits(bits >> 16, n - 16);
            self.bits(bits & 0xffff, 16);
        } else {
            self.bits(bits, n);
        }
    }

    /// Pads to the next word boundary, with a whole zero word if already on one (what an
    /// LZX uncompressed block header needs).
    pub(crate) fn align_for_raw(&mut self) {
        let pad = 16 - self.count;
        self.bits(0, pad);
    }

    /// Raw bytes at the current (word-aligned) position.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.count, 0);
        match self.out.get_mut(self.pos..self.pos + bytes.len()) {
            Some(s) => s.copy_from_slice(bytes),
            None => self.overflow = true,
        }
        self.pos += bytes.len();
    }

    /// Flushes the last partial word; the total size, or `None` if it did not fit.
    pub(crate) fn finish(mut self) -> Option<usize> {
        if self.count > 0 {
            let pad = 16 - self.count;
            self.bits(0, pad);
        }
        (!self.overflow).then_some(self.pos)
    }
}

/// Size of the XPRESS writer's scratch output, a power of two above the largest output
/// that can fit (a chunk's compressed form must be smaller than the chunk, at most 64 KiB).
pub(crate) const XPRESS_SCRATCH: usize = 1 << 17;
/// The XPRESS writer's scratch output (positions are masked to [`XPRESS_SCRATCH`], so no
/// write needs a bounds check; the padding takes a word at the last position).
pub(crate) type XpressScratch = [u8; XPRESS_SCRATCH + 2];

/// XPRESS: words are reserved two ahead of the raw-byte position, so that raw bytes land
/// where a decoder that loads a word only when it holds fewer than 16 bits reads them.
///
/// It writes into a scratch buffer of fixed size with every position masked: output that
/// grows past the buffer wraps around (and overwrites earlier output), but then it is far
/// beyond any limit [`finish`](Self::finish) accepts.
pub(crate) struct XpressWriter<'a> {
    out: &'a mut XpressScratch,
    /// Where the word being filled goes, and the one after it.
    slot: usize,
    slot2: usize,
    /// Where the next raw byte (or newly reserved word) goes.
    next: usize,
    buf: u32,
    count: u32,
}

impl<'a> XpressWriter<'a> {
    /// A writer starting at `out[start..]` (after the 256-byte length table).
    pub(crate) fn new(out: &'a mut XpressScratch, start: usize) -> Self {
        XpressWriter {
            out,
            slot: start,
            slot2: start + 2,
            next: start + 4,
            buf: 0,
            count: 0,
        }
    }

    #[inline(always)]
    fn word(&mut self, at: usize, w: u16) {
        let at = at & (XPRESS_SCRATCH - 1);
        let [lo, hi] = w.to_le_bytes();
        self.out[at] = lo;
        self.out[at + 1] = hi;
    }

    /// Appends the low `n` bits of `bits` (`n` at most 16).
    #[inline(always)]
    pub(crate) fn bits(&mut self, bits: u32, n: u32) {
        debug_assert!(n <= 16 && bits >> n == 0);
        self.buf = (self.buf << n) | bits;
        self.count += n;
        if self.count > 16 {
            self.count -= 16;
            self.word(self.slot, (self.buf >> self.count) as u16);
            self.slot = self.slot2;
            self.slot2 = self.next;
            self.next += 2;
        }
    }

    /// A raw byte (the extended match length).
    pub(crate) fn byte(&mut self, b: u8) {
        self.out[self.next & (XPRESS_SCRATCH - 1)] = b;
        self.next += 1;
    }

    /// A raw little-endian u16 (the full match length).
    pub(crate) fn u16(&mut self, v: u16) {
        self.word(self.next, v);
        self.next += 2;
    }

    /// Flushes the partial word and the reserved one; the total size, or `None` if it is
    /// more than `limit` (at most [`XPRESS_SCRATCH`]).
    pub(crate) fn finish(mut self, limit: usize) -> Option<usize> {
        debug_assert!(limit <= XPRESS_SCRATCH);
        let w = ((self.buf << (16 - self.count)) & 0xffff) as u16;
        self.word(self.slot, w);
        self.word(self.slot2, 0);
        (self.next <= limit).then_some(self.next)
    }
}
