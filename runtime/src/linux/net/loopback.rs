//! Bringing up loopback in a network namespace rwasm created (netdevice(7),
//! `SIOCSIFFLAGS`): what `--network none` is, and the start of every other mode.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Set `IFF_UP` on `lo` in the calling process's network namespace.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) has no memory-safety preconditions; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = (*src).cast_signed();
    }
    // SAFETY: SIOCGIFFLAGS reads the interface name and writes ifru_flags inside `req`,
    // which is a valid, exclusively borrowed ifreq for the duration of the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS succeeded, so the flags member of the union is the one set.
    unsafe {
        // IFF_UP is 0x1: it fits the short flags field.
        req.ifr_ifru.ifru_flags |= libc::c_short::try_from(libc::IFF_UP).unwrap_or(1);
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
