//! LZMS (Windows 8 and later; the solid resources of ESD files).
//!
//! LZMS is undocumented; these facts come from the comments of wimlib's decoder, the de-facto
//! specification. A chunk is a whole number of 16-bit units holding two streams
//! ([`streams`]): range-coded binary decisions read forwards, and Huffman symbols and
//! verbatim bits read backwards from the end. Items:
//!
//! * literal (main decision 0): a symbol of the literal code;
//! * LZ match (main 1, match 0): an offset (explicit, or one of 3 recent offsets) and a
//!   length; the source may overlap the destination;
//! * delta match (main 1, match 1): a power `p` (span `2^p`, 0..=7), a raw offset (offset
//!   = raw · span) and a length; each byte is `out[i − offset] + out[i − span] −
//!   out[i − offset − span]` (mod 256).
//!
//! The recent-offset queues (LZ: offsets; delta: (power, raw offset) pairs) have a quirk: a
//! new entry is inserted only after the *next* item, so a queue has a fourth, overflow slot
//! and a repeat match right after a match reads one slot further. They start as {1, 2, 3, 4}
//! and {(0,1), (0,2), (0,3), (0,4)}. Offsets and raw offsets use 799 slots (the codes have as
//! many symbols as offsets in the chunk need), lengths 54 slots. Finally the [`x86`] filter
//! is undone over the whole chunk.
//!
//! Decision contexts: main (last 4 decisions, 16 probabilities), match (5, 32), LZ and delta
//! explicit-or-repeat (6, 64), and two repeat-index decisions each for LZ and delta (6, 64).
//! Codes ([`adaptive`]): literal (256 symbols, rebuilt every 1024 symbols), LZ offset and
//! delta offset (every 1024), length (54, every 512), delta power (8, every 512).

pub(crate) mod adaptive;
pub(crate) mod streams;
pub(crate) mod tables;
pub(crate) mod x86;

use super::copy::copy_match;
use super::{check_output_size, Codec, DecompressError};
use adaptive::{AdaptiveCode, Scratch};
use streams::{BackReader, Probability, RangeDecoder};
use tables::{LENGTH_SLOTS, OFFSET_SLOTS};

/// wimlib's LZMS limit (1 GiB; Microsoft's software uses chunks up to 64 MiB).
pub(crate) const MAX_CHUNK_SIZE: usize = 1 << 30;

/// zlib `enough` for (256, 10, 15), (799, 10, 15), (54, 9, 15) and (8, 7, 15).
const LITERAL_TABLE: usize = 1302;
const OFFSET_TABLE: usize = 1846;
const LENGTH_TABLE: usize = 618;
const POWER_TABLE: usize = 128;

type Probs<const N: usize> = [Probability; N];

/// All decision probabilities.
#[derive(Clone, Debug)]
pub(crate) struct Decisions {
    pub(crate) main: Probs<16>,
    pub(crate) matched: Probs<32>,
    pub(crate) lz: Probs<64>,
    pub(crate) delta: Probs<64>,
    pub(crate) lz_rep: [Probs<64>; 2],
    pub(crate) delta_rep: [Probs<64>; 2],
}

impl Decisions {
    pub(crate) const INITIAL: Decisions = Decisions {
        main: [Probability::INITIAL; 16],
        matched: [Probability::INITIAL; 32],
        lz: [Probability::INITIAL; 64],
        delta: [Probability::INITIAL; 64],
        lz_rep: [[Probability::INITIAL; 64]; 2],
        delta_rep: [[Probability::INITIAL; 64]; 2],
    };
}

/// Decoder state for LZMS chunks (probabilities, five adaptive codes and the x86 filter's
/// 64 Ki-entry table: about 290 KiB); usable without `alloc` (e.g. in a `static`).
#[derive(Debug)]
pub struct LzmsDecoder {
    decisions: Decisions,
    literal: AdaptiveCode<256, LITERAL_TABLE, 10>,
    lz_offset: AdaptiveCode<{ tables::NUM_OFFSET_SLOTS }, OFFSET_TABLE, 10>,
    length: AdaptiveCode<{ tables::NUM_LENGTH_SLOTS }, LENGTH_TABLE, 9>,
    delta_offset: AdaptiveCode<{ tables::NUM_OFFSET_SLOTS }, OFFSET_TABLE, 10>,
    delta_power: AdaptiveCode<8, POWER_TABLE, 7>,
    scratch: Scratch,
    x86: x86::TargetTable,
}

impl Default for LzmsDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Item kinds, for the delayed queue updates.
const LITERAL: u32 = 0;
const LZ: u32 = 1;
const DELTA: u32 = 2;

impl LzmsDecoder {
    /// Fresh state.
    pub const fn new() -> Self {
        LzmsDecoder {
            decisions: Decisions::INITIAL,
            literal: AdaptiveCode::new(1024),
            lz_offset: AdaptiveCode::new(1024),
            length: AdaptiveCode::new(512),
            delta_offset: AdaptiveCode::new(1024),
            delta_power: AdaptiveCode::new(512),
            scratch: Scratch::new(),
            x86: x86::TargetTable::new(),
        }
    }

    #[cfg(feature = "alloc")]
    pub(crate) fn new_boxed() -> super::alloc::boxed::Box<Self> {
        // Built in place on the heap: the state is too big to pass through the stack safely
        // in debug builds.
        let mut b = super::alloc::boxed::Box::<Self>::new_uninit();
        b.write(Self::new());
        // SAFETY: `write` initialised every field.
        #[allow(unsafe_code)]
        unsafe {
            b.assume_init()
        }
    }

    /// Decompresses one chunk into exactly `output.len()` bytes (at most 1 GiB).
    pub fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        check_output_size(Codec::Lzms, output.len())?;
        if input.len() < 4 {
            return Err(DecompressError::InputTooShort {
                len: input.len(),
                min: 4,
            });
        }
        if !input.len().is_multiple_of(2) {
            return Err(DecompressError::OddLength { len: input.len() });
        }
        let mut rd = RangeDecoder::new(input);
        let mut back = BackReader::new(input);
        self.decisions = Decisions::INITIAL;
        let num_offset_slots = tables::num_offset_slots(output.len());
        let s = &mut self.scratch;
        self.literal.reset(256, s);
        self.lz_offset.reset(num_offset_slots, s);
        self.length.reset(tables::NUM_LENGTH_SLOTS, s);
        self.delta_offset.reset(num_offset_slots, s);
        self.delta_power.reset(8, s);

        self.decode_items(&mut rd, &mut back, output)?;
        if back.overran() {
            return Err(DecompressError::Truncated { len: input.len() });
        }
        self.x86.undo(output);
        Ok(())
    }

    fn decode_items(
        &mut self,
        rd: &mut RangeDecoder<'_>,
        back: &mut BackReader<'_>,
        out: &mut [u8],
    ) -> Result<(), DecompressError> {
        let d = &mut self.decisions;
        let s = &mut self.scratch;
        let mut recent_lz: [u32; 4] = [1, 2, 3, 4];
        let mut recent_delta: [u64; 4] = [1, 2, 3, 4];
        let mut prev = LITERAL;
        let (mut main_state, mut match_state, mut lz_state, mut delta_state) = (0, 0, 0, 0);
        let mut lz_rep_states = [0usize; 2];
        let mut delta_rep_states = [0usize; 2];
        let end = out.len();
        let mut pos = 0usize;
        while pos < end {
            if !rd.bit(&mut main_state, &mut d.main) {
                back.ensure(15);
                out[pos] = self.literal.decode(back, s) as u8;
                pos += 1;
                prev = LITERAL;
                continue;
            }
            if !rd.bit(&mut match_state, &mut d.matched) {
                // LZ match.
                let offset = if !rd.bit(&mut lz_state, &mut d.lz) {
                    let offset = decode_offset(&mut self.lz_offset, back, s);
                    recent_lz.copy_within(0..3, 1);
                    offset
                } else {
                    let k = (prev & 1) as usize;
                    let rep = repeat_index(rd, &mut lz_rep_states, &mut d.lz_rep);
                    take_repeat(&mut recent_lz, rep, k)
                };
                recent_lz[0] = offset;
                prev = LZ;
                let length = decode_length(&mut self.length, back, s);
                let (offset, length) = (offset as usize, length as usize);
                if !copy_match(out, pos, offset, length, end) {
                    return Err(match_error(pos, offset as u64, length, end, back));
                }
                pos += length;
            } else {
                // Delta match.
                let pair = if !rd.bit(&mut delta_state, &mut d.delta) {
                    back.ensure(15);
                    let power = self.delta_power.decode(back, s) as u64;
                    let raw = decode_offset(&mut self.delta_offset, back, s);
                    recent_delta.copy_within(0..3, 1);
                    (power << 32) | u64::from(raw)
                } else {
                    let k = (prev >> 1) as usize;
                    let rep = repeat_index(rd, &mut delta_rep_states, &mut d.delta_rep);
                    take_repeat(&mut recent_delta, rep, k)
                };
                recent_delta[0] = pair;
                prev = DELTA;
                let length = decode_length(&mut self.length, back, s) as usize;
                let power = (pair >> 32) as u32 & 31;
                let raw = pair & 0xffff_ffff;
                let span = 1usize << power;
                let offset = raw << power;
                if offset + span as u64 > pos as u64 {
                    return Err(match_error(pos, offset + span as u64, length, end, back));
                }
                if length > end - pos {
                    return Err(match_error(pos, 0, length, end, back));
                }
                let (offset, far) = (offset as usize, offset as usize + span);
                for i in pos..pos + length {
                    out[i] = out[i - offset]
                        .wrapping_add(out[i - span])
                        .wrapping_sub(out[i - far]);
                }
                pos += length;
            }
        }
        Ok(())
    }
}

/// Which recent entry (0..=2) a repeat match uses: two decisions, each in its own context.
#[inline(always)]
fn repeat_index(
    rd: &mut RangeDecoder<'_>,
    states: &mut [usize; 2],
    probs: &mut [Probs<64>; 2],
) -> usize {
    if !rd.bit(&mut states[0], &mut probs[0]) {
        0
    } else if !rd.bit(&mut states[1], &mut probs[1]) {
        1
    } else {
        2
    }
}

/// Takes recent entry `rep` (0..=2) of a queue whose newest insertion may still be pending
/// (`k` = 1 right after an item of the same kind, whose entry sits in slot 0 and does not
/// count yet): the entry is removed and everything before it moves one slot back.
#[inline(always)]
pub(crate) fn take_repeat<T: Copy>(q: &mut [T; 4], rep: usize, k: usize) -> T {
    let v = q[rep + k];
    q[rep + k] = q[rep];
    // Shift slots 0..rep one to the right (slot 0 is overwritten by the caller).
    q.copy_within(0..rep, 1);
    v
}

#[inline(always)]
fn decode_offset<const S: usize, const T: usize, const B: u32>(
    code: &mut AdaptiveCode<S, T, B>,
    back: &mut BackReader<'_>,
    s: &mut Scratch,
) -> u32 {
    back.ensure(15);
    let slot = code.decode(back, s);
    let (base, extra) = OFFSET_SLOTS[slot & 1023];
    back.ensure(30);
    base.wrapping_add(back.take(u32::from(extra)))
}

#[inline(always)]
fn decode_length<const S: usize, const T: usize, const B: u32>(
    code: &mut AdaptiveCode<S, T, B>,
    back: &mut BackReader<'_>,
    s: &mut Scratch,
) -> u32 {
    back.ensure(15);
    let slot = code.decode(back, s);
    let (base, extra) = LENGTH_SLOTS[slot & 63];
    if extra == 0 {
        return base;
    }
    back.ensure(30);
    base + back.take(u32::from(extra))
}

fn match_error(
    pos: usize,
    distance: u64,
    length: usize,
    end: usize,
    back: &BackReader<'_>,
) -> DecompressError {
    if distance > pos as u64 || distance == 0 && length <= end - pos {
        DecompressError::MatchDistance {
            position: pos,
            distance,
            offset: back.offset(),
        }
    } else {
        DecompressError::MatchLength {
            position: pos,
            length: length as u64,
            end,
            offset: back.offset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_queue_follows_the_delayed_insertion_rule() {
        // Right after a literal (k = 0): rep 1 takes slot 1, slot 0 moves to slot 1.
        let mut q = [10u32, 20, 30, 40];
        assert_eq!(take_repeat(&mut q, 1, 0), 20);
        assert_eq!(q[1..], [10, 30, 40]);
        // Right after an LZ match (k = 1): rep 0 takes slot 1 (slot 0 is the pending one).
        let mut q = [10u32, 20, 30, 40];
        assert_eq!(take_repeat(&mut q, 0, 1), 20);
        assert_eq!(q[1..], [10, 30, 40]);
        let mut q = [10u32, 20, 30, 40];
        assert_eq!(take_repeat(&mut q, 2, 1), 40);
        assert_eq!(q[1..], [10, 20, 30]);
    }

    #[test]
    fn malformed_chunks_are_typed_errors() {
        let mut d = LzmsDecoder::new();
        let mut out = [0u8; 64];
        assert!(matches!(
            d.decompress(&[0; 3], &mut out),
            Err(DecompressError::InputTooShort { .. })
        ));
        assert!(matches!(
            d.decompress(&[0; 7], &mut out),
            Err(DecompressError::OddLength { len: 7 })
        ));
        // All-zero data: range code 0 decodes decision 0 (literal) forever, from backward
        // bits that run out.
        let r = d.decompress(&[0; 8], &mut out);
        assert!(
            matches!(r, Err(DecompressError::Truncated { len: 8 })),
            "{r:?}"
        );
        // All-ones: matches right away, before any byte exists.
        let r = d.decompress(&[0xff; 8], &mut out);
        assert!(
            matches!(r, Err(DecompressError::MatchDistance { position: 0, .. })),
            "{r:?}"
        );
    }
}
