//! Attaching to a container through its monitor (conmon's attach socket): the monitor of
//! a detached container listens on `<container dir>/attach.sock`; every attached client
//! gets the container's output, and what a client sends goes to the container's stdin:
//! the terminal's (`-t`), or the stdin pipe the monitor holds for a container created with
//! `-i` and no `-t`. Clients come and go (`run -it` then ctrl-p ctrl-q, `rwasm attach`
//! later) while the container runs, and its output goes to the log either way.
//!
//! Wire format, both ways: frames of `[kind u8][len u16 big-endian][payload]`.
//! Client → monitor: [`FRAME_INPUT`] bytes for the container's stdin, [`FRAME_RESIZE`] the
//! window size as rows and columns (u16 big-endian each; ignored without a terminal),
//! [`FRAME_CLOSE_STDIN`] (empty) the client's stdin ended, which closes the container's
//! stdin pipe (Docker's `-i` with end of file; a terminal ignores it).
//! Monitor → client: [`FRAME_STDOUT`] and [`FRAME_STDERR`] output (a terminal's is all
//! stdout), then one [`FRAME_EXIT`] with the exit code (i32 big-endian) once the container
//! exited and the code is recorded, before `--rm` removes the record; then end of stream.

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
/// Client frame kind: bytes for the container's stdin.
pub const FRAME_INPUT: u8 = 0;
/// Client frame kind: the client's window size (rows, columns).
pub const FRAME_RESIZE: u8 = 1;
/// Client frame kind: the client's stdin ended; close the container's stdin pipe.
pub const FRAME_CLOSE_STDIN: u8 = 2;
/// Monitor frame kind: bytes the container wrote to its stdout (or its terminal).
pub const FRAME_STDOUT: u8 = 1;
/// Monitor frame kind: bytes the container wrote to its stderr.
pub const FRAME_STDERR: u8 = 2;
/// Monitor frame kind: the container exited with this code (i32 big-endian, 128+N for
/// signal N); the last frame.
pub const FRAME_EXIT: u8 = 3;
/// Most payload bytes in one frame.
const MAX_PAYLOAD: usize = u16::MAX as usize;
/// How long the monitor waits for a client to take the exit frame.
const EXIT_SEND_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Where attached clients' input goes.
#[derive(Clone)]
pub enum Input {
    /// The pty master of a container with a terminal: input is typed on it, window sizes
    /// are set on it.
    Terminal(Arc<File>),
    /// The write end of the container's stdin pipe (`-i` without `-t`); `None` once a
    /// client's end of file closed it.
    Pipe(Arc<Mutex<Option<File>>>),
    /// The container's stdin is `/dev/null` (no `-i`): input is dropped.
    Nothing,
}

impl Input {
    /// The stdin pipe's write end, held for the clients.
    pub fn pipe(w: File) -> Input {
        Input::Pipe(Arc::new(Mutex::new(Some(w))))
    }

    /// Applies one client frame; false when the frame is malformed or the terminal gone.
    fn apply(&self, kind: u8, payload: &[u8]) -> bool {
        match (self, kind, payload) {
            (Input::Terminal(m), FRAME_INPUT, bytes) => (&**m).write_all(bytes).is_ok(),
            (Input::Terminal(m), FRAME_RESIZE, [r0, r1, c0, c1]) => {
                let ws = libc::winsize {
                    ws_row: u16::from_be_bytes([*r0, *r1]),
                    ws_col: u16::from_be_bytes([*c0, *c1]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                if ws.ws_row > 0 {
                    // SAFETY: TIOCSWINSZ reads one winsize through a pointer to a live local.
                    unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &raw const ws) };
                }
                true
            }
            (Input::Pipe(w), FRAME_INPUT, bytes) => {
                let mut w = w.lock().expect("stdin lock");
                // The container closed its stdin (EPIPE): later input is dropped.
                if w.as_mut().is_some_and(|f| f.write_all(bytes).is_err()) {
                    *w = None;
                }
                true
            }
            (Input::Pipe(w), FRAME_CLOSE_STDIN, []) => {
                w.lock().expect("stdin lock").take();
                true
            }
            (_, FRAME_INPUT | FRAME_CLOSE_STDIN, _) | (_, FRAME_RESIZE, [_, _, _, _]) => true,
            _ => false,
        }
    }
}

/// The output side of the attached clients: every frame goes to each of them, whole.
#[derive(Clone, Default)]
pub struct Clients(Arc<Mutex<Vec<UnixStream>>>);

impl Clients {
    /// Send `bytes` to every client as frames of `kind` ([`FRAME_STDOUT`],
    /// [`FRAME_STDERR`]); a client that cannot take them is dropped.
    pub fn send(&self, kind: u8, bytes: &[u8]) {
        let mut clients = self.0.lock().expect("clients lock");
        if clients.is_empty() {
            return;
        }
        for chunk in bytes.chunks(MAX_PAYLOAD) {
            let f = frame(kind, chunk);
            clients.retain_mut(|c| c.write_all(&f).is_ok());
        }
    }

    /// End every client: the exit frame with `code` (none when the code is unknown), then
    /// end of stream. Returns their streams for [`linger`].
    pub fn finish(&self, code: Option<i32>) -> Vec<UnixStream> {
        let clients: Vec<UnixStream> = self.0.lock().expect("clients lock").drain(..).collect();
        for mut c in clients.iter() {
            if let Some(code) = code {
                let _ = c.set_write_timeout(Some(EXIT_SEND_TIMEOUT));
                let _ = c.write_all(&frame(FRAME_EXIT, &code.to_be_bytes()));
            }
            let _ = c.shutdown(std::net::Shutdown::Write);
        }
        clients
    }
}

/// The monitor's side: the attach socket of one run of a container, and its clients.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    clients: Clients,
    input: Input,
    stop: AtomicBool,
}

impl Server {
    /// Listen on `dir/attach.sock` (a stale socket from an earlier run is replaced), the
    /// clients' input going to `input`.
    pub fn bind(dir: &Path, input: Input) -> Result<Server, AttachError> {
        let path = dir.join(SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener =
            in_dir(dir, |short| UnixListener::bind(short)).map_err(sock_err("bind", &path))?;
        listener
            .set_nonblocking(true)
            .map_err(sock_err("bind", &path))?;
        Ok(Server {
            listener,
            path,
            clients: Clients::default(),
            input,
            stop: AtomicBool::new(false),
        })
    }

    /// The clients' output side (the log pumps send on it).
    pub fn clients(&self) -> Clients {
        self.clients.clone()
    }

    /// Wait at most `timeout` for a first client (`run -it`, `start -a`: the caller
    /// connects before the container starts, so it sees all the output).
    pub fn accept_first(&self, timeout: Duration) -> Result<(), AttachError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((mut s, _)) => {
                    // Its first frame is its window size ([`send_window_size`]): on the
                    // terminal before the container's first process asks for it.
                    let mut payload = [0u8; 4];
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    if let Ok((kind @ FRAME_RESIZE, 4)) = read_frame(&mut s, &mut payload) {
                        self.input.apply(kind, &payload);
                    }
                    let _ = s.set_read_timeout(None);
                    return self.add(s);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(sock_err("accept on", &self.path)(e)),
            }
        }
    }

    fn add(&self, s: UnixStream) -> Result<(), AttachError> {
        s.set_nonblocking(false)
            .map_err(sock_err("accept on", &self.path))?;
        let out = s.try_clone().map_err(sock_err("accept on", &self.path))?;
        let input = self.input.clone();
        std::thread::spawn(move || client_input(s, &input));
        self.clients.0.lock().expect("clients lock").push(out);
        Ok(())
    }

    /// Accept clients until [`Server::close`]; run on a thread of its own. It blocks in
    /// accept(2) (no polling: a monitor per container stays idle).
    pub fn accept_until_closed(&self) {
        let _ = self.listener.set_nonblocking(false);
        while !self.stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((c, _)) => {
                    let _ = self.add(c);
                }
                Err(_) if self.stop.load(Ordering::Relaxed) => break,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Stop accepting and remove the socket (the container is gone); the clients stay
    /// until [`Clients::finish`].
    pub fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes a thread blocked in accept(2) on it (EINVAL), as Linux does for a
        // listening socket that is shut down.
        let _ =
            nix::sys::socket::shutdown(self.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copy a terminal's output to the log (as stdout) and to the clients until the terminal
/// closes (EIO once every slave fd is closed: the container is done with it).
pub fn pump_terminal(master: &File, log: &LogWriter, clients: &Clients) {
    let mut buf = [0u8; 8192];
    let mut from = master;
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Err(e) = log.write("stdout", &buf[..n]) {
            tracing::warn!("{}", crate::error_chain(&e));
        }
        clients.send(FRAME_STDOUT, &buf[..n]);
    }
}

/// Wait (at most `timeout` in all) until every client closed its end: a client whose
/// stream ended without an exit frame reads the exit code from the container's record,
/// so the monitor keeps the record (`--rm`) until then.
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

/// Reads one frame: `(kind, payload length)`, the payload in `payload` (at least
/// [`MAX_PAYLOAD`] bytes, or as long as the frames expected).
fn read_frame(s: &mut impl Read, payload: &mut [u8]) -> io::Result<(u8, usize)> {
    let mut head = [0u8; 3];
    s.read_exact(&mut head)?;
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    let buf = payload
        .get_mut(..len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too long"))?;
    s.read_exact(buf)?;
    Ok((head[0], len))
}

/// One client's frames, applied to the container's input until the client goes away.
fn client_input(mut s: UnixStream, input: &Input) {
    let mut payload = vec![0u8; MAX_PAYLOAD];
    while let Ok((kind, len)) = read_frame(&mut s, &mut payload) {
        if !input.apply(kind, &payload[..len]) {
            break;
        }
    }
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container exited with this code (sent by its monitor).
    Exited(i32),
    /// The stream ended without an exit code (a monitor that was killed, or an older
    /// one): the record has it, if anyone does.
    Closed,
    /// The caller typed the detach keys; the container runs on.
    Detached,
}

/// What the client does.
pub struct Client<'a> {
    /// Copy our stdin to the container (`-i`; `attach` without `--no-stdin`).
    pub stdin: bool,
    /// The container has a terminal: our terminal goes in raw mode (with `stdin`) and
    /// its window size follows ours.
    pub terminal: bool,
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
    let len = u16::try_from(payload.len()).expect("payloads are at most MAX_PAYLOAD bytes");
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

/// Writes `bytes` to our stdout or stderr, flushed.
fn emit(kind: u8, bytes: &[u8]) -> io::Result<()> {
    if kind == FRAME_STDERR {
        let mut err = io::stderr().lock();
        err.write_all(bytes).and_then(|()| err.flush())
    } else {
        let mut out = io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush())
    }
}

impl Client<'_> {
    /// Attached over `s`: with a terminal, the caller's terminal in raw mode (with stdin)
    /// and its window size sent at once and on every `SIGWINCH`; the container's stdout
    /// to our stdout and its stderr to our stderr; our stdin to the container until the
    /// detach keys are typed or the container exits. The end of our stdin closes the
    /// container's (without a terminal).
    pub fn run(&self, s: &mut UnixStream) -> Result<Ended, AttachError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let _raw = crate::linux::tty::RawMode::enter(self.stdin && self.terminal)
            .map_err(AttachError::Copy)?;
        if self.terminal {
            let action = nix::sys::signal::SigAction::new(
                nix::sys::signal::SigHandler::Handler(on_winch),
                nix::sys::signal::SaFlags::empty(),
                nix::sys::signal::SigSet::empty(),
            );
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGWINCH, &action) }
                .map_err(|e| AttachError::Copy(e.into()))?;
        }
        send_window_size(s).map_err(AttachError::Copy)?;
        let mut stdin_open = self.stdin;
        let mut matched = 0usize;
        let mut buf = [0u8; 8192];
        let mut payload = vec![0u8; MAX_PAYLOAD];
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
                match read_frame(s, &mut payload) {
                    Err(_) => return Ok(Ended::Closed),
                    Ok((FRAME_EXIT, 4)) => {
                        let code = [payload[0], payload[1], payload[2], payload[3]];
                        return Ok(Ended::Exited(i32::from_be_bytes(code)));
                    }
                    Ok((kind, len)) => emit(kind, &payload[..len]).map_err(AttachError::Copy)?,
                }
            }
            if in_ready {
                let n = match nix::unistd::read(&input, &mut buf) {
                    Err(nix::Error::EINTR | nix::Error::EAGAIN) => continue,
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        // Docker's `-i`: the end of our stdin closes the container's.
                        if !self.terminal {
                            let _ = s.write_all(&frame(FRAME_CLOSE_STDIN, &[]));
                        }
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
