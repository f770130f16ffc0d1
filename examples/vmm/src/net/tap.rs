//! The TAP uplink (`--tap NAME`): a Linux TAP interface as the switch's external port, so the
//! guests reach the host's network stack (and, through the host's routing or a bridge, the
//! outside) the way a Hyper-V external switch reaches the physical network.
//!
//! The VMM creates the interface (`/dev/net/tun`, `TUNSETIFF` with `IFF_TAP | IFF_NO_PI`:
//! plain Ethernet frames, no packet-information header), sets it up, and runs one thread that
//! moves frames both ways: what the kernel sends goes into the switch on the uplink port, and
//! what the switch forwards to the uplink is written to the interface. The interface is not
//! persistent: it disappears when the VMM closes it. Creating it needs `CAP_NET_ADMIN`.
//!
//! `libc` is used directly for the three calls `std` has no wrapper for: the `TUNSETIFF` and
//! interface-flag ioctls and `poll`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use vswitch_core::PortId;

use super::Hub;

/// Frames moved by the uplink thread.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TapStats {
    /// Frames read from the interface (sent by the host kernel) into the switch.
    pub from_host: u64,
    /// Frames the switch forwarded to the uplink, written to the interface.
    pub to_host: u64,
    /// Frames the interface refused (it was down, or its queue was full).
    pub write_errors: u64,
}

/// A running uplink; [`TapUplink::stop`] ends its thread and removes the interface.
#[derive(Debug)]
pub struct TapUplink {
    name: String,
    port: PortId,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<TapStats>,
}

impl TapUplink {
    /// Creates TAP interface `name`, sets it up and attaches it to `hub` as its uplink.
    ///
    /// # Errors
    /// `/dev/net/tun` cannot be opened, the name is invalid or taken, or the process lacks
    /// `CAP_NET_ADMIN`.
    pub fn open(name: &str, hub: Arc<Hub>) -> io::Result<Self> {
        let mut request = ifreq(name)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `request` is (a valid name,
        // NUL-terminated, and the flags); the fd is the open tun device.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF as _, &mut request) } < 0 {
            return Err(io::Error::last_os_error());
        }
        set_up(name)?;
        let port = hub
            .add_uplink()
            .ok_or_else(|| io::Error::other("the switch refused the uplink port"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("tap-{name}"))
                .spawn(move || pump(file, &hub, port, &stop))?
        };
        Ok(Self {
            name: name.to_string(),
            port,
            stop,
            thread,
        })
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The uplink's switch port.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// Stops the thread (the interface goes away with its file); returns what it moved.
    pub fn stop(self) -> TapStats {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or_default()
    }
}

/// An `ifreq` naming interface `name`.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == 0 || b == b'/')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name (1 to 15 bytes, no '/')"),
        ));
    }
    // SAFETY: `ifreq` is plain data (a name array and a union of integers, addresses and a
    // pointer); all zeros is a valid value of each.
    let mut request: libc::ifreq = unsafe { core::mem::zeroed() };
    for (dst, &src) in request.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(request)
}

/// Sets interface `name` up (`IFF_UP`), as `ip link set NAME up` does.
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: a plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new socket this function owns; `OwnedFd` closes it.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut request = ifreq(name)?;
    // SAFETY: SIOCGIFFLAGS fills the flags of the `ifreq` it is given, which names the
    // interface; the socket is open.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just initialized the flags member of the union.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the `ifreq` (name and flags) it is given.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The uplink thread: frames both ways until `stop`, waking at least every 5 ms to deliver
/// what the switch queued for the uplink.
fn pump(mut tap: File, hub: &Hub, port: PortId, stop: &AtomicBool) -> TapStats {
    let mut stats = TapStats::default();
    let mut frame = vec![0u8; 65_536];
    while !stop.load(Ordering::Acquire) {
        let mut fd = libc::pollfd {
            fd: tap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid `pollfd` for the open interface; a 5 ms timeout.
        unsafe { libc::poll(&mut fd, 1, 5) };
        loop {
            match tap.read(&mut frame) {
                Ok(0) => break,
                Ok(n) => {
                    stats.from_host += 1;
                    hub.send(port, &frame[..n]);
                }
                // WouldBlock: nothing more; anything else: try again after the next poll.
                Err(_) => break,
            }
        }
        while let Some(out) = hub.receive(port) {
            // A TAP write takes one whole frame or fails.
            match tap.write(&out) {
                Ok(n) if n == out.len() => stats.to_host += 1,
                _ => stats.write_errors += 1,
            }
        }
    }
    stats
}
