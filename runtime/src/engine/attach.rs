//! Attaching to a container's terminal through its monitor (conmon's attach socket): the
//! monitor of a container with a terminal (`run -t`) holds the pty master and listens on
//! `<container dir>/attach.sock`; every attached client gets the terminal's output, and
//! what a client sends is typed on the terminal. Clients come and go (`run -it` then
//! ctrl-p ctrl-q, `rwasm attach` later) while the container runs and its output goes to
//! the log either way.
//!
//! Wire format, client → monitor: frames of `[kind u8][len u16 big-endian][payload]`;
//! kind [`FRAME_INPUT`] carries typed bytes, kind [`FRAME_RESIZE`] the window size as
//! rows and columns (u16 big-endian each). Monitor → client: the raw terminal output;
//! end of stream when the container's terminal closed (its processes are gone).

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::logs::LogWriter;

/// The attach socket's file name in the container's directory.
pub const SOCKET: &str = "attach.sock";
/// Frame kind: bytes typed on the terminal.
pub const FRAME_INPUT: u8 = 0;
/// Frame kind: the client's window size (rows, columns).
pub const FRAME_RESIZE: u8 = 1;

/// Docker's default detach keys, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// A failure to serve or to attach.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// Binding, connecting to or accepting on the attach socket failed.
    #[error("cannot {what} the attach socket {path}")]
    Socket {
        /// The operation: `bind`, `connect to`, `accept on`.
        what: &'static str,
        /// The socket's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `--detach-keys` is not a list of `ctrl-X` or single characters.
    #[error("invalid --detach-keys {value:?}: {reason}")]
    BadDetachKeys {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The caller's terminal could not be put in raw mode, or copying failed.
    #[error("attach: cannot copy between the terminal and the container")]
    Copy(#[source] io::Error),
}

fn sock_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AttachError {
    let path = path.to_path_buf();
    move |source| AttachError::Socket { what, path, source }
}

/// Parse Docker's `--detach-keys` (`ctrl-p,ctrl-q`: comma-separated `ctrl-X` with X one of
/// `a-z @ [ \ ] ^ _`, or single characters) into the byte sequence to watch for.
pub fn parse_detach_keys(value: &str) -> Result<Vec<u8>, AttachError> {
    let bad = |reason| AttachError::BadDetachKeys {
        value: value.to_string(),
        reason,
    };
    let mut keys = Vec::new();
    for part in value.split(',') {
        let b = part.as_bytes();
        match b {
            [c] => keys.push(*c),
            [b'c', b't', b'r', b'l', b'-', c] => {
                let c = c.to_ascii_lowercase();
                keys.push(match c {
                    b'a'..=b'z' => c - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(bad("ctrl- takes a letter or one of @[\\]^_")),
                });
            }
            _ => {
                return Err(bad(
                    "expected ctrl-X or a single character, comma-separated",
                ));
            }
        }
    }
    if keys.is_empty() {
        return Err(bad("no keys"));
    }
    Ok(keys)
}

/// The monitor's side: clients attached to one container's terminal.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    clients: Arc<Mutex<Vec<UnixStream>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Listen on `dir/attach.sock` (a stale socket from an earlier run is replaced).
    pub fn bind(dir: &Path) -> Result<Server, AttachError> {
        let path = dir.join(SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener =
            in_dir(dir, |short| UnixListener::bind(short)).map_err(sock_err("bind", &path))?;
        Ok(Server {
            listener,
            path,
            clients: Arc::default(),
            stop: Arc::default(),
        })
    }

    /// Wait at most `timeout` for a first client (`run -it`, `start -a`: the caller
    /// connects before the container starts, so it sees the first prompt).
    pub fn accept_first(&self, master: &File, timeout: Duration) -> Result<(), AttachError> {
        let deadline = Instant::now() + timeout;
        self.listener
            .set_nonblocking(true)
            .map_err(sock_err("accept on", &self.path))?;
        loop {
            match self.listener.accept() {
                Ok((mut s, _)) => {
                    // Its first frame is its window size ([`send_window_size`]): on the
                    // terminal before the container's first process asks for it.
                    let mut payload = [0u8; 4];
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    if let Ok((kind @ FRAME_RESIZE, 4)) = read_frame(&mut s, &mut payload) {
                        let mut m = master
                            .try_clone()
                            .map_err(sock_err("accept on", &self.path))?;
                        apply(&mut m, kind, &payload);
                    }
                    let _ = s.set_read_timeout(None);
                    return self.add(s, master);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(sock_err("accept on", &self.path)(e)),
            }
        }
    }

    fn add(&self, s: UnixStream, master: &File) -> Result<(), AttachError> {
        s.set_nonblocking(false)
            .map_err(sock_err("accept on", &self.path))?;
        let out = s.try_clone().map_err(sock_err("accept on", &self.path))?;
        let master = master
            .try_clone()
            .map_err(sock_err("accept on", &self.path))?;
        std::thread::spawn(move || client_input(s, master));
        self.clients.lock().expect("clients lock").push(out);
        Ok(())
    }

    /// Serve until the terminal closes: accept clients in the background, copy the
    /// terminal's output to the log (as stdout) and to every client; at the end, end
    /// every client's output (they see end of file), remove the socket, and return the
    /// clients' streams for [`linger`].
    pub fn serve(self, master: File, log: &LogWriter) -> Vec<UnixStream> {
        let _ = self.listener.set_nonblocking(true);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !self.stop.load(Ordering::Relaxed) {
                    match self.listener.accept() {
                        Ok((c, _)) => {
                            let _ = self.add(c, &master);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
            let mut buf = [0u8; 8192];
            let mut from = &master;
            // EIO once every slave fd is closed: the container is done with it.
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Err(e) = log.write("stdout", &buf[..n]) {
                    tracing::warn!("{}", crate::error_chain(&e));
                }
                let mut clients = self.clients.lock().expect("clients lock");
                clients.retain_mut(|c| c.write_all(&buf[..n]).is_ok());
            }
            self.stop.store(true, Ordering::Relaxed);
        });
        let clients: Vec<UnixStream> = self
            .clients
            .lock()
            .expect("clients lock")
            .drain(..)
            .collect();
        for c in &clients {
            let _ = c.shutdown(std::net::Shutdown::Write);
        }
        let _ = std::fs::remove_file(&self.path);
        clients
    }
}

/// Wait (at most `timeout` in all) until every client closed its end: an attached client
/// reads the exit code from the container's record once its output ended, so the monitor
/// keeps the record (`--rm`) until then.
pub fn linger(clients: Vec<UnixStream>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    for mut c in clients {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || c.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// Reads one frame from a client: `(kind, payload length)`, the payload in `payload`.
fn read_frame(s: &mut UnixStream, payload: &mut [u8]) -> io::Result<(u8, usize)> {
    let mut head = [0u8; 3];
    s.read_exact(&mut head)?;
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    s.read_exact(&mut payload[..len])?;
    Ok((head[0], len))
}

/// Applies one client frame to the terminal; false when the frame is malformed or the
/// terminal is gone.
fn apply(master: &mut File, kind: u8, payload: &[u8]) -> bool {
    match (kind, payload) {
        (FRAME_INPUT, bytes) => master.write_all(bytes).is_ok(),
        (FRAME_RESIZE, [r0, r1, c0, c1]) => {
            let ws = libc::winsize {
                ws_row: u16::from_be_bytes([*r0, *r1]),
                ws_col: u16::from_be_bytes([*c0, *c1]),
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            if ws.ws_row > 0 {
                // SAFETY: TIOCSWINSZ reads one winsize through a pointer to a live local.
                unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) };
            }
            true
        }
        _ => false,
    }
}

/// One client's frames, applied to the terminal until the client goes away.
fn client_input(mut s: UnixStream, mut master: File) {
    let mut payload = vec![0u8; usize::from(u16::MAX)];
    while let Ok((kind, len)) = read_frame(&mut s, &mut payload) {
        if !apply(&mut master, kind, &payload[..len]) {
            break;
        }
    }
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container's terminal closed (it exited).
    Closed,
    /// The caller typed the detach keys; the container runs on.
    Detached,
}

/// What the client does.
pub struct Client<'a> {
    /// Copy our stdin to the terminal (`-i`; `attach` without `--no-stdin`).
    pub stdin: bool,
    /// The keys that detach (empty: none).
    pub detach_keys: &'a [u8],
}

/// Set by the client's `SIGWINCH` handler; the copy loop sends the new size.
static WINCH: AtomicBool = AtomicBool::new(false);

extern "C" fn on_winch(_: libc::c_int) {
    WINCH.store(true, Ordering::Relaxed);
}

/// Connect to the attach socket of the container in `dir`.
pub fn connect(dir: &Path) -> Result<UnixStream, AttachError> {
    let path = dir.join(SOCKET);
    in_dir(dir, |short| UnixStream::connect(short)).map_err(sock_err("connect to", &path))
}

/// Calls `f` with a short name of `dir/attach.sock`: a socket path must fit in
/// `sun_path` (108 bytes, unix(7)) and container directories are longer, so the name goes
/// through an `O_PATH` fd of the directory (`/proc/self/fd/N/attach.sock`, as conmon does).
fn in_dir<T>(dir: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    f(Path::new(&format!(
        "/proc/self/fd/{}/{SOCKET}",
        fd.as_raw_fd()
    )))
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("payloads are at most 8 KiB");
    let mut f = vec![kind];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Sends the caller's window size (rows 0 when neither stdin nor stdout is a terminal).
/// A client of a container waiting for it sends this first.
pub fn send_window_size(s: &mut UnixStream) -> io::Result<()> {
    let (rows, cols) = crate::linux::tty::window_size().unwrap_or((0, 0));
    let mut p = rows.to_be_bytes().to_vec();
    p.extend_from_slice(&cols.to_be_bytes());
    s.write_all(&frame(FRAME_RESIZE, &p))
}

impl Client<'_> {
    /// Attached over `s`: the caller's terminal in raw mode (with stdin), its window size
    /// sent at once and on every `SIGWINCH`, output to our stdout, stdin to the terminal
    /// until the detach keys are typed or the container's terminal closes.
    pub fn run(&self, s: &mut UnixStream) -> Result<Ended, AttachError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let _raw = crate::linux::tty::RawMode::enter(self.stdin).map_err(AttachError::Copy)?;
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_winch),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGWINCH, &action) }
            .map_err(|e| AttachError::Copy(e.into()))?;
        send_window_size(s).map_err(AttachError::Copy)?;
        let mut stdin_open = self.stdin;
        let mut matched = 0usize;
        let mut buf = [0u8; 8192];
        loop {
            if WINCH.swap(false, Ordering::Relaxed) {
                let _ = send_window_size(s);
            }
            let input = io::stdin();
            let mut fds = vec![PollFd::new(s.as_fd(), PollFlags::POLLIN)];
            if stdin_open {
                fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(AttachError::Copy(e.into())),
            }
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(PollFd::revents)
                    .is_some_and(|r| !r.is_empty())
            };
            let (out_ready, in_ready) = (ready(0), ready(1));
            drop(fds);
            if out_ready {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return Ok(Ended::Closed),
                    Ok(n) => {
                        let mut out = io::stdout().lock();
                        out.write_all(&buf[..n])
                            .and_then(|()| out.flush())
                            .map_err(AttachError::Copy)?;
                    }
                }
            }
            if in_ready {
                let n = match input.lock().read(&mut buf) {
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        continue;
                    }
                    Ok(n) => n,
                };
                let mut send = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if !self.detach_keys.is_empty() && b == self.detach_keys[matched] {
                        matched += 1;
                        if matched == self.detach_keys.len() {
                            return Ok(Ended::Detached);
                        }
                        continue;
                    }
                    // Docker: a broken sequence is typed as it was.
                    send.extend_from_slice(&self.detach_keys[..matched]);
                    matched = 0;
                    if self.detach_keys.first() == Some(&b) {
                        matched = 1;
                        continue;
                    }
                    send.push(b);
                }
                if !send.is_empty() && s.write_all(&frame(FRAME_INPUT, &send)).is_err() {
                    stdin_open = false;
                }
            }
        }
    }
}

/// Whether our stdin is a terminal (raw mode and detach keys apply only then).
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// Whether the container in `dir` (its bundle) runs on a terminal (`process.terminal` in
/// its config.json); false when the file cannot be read.
pub fn has_terminal(dir: &Path) -> bool {
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.pointer("/process/terminal")
                .and_then(serde_json::Value::as_bool)
        })
        .unwrap_or(false)
}
