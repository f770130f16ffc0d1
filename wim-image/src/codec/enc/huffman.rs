//! Length-limited canonical Huffman codes for the compressors.
//!
//! [`make_code`] turns symbol frequencies into codeword lengths no longer than a limit and
//! the canonical codewords the decoders expect (assigned in order of length, then symbol).
//! The lengths come from an ordinary Huffman tree (two-queue construction over the symbols
//! sorted by frequency, built in place in one array of the used symbols); lengths over the limit are clamped and the Kraft sum repaired by
//! moving leaves down one level (shortest first) until the code is no longer over-full,
//! then up one level (longest first) until it is exactly full. The number of codewords of
//! each length is all that changes; they are handed out again by frequency, so more
//! frequent symbols never get longer codewords. Every code with at least one used symbol
//! comes out complete (a single used symbol is paired with a dummy, as the decoders want).

/// Most symbols of any code the compressors build (LZMS offset slots).
pub(crate) const MAX_SYMS: usize = 799;
const MAX_LIMIT: usize = 16;

/// Fills `lens` (codeword lengths, 0 = unused) and `codes` (canonical codewords, right
/// aligned) for `freqs`, with no codeword longer than `max_len` (at most 16; `2^max_len`
/// must be at least the number of symbols).
pub(crate) fn make_code(freqs: &[u32], max_len: u32, lens: &mut [u8], codes: &mut [u32]) {
    let count = make_lens(freqs, max_len, lens);
    assign_counted(&lens[..freqs.len()], &count, max_len, codes);
}

/// The lengths part of [`make_code`]; returns the number of codewords of each length
/// (index 0: none).
pub(crate) fn make_lens(freqs: &[u32], max_len: u32, lens: &mut [u8]) -> [u32; MAX_LIMIT + 1] {
    let n = freqs.len();
    debug_assert!((2..=MAX_SYMS).contains(&n) && (max_len as usize) <= MAX_LIMIT);
    let lens = &mut lens[..n];
    lens.fill(0);
    // Used symbols sorted by (frequency, symbol): a counting sort on the frequency, whose
    // buckets keep symbol order, for frequencies below `n` (nearly all of them in a chunk's
    // code); the few larger ones share the last bucket, sorted on their own. A comparison
    // sort of every symbol cost more than the tree (measured on 2 KiB chunks: it was a
    // quarter of the Huffman time).
    //
    // Four histograms, one per symbol modulo 4: runs of equal frequencies (unused symbols
    // above all) would otherwise chain each count through the last one's store.
    let mut hist = [[0u16; MAX_SYMS + 1]; 4];
    for f4 in freqs.chunks(4) {
        for (h, &f) in hist.iter_mut().zip(f4) {
            h[(f as usize).min(n)] += 1;
        }
    }
    let mut start = [0u16; MAX_SYMS + 1];
    for (b, s) in start[..=n].iter_mut().enumerate() {
        *s = hist[0][b] + hist[1][b] + hist[2][b] + hist[3][b];
    }
    let used = n - usize::from(start[0]);
    let mut at = 0u16;
    for b in &mut start[1..=n] {
        (*b, at) = (at, at + *b);
    }
    let large = usize::from(start[n]);
    let mut sorted = [0u16; MAX_SYMS];
    for (sym, &f) in freqs.iter().enumerate() {
        if f != 0 {
            let b = &mut start[(f as usize).min(n)];
            sorted[usize::from(*b)] = sym as u16;
            *b += 1;
        }
    }
    let sorted = &mut sorted[..used];
    sorted[large..].sort_unstable_by_key(|&s| (freqs[usize::from(s)], s));
    let mut count = [0u32; MAX_LIMIT + 1];
    match used {
        0 => return count,
        1 => {
            let sym = usize::from(sorted[0]);
            lens[sym] = 1;
            lens[usize::from(sym == 0)] = 1;
            count[1] = 2;
            return count;
        }
        _ => {}
    }

    // The tree in place (Moffat and Katajainen's method): `a` starts as the sorted weights;
    // building the tree with two queues (leaves from `leaf`, internal nodes from `root`,
    // a leaf winning ties) overwrites each consumed internal node's weight with its
    // parent's index; the internal nodes' depths then replace those indices, root first,
    // and the leaves' depths follow from how many internal nodes sit at each depth. One
    // array of `used` words, instead of weight, parent and depth arrays for every symbol.
    // 64-bit words: the weights of internal nodes can exceed 32 bits.
    let mut a = [0u64; MAX_SYMS];
    let a = &mut a[..used];
    for (w, &sym) in a.iter_mut().zip(sorted.iter()) {
        *w = u64::from(freqs[usize::from(sym)]);
    }
    a[0] += a[1];
    let (mut root, mut leaf) = (0usize, 2usize);
    for next in 1..used - 1 {
        for first in [true, false] {
            // The lighter of the next leaf and the oldest unconsumed internal node (one
            // exists when `root < next`), a leaf on a tie.
            let take_root = root < next && (leaf >= used || a[root] < a[leaf]);
            let w = if take_root {
                let w = a[root];
                a[root] = next as u64;
                root += 1;
                w
            } else {
                leaf += 1;
                a[leaf - 1]
            };
            a[next] = if first { w } else { a[next] + w };
        }
    }
    // Depths of the internal nodes (the root is the last one).
    a[used - 2] = 0;
    for next in (0..used - 2).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    // Leaves per depth: of the `slots` nodes at a depth, those that are not internal nodes
    // are leaves. Counted per codeword length, clamped to the limit.
    let max = max_len as usize;
    // Internal nodes below the root, deepest first from `inner - 1` down.
    let (mut slots, mut depth, mut inner) = (2u32, 1u32, used - 2);
    while slots > 0 {
        let mut internal = 0u32;
        while inner > 0 && a[inner - 1] == u64::from(depth) {
            internal += 1;
            inner -= 1;
        }
        count[(depth as usize).min(max)] += slots - internal;
        slots = 2 * internal;
        depth += 1;
    }
    let full = 1u64 << max;
    let mut kraft: u64 = (1..=max).map(|l| u64::from(count[l]) << (max - l)).sum();
    while kraft > full {
        // Move a leaf from the longest length below the limit one level down.
        let l = (1..max).rev().find(|&l| count[l] > 0).unwrap_or(max - 1);
        count[l] -= 1;
        count[l + 1] += 1;
        kraft -= 1 << (max - l - 1);
    }
    while kraft < full {
        // Move a leaf from the longest used length one level up: adds exactly the smallest
        // unit the sum is made of, so this never overshoots.
        let l = (2..=max).rev().find(|&l| count[l] > 0).unwrap_or(2);
        count[l] -= 1;
        count[l - 1] += 1;
        kraft += 1 << (max - l);
    }
    // Longest codewords to the least frequent symbols.
    let (mut left, mut l) = (count, max);
    for &sym in sorted.iter() {
        while left[l] == 0 {
            l -= 1;
        }
        left[l] -= 1;
        lens[usize::from(sym)] = l as u8;
    }
    count
}

/// Canonical codewords for `lens` (each at most `max_len` bits).
pub(crate) fn assign_codewords(lens: &[u8], max_len: u32, codes: &mut [u32]) {
    let mut count = [0u32; MAX_LIMIT + 1];
    for &l in lens {
        count[usize::from(l)] += 1;
    }
    count[0] = 0;
    assign_counted(lens, &count, max_len, codes);
}

/// [`assign_codewords`] given the number of codewords of each length.
fn assign_counted(lens: &[u8], count: &[u32; MAX_LIMIT + 1], max_len: u32, codes: &mut [u32]) {
    // Next codeword per length; unused symbols (length 0) draw from four dummy counters
    // (by symbol modulo 4), so neither a branch nor one counter's chain of stores serves
    // the runs of unused symbols.
    let mut next = [0u32; MAX_LIMIT + 5];
    let mut code = 0u32;
    for l in 1..=max_len as usize {
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    for (s, (c, &l)) in codes.iter_mut().zip(lens).enumerate() {
        let slot = if l == 0 {
            MAX_LIMIT + 1 + (s & 3)
        } else {
            usize::from(l)
        };
        let word = next[slot];
        next[slot] = word + 1;
        *c = if l == 0 { 0 } else { word };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lens: &[u8], max: u32) -> u64 {
        lens.iter()
            .filter(|&&l| l != 0)
            .map(|&l| 1u64 << (max - u32::from(l)))
            .sum()
    }

    /// Huffman depths the textbook way: symbols sorted by (frequency, symbol) with a
    /// comparison sort, two queues, a leaf winning ties; the clamping and repair are shared.
    fn reference_depths(freqs: &[u32]) -> Vec<(u16, usize)> {
        let mut keys: Vec<(u64, u16)> = (0..freqs.len())
            .filter(|&s| freqs[s] != 0)
            .map(|s| (u64::from(freqs[s]), s as u16))
            .collect();
        keys.sort_unstable();
        let used = keys.len();
        let mut weight: Vec<u64> = keys.iter().map(|k| k.0).collect();
        let mut parent = vec![0usize; 2 * used];
        let (mut leaf, mut inner) = (0, used);
        while weight.len() < 2 * used - 1 {
            let mut pick = || {
                let next = weight.len();
                if leaf < used && (inner >= next || weight[leaf] <= weight[inner]) {
                    leaf += 1;
                    leaf - 1
                } else {
                    inner += 1;
                    inner - 1
                }
            };
            let (a, b) = (pick(), pick());
            parent[a] = weight.len();
            parent[b] = weight.len();
            weight.push(weight[a] + weight[b]);
        }
        let mut depth = vec![0u16; 2 * used - 1];
        for i in (0..2 * used - 2).rev() {
            depth[i] = depth[parent[i]] + 1;
        }
        keys.iter()
            .zip(&depth)
            .map(|(k, &d)| (d, usize::from(k.1)))
            .collect()
    }

    #[test]
    fn counting_sort_and_in_place_tree_build_the_textbook_tree() {
        let mut seed = 0x2545_f491u32;
        for round in 0..300 {
            let n = [2usize, 3, 17, 256, 513, 656, 799][round % 7];
            let freqs: Vec<u32> = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    match round % 3 {
                        // Many ties and unused symbols, as in a small chunk's code.
                        0 => seed % 4,
                        1 => (seed % 8).saturating_sub(5) * (seed >> 24),
                        _ => seed >> (seed % 32),
                    }
                })
                .collect();
            if freqs.iter().filter(|&&f| f != 0).count() < 2 {
                continue;
            }
            // No limit binds at 30 bits here, so the lengths are the tree's depths.
            let reference = reference_depths(&freqs);
            if reference.iter().any(|&(d, _)| d > 16) {
                continue;
            }
            let mut lens = vec![0u8; n];
            make_lens(&freqs, 16, &mut lens);
            // Same multiset of depths, and the same symbol at each rank of the sorted order.
            for &(d, sym) in &reference {
                assert_eq!(u16::from(lens[sym]), d, "round {round}, symbol {sym}");
            }
        }
    }

    #[test]
    fn codes_are_complete_limited_and_monotone() {
        let mut seed = 0x9e37_79b9u32;
        for round in 0..400 {
            let n = [2usize, 3, 8, 20, 249, 512, 656, 799][round % 8];
            let max = if n > 128 {
                [15u32, 16][round % 2]
            } else {
                [7u32, 15, 16][round % 3]
            };
            let freqs: Vec<u32> = (0..n)
                .map(|i| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    match round % 4 {
                        // Fibonacci-like skew forces the limit to bite.
                        0 => 1u32 << ((i as u32 * 7 + (seed >> 28)) % 31).min(28),
                        1 => seed >> (16 + seed % 16),
                        2 => u32::from(seed.is_multiple_of(5)) * (seed >> 20),
                        _ => seed % 3,
                    }
                })
                .collect();
            let mut lens = vec![0u8; n];
            let mut codes = vec![0u32; n];
            make_code(&freqs, max, &mut lens, &mut codes);
            let used = freqs.iter().filter(|&&f| f != 0).count();
            if used == 0 {
                assert!(lens.iter().all(|&l| l == 0));
                continue;
            }
            assert_eq!(kraft(&lens, max), 1 << max, "round {round}");
            assert!(lens.iter().all(|&l| u32::from(l) <= max));
            for a in 0..n {
                for b in 0..n {
                    if freqs[a] > freqs[b] && freqs[b] != 0 {
                        assert!(lens[a] <= lens[b], "round {round}");
                    }
                }
                if used >= 2 {
                    assert_eq!(lens[a] != 0, freqs[a] != 0);
                }
            }
            if n > 64 {
                continue;
            }
            // Prefix-free: no codeword is a prefix of another.
            let words: Vec<(u32, u8)> = (0..n)
                .filter(|&s| lens[s] != 0)
                .map(|s| (codes[s], lens[s]))
                .collect();
            for &(ca, la) in &words {
                for &(cb, lb) in &words {
                    if (ca, la) != (cb, lb) && la <= lb {
                        assert_ne!(cb >> (lb - la), ca, "round {round}");
                    }
                }
            }
        }
    }
}
