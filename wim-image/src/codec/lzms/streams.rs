//! The two bitstreams of an LZMS chunk, both in 16-bit little-endian units read from the most
//! significant bit down: a binary range coder reading forwards from the start, and Huffman
//! symbols plus verbatim bits reading backwards from the end.

/// An adaptive probability: the last 64 bits coded in one context. The chance of a 0 is the
/// number of zeros among them out of 64, kept within 1/64..63/64.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probability {
    zeros: u32,
    recent: u64,
}

impl Probability {
    /// 0x0000000055555555: 48 zeros out of 64.
    pub(crate) const INITIAL: Probability = Probability {
        zeros: 48,
        recent: 0x0000_0000_5555_5555,
    };

    #[inline(always)]
    pub(crate) fn get(&self) -> u32 {
        let p = self.zeros;
        // 0 → 1 and 64 → 63.
        let p = p + (p.wrapping_sub(1) >> 31);
        p - (p >> 6)
    }

    /// The number of zeros among the last 64 bits (0–64), before [`Self::get`]'s clamping
    /// (the encoder's bit prices; the encoder needs `alloc`).
    #[cfg(feature = "alloc")]
    #[inline(always)]
    pub(crate) fn zeros(&self) -> u32 {
        self.zeros
    }

    #[inline(always)]
    pub(crate) fn update(&mut self, bit: u32) {
        // The oldest bit leaves the window, `bit` enters it.
        self.zeros = self.zeros + (self.recent >> 63) as u32 - bit;
        self.recent = (self.recent << 1) | u64::from(bit);
    }
}

/// The forward range decoder.
#[derive(Debug)]
pub(crate) struct RangeDecoder<'a> {
    data: &'a [u8],
    pos: usize,
    range: u32,
    code: u32,
}

impl<'a> RangeDecoder<'a> {
    /// Starts on `data` (at least 4 bytes): range 0xffffffff, code = the first two units.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        let unit = |i: usize| u32::from(u16::from_le_bytes([data[i], data[i + 1]]));
        RangeDecoder {
            data,
            pos: 4,
            range: 0xffff_ffff,
            code: (unit(0) << 16) | unit(2),
        }
    }

    /// Decodes one bit in the context `probs[*state]`, where `state` holds the last
    /// `log2(N)` bits decoded in this context; updates both.
    #[inline(always)]
    pub(crate) fn bit<const N: usize>(
        &mut self,
        state: &mut usize,
        probs: &mut [Probability; N],
    ) -> bool {
        let entry = &mut probs[*state % N];
        let prob = entry.get();
        if self.range & 0xffff_0000 == 0 {
            self.range <<= 16;
            self.code <<= 16;
            // Past the end the unit reads as zero (as wimlib does).
            if let Some(u) = self.data.get(self.pos..self.pos + 2) {
                self.code |= u32::from(u16::from_le_bytes([u[0], u[1]]));
                self.pos += 2;
            }
        }
        let bound = (self.range >> 6) * prob;
        let bit = if self.code < bound {
            self.range = bound;
            0
        } else {
            self.range -= bound;
            self.code -= bound;
            1
        };
        entry.update(bit);
        *state = ((*state << 1) | bit as usize) % N;
        bit != 0
    }
}

/// The backward reader: 64-bit left-justified buffer, up to four units per refill; units
/// wanted before the start of the chunk read as zeros and are counted.
#[derive(Debug)]
pub(crate) struct BackReader<'a> {
    data: &'a [u8],
    /// One past the next unit to read.
    next: usize,
    buf: u64,
    bits: u32,
    phantom: u32,
}

impl<'a> BackReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BackReader {
            data,
            next: data.len(),
            buf: 0,
            bits: 0,
            phantom: 0,
        }
    }

    /// Tops the buffer up to at least `n` bits (`n <= 48`).
    #[inline(always)]
    pub(crate) fn ensure(&mut self, n: u32) {
        if self.bits >= n {
            return;
        }
        if self.next >= 8 {
            let s = &self.data[self.next - 8..self.next];
            // The unit just below `next` is read first: it is the top of a little-endian u64.
            let v = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
            self.buf |= v >> self.bits;
            let units = (63 - self.bits) >> 4;
            self.next -= units as usize * 2;
            self.bits += units * 16;
        } else {
            self.refill_slow();
        }
    }

    #[cold]
    fn refill_slow(&mut self) {
        while self.bits < 48 {
            if self.next >= 2 {
                let u = u16::from_le_bytes([self.data[self.next - 2], self.data[self.next - 1]]);
                self.buf |= u64::from(u) << (48 - self.bits);
                self.next -= 2;
            } else {
                self.phantom += 16;
            }
            self.bits += 16;
        }
    }

    /// Takes `n <= 32` buffered bits (0 gives 0).
    #[inline(always)]
    pub(crate) fn take(&mut self, n: u32) -> u32 {
        let v = ((self.buf >> 1) >> (63 - n)) as u32;
        self.buf <<= n;
        self.bits -= n;
        v
    }

    /// Approximate byte offset of the next unread bit.
    pub(crate) fn offset(&self) -> usize {
        self.next + (self.bits - self.phantom.min(self.bits)) as usize / 8
    }

    /// Whether decoding consumed bits before the start of the chunk.
    pub(crate) fn overran(&self) -> bool {
        self.phantom > self.bits
    }
}

impl super::super::huffman::Bits for BackReader<'_> {
    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        (self.buf >> (64 - n)) as u32
    }
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.bits -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_stay_within_1_and_63() {
        let mut p = Probability::INITIAL;
        assert_eq!(p.get(), 48);
        for _ in 0..100 {
            p.update(0);
        }
        assert_eq!((p.zeros, p.get()), (64, 63));
        for _ in 0..64 {
            p.update(1);
        }
        assert_eq!((p.zeros, p.get()), (0, 1));
    }

    #[test]
    fn back_reader_reads_units_from_the_end() {
        // Units (in memory order) 0x1111, 0x2222, 0xabcd: read 0xabcd first.
        let data = [0x11, 0x11, 0x22, 0x22, 0xcd, 0xab];
        let mut r = BackReader::new(&data);
        r.ensure(32);
        assert_eq!(r.take(4), 0xa);
        assert_eq!(r.take(16), 0xbcd2);
        r.ensure(28);
        assert_eq!(r.take(28), 0x222_1111);
        assert!(!r.overran());
        r.ensure(1);
        assert_eq!(r.take(1), 0);
        assert!(r.overran());
    }
}
