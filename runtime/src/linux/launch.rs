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
//!
//! Choice: **without a new user namespace the clone is a vfork** (`CLONE_VM|CLONE_VFORK`,
//! as glibc's `posix_spawn`): the child borrows our memory until its `execveat`, so the
//! kernel copies no page tables and our threads take no copy-on-write faults afterwards
//! (each one a TLB shootdown IPI to the other CPUs, dear on a VM; measured in
//! bench/RESULTS.md). Like `posix_spawn`, we block every signal around the clone and the
//! child resets each caught signal to its default before restoring the mask, so no
//! handler of ours ever runs in the borrowed memory. A child that must wait for its id
//! maps (a new user namespace) cannot be a vfork — we would wait for it while it waits
//! for us — and is a plain copy.

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
    let vfork = !new_userns;
    // Every signal blocked across the clone (module docs); the child gets `old` back.
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    if vfork {
        let mut all = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
        // SAFETY: sigfillset and pthread_sigmask only write the two local sigset_t buffers
        // they are given, which are zero-initialised and live for the whole function.
        unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
        }
    }
    let old_mask = old.as_ptr();
    let child = Box::new(move || -> isize {
        // SAFETY: runs in the cloned child — with `vfork`, in the parent's memory, whose
        // thread is suspended until our execveat; else in a private copy — which must only
        // make async-signal-safe calls and write nothing of the parent's: rt_sigaction and
        // rt_sigprocmask on the child's own signal state, read, setgroups, setres[ug]id,
        // fcntl and execveat are raw syscalls on fds (the console fd only when it is set),
        // a stack byte, the mask `old_mask` and pointers prepared (and kept alive) by the
        // parent before the clone.
        unsafe {
            if vfork {
                reset_caught_signals();
                libc::syscall(
                    libc::SYS_rt_sigprocmask,
                    libc::SIG_SETMASK,
                    old_mask,
                    ptr::null_mut::<libc::sigset_t>(),
                    KERNEL_SIGSET_BYTES,
                );
            }
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
    let flags = if vfork {
        l.flags | CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK
    } else {
        l.flags
    };
    // SAFETY: the callback only performs async-signal-safe syscalls (see above) and never
    // returns into Rust code that could touch state shared with other threads; the stack
    // buffer outlives the clone call (with CLONE_VFORK we are suspended until the child
    // has exec'd or exited, so it never runs on a freed stack), and without CLONE_VM the
    // child works on its own copy.
    let res = unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) };
    if vfork {
        // SAFETY: puts back the mask saved above, from a buffer that is still alive.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old_mask, ptr::null_mut()) };
    }

    if let Some(ours) = restore {
        // Best effort: failing to go back only affects hooks this process forks later.
        let _ = setns(&ours, CloneFlags::CLONE_NEWPID);
    }
    res.map_err(|source| LaunchError::Clone {
        flags: l.flags,
        source,
    })
}

/// The size of the kernel's signal set, for raw `rt_sigprocmask` (64 signals: 8 bytes).
const KERNEL_SIGSET_BYTES: usize = 8;

/// Reset every signal the process catches to its default action, for a vfork child before
/// it unblocks signals: a handler of the parent must not run in the parent's memory. Ignored
/// signals stay ignored (exec keeps them so, as after fork).
///
/// # Safety
/// Only for the vfork child (or a single-threaded process): it changes the calling
/// process's signal dispositions with raw syscalls and touches nothing else.
unsafe fn reset_caught_signals() {
    for sig in 1..=64 {
        // The kernel's struct sigaction on x86-64: handler, flags, restorer, mask.
        let mut cur = [0usize; 4];
        // SAFETY: rt_sigaction reads nothing (null new action) and writes `cur`, which is
        // as large as the kernel's struct; invalid signals (SIGKILL, SIGSTOP) fail harmlessly.
        let got = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                ptr::null::<u8>(),
                cur.as_mut_ptr(),
                KERNEL_SIGSET_BYTES,
            )
        };
        if got != 0 || cur[0] == libc::SIG_DFL || cur[0] == libc::SIG_IGN {
            continue;
        }
        let dfl = [libc::SIG_DFL, 0usize, 0, 0];
        // SAFETY: as above, with a default action and an empty mask to install.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                ptr::null_mut::<u8>(),
                KERNEL_SIGSET_BYTES,
            );
        }
    }
}
