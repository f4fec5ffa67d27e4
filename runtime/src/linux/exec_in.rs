//! Run a new process inside a running container (`exec`, as runc's and Docker's): join
//! every namespace of its init but the cgroup one (ipc, uts, net, pid, mount; a user
//! namespace is not joined), then fork (a pid namespace applies to children only); the
//! child moves itself into the container's cgroup through `cgroup.procs` files opened
//! beforehand, joins the cgroup namespace, switches to the process's user and
//! capabilities, and execs it.
//!
//! The calling process must be single-threaded: joining a mount namespace is refused to
//! a process whose threads share its filesystem attributes (setns(2)). It stays in the
//! container's namespaces afterwards, but not in its cgroup: it only waits for the child,
//! and when the container ends and its cgroup is killed, the caller is not killed with it
//! (it reports 137 for a killed process, its terminal restored, as `docker exec` does).

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use oci_spec::runtime::Process;

use super::cgroup::{CgroupError, Manager, ProcsFiles};
use super::credentials::{self, CredentialError};
use super::seccomp::{self, SeccompError};
use super::sync::FailureKind;

/// Errors of joining a container; each names the step and the namespace or file.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// This process has more than one thread, so it cannot join a mount namespace.
    #[error("exec must run single-threaded to join the container's mount namespace ({0} threads)")]
    Threads(usize),
    /// A namespace file of the container's init cannot be opened.
    #[error("cannot open {path}")]
    OpenNs {
        /// `/proc/PID/ns/KIND`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// setns(2) into a namespace failed.
    #[error("cannot join the container's {kind} namespace")]
    Setns {
        /// `ipc`, `uts`, `net`, `cgroup`, `pid`, `mnt`.
        kind: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The container's `linux.seccomp` cannot be compiled.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// Joining the container's cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A system call of the launch failed (`fork`, `pipe`, `waitpid`).
    #[error("cannot {0}")]
    Sys(&'static str, #[source] nix::Error),
    /// The command cannot be run; carries Docker's kind (not found: 127, else 126).
    #[error("{0}")]
    Exec(String, FailureKind),
    /// Making the pty of `-t` in the container, or putting it on the process's stdio.
    #[error(transparent)]
    Console(#[from] super::console::ConsoleError),
    /// Proxying the pty to our stdio (raw mode, threads, the window-size handler).
    #[error("exec -t: cannot attach the terminal")]
    Tty(#[source] std::io::Error),
}

impl ExecError {
    /// Docker's exit code for a failed exec: 127 not found, 126 cannot execute, else 126.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::Exec(_, FailureKind::NotFound) => 127,
            _ => 126,
        }
    }
}

const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// What to run and how.
pub struct ExecRequest<'a> {
    /// The container's init pid (host pid namespace).
    pub init_pid: i32,
    /// The container's cgroup.
    pub cgroup: &'a Manager,
    /// The process: args, env, cwd, user, capabilities, no_new_privileges.
    pub process: &'a Process,
    /// `-d`: return once the process runs, without waiting for it; its stdout and
    /// stderr go to /dev/null.
    pub detach: bool,
    /// Whether the process keeps the caller's stdin (`-i`); otherwise it reads /dev/null.
    pub stdin: bool,
    /// `-t`: the process runs on a new pty of the container's devpts (its controlling
    /// terminal, sized like the caller's window), which this process proxies to its own
    /// stdio until the process exits (see `tty`). Not with `detach`.
    pub terminal: bool,
    /// The container's `linux.seccomp`: the process runs under the same filter as the
    /// container's init (runc and Docker do the same for exec).
    pub seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
}

/// Run `req.process` in the container; returns its exit code (128+N for signal N), or
/// 0 at once with `detach`.
pub fn exec_in(req: &ExecRequest<'_>) -> Result<i32, ExecError> {
    let n = threads();
    if n > 1 {
        return Err(ExecError::Threads(n));
    }
    let mut fds = Vec::new();
    for (kind, flag) in NAMESPACES {
        let path = PathBuf::from(format!("/proc/{}/ns/{kind}", req.init_pid));
        let mine = std::fs::read_link(format!("/proc/self/ns/{kind}")).ok();
        let theirs = std::fs::read_link(&path).ok();
        if mine.is_some() && mine == theirs {
            continue;
        }
        let f = File::open(&path).map_err(|source| ExecError::OpenNs { path, source })?;
        fds.push((kind, flag, f));
    }
    let filter = req.seccomp.map(seccomp::compile).transpose()?;
    let devnull = File::open("/dev/null").map_err(|e| {
        ExecError::Sys(
            "open /dev/null",
            nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    // Joined by the child: opened here, before this process leaves the host's mount
    // namespace, and before the cgroup namespace (with nsdelegate, a move out of a
    // namespace's subtree is refused inside it).
    let cgroup = ProcsFiles::open(req.cgroup)?;
    let (cgroup_ns, fds): (Vec<_>, Vec<_>) = fds
        .into_iter()
        .partition(|(_, flag, _)| *flag == CloneFlags::CLONE_NEWCGROUP);
    for (kind, flag, f) in &fds {
        setns(f.as_fd(), *flag).map_err(|source| ExecError::Setns { kind, source })?;
    }
    let joins = Joins {
        cgroup: &cgroup,
        cgroup_ns: cgroup_ns.first().map(|(_, _, f)| f),
    };
    // In the container's mount namespace now: /dev/ptmx is the container's.
    let pty = if req.terminal && !req.detach {
        let size =
            super::tty::window_size().map(|(height, width)| super::console::Size { height, width });
        Some(super::console::open_pty(size)?)
    } else {
        None
    };
    let (mut r, w) = std::os::unix::net::UnixStream::pair().map_err(|e| {
        ExecError::Sys(
            "make a pipe",
            nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    // SAFETY: this process is single-threaded (checked above), so the child may run any
    // code, allocation included, before it execs.
    match unsafe { fork() }.map_err(|e| ExecError::Sys("fork", e))? {
        ForkResult::Child => {
            drop(r);
            let on_tty = match pty {
                Some((master, slave)) => {
                    drop(master);
                    super::console::controlling_stdio(slave).map(|()| true)
                }
                None => Ok(false),
            };
            let Err(e) = on_tty
                .map_err(ExecError::from)
                .and_then(|on_tty| child(req, &joins, &devnull, on_tty, filter.as_ref()));
            let kind = match &e {
                ExecError::Exec(_, k) => *k,
                _ => FailureKind::Other,
            };
            let mut w = w;
            let code = match kind {
                FailureKind::NotFound => b'N',
                FailureKind::CannotExecute => b'X',
                FailureKind::Other => b'O',
            };
            let _ = w.write_all(&[code]);
            let _ = w.write_all(crate::error_chain(&e).as_bytes());
            std::process::exit(126);
        }
        ForkResult::Parent { child: pid } => {
            drop(w);
            // This process joined the container's pid namespace: it cannot start threads,
            // so a terminal is proxied by a poll loop until the process exits.
            let master = pty.map(|(master, slave)| {
                drop(slave);
                File::from(master)
            });
            // The socket closes on exec (CLOEXEC) with nothing written, or carries the error.
            let mut msg = Vec::new();
            let _ = r.read_to_end(&mut msg);
            if let Some((&k, text)) = msg.split_first() {
                let _ = waitpid(pid, None);
                let kind = match k {
                    b'N' => FailureKind::NotFound,
                    b'X' => FailureKind::CannotExecute,
                    _ => FailureKind::Other,
                };
                return Err(ExecError::Exec(
                    String::from_utf8_lossy(text).into_owned(),
                    kind,
                ));
            }
            if req.detach {
                return Ok(0);
            }
            if let Some(master) = master {
                let pidfd = pidfd(pid)?;
                super::tty::pump(master, req.stdin, pidfd.as_fd(), TTY_DRAIN)
                    .map_err(ExecError::Tty)?;
            }
            loop {
                match waitpid(pid, None) {
                    Ok(WaitStatus::Exited(_, c)) => break Ok(c),
                    Ok(WaitStatus::Signaled(_, s, _)) => break Ok(128 + s as i32),
                    Ok(_) | Err(nix::Error::EINTR) => continue,
                    Err(e) => break Err(ExecError::Sys("wait for the process", e)),
                }
            }
        }
    }
}

fn exec_err(e: CredentialError) -> ExecError {
    ExecError::Exec(crate::error_chain(&e), FailureKind::Other)
}

/// A pidfd of `pid` (pidfd_open(2)): readable once the process has exited.
fn pidfd(pid: nix::unistd::Pid) -> Result<std::os::fd::OwnedFd, ExecError> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(ExecError::Sys("open a pidfd", nix::Error::last()));
    }
    let fd = std::os::fd::RawFd::try_from(fd)
        .map_err(|_| ExecError::Sys("open a pidfd", nix::Error::EBADF))?;
    // SAFETY: the kernel just returned `fd`, owned by nothing else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// How long the output of an exec on a terminal is still copied after the process exited,
/// if something it left behind keeps the terminal open.
const TTY_DRAIN: std::time::Duration = std::time::Duration::from_millis(200);

/// What the forked child joins itself: the container's cgroup, then its cgroup namespace
/// (`None` when this process already is in it).
struct Joins<'a> {
    cgroup: &'a ProcsFiles,
    cgroup_ns: Option<&'a File>,
}

/// In the forked child: the cgroup and cgroup namespace of `joins`, stdin (unless
/// `on_tty`: the terminal is stdio), cwd, user and capabilities, the seccomp `filter`,
/// then exec.
fn child(
    req: &ExecRequest<'_>,
    joins: &Joins<'_>,
    devnull: &File,
    on_tty: bool,
    filter: Option<&seccomp::Filter>,
) -> Result<Infallible, ExecError> {
    joins.cgroup.join()?;
    if let Some(f) = joins.cgroup_ns {
        setns(f.as_fd(), CloneFlags::CLONE_NEWCGROUP).map_err(|source| ExecError::Setns {
            kind: "cgroup",
            source,
        })?;
    }
    let p = req.process;
    if !req.stdin && !on_tty {
        nix::unistd::dup2_stdin(devnull).map_err(|e| ExecError::Sys("redirect stdin", e))?;
    }
    if req.detach {
        // Docker: a detached exec's output is not attached anywhere.
        nix::unistd::dup2_stdout(devnull).map_err(|e| ExecError::Sys("redirect stdout", e))?;
        nix::unistd::dup2_stderr(devnull).map_err(|e| ExecError::Sys("redirect stderr", e))?;
    }
    let cwd = p.cwd();
    nix::unistd::chdir(cwd).map_err(|e| {
        ExecError::Exec(
            format!(
                "chdir to cwd ({:?}) set in config.json failed: {e}",
                cwd.display().to_string()
            ),
            FailureKind::Other,
        )
    })?;
    let args = p.args().clone().unwrap_or_default();
    let env = p.env().clone().unwrap_or_default();
    let path = find(&args, &env)?;
    let cs = |v: &[String]| -> Result<Vec<CString>, ExecError> {
        v.iter()
            .map(|s| {
                CString::new(s.as_bytes())
                    .map_err(|_| ExecError::Exec(format!("{s:?} contains NUL"), FailureKind::Other))
            })
            .collect()
    };
    let (args, env) = (cs(&args)?, cs(&env)?);
    // Rust ignores SIGPIPE and an ignored disposition survives exec: restore the default.
    // SAFETY: installing SIG_DFL runs no handler code; this process is single-threaded.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }
    .map_err(|e| ExecError::Sys("reset SIGPIPE", e))?;
    // As init does (runc's order): without noNewPrivileges the filter goes in while the
    // process still holds CAP_SYS_ADMIN; with it, after the user and capabilities change.
    let nnp = p.no_new_privileges().unwrap_or(false);
    let load = |f: &seccomp::Filter| {
        f.load()
            .map_err(|e| ExecError::Exec(crate::error_chain(&e), FailureKind::Other))
    };
    if let Some(f) = filter.filter(|_| !nnp) {
        load(f)?;
    }
    // Sets no_new_privs last when the process asks for it.
    credentials::switch_user_and_caps(p).map_err(exec_err)?;
    if let Some(f) = filter.filter(|_| nnp) {
        load(f)?;
    }
    let e = nix::unistd::execve(&path, &args, &env).unwrap_err();
    let kind = if e == nix::Error::ENOENT {
        FailureKind::NotFound
    } else {
        FailureKind::CannotExecute
    };
    Err(ExecError::Exec(format!("exec {path:?}: {e}"), kind))
}

/// `args[0]` as execvp(3) finds it, with the process's PATH (Docker's wording on failure).
fn find(args: &[String], env: &[String]) -> Result<CString, ExecError> {
    let cmd = args
        .first()
        .ok_or_else(|| ExecError::Exec("no command given".into(), FailureKind::Other))?;
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![PathBuf::from(cmd)]
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(cmd))
            .collect()
    };
    for c in &candidates {
        if let Ok(m) = std::fs::metadata(c)
            && m.is_file()
        {
            if m.permissions().mode() & 0o111 == 0 {
                return Err(ExecError::Exec(
                    format!("exec: {:?}: permission denied", c.display().to_string()),
                    FailureKind::CannotExecute,
                ));
            }
            return CString::new(c.as_os_str().as_encoded_bytes())
                .map_err(|_| ExecError::Exec(format!("{cmd:?} contains NUL"), FailureKind::Other));
        }
    }
    Err(ExecError::Exec(
        if cmd.contains('/') {
            format!("exec: {cmd:?}: no such file or directory")
        } else {
            format!("exec: {cmd:?}: executable file not found in $PATH")
        },
        FailureKind::NotFound,
    ))
}
