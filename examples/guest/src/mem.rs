//! The C memory functions that compiled Rust code calls for large copies, fills and
//! comparisons (`memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`).
//!
//! A hosted program gets them from the C library; this guest links none (`-nodefaultlibs`),
//! and glibc's static versions would need the start-up code's `IRELATIVE` processing anyway.
//! Copies and fills use the string instructions (`rep movsb`/`rep stosb`), which cannot be
//! turned back into a call to themselves the way a plain Rust loop can.
//!
//! The functions are `unsafe` by nature (raw pointers from compiled code); each block says why
//! it is sound under the C contract the caller upholds.
#![allow(unsafe_code)]

use core::arch::asm;

/// Copies `n` bytes from `src` to `dest`; the regions do not overlap.
///
/// # Safety
///
/// `src` is valid for `n` bytes of reads, `dest` for `n` bytes of writes, and they do not
/// overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: `rep movsb` copies `rcx` bytes from `[rsi]` upwards to `[rdi]` (the direction
    // flag is clear on entry, as the ABI requires); the caller guarantees both ranges.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// Copies `n` bytes from `src` to `dest`; the regions may overlap.
///
/// # Safety
///
/// `src` is valid for `n` bytes of reads and `dest` for `n` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // `dest` is below `src` or past its end: a forward copy never reads a byte it wrote.
        // SAFETY: the caller's guarantees for `memmove` cover `memcpy`'s, and copying upwards
        // is correct for this overlap.
        return unsafe { memcpy(dest, src, n) };
    }
    // `dest` lies inside `src..src + n`: copy downwards from the last byte.
    // SAFETY: with the direction flag set, `rep movsb` copies `rcx` bytes from `[rsi]`
    // downwards to `[rdi]`, starting at the last byte of each range (`n > 0` here, since
    // `dest - src < n`); the caller guarantees both ranges. The flag is cleared again before
    // the block ends, as the ABI requires.
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dest.wrapping_add(n - 1) => _,
            inout("rsi") src.wrapping_add(n - 1) => _,
            options(nostack)
        );
    }
    dest
}

/// Fills `n` bytes at `dest` with the low byte of `c`.
///
/// # Safety
///
/// `dest` is valid for `n` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: `rep stosb` stores `al` to `rcx` bytes upwards from `[rdi]` (direction flag
    // clear); the caller guarantees the range. Truncating `c` to a byte is what C specifies.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// Compares `n` bytes at `a` and `b`; returns the difference of the first unequal pair.
/// One `repe cmpsb`: every guest instruction is expensive when KVM emulates them, a string
/// instruction counts once.
///
/// # Safety
///
/// `a` and `b` are each valid for `n` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    let (mut pa, mut pb, mut left) = (a, b, n);
    // SAFETY: `repe cmpsb` reads at most `n` bytes from each of `a` (rsi) and `b` (rdi), which
    // the caller guarantees are readable; the direction flag is clear (the System V ABI).
    unsafe {
        asm!(
            "repe cmpsb",
            inout("rsi") pa, inout("rdi") pb, inout("rcx") left,
            options(readonly, nostack)
        );
    }
    let _ = left;
    // After the loop both pointers are one past the last compared pair.
    // SAFETY: at least one pair was compared, so `pa - 1` lies in `a`'s buffer.
    let x = unsafe { pa.wrapping_sub(1).read() };
    // SAFETY: likewise `pb - 1` in `b`'s.
    let y = unsafe { pb.wrapping_sub(1).read() };
    i32::from(x) - i32::from(y)
}

/// Compares `n` bytes at `a` and `b`; returns 0 when they are equal.
///
/// # Safety
///
/// `a` and `b` are each valid for `n` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as `memcmp`.
    unsafe { memcmp(a, b, n) }
}
