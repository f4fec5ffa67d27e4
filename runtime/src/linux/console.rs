//! The container's terminal (`process.terminal: true`): a pseudo-terminal made inside the
//! container, whose master end goes to the caller's console socket and whose slave end
//! becomes the user process's stdio and controlling terminal.
//!
//! Follows runc's `--console-socket` protocol (runc `docs/terminals.md`): the caller
//! listens on a unix socket; the runtime connects to it before the container is created;
//! init, once the container's `/dev` is in place (after pivot_root), opens `/dev/ptmx` —
//! the container's own devpts instance, so the slave is `/dev/pts/N` inside — and sends the
//! master fd over the socket as `SCM_RIGHTS`, with the slave's path as the message bytes.
//! `process.consoleSize` (rows, columns) is set on the terminal before anything runs on it.

use std::fs::File;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

/// Failures to set up the container's terminal.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Opening `/dev/ptmx`, unlocking the pty, or opening its slave failed.
    #[error("process.terminal: cannot open a pseudo-terminal in the container ({what})")]
    Pty {
        /// The step that failed.
        what: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Sending the master over the console socket failed (the caller went away).
    #[error("process.terminal: cannot send the terminal over the console socket")]
    Send(#[source] nix::Error),
    /// `setsid`, `TIOCSCTTY` or `dup2` onto stdio failed.
    #[error("process.terminal: cannot make the terminal the process's stdio ({what})")]
    Stdio {
        /// The step that failed.
        what: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
}

fn pty(what: &'static str) -> impl FnOnce(nix::Error) -> ConsoleError {
    move |source| ConsoleError::Pty { what, source }
}

fn stdio(what: &'static str) -> impl FnOnce(nix::Error) -> ConsoleError {
    move |source| ConsoleError::Stdio { what, source }
}

/// The size of the terminal in characters (`process.consoleSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
}

/// In init, after pivot_root: makes a pty from the container's `/dev/ptmx`, sets its
/// `size`, sends the master over `socket` (then closes both), makes init a session leader
/// with the slave as its controlling terminal, and puts the slave on fds 0, 1 and 2.
pub fn setup(socket: OwnedFd, size: Option<Size>) -> Result<(), ConsoleError> {
    let (master, slave) = open_pty(size)?;
    let name = slave_name(&master);
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(ConsoleError::Send)?;
    drop(master);
    drop(socket);
    controlling_stdio(slave)
}

/// A new pty from `/dev/ptmx` as this process resolves it (the container's, once in its
/// mount namespace): (master, slave), both close-on-exec, the slave sized to `size`.
pub fn open_pty(size: Option<Size>) -> Result<(OwnedFd, OwnedFd), ConsoleError> {
    let master = open_master()?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through a pointer to a live local.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &raw const unlock) } < 0 {
        return Err(pty("unlock")(nix::Error::last()));
    }
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd or -1.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(pty("open the slave")(nix::Error::last()));
    }
    // SAFETY: `slave` was just returned by the kernel and is owned by nothing else.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some(size) = size {
        let ws = libc::winsize {
            ws_row: size.height,
            ws_col: size.width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize through a pointer to a live local.
        if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) } < 0 {
            return Err(pty("set its size")(nix::Error::last()));
        }
    }
    Ok((master, slave))
}

/// Makes the calling process a session leader with `slave` as its controlling terminal
/// and its fds 0, 1 and 2 (then closes `slave` itself).
pub fn controlling_stdio(slave: OwnedFd) -> Result<(), ConsoleError> {
    nix::unistd::setsid().map_err(stdio("setsid"))?;
    // SAFETY: TIOCSCTTY takes an int by value; the caller is now a session leader without one.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(stdio("set the controlling terminal")(nix::Error::last()));
    }
    for fd in 0..=2 {
        dup_onto(&slave, fd)?;
    }
    Ok(())
}

fn open_master() -> Result<OwnedFd, ConsoleError> {
    let ptmx = nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(pty("open /dev/ptmx"))?;
    Ok(ptmx)
}

/// `/dev/pts/N` of the master's slave (the message bytes of the console protocol), or
/// `/dev/ptmx` when the kernel does not say.
fn slave_name(master: &OwnedFd) -> String {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through a pointer to a live local.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &raw mut n) } < 0 {
        return "/dev/ptmx".to_string();
    }
    format!("/dev/pts/{n}")
}

fn dup_onto(slave: &OwnedFd, fd: RawFd) -> Result<(), ConsoleError> {
    // SAFETY: dup2 onto a stdio number only replaces that descriptor of this process.
    if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
        return Err(stdio("dup2")(nix::Error::last()));
    }
    Ok(())
}

/// Receives the terminal master sent by [`setup`] on the caller's end of a console
/// socket: the fd and the slave's path. For callers that are their own console socket
/// (the foreground `rwasm run -t`) and for tests.
pub fn receive(socket: &impl AsRawFd) -> std::io::Result<(File, String)> {
    let mut buf = [0u8; 256];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut master = None;
    let len = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        for cmsg in msg.cmsgs()? {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel just installed `fd` in this process for us.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    master.get_or_insert(owned);
                }
            }
        }
        msg.bytes
    };
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    let master = master.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no terminal fd in the console socket message",
        )
    })?;
    Ok((File::from(master), name))
}
