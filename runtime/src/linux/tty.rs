//! The caller's side of a container's terminal, for foreground runs (`rwasm run -t`, and
//! `rwasm run --bundle` of a `process.terminal` spec without `--console-socket`, as
//! `runc run` does): the caller's terminal in raw mode, the pty master's output copied to
//! our stdout, our stdin copied to the master (with `-i`), and the caller's window size
//! kept on the pty (at start and on every `SIGWINCH`; the kernel then signals the
//! container's foreground process group, tty_ioctl(4)).
//!
//! Meant for a process that exits after the container: the stdin copy blocks in `read`
//! and is left behind when the proxy finishes.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use nix::sys::termios::{self, SetArg, Termios};

/// A running proxy; [`Proxy::finish`] waits for the container's output to end.
pub struct Proxy {
    output: Option<JoinHandle<()>>,
    _raw: RawMode,
}

/// The master whose size follows the caller's window (`SIGWINCH` handler); -1 when none.
static RESIZE_MASTER: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let master = RESIZE_MASTER.load(Ordering::Relaxed);
    if master >= 0 {
        resize(libc::STDIN_FILENO, master);
        resize(libc::STDOUT_FILENO, master);
    }
}

/// Copies the window size of terminal `from` (if it is one) to `master`; async-signal-safe.
fn resize(from: RawFd, master: RawFd) {
    // SAFETY: ioctl(2) with TIOCGWINSZ/TIOCSWINSZ reads or writes one winsize through a
    // pointer to a live local; both are async-signal-safe syscalls.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &raw mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &raw const ws);
        }
    }
}

/// The caller's window size (rows, columns), from stdin or stdout, if either is a terminal:
/// the container's `process.consoleSize` at create.
pub fn window_size() -> Option<(u16, u16)> {
    [libc::STDIN_FILENO, libc::STDOUT_FILENO]
        .into_iter()
        .find_map(|fd| {
            // SAFETY: TIOCGWINSZ writes one winsize through a pointer to a live local.
            let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &raw mut ws) } == 0;
            (ok && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
        })
}

impl Proxy {
    /// Starts proxying `master`: raw mode on our stdin when it is a terminal and `stdin` is
    /// asked for (Docker's `-i`), stdin → master then, master → stdout always.
    pub fn start(master: File, stdin: bool) -> io::Result<Proxy> {
        // From here on, dropping the proxy restores the terminal.
        let mut proxy = Proxy {
            output: None,
            _raw: RawMode::enter(stdin)?,
        };
        RESIZE_MASTER.store(master.as_raw_fd(), Ordering::Relaxed);
        on_winch(libc::SIGWINCH);
        if stdin {
            let mut to = master.try_clone()?;
            std::thread::Builder::new()
                .name("rwasm-tty-in".to_string())
                .spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut from = io::stdin().lock();
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                })?;
        }
        let mut from = master;
        let output = std::thread::Builder::new()
            .name("rwasm-tty-out".to_string())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                let mut out = io::stdout().lock();
                // EIO once every slave fd is closed: the container is done with it.
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
                RESIZE_MASTER.store(-1, Ordering::Relaxed);
            })?;
        proxy.output = Some(output);
        Ok(proxy)
    }

    /// From now on, a `SIGWINCH` (the caller's window changed) resizes the pty instead of
    /// whatever handled it before (the runtime's signal forwarding, which must be set up
    /// first).
    pub fn follow_window(&self) -> io::Result<()> {
        handle_winch()
    }

    /// Waits until the container's terminal output has ended (every slave fd closed),
    /// then restores the caller's terminal mode.
    pub fn finish(mut self) {
        if let Some(output) = self.output.take() {
            let _ = output.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        RESIZE_MASTER.store(-1, Ordering::Relaxed);
    }
}

/// The single-threaded proxy, for a process that cannot start threads (one that joined a
/// container's pid namespace, `exec_in`): puts the caller's terminal in raw mode (with
/// `stdin`), follows its window size, and copies master → stdout and (with `stdin`) stdin
/// → master until `exited` (a pidfd of the process on the terminal) is readable; then what
/// is left is copied for at most `grace`.
pub fn pump(
    master: File,
    stdin: bool,
    exited: BorrowedFd<'_>,
    grace: std::time::Duration,
) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let restore = RawMode::enter(stdin)?;
    RESIZE_MASTER.store(master.as_raw_fd(), Ordering::Relaxed);
    on_winch(libc::SIGWINCH);
    handle_winch()?;
    let mut master = master;
    let mut buf = [0u8; 8192];
    let mut stdin_open = stdin;
    let mut deadline: Option<std::time::Instant> = None;
    let result = loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break Ok(());
                }
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let input = io::stdin();
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(exited, PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => break Err(e.into()),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty())
        };
        let (out_ready, gone, in_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if gone && deadline.is_none() {
            deadline = Some(std::time::Instant::now() + grace);
            stdin_open = false;
        }
        if out_ready {
            match master.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    let mut out = io::stdout().lock();
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break Ok(());
                    }
                }
                // EIO: every slave fd is closed.
                Err(_) => break Ok(()),
            }
        }
        if in_ready {
            match input.lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if master.write_all(&buf[..n]).is_err() {
                        stdin_open = false;
                    }
                }
            }
        }
    };
    RESIZE_MASTER.store(-1, Ordering::Relaxed);
    drop(restore);
    result
}

/// Installs [`on_winch`] as the `SIGWINCH` handler.
fn handle_winch() -> io::Result<()> {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_winch),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only loads an atomic and makes ioctl(2) calls, which are
    // async-signal-safe.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGWINCH, &action) }?;
    Ok(())
}

/// The caller's terminal in raw mode while it lives (when asked for and stdin is one).
pub struct RawMode(Option<Termios>);

impl RawMode {
    /// Put stdin in raw mode if `wanted` and it is a terminal; restored on drop.
    pub fn enter(wanted: bool) -> io::Result<RawMode> {
        if !wanted || !io::stdin().is_terminal() {
            return Ok(RawMode(None));
        }
        let fd = io::stdin();
        let saved = termios::tcgetattr(fd.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(RawMode(Some(saved)))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = self.0.take() {
            // SAFETY: fd 0 stays open for the life of the process.
            let fd = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
            let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &saved);
        }
    }
}
