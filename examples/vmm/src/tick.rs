//! The service tick: a periodic `SIGALRM` that interrupts `KVM_RUN`.
//!
//! While the guest halts waiting for an interrupt, the vCPU sleeps inside `KVM_RUN` (the
//! in-kernel irqchip handles `hlt`), so nothing would run the host's timers: heartbeats, time
//! samples, the demo script. An interval timer delivers `SIGALRM` to the process; its handler
//! does nothing, but because it is installed without `SA_RESTART`, `KVM_RUN` returns `EINTR`
//! and the exit loop gets to run the services. (This VMM has one thread, so the signal always
//! lands on the vCPU thread.)
//!
//! `libc` is used directly: it is already in the tree through `kvm-ioctls`, and signal
//! handlers and interval timers are what it is for.
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

/// The running timer; dropping it stops the timer.
#[derive(Debug)]
pub struct Tick(());

extern "C" fn on_alarm(_: libc::c_int) {}

impl Tick {
    /// Starts delivering `SIGALRM` every `period`.
    pub fn start(period: Duration) -> io::Result<Self> {
        // SAFETY: `sigaction` is plain data; zeroed is a valid starting value (empty mask, no
        // flags), and the handler is an `extern "C"` function that touches nothing, so it is
        // async-signal-safe.
        let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
        action.sa_sigaction = on_alarm as *const () as libc::sighandler_t;
        // SAFETY: installs a valid handler for SIGALRM; the old action is not needed.
        if unsafe { libc::sigaction(libc::SIGALRM, &action, core::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        set_timer(period)?;
        Ok(Self(()))
    }
}

/// Wakes the vCPU threads of a multi-VM run: every `period`, a SIGALRM to each thread whose
/// flag says its VM is running (so its `KVM_RUN` returns and the VM services VMBus), until
/// `done` says all have finished. A thread still setting its VM up is left alone: the handler
/// has no `SA_RESTART`, so the signal would make a setup ioctl fail with `EINTR`.
pub fn kick_threads(
    threads: &[(libc::pthread_t, &std::sync::atomic::AtomicBool)],
    period: Duration,
    done: impl Fn() -> bool,
) -> io::Result<()> {
    // SAFETY: `sigaction` is plain data; zeroed is a valid starting value (empty mask, no
    // flags).
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = on_alarm as *const () as libc::sighandler_t;
    // SAFETY: installs a handler that does nothing (async-signal-safe); `action` is a valid,
    // zeroed sigaction with only the handler set.
    if unsafe { libc::sigaction(libc::SIGALRM, &action, core::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    while !done() {
        std::thread::sleep(period);
        for &(t, running) in threads {
            if !running.load(std::sync::atomic::Ordering::Acquire) {
                continue;
            }
            // SAFETY: `t` is a live thread of this process (its JoinHandle is held by the
            // caller until `done`); a failed kill of an exiting thread is harmless.
            unsafe { libc::pthread_kill(t, libc::SIGALRM) };
        }
    }
    Ok(())
}

impl Drop for Tick {
    fn drop(&mut self) {
        // Stopping can only fail for invalid arguments, which zero is not.
        let _ = set_timer(Duration::ZERO);
    }
}

fn set_timer(period: Duration) -> io::Result<()> {
    let interval = libc::timeval {
        tv_sec: period.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(period.subsec_micros()),
    };
    let value = libc::itimerval {
        it_interval: interval,
        it_value: interval,
    };
    // SAFETY: `value` is a valid `itimerval`; the old value is not requested.
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &value, core::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
