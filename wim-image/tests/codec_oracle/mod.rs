//! Shared by the `codec_*` tests: wimlib's compression API loaded with `dlopen` (the peer
//! oracle), deterministic test inputs, and the differential checks.
//!
//! The oracle is `libwim.so.15` (Debian/Ubuntu package `libwim15`, pulled in by `wimtools`).
//! When it is missing a test prints why and passes, except under `CI=true`, where a missing
//! oracle is a failure.

#![allow(dead_code, unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_uint, c_void, CStr};

use wim_image::codec::{Codec, DecompressError, Decompressor};

type CreateCompressor = unsafe extern "C" fn(c_int, usize, c_uint, *mut *mut c_void) -> c_int;
type Compress =
    unsafe extern "C" fn(*const c_void, usize, *mut c_void, usize, *mut c_void) -> usize;
type FreeCompressor = unsafe extern "C" fn(*mut c_void);
type CreateDecompressor = unsafe extern "C" fn(c_int, usize, *mut *mut c_void) -> c_int;
type Decompress =
    unsafe extern "C" fn(*const c_void, usize, *mut c_void, usize, *mut c_void) -> c_int;
type FreeDecompressor = unsafe extern "C" fn(*mut c_void);

/// wimlib's compression-type numbers (`enum wimlib_compression_type` in wimlib.h).
pub fn ctype(codec: Codec) -> c_int {
    match codec {
        Codec::Xpress => 1,
        Codec::Lzx => 2,
        Codec::Lzms => 3,
    }
}

/// wimlib's compression API.
pub struct Wimlib {
    create_compressor: CreateCompressor,
    compress: Compress,
    free_compressor: FreeCompressor,
    create_decompressor: CreateDecompressor,
    decompress: Decompress,
    free_decompressor: FreeDecompressor,
    compressors: RefCell<HashMap<(Codec, usize, u32), *mut c_void>>,
    decompressors: RefCell<HashMap<(Codec, usize), *mut c_void>>,
}

impl Drop for Wimlib {
    fn drop(&mut self) {
        for (_, c) in self.compressors.borrow_mut().drain() {
            // SAFETY: each pointer came from wimlib_create_compressor and is freed once.
            unsafe { (self.free_compressor)(c) };
        }
        for (_, d) in self.decompressors.borrow_mut().drain() {
            // SAFETY: as above, for decompressors.
            unsafe { (self.free_decompressor)(d) };
        }
    }
}

fn sym<T: Copy>(lib: *mut c_void, name: &CStr) -> T {
    // SAFETY: `lib` is a live handle from dlopen; the name is NUL-terminated.
    let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
    assert!(!p.is_null(), "libwim.so.15 lacks {name:?}");
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: `T` is the function-pointer type of this symbol as declared in wimlib.h.
    unsafe { std::mem::transmute_copy(&p) }
}

/// Loads wimlib, or returns `None` after printing why (and panics under `CI=true`).
pub fn wimlib(test: &str) -> Option<Wimlib> {
    // SAFETY: dlopen with a NUL-terminated name; the library's initialisers are benign.
    let lib = unsafe { libc::dlopen(c"libwim.so.15".as_ptr(), libc::RTLD_NOW) };
    if lib.is_null() {
        let msg = format!("{test}: skipped, libwim.so.15 (package libwim15 / wimtools) not found");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} and CI=true");
        }
        eprintln!("{msg}");
        return None;
    }
    Some(Wimlib {
        create_compressor: sym(lib, c"wimlib_create_compressor"),
        compress: sym(lib, c"wimlib_compress"),
        free_compressor: sym(lib, c"wimlib_free_compressor"),
        create_decompressor: sym(lib, c"wimlib_create_decompressor"),
        decompress: sym(lib, c"wimlib_decompress"),
        free_decompressor: sym(lib, c"wimlib_free_decompressor"),
        compressors: RefCell::default(),
        decompressors: RefCell::default(),
    })
}

impl Wimlib {
    /// Compresses `data` as one chunk of a resource with `chunk_size`-byte chunks, or `None`
    /// if wimlib could not fit it into `out_avail` bytes.
    pub fn compress(
        &self,
        codec: Codec,
        chunk_size: usize,
        level: u32,
        data: &[u8],
        out_avail: usize,
    ) -> Option<Vec<u8>> {
        let c = *self
            .compressors
            .borrow_mut()
            .entry((codec, chunk_size, level))
            .or_insert_with(|| {
                let mut c = std::ptr::null_mut();
                // SAFETY: valid arguments; `c` receives the compressor.
                let rc =
                    unsafe { (self.create_compressor)(ctype(codec), chunk_size, level, &mut c) };
                assert_eq!(
                    rc, 0,
                    "wimlib_create_compressor({codec:?}, {chunk_size}, {level})"
                );
                c
            });
        let mut out = vec![0u8; out_avail];
        // SAFETY: in/out buffers with their true lengths and a live compressor.
        let n = unsafe {
            (self.compress)(
                data.as_ptr().cast(),
                data.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                c,
            )
        };
        (n != 0).then(|| {
            out.truncate(n);
            out
        })
    }

    /// Compresses like a WIM writer: `None` when the result would not be smaller.
    pub fn compress_chunk(
        &self,
        codec: Codec,
        chunk_size: usize,
        level: u32,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        self.compress(codec, chunk_size, level, data, data.len().saturating_sub(1))
    }

    /// wimlib's own decompression of one chunk.
    pub fn decompress(
        &self,
        codec: Codec,
        chunk_size: usize,
        input: &[u8],
        out_len: usize,
    ) -> Option<Vec<u8>> {
        let mut out = vec![0u8; out_len];
        self.decompress_into(codec, chunk_size, input, &mut out)
            .map(|()| out)
    }

    /// wimlib's own decompression of one chunk into `out` (its length is the chunk size).
    pub fn decompress_into(
        &self,
        codec: Codec,
        chunk_size: usize,
        input: &[u8],
        out: &mut [u8],
    ) -> Option<()> {
        let d = *self
            .decompressors
            .borrow_mut()
            .entry((codec, chunk_size))
            .or_insert_with(|| {
                let mut d = std::ptr::null_mut();
                // SAFETY: valid arguments; `d` receives the decompressor.
                let rc = unsafe { (self.create_decompressor)(ctype(codec), chunk_size, &mut d) };
                assert_eq!(rc, 0, "wimlib_create_decompressor({codec:?}, {chunk_size})");
                d
            });
        // SAFETY: in/out buffers with their true lengths and a live decompressor.
        let rc = unsafe {
            (self.decompress)(
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                d,
            )
        };
        (rc == 0).then_some(())
    }
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The kinds of test input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Uniform random bytes (incompressible).
    Random,
    /// Words from a small vocabulary with punctuation: text-like.
    Text,
    /// A few short patterns repeated with small changes: highly repetitive.
    Repetitive,
    /// Machine code: the test binary's own bytes (E8 calls, REX prefixes, RIP-relative).
    X86,
    /// Long runs of a few byte values.
    Runs,
    /// Little-endian integer tables that grow linearly (what LZMS delta matches are for).
    Delta,
    /// Mostly 0xE8 and 0xE8-adjacent bytes: stresses E8 translation edge cases.
    E8Heavy,
}

pub const KINDS: [Kind; 7] = [
    Kind::Random,
    Kind::Text,
    Kind::Repetitive,
    Kind::X86,
    Kind::Runs,
    Kind::Delta,
    Kind::E8Heavy,
];

fn own_binary() -> &'static [u8] {
    use std::sync::OnceLock;
    static EXE: OnceLock<Vec<u8>> = OnceLock::new();
    EXE.get_or_init(|| {
        std::fs::read("/proc/self/exe")
            .unwrap_or_else(|_| std::fs::read(std::env::current_exe().unwrap()).unwrap())
    })
}

/// `len` bytes of `kind`, determined by `seed`.
pub fn input(kind: Kind, len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut v = Vec::with_capacity(len);
    match kind {
        Kind::Random => v.extend((0..len).map(|_| r.next() as u8)),
        Kind::Text => {
            const WORDS: &[&str] = &[
                "the",
                "image",
                "file",
                "windows",
                "of",
                "and",
                "compression",
                "chunk",
                "a",
                "to",
                "resource",
                "stream",
                "directory",
                "in",
                "is",
                "that",
                "for",
                "header",
                "data",
                "LZX",
                "XPRESS",
                "LZMS",
                "Huffman",
                "offset",
                "length",
                "match",
                "literal",
            ];
            while v.len() < len {
                v.extend_from_slice(WORDS[r.below(WORDS.len() as u64) as usize].as_bytes());
                v.push(match r.below(12) {
                    0 => b'.',
                    1 => b',',
                    2 => b'\n',
                    _ => b' ',
                });
            }
        }
        Kind::Repetitive => {
            let patterns: Vec<Vec<u8>> = (0..4)
                .map(|_| (0..r.below(40) + 3).map(|_| r.next() as u8).collect())
                .collect();
            while v.len() < len {
                let mut p = patterns[r.below(4) as usize].clone();
                if r.below(8) == 0 {
                    let i = r.below(p.len() as u64) as usize;
                    p[i] = r.next() as u8;
                }
                v.extend_from_slice(&p);
            }
        }
        Kind::X86 => {
            let exe = own_binary();
            let start = r.below(exe.len().saturating_sub(len).max(1) as u64) as usize;
            while v.len() < len {
                let take = (len - v.len()).min(exe.len() - start);
                v.extend_from_slice(&exe[start..start + take]);
            }
        }
        Kind::Runs => {
            while v.len() < len {
                let b = [0u8, 0xff, 0xe8, b' ', r.next() as u8][r.below(5) as usize];
                let cap = if r.below(4) == 0 { 5000 } else { 40 };
                let n = 1 + r.below(cap) as usize;
                v.extend(std::iter::repeat_n(b, n));
            }
        }
        Kind::Delta => {
            while v.len() < len {
                let width = [1usize, 2, 4, 8][r.below(4) as usize];
                let step = r.below(7);
                let mut x = r.next();
                for _ in 0..r.below(300) + 10 {
                    v.extend_from_slice(&x.to_le_bytes()[..width]);
                    x = x.wrapping_add(step);
                }
            }
        }
        Kind::E8Heavy => {
            while v.len() < len {
                v.push(match r.below(6) {
                    0..=2 => 0xe8,
                    3 => 0,
                    4 => 0xff,
                    _ => r.next() as u8,
                });
            }
        }
    }
    v.truncate(len);
    v
}

/// Decompresses `compressed` with `d` and checks it reproduces `original`.
pub fn check_round_trip(d: &mut Decompressor, compressed: &[u8], original: &[u8], what: &str) {
    let mut out = vec![0u8; original.len()];
    match d.decompress(compressed, &mut out) {
        Ok(()) => assert!(out == original, "{what}: output differs from the input"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Differential check on (possibly corrupt) input: ours must never panic; when ours succeeds
/// wimlib must too, with the same bytes; when wimlib succeeds ours must too, or report
/// truncation (wimlib reads missing bits as zeros without complaint). Returns whether ours
/// succeeded.
pub fn check_against_wimlib(
    lib: &Wimlib,
    d: &mut Decompressor,
    input: &[u8],
    out_len: usize,
    what: &str,
) -> bool {
    let mut out = vec![0u8; out_len];
    let ours = d.decompress(input, &mut out);
    let theirs = lib.decompress(d.codec(), d.chunk_size(), input, out_len);
    match (&ours, &theirs) {
        (Ok(()), Some(t)) => assert!(&out == t, "{what}: both decoders accept, outputs differ"),
        (Ok(()), None) => panic!("{what}: ours accepts what wimlib rejects"),
        (Err(DecompressError::Truncated { .. }), _) | (Err(_), None) => {}
        (Err(e), Some(_)) => panic!("{what}: ours rejects ({e}) what wimlib accepts"),
    }
    ours.is_ok()
}

/// Corruptions of `compressed`: single bit flips across it, byte overwrites, truncations and
/// an extension; each fed to [`check_against_wimlib`].
pub fn corruptions(compressed: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let mut r = Rng(seed | 1);
    let mut v = Vec::new();
    let n = compressed.len();
    for _ in 0..24 {
        let mut c = compressed.to_vec();
        let i = r.below(n as u64) as usize;
        c[i] ^= 1 << r.below(8);
        v.push(c);
    }
    for _ in 0..8 {
        let mut c = compressed.to_vec();
        let i = r.below(n as u64) as usize;
        let k = (r.below(16) as usize + 1).min(n - i);
        for b in &mut c[i..i + k] {
            *b = r.next() as u8;
        }
        v.push(c);
    }
    for cut in [1usize, 2, 3, 7, n / 2, n.saturating_sub(1)] {
        if cut < n {
            v.push(compressed[..n - cut].to_vec());
        }
    }
    let mut c = compressed.to_vec();
    c.extend_from_slice(&[0xa5; 9]);
    v.push(c);
    v
}

/// For every input kind, size in `sizes` (at most `chunk_size`) and level: wimlib compresses
/// the input as one chunk of a `chunk_size`-chunk resource (allowed to expand, so that
/// incompressible data is covered too) and `d` must reproduce it. `skip(kind, size, level)`
/// leaves combinations out. Returns the number of chunks checked.
pub fn round_trip_sweep(
    lib: &Wimlib,
    d: &mut Decompressor,
    chunk_size: usize,
    sizes: &[usize],
    levels: &[u32],
    skip: &dyn Fn(Kind, usize, u32) -> bool,
) -> usize {
    let mut checked = 0;
    for (k, kind) in KINDS.into_iter().enumerate() {
        for (s, &size) in sizes.iter().enumerate() {
            if size > chunk_size {
                continue;
            }
            let data = input(kind, size, (k * 31 + s) as u64 ^ chunk_size as u64);
            for &level in levels {
                if skip(kind, size, level) {
                    continue;
                }
                let Some(c) = lib.compress(d.codec(), chunk_size, level, &data, size * 2 + 1000)
                else {
                    continue;
                };
                let what = format!("{kind:?} {size} B, chunk {chunk_size}, level {level}");
                check_round_trip(d, &c, &data, &what);
                checked += 1;
            }
        }
    }
    checked
}

/// Every input kind at each size, compressed by wimlib at level 50 with 32 KiB chunks (LZMS:
/// 128 KiB), then corrupted in many ways ([`corruptions`]) and run through
/// [`check_against_wimlib`]. Returns (still decoded, total).
pub fn corruption_sweep(lib: &Wimlib, codec: Codec, sizes: &[usize]) -> (usize, usize) {
    let chunk_size = if codec == Codec::Lzms {
        1 << 17
    } else {
        1 << 15
    };
    let mut d = Decompressor::with_chunk_size(codec, chunk_size).unwrap();
    let (mut ok, mut total) = (0, 0);
    for (k, kind) in KINDS.into_iter().enumerate() {
        for &size in sizes {
            let data = input(kind, size, 7 + k as u64);
            let Some(c) = lib.compress_chunk(codec, chunk_size, 50, &data) else {
                continue;
            };
            for (i, bad) in corruptions(&c, size as u64 ^ k as u64).iter().enumerate() {
                total += 1;
                let what = format!("{codec:?} {kind:?} {size} corruption {i}");
                if check_against_wimlib(lib, &mut d, bad, size, &what) {
                    ok += 1;
                }
            }
        }
    }
    eprintln!("{codec:?} corruptions: {ok} of {total} still decoded (identically to wimlib)");
    (ok, total)
}
