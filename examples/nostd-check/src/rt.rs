//! The minimum runtime a freestanding Linux x86-64 executable needs: a panic handler, a bump
//! allocator for crates that use `alloc`, and `write`/`exit_group` system calls.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Size of the static heap the bump allocator hands out.
const HEAP_SIZE: usize = 16 << 20;

/// A bump allocator over a static array: allocation moves a cursor, deallocation is a no-op.
/// Enough for short checks; it never reuses memory.
struct Bump {
    next: AtomicUsize,
}

#[repr(C, align(4096))]
struct Heap([u8; HEAP_SIZE]);

static mut HEAP: Heap = Heap([0; HEAP_SIZE]);

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    next: AtomicUsize::new(0),
};

// SAFETY: `alloc` returns either null or a block inside `HEAP` that no other allocation
// overlaps (the cursor only moves forward, atomically), aligned as `layout` asks.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = core::ptr::addr_of_mut!(HEAP) as usize;
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + cur).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if end > HEAP_SIZE {
                return core::ptr::null_mut();
            }
            match self
                .next
                .compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return (base + start) as *mut u8,
                Err(seen) => cur = seen,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

/// Writes bytes to standard output (best effort).
pub fn write_stdout(bytes: &[u8]) {
    // SAFETY: `write(1, ptr, len)` only reads `len` bytes from `ptr`, which `bytes` guarantees
    // are valid; the syscall clobbers rcx and r11, which are declared.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") 1usize => _,
            in("rdi") 1usize,
            in("rsi") bytes.as_ptr(),
            in("rdx") bytes.len(),
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, readonly),
        );
    }
}

/// Ends the process with `status`.
pub fn exit(status: i32) -> ! {
    // SAFETY: `exit_group` never returns and touches no memory of ours.
    unsafe {
        core::arch::asm!(
            "syscall",
            in("rax") 231usize,
            in("rdi") status as isize,
            options(noreturn, nostack),
        );
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    write_stdout(b"panic\n");
    exit(101)
}

/// The unwinding personality routine that the prebuilt `core`/`alloc` unwind tables name.
///
/// The host target's standard libraries are built for unwinding, so their `.eh_frame` entries
/// refer to `rust_eh_personality`, which only `std` defines. This binary is built with
/// `panic = "abort"`: nothing unwinds and nothing calls this; it only satisfies the linker.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// The unwinder's resume entry, named by the landing pads of the prebuilt `alloc`
/// (`alloc::fmt::format`, which `roxmltree` uses through `wim-image`'s XML parser).
///
/// As with `rust_eh_personality`: with `panic = "abort"` nothing unwinds, so no landing pad
/// runs and this is never called; it only satisfies the linker.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    exit(102)
}
