//! A counting global allocator for the memory tests: the system allocator, counting the
//! bytes the current thread holds, its peak and its calls (per thread, so the test harness's
//! own allocations on other threads do not count).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting per thread.
pub struct Counting;

thread_local! {
    static LIVE: Cell<u64> = const { Cell::new(0) };
    static PEAK: Cell<u64> = const { Cell::new(0) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn grow(bytes: usize) {
    // `try_with`: a thread's allocations while its locals are torn down are not counted.
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + bytes as u64);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
    let _ = CALLS.try_with(|c| c.set(c.get() + 1));
}

fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(bytes as u64)));
}

// The workspace denies unsafe code; a global allocator cannot be written without it. Every
// call forwards to `System` with the caller's arguments, which is all the contract asks.
#[allow(unsafe_code)]
// SAFETY: each method forwards to `System`, which upholds `GlobalAlloc`'s contract; the
// counting beside it touches only thread-local cells and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's block and sizes, as `GlobalAlloc::realloc` requires.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The bytes this thread holds.
pub fn live() -> u64 {
    LIVE.with(Cell::get)
}

/// The most bytes this thread has held since the last [`reset_peak`].
pub fn peak() -> u64 {
    PEAK.with(Cell::get)
}

/// Starts a new peak from what this thread holds now, and returns that.
pub fn reset_peak() -> u64 {
    let now = live();
    PEAK.with(|p| p.set(now));
    now
}

/// Allocation calls made by this thread so far.
pub fn calls() -> u64 {
    CALLS.with(Cell::get)
}
