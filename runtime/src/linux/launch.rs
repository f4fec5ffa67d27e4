//! Starting a container's init process from the (possibly multi-threaded) runtime.
//!
//! Choice: **the child re-executes rwasm before it does any setup**, as runc's `init`
//! does. By the time we clone, the runtime may run wasmtime's epoch thread and tracing
//! writers, and a clone of a multi-threaded process may only call async-signal-safe
//! functions until it execs (a lock held by another thread at clone time is held forever
//! in the child). So the child does three syscalls — two `fcntl`s that hand it the sync
//! and start sockets, and `execveat` of rwasm's sealed binary (`exe`) — and all setup runs
//! in `rwasm init`, a fresh single-threaded process. Everything the child touches is
//! prepared before the clone: no allocation, no locks, no Rust std I/O after it.
//!
//! The clone creates every new namespace at once (init becomes PID 1 of a new pid
//! namespace directly, and the runtime stays its parent, so `run` can `waitpid` it) except
//! the cgroup namespace, which init unshares once it sits in its cgroup.

use std::ffi::{CString, c_char};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr;

use nix::sched::{CloneFlags, setns};
use nix::unistd::Pid;

/// Environment variable naming init's sync socket fd.
pub const ENV_SYNC_FD: &str = "_RWASM_INIT_SYNC_FD";
/// Environment variable naming init's start socket (a listening unix socket) fd.
pub const ENV_START_FD: &str = "_RWASM_INIT_START_FD";
/// Environment variable naming init's console socket fd (only with `process.terminal`).
pub const ENV_CONSOLE_FD: &str = "_RWASM_INIT_CONSOLE_FD";
/// The `argv[1]` that makes the rwasm binary act as a container's init.
pub const INIT_ARG: &str = "init";

/// Failures to start init.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Opening our own pid namespace, or `setns(2)` into the spec's pid namespace for the
    /// clone, failed.
    #[error("cannot join pid namespace")]
    JoinPid(#[source] nix::Error),
    /// `clone(2)` of init failed (e.g. `EPERM` without privilege for a namespace, `EINVAL`).
    #[error("clone of the container init failed (flags {flags:?})")]
    Clone {
        /// The namespace flags passed to `clone(2)`.
        flags: CloneFlags,
        /// The errno from `clone(2)`.
        #[source]
        source: nix::Error,
    },
}

/// What to clone.
pub struct Launch<'a> {
    /// rwasm's sealed binary (`exe::sealed_self_exe`).
    pub exe: &'a OwnedFd,
    /// Namespaces to create.
    pub flags: CloneFlags,
    /// A pid namespace to join instead of creating one.
    pub pid_ns: Option<&'a File>,
    /// Init's end of the sync socket.
    pub sync: &'a OwnedFd,
    /// The listening start socket.
    pub start: &'a OwnedFd,
    /// `flags` create a user namespace: before exec, the child waits for one byte on the
    /// sync socket (sent once the runtime wrote its uid/gid maps) and becomes uid/gid 0
    /// of the namespace, so that exec keeps its capabilities there.
    pub new_userns: bool,
    /// The caller's console socket, connected, for a container with `process.terminal`
    /// (see `console`): init sends the terminal's master over it.
    pub console: Option<&'a OwnedFd>,
}

/// The byte the runtime sends once a new user namespace's id maps are written.
pub const MAPS_WRITTEN: u8 = b'M';

const STACK_SIZE: usize = 64 * 1024;

/// Clone init (module docs). Returns its pid in the runtime's pid namespace.
pub fn spawn_init(l: &Launch<'_>) -> Result<Pid, LaunchError> {
    // Everything the child needs, built before the clone.
    let sync_fd: RawFd = l.sync.as_raw_fd();
    let start_fd: RawFd = l.start.as_raw_fd();
    let exe_fd: RawFd = l.exe.as_raw_fd();
    let cstr = |s: String| CString::new(s).expect("no NUL in generated strings");
    let argv_s = [cstr("rwasm".into()), cstr(INIT_ARG.into())];
    let console_fd: RawFd = l.console.map_or(-1, AsRawFd::as_raw_fd);
    let mut envp_s = vec![
        cstr(format!("{ENV_SYNC_FD}={sync_fd}")),
        cstr(format!("{ENV_START_FD}={start_fd}")),
    ];
    if console_fd >= 0 {
        envp_s.push(cstr(format!("{ENV_CONSOLE_FD}={console_fd}")));
    }
    let argv: Vec<*const c_char> = argv_s
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    let envp: Vec<*const c_char> = envp_s
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    let empty = c"";
    let mut stack = vec![0u8; STACK_SIZE];

    // Joining a pid namespace only affects children of the calling thread: join it for
    // the clone and go back afterwards, so hooks we run later stay in ours.
    let restore = match l.pid_ns {
        Some(ns) => {
            let ours = File::open("/proc/thread-self/ns/pid").map_err(|e| {
                LaunchError::JoinPid(nix::Error::try_from(e).unwrap_or(nix::Error::EIO))
            })?;
            setns(ns, CloneFlags::CLONE_NEWPID).map_err(LaunchError::JoinPid)?;
            Some(ours)
        }
        None => None,
    };

    let new_userns = l.new_userns;
    let child = Box::new(move || -> isize {
        // SAFETY: runs in the cloned child, which has a private copy of the parent's memory
        // and must only make async-signal-safe calls: read, setgroups, setres[ug]id, fcntl
        // and execveat are raw syscalls on fds (the console fd only when it is set), a stack byte and pointers prepared (and kept
        // alive) by the parent before the clone.
        unsafe {
            if new_userns {
                // Without this, exec as an unmapped uid would drop every capability in the
                // new namespace (capabilities(7), "Effect of user ID changes").
                let mut byte = 0u8;
                if libc::read(sync_fd, (&raw mut byte).cast(), 1) != 1 || byte != MAPS_WRITTEN {
                    libc::_exit(1);
                }
                libc::syscall(libc::SYS_setgroups, 0, ptr::null::<libc::gid_t>());
                libc::syscall(libc::SYS_setresgid, 0, 0, 0);
                libc::syscall(libc::SYS_setresuid, 0, 0, 0);
            }
            libc::fcntl(sync_fd, libc::F_SETFD, 0);
            libc::fcntl(start_fd, libc::F_SETFD, 0);
            if console_fd >= 0 {
                libc::fcntl(console_fd, libc::F_SETFD, 0);
            }
            libc::syscall(
                libc::SYS_execveat,
                exe_fd,
                empty.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            libc::_exit(127)
        }
    });
    // SAFETY: the callback only performs async-signal-safe syscalls (see above) and never
    // returns into Rust code that could touch state shared with other threads; the stack
    // buffer outlives the clone call, and without CLONE_VM the child works on its own copy.
    let res = unsafe { nix::sched::clone(child, &mut stack, l.flags, Some(libc::SIGCHLD)) };

    if let Some(ours) = restore {
        // Best effort: failing to go back only affects hooks this process forks later.
        let _ = setns(&ours, CloneFlags::CLONE_NEWPID);
    }
    res.map_err(|source| LaunchError::Clone {
        flags: l.flags,
        source,
    })
}
