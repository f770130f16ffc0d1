//! The two system calls apply needs that `std` does not offer: setting a symlink's own times
//! and creating device nodes, FIFOs and sockets.

// Calls into libc need `unsafe`; each call says why it is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Sets access and modification times of `path` itself (not what a symlink points at).
pub fn set_times(path: &Path, atime: (i64, u32), mtime: (i64, u32)) -> io::Result<()> {
    let c = cpath(path)?;
    let ts = [
        libc::timespec {
            tv_sec: atime.0 as libc::time_t,
            tv_nsec: atime.1 as _,
        },
        libc::timespec {
            tv_sec: mtime.0 as libc::time_t,
            tv_nsec: mtime.1 as _,
        },
    ];
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `ts` points at two
    // initialised timespecs, as utimensat requires.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
std::thread_local! {
    /// Tests set this to make [`mknod`] fail with `EPERM` on this thread, as it does for an
    /// unprivileged user (the tests run as root in CI).
    pub static FAIL_MKNOD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Creates a device node, FIFO or socket with `mode` (type and permission bits) and `rdev`.
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    #[cfg(test)]
    if FAIL_MKNOD.get() {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; mknod reads nothing else.
    let r = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
