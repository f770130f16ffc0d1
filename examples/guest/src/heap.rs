//! The guest's heap: a fixed block in `.bss`, carved into power-of-two size classes.
//!
//! Blocks of 16 bytes to 4 KiB come from per-class free lists, refilled from a bump pointer;
//! larger requests take whole 4 KiB pages from the bump pointer and go back on a page-run
//! free list (exact fit, no coalescing: the guest allocates few large blocks, all of the
//! same few sizes). Every block is aligned to its class size (page-aligned above 4 KiB), which
//! covers any alignment up to 4 KiB. The guest has one vCPU and its interrupt handlers never
//! allocate, so a `Cell`-based state is enough.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};
use core::ptr::{self, NonNull};

/// Heap size: 2 MiB (the guest's smallest RAM, 4 MiB, holds the image, this and the stack).
const HEAP_SIZE: usize = 2 << 20;
/// Smallest class: 16 bytes (2^4).
const MIN_SHIFT: u32 = 4;
/// Largest class served from free lists: 4 KiB (2^12).
const MAX_SHIFT: u32 = 12;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
const PAGE: usize = 1 << MAX_SHIFT;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

/// A free block: the next free block of its class (or page run, with its length).
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
    pages: usize,
}

/// The allocator state.
pub struct Heap {
    arena: Arena,
    bump: Cell<usize>,
    classes: [Cell<Option<NonNull<FreeBlock>>>; CLASSES],
    runs: Cell<Option<NonNull<FreeBlock>>>,
    in_use: Cell<usize>,
}

// SAFETY: the guest runs on one vCPU and its interrupt handlers never allocate, so the
// allocator's cells are never accessed concurrently.
unsafe impl Sync for Heap {}

impl Heap {
    const fn new() -> Self {
        Self {
            arena: Arena(UnsafeCell::new([0; HEAP_SIZE])),
            bump: Cell::new(0),
            classes: [const { Cell::new(None) }; CLASSES],
            runs: Cell::new(None),
            in_use: Cell::new(0),
        }
    }

    /// Bytes handed out and not yet freed (rounded to the classes).
    pub fn in_use(&self) -> usize {
        self.in_use.get()
    }

    /// `len` bytes aligned to `align` (a power of two up to 4 KiB) from the bump pointer.
    fn carve(&self, len: usize, align: usize) -> *mut u8 {
        let start = self.bump.get().next_multiple_of(align);
        match start.checked_add(len) {
            Some(end) if end <= HEAP_SIZE => {
                self.bump.set(end);
                self.arena.0.get().cast::<u8>().wrapping_add(start)
            }
            _ => ptr::null_mut(),
        }
    }

    fn class(layout: Layout) -> Option<u32> {
        let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
        let shift = size.next_power_of_two().trailing_zeros();
        (shift <= MAX_SHIFT).then_some(shift)
    }
}

// SAFETY: blocks are disjoint pieces of the arena, each handed out at most once until it is
// freed; every block satisfies the layout's size and alignment (class size ≥ both, and blocks
// of a class are aligned to the class size; page runs are page-aligned and `align` ≤ 4 KiB is
// enforced); `dealloc` receives the layout the block was allocated with.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > PAGE {
            return ptr::null_mut();
        }
        match Self::class(layout) {
            Some(shift) => {
                let list = &self.classes[(shift - MIN_SHIFT) as usize];
                let block = match list.get() {
                    Some(free) => {
                        // SAFETY: `free` is a block this allocator put on the list in
                        // `dealloc`; it is unused and holds a `FreeBlock`.
                        list.set(unsafe { free.as_ref().next });
                        free.as_ptr().cast()
                    }
                    None => self.carve(1 << shift, 1 << shift),
                };
                if !block.is_null() {
                    self.in_use.set(self.in_use.get() + (1 << shift));
                }
                block
            }
            None => {
                let pages = layout.size().div_ceil(PAGE);
                // A freed run of exactly this length, else fresh pages.
                let mut prev: Option<NonNull<FreeBlock>> = None;
                let mut cur = self.runs.get();
                while let Some(run) = cur {
                    // SAFETY: runs on the list are freed, page-aligned blocks holding a
                    // `FreeBlock`, written by `dealloc`.
                    let block = unsafe { run.as_ref() };
                    let (next, len) = (block.next, block.pages);
                    if len == pages {
                        match prev {
                            // SAFETY: as above, for the previous run on the list.
                            Some(mut p) => unsafe { p.as_mut().next = next },
                            None => self.runs.set(next),
                        }
                        self.in_use.set(self.in_use.get() + pages * PAGE);
                        return run.as_ptr().cast();
                    }
                    prev = cur;
                    cur = next;
                }
                let block = self.carve(pages * PAGE, PAGE);
                if !block.is_null() {
                    self.in_use.set(self.in_use.get() + pages * PAGE);
                }
                block
            }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(block) = NonNull::new(block.cast::<FreeBlock>()) else {
            return;
        };
        match Self::class(layout) {
            Some(shift) => {
                let list = &self.classes[(shift - MIN_SHIFT) as usize];
                // SAFETY: the caller frees a block of this class it got from `alloc`; it is at
                // least 16 bytes and 16-aligned, enough for a `FreeBlock`, and nobody uses it now.
                unsafe {
                    block.as_ptr().write(FreeBlock {
                        next: list.get(),
                        pages: 0,
                    })
                };
                list.set(Some(block));
                self.in_use.set(self.in_use.get() - (1 << shift));
            }
            None => {
                let pages = layout.size().div_ceil(PAGE);
                // SAFETY: as above, for a page-aligned run of `pages` pages.
                unsafe {
                    block.as_ptr().write(FreeBlock {
                        next: self.runs.get(),
                        pages,
                    })
                };
                self.runs.set(Some(block));
                self.in_use.set(self.in_use.get() - pages * PAGE);
            }
        }
    }
}

/// The global allocator.
#[global_allocator]
pub static HEAP: Heap = Heap::new();
