//! The XPRESS/LZX bitstream: 16-bit little-endian words, each read from its most significant
//! bit down, with literal bytes interleaved at the current word position.
//!
//! The reader keeps up to 63 bits in a left-justified 64-bit buffer and refills three words
//! at a time. Bits beyond the counted ones may hold the next input bits (a refill ORs the
//! same values in again), which keeps the refill branch-free. Words wanted past the end of
//! the input are zeros ("phantom" words, counted so that consuming one can be reported as
//! truncation).
//!
//! Where raw bytes are interleaved, their position depends on how many words the format's
//! reference decoder has loaded at that point, which is less than this reader loads ahead;
//! [`BitReader::unread_words_above`] gives back the extra whole words first.

/// Forward reader over one chunk's bitstream.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Buffered bits, left-justified.
    buf: u64,
    /// Number of valid bits in `buf` (at most 63).
    bits: u32,
    /// Zero bits appended past the end of `data` (a multiple of 16, all inside `bits` or
    /// already consumed).
    phantom: u32,
    /// A raw byte read wanted bytes past the end.
    past_end: bool,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            buf: 0,
            bits: 0,
            phantom: 0,
            past_end: false,
        }
    }

    /// Tops the buffer up to at least 48 bits.
    #[inline(always)]
    pub(crate) fn refill(&mut self) {
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(chunk);
            let v = u64::from_le_bytes(raw);
            // Reverse the order of the four 16-bit words: the first word goes on top.
            let v = v.rotate_left(32);
            let v = ((v >> 16) & 0x0000_ffff_0000_ffff) | ((v << 16) & 0xffff_0000_ffff_0000);
            self.buf |= v >> self.bits;
            let words = (63 - self.bits) >> 4;
            self.pos += (words as usize) * 2;
            self.bits += words * 16;
        } else {
            self.refill_slow();
        }
    }

    /// Near the end of the input: one word at a time, zeros past the end.
    #[cold]
    fn refill_slow(&mut self) {
        while self.bits < 48 {
            if let Some(w) = self.data.get(self.pos..self.pos + 2) {
                let w = u16::from_le_bytes([w[0], w[1]]);
                self.buf |= u64::from(w) << (48 - self.bits);
                self.pos += 2;
            } else {
                self.phantom += 16;
            }
            self.bits += 16;
        }
    }

    /// Tops the buffer up to at least `n` bits (`n <= 48`).
    #[inline(always)]
    pub(crate) fn ensure(&mut self, n: u32) {
        if self.bits < n {
            self.refill();
        }
    }

    /// The next `n` bits (`1 <= n <=` the buffered bits), not consumed.
    #[inline(always)]
    pub(crate) fn peek(&self, n: u32) -> u32 {
        (self.buf >> (64 - n)) as u32
    }

    /// Drops `n` buffered bits.
    #[inline(always)]
    pub(crate) fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.bits -= n;
    }

    /// Takes `n` buffered bits (0 gives 0).
    #[inline(always)]
    pub(crate) fn take(&mut self, n: u32) -> u32 {
        let v = ((self.buf >> 1) >> (63 - n)) as u32;
        self.consume(n);
        v
    }

    /// Reads `n <= 32` bits, refilling as needed.
    #[inline(always)]
    pub(crate) fn read(&mut self, n: u32) -> u32 {
        if n > 16 {
            let hi = self.read(n - 16);
            return (hi << 16) | self.read(16);
        }
        self.ensure(n);
        self.take(n)
    }

    /// Gives back buffered whole words (most recently loaded first) until at most `max` bits
    /// remain, so that the next raw byte comes from where a reader that loads a word only
    /// when needed would be. Bits past the kept ones are cleared.
    pub(crate) fn unread_words_above(&mut self, max: u32) {
        while self.bits > max {
            self.bits -= 16;
            if self.phantom >= 16 {
                self.phantom -= 16;
            } else {
                self.pos -= 2;
            }
        }
        self.buf = if self.bits == 0 {
            0
        } else {
            self.buf & !(u64::MAX >> self.bits)
        };
    }

    /// Drops all buffered bits (after [`unread_words_above`](Self::unread_words_above), to
    /// reach a word boundary).
    pub(crate) fn discard_buffer(&mut self) {
        self.buf = 0;
        self.bits = 0;
        if self.phantom > 0 {
            self.phantom = 0;
            self.past_end = true;
        }
    }

    /// Reads one raw byte at the current byte position (0 past the end, as wimlib does).
    pub(crate) fn raw_u8(&mut self) -> u8 {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => {
                self.past_end = true;
                0
            }
        }
    }

    /// Reads a raw little-endian u16 (0 if fewer than 2 bytes remain, as wimlib does).
    pub(crate) fn raw_u16(&mut self) -> u16 {
        match self.data.get(self.pos..self.pos + 2) {
            Some(b) => {
                self.pos += 2;
                u16::from_le_bytes([b[0], b[1]])
            }
            None => {
                self.past_end = true;
                0
            }
        }
    }

    /// Takes `n` raw bytes at the current byte position, or `None` if fewer remain.
    pub(crate) fn raw_bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// Length of the whole input.
    pub(crate) fn input_len(&self) -> usize {
        self.data.len()
    }

    /// Approximate byte offset of the next unread bit (for error reports).
    pub(crate) fn offset(&self) -> usize {
        let loaded = (self.bits - self.phantom.min(self.bits)) as usize / 8;
        self.pos.saturating_sub(loaded)
    }

    /// Whether decoding consumed bits or bytes that are not in the input.
    pub(crate) fn overran(&self) -> bool {
        self.past_end || self.phantom > self.bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_read_msb_first_in_le_order() {
        // Words 0x1234, 0xabcd, then 0x8001.
        let data = [0x34, 0x12, 0xcd, 0xab, 0x01, 0x80, 0, 0, 0, 0];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read(4), 0x1);
        assert_eq!(r.read(12), 0x234);
        assert_eq!(r.read(8), 0xab);
        assert_eq!(r.read(9), 0x19b);
        assert_eq!(r.read(1), 0);
        assert_eq!(r.read(17), 1 << 3);
        assert!(!r.overran());
    }

    #[test]
    fn zeros_past_the_end_and_overrun_detection() {
        let data = [0xff, 0xff, 0xff];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read(16), 0xffff);
        assert!(!r.overran());
        // The odd last byte is not a word: zeros.
        assert_eq!(r.read(8), 0);
        assert!(r.overran());
    }

    #[test]
    fn unread_words_puts_raw_bytes_after_the_needed_words() {
        // Bitstream word 0xf000, then raw byte 0x42, then word 0x8000.
        let data = [0x00, 0xf0, 0x42, 0x00, 0x80, 0, 0, 0, 0, 0];
        let mut r = BitReader::new(&data);
        r.refill();
        assert_eq!(r.take(4), 0xf);
        // A lazy reader holds 12 bits here (one word loaded).
        r.unread_words_above(15);
        assert_eq!(r.bits, 12);
        assert_eq!(r.raw_u8(), 0x42);
        assert_eq!(r.read(12), 0);
        assert_eq!(r.read(1), 1);
        assert!(!r.overran());
    }
}
