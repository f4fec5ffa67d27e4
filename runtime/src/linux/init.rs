//! `rwasm init`: the container's first process, re-executed by the runtime (see
//! `launch` for why). Single-threaded from its first instruction, it joins namespaces,
//! builds the root filesystem, pauses for the runtime's hooks, and finally waits on the
//! start socket before it execs the user process (runtime-spec `runtime.md`, "Lifecycle"
//! steps 2–7).

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use crate::error_chain;

use super::console::{self, ConsoleError};
use super::credentials::{self, CredentialError};
use super::devices::{self, DeviceError};
use super::exec_hook::{self, HookError};
use super::launch::{ENV_CONSOLE_FD, ENV_START_FD, ENV_SYNC_FD};
use super::namespaces::{NamespaceError, NamespacePlan};
use super::rootfs::{self, RootfsError};
use super::seccomp::{self, SeccompError};
use super::sync::{self, FailureKind, FromInit, InitConfig, Pause, SyncError, ToInit};

/// Why init gave up; reported to the runtime (or to `start`) before init exits.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The named environment variable (sync or start fd) is unset, not a number, or not an
    /// open fd: `rwasm init` was run by hand rather than by the runtime.
    #[error("init must be started by rwasm ({0} is not set)")]
    NoFd(&'static str),
    /// Setting up the terminal of `process.terminal`.
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// The sync socket or start socket broke, or carried a bad or oversized message.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The runtime sent a message init did not expect at this step; carries it (`Debug`).
    #[error("unexpected message from the runtime: {0}")]
    Protocol(String),
    /// The runtime told init to give up (e.g. a hook failed); carries the runtime's reason.
    #[error("aborted by the runtime: {0}")]
    Aborted(String),
    /// The spec's `linux.namespaces` cannot be turned into a plan (duplicate, unsupported, no mount).
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// A system call failed (setns, set hostname, prctl, close_range, signal mask, ...).
    #[error("cannot {what}")]
    Sys {
        /// What init was doing, e.g. `join namespace /proc/1234/ns/net`.
        what: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Bringing up `lo` in a new network namespace failed.
    #[error("cannot bring up loopback")]
    Loopback(#[source] io::Error),
    /// Preparing the root filesystem (mounts, pivot_root, masked and read-only paths) failed.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// Creating a device node in the container's `/dev` failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A createContainer or startContainer OCI hook, which init runs in the container, failed.
    #[error("createContainer/startContainer hook failed")]
    Hook(#[from] HookError),
    /// Setting rlimits, the OOM score, the user, groups or capabilities failed.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// `linux.seccomp` cannot be compiled or loaded.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// Writing a `linux.sysctl` entry under `/proc/sys` failed.
    #[error("linux.sysctl: cannot set {key}")]
    Sysctl {
        /// The sysctl as the spec names it, e.g. `net.ipv4.ip_forward`.
        key: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `process.cwd` cannot be created or entered.
    #[error("process.cwd: cannot use {path}")]
    Cwd {
        /// `process.cwd`, inside the container.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The user process cannot be found or executed, or its args or env contain NUL; the
    /// kind gives Docker's exit code (127 not found, 126 cannot execute).
    #[error("process.args: {0}")]
    Exec(String, FailureKind),
}

impl InitError {
    fn kind(&self) -> FailureKind {
        match self {
            InitError::Exec(_, k) => *k,
            _ => FailureKind::Other,
        }
    }
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let what = what.into();
    move |source| InitError::Sys { what, source }
}

fn fd_from_env(name: &'static str) -> Result<OwnedFd, InitError> {
    let n: i32 = std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(InitError::NoFd(name))?;
    // The variable names an fd the runtime left open for us; check it really is open
    // before taking ownership.
    // SAFETY: F_SETFD only changes the fd's flags; an invalid fd yields EBADF.
    if unsafe { libc::fcntl(n, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(InitError::NoFd(name));
    }
    // SAFETY: `n` is an open fd (checked above) inherited from the runtime for this
    // purpose; nothing else in this fresh process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Entry point of `rwasm init`; never returns.
pub fn main() -> ! {
    let sync = fd_from_env(ENV_SYNC_FD).map(UnixStream::from);
    let start = fd_from_env(ENV_START_FD).map(UnixListener::from);
    let (mut sync, start) = match (sync, start) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => {
            // A closed stderr must not turn the report into a panic.
            let _ = io::Write::write_fmt(
                &mut io::stderr(),
                format_args!("rwasm init: {}\n", error_chain(&e)),
            );
            std::process::exit(1)
        }
    };
    // Only a container with `process.terminal` gets a console socket.
    let console = std::env::var_os(ENV_CONSOLE_FD)
        .map(|_| fd_from_env(ENV_CONSOLE_FD))
        .transpose();
    // Phase 1: until the container is created, failures go back over the sync socket.
    let ready = match console.and_then(|console| create(&mut sync, console)) {
        Ok(r) => r,
        Err(e) => {
            let _ = sync::send(
                &mut sync,
                &FromInit::Failed {
                    kind: e.kind(),
                    message: error_chain(&e),
                },
            );
            std::process::exit(1)
        }
    };
    drop(sync);
    // Phase 2: wait for `start`; failures go back to whoever sent Start.
    let (mut conn, state) = match wait_start(&start) {
        Ok(c) => c,
        Err(_) => std::process::exit(1),
    };
    drop(start);
    let e = match exec(ready, &state, &mut conn) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = sync::send(
        &mut conn,
        &FromInit::Failed {
            kind: e.kind(),
            message: error_chain(&e),
        },
    );
    std::process::exit(match e.kind() {
        FailureKind::NotFound => 127,
        FailureKind::CannotExecute => 126,
        FailureKind::Other => 1,
    })
}

/// What `create` leaves for `exec`.
struct Ready {
    cfg: Box<InitConfig>,
    path: CString,
    /// `linux.seccomp`, compiled at create so that a bad profile fails `create`.
    filter: Option<seccomp::Filter>,
}

fn expect_continue(sync: &mut UnixStream) -> Result<(), InitError> {
    match sync::recv(sync)? {
        ToInit::Continue => Ok(()),
        ToInit::Abort(why) => Err(InitError::Aborted(why)),
        other => Err(InitError::Protocol(format!("{other:?}"))),
    }
}

fn create(sync: &mut UnixStream, console: Option<OwnedFd>) -> Result<Ready, InitError> {
    nix::sys::prctl::set_dumpable(false).map_err(sys("mark init non-dumpable"))?;
    umask(Mode::empty());
    let cfg = match sync::recv(sync)? {
        ToInit::Config(c) => c,
        ToInit::Abort(why) => return Err(InitError::Aborted(why)),
        other => return Err(InitError::Protocol(format!("{other:?}"))),
    };
    let spec = &cfg.spec;
    let linux = spec.linux().clone().unwrap_or_default();
    let plan = NamespacePlan::from_spec(linux.namespaces().as_deref().unwrap_or_default())?;
    let mut joined_user = false;
    for (flag, path) in &plan.joins {
        let f = File::open(path).map_err(|source| NamespaceError::Open {
            kind: "",
            path: path.clone(),
            source,
        })?;
        setns(&f, *flag).map_err(sys(format!("join namespace {}", path.display())))?;
        joined_user |= *flag == CloneFlags::CLONE_NEWUSER;
    }
    if plan.new_user() || joined_user {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(sys("become gid 0 in the user namespace"))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(sys("become uid 0 in the user namespace"))?;
    }
    let userns = plan.new_user() || joined_user;
    if cfg.new_cgroup_ns {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys("unshare the cgroup namespace"))?;
    }
    if cfg.loopback_up {
        super::net::loopback_up().map_err(InitError::Loopback)?;
    }
    let joined =
        |f: CloneFlags| plan.clone_flags.contains(f) || plan.joins.iter().any(|(j, _)| *j == f);
    if let Some(h) = spec.hostname()
        && joined(CloneFlags::CLONE_NEWUTS)
    {
        nix::unistd::sethostname(h).map_err(sys(format!("set hostname {h:?}")))?;
    }
    if let Some(d) = spec.domainname()
        && joined(CloneFlags::CLONE_NEWUTS)
    {
        set_domainname(d)?;
    }

    let root = rootfs::enter(spec, &cfg.rootfs)?;
    let cgroupns = cfg.new_cgroup_ns || joined(CloneFlags::CLONE_NEWCGROUP);
    rootfs::mount_all(&root, spec, &cfg.bundle, cgroupns)?;
    if !rootfs::binds_dev(spec) {
        devices::create_all(
            &root,
            linux.devices().as_deref().unwrap_or_default(),
            userns,
        )?;
    }

    sync::send(sync, &FromInit::Paused(Pause::CreateRuntime))?;
    expect_continue(sync)?;
    if let Some(hooks) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        exec_hook::run_all(&hooks, cfg.state.as_bytes())?;
    }
    sync::send(sync, &FromInit::Paused(Pause::CreateContainer))?;
    expect_continue(sync)?;

    rootfs::pivot(&root, &cfg.rootfs)?;
    drop(root);
    rootfs::finish(spec)?;
    if let Some(process) = spec
        .process()
        .as_ref()
        .filter(|p| p.terminal() == Some(true))
    {
        let socket = console.ok_or(InitError::NoFd(ENV_CONSOLE_FD))?;
        let size = process.console_size().as_ref().map(|b| console::Size {
            height: u16::try_from(b.height()).unwrap_or(u16::MAX),
            width: u16::try_from(b.width()).unwrap_or(u16::MAX),
        });
        console::setup(socket, size)?;
    }
    for (key, value) in linux.sysctl().iter().flatten() {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).map_err(|source| InitError::Sysctl {
            key: key.clone(),
            source,
        })?;
    }
    rootfs::protect(spec)?;

    let process = spec.process().clone().unwrap_or_default();
    if let Some(adj) = process.oom_score_adj() {
        credentials::set_oom_score_adj(adj)?;
    }
    credentials::set_rlimits(process.rlimits().as_deref().unwrap_or_default())?;
    let cwd = process.cwd();
    fs::create_dir_all(cwd).map_err(|source| InitError::Cwd {
        path: cwd.clone(),
        source,
    })?;
    std::env::set_current_dir(cwd).map_err(|source| InitError::Cwd {
        path: cwd.clone(),
        source,
    })?;
    let path = resolve_exec(&process)?;
    let filter = linux.seccomp().as_ref().map(seccomp::compile).transpose()?;
    sync::send(sync, &FromInit::Created)?;
    Ok(Ready { cfg, path, filter })
}

/// Annotation (set by `rwasm run --init`) asking init to stay as PID 1: the user process
/// runs as its child, and init reaps every orphan and forwards signals to it.
pub const INIT_ANNOTATION: &str = "org.rwasm.init";

/// `--init` (tini's job, done by init itself so that nothing is added to the container's
/// filesystem): fork; the child returns and goes on to exec the user process; this process
/// never returns. It keeps the user's credentials and seccomp filter, stays non-dumpable
/// (so the container cannot ptrace it or write through `/proc/1/exe`, which is the sealed
/// read-only binary), waits for signals with all of them blocked, forwards each to the
/// child, reaps every exited process on SIGCHLD, and exits with the child's status
/// (128+N when signal N ended it) once the child is gone.
fn stay_as_reaper(conn: &mut UnixStream) -> Result<(), InitError> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use std::os::fd::AsRawFd;
    let all = SigSet::all();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None).map_err(sys("block signals"))?;
    // SAFETY: init is single-threaded, so the child may run any code before it execs.
    let child = match unsafe { nix::unistd::fork() }.map_err(sys("fork the user process"))? {
        nix::unistd::ForkResult::Child => {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(sys("clear the signal mask"))?;
            return Ok(());
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    // Only the child reports to `start` (its exec closes the socket); close our copy.
    // SAFETY: this process never returns from here and never touches `conn` again, so
    // the fd is not used or closed twice.
    unsafe { libc::close(conn.as_raw_fd()) };
    loop {
        let Ok(sig) = all.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    std::process::exit(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

fn set_domainname(d: &str) -> Result<(), InitError> {
    // SAFETY: setdomainname reads exactly `len` bytes from a valid, live buffer.
    let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    if rc != 0 {
        return Err(InitError::Sys {
            what: format!("set domainname {d:?}"),
            source: nix::Error::last(),
        });
    }
    Ok(())
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Find `process.args[0]` as execvp(3) would, in the container's root, so that a missing
/// command fails `create` (as runc does) with Docker's wording.
fn resolve_exec(process: &oci_spec::runtime::Process) -> Result<CString, InitError> {
    let args = process.args().as_deref().unwrap_or_default();
    let Some(cmd) = args.first() else {
        return Err(InitError::Exec(
            "process.args must not be empty".into(),
            FailureKind::Other,
        ));
    };
    let env_path = process
        .env()
        .iter()
        .flatten()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![PathBuf::from(cmd)]
    } else {
        env_path
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(cmd))
            .collect()
    };
    let mut denied = None;
    for c in &candidates {
        match fs::metadata(c) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                return CString::new(c.as_os_str().as_encoded_bytes()).map_err(|_| {
                    InitError::Exec(format!("{cmd:?} contains NUL"), FailureKind::Other)
                });
            }
            Ok(_) => denied = Some(c.clone()),
            Err(_) => {}
        }
    }
    match denied {
        Some(p) => Err(InitError::Exec(
            format!("exec: {:?}: permission denied", p.display().to_string()),
            FailureKind::CannotExecute,
        )),
        None if cmd.contains('/') => Err(InitError::Exec(
            format!("exec: {cmd:?}: no such file or directory"),
            FailureKind::NotFound,
        )),
        None => Err(InitError::Exec(
            format!("exec: {cmd:?}: executable file not found in $PATH"),
            FailureKind::NotFound,
        )),
    }
}

/// `items` as C strings for execve; an entry with a NUL byte is an error naming `field`.
fn c_strings(field: &str, items: &[String]) -> Result<Vec<CString>, InitError> {
    items
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            InitError::Exec(
                format!("{field}: an entry contains NUL"),
                FailureKind::Other,
            )
        })
}

fn wait_start(listener: &UnixListener) -> Result<(UnixStream, String), InitError> {
    loop {
        let (mut conn, _) = listener
            .accept()
            .map_err(|e| InitError::Sync(SyncError::Io(e)))?;
        // A connection that does not speak the protocol is dropped; only a Start counts.
        if let Ok(ToInit::Start { state }) = sync::recv(&mut conn) {
            return Ok((conn, state));
        }
    }
}

fn exec(ready: Ready, state: &str, conn: &mut UnixStream) -> Result<Infallible, InitError> {
    let spec = &ready.cfg.spec;
    if let Some(hooks) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        exec_hook::run_all(&hooks, state.as_bytes())?;
    }
    let process = spec.process().clone().unwrap_or_default();
    umask(Mode::from_bits_truncate(
        process.user().umask().unwrap_or(0o022),
    ));
    let args = c_strings(
        "process.args",
        process.args().as_deref().unwrap_or_default(),
    )?;
    let env = c_strings("process.env", process.env().as_deref().unwrap_or_default())?;
    // No fd of ours may reach the user process: mark all but stdio and the preserved
    // ones close-on-exec (this includes `conn`, whose EOF tells `start` we exec'd).
    let first = 3 + ready.cfg.preserve_fds;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags; no memory access.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(InitError::Sys {
            what: "mark fds close-on-exec".into(),
            source: nix::Error::last(),
        });
    }
    // Rust ignores SIGPIPE and an ignored disposition survives exec: restore the default,
    // and start the user process with no blocked signals.
    // SAFETY: installing SIG_DFL runs no handler code; this process is single-threaded.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map_err(sys("reset SIGPIPE"))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(sys("clear the signal mask"))?;
    // runc's order: without noNewPrivileges, loading a filter needs CAP_SYS_ADMIN, so it
    // goes in before the user and capabilities change; with it, as late as possible, so
    // that the profile needs to allow the fewest of the runtime's own syscalls.
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let Some(f) = ready.filter.as_ref().filter(|_| !nnp) {
        f.load()?;
    }
    credentials::switch_user_and_caps(&process)?;
    if let Some(f) = ready.filter.as_ref().filter(|_| nnp) {
        f.load()?;
    }
    if spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(INIT_ANNOTATION))
        .is_some_and(|v| v == "true")
    {
        stay_as_reaper(conn)?;
    }
    sync::send(conn, &FromInit::Exec)?;
    let err = nix::unistd::execve(&ready.path, &args, &env).unwrap_err();
    let kind = match err {
        nix::Error::ENOENT => FailureKind::NotFound,
        _ => FailureKind::CannotExecute,
    };
    Err(InitError::Exec(
        format!("exec {:?}: {err}", ready.path),
        kind,
    ))
}
