//! Running one OCI exec hook (runtime-spec `config.md`, "POSIX-platform Hooks"): the
//! hook's path and args, its env only, the container state JSON on stdin, and its
//! `timeout` in seconds.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// A hook that failed; names its path.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook cannot be spawned, its stdin cannot be written (other than `EPIPE`), or
    /// waiting for it failed.
    #[error("hook {path}: cannot start")]
    Spawn {
        /// The hook's `path`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The hook exited non-zero or was killed by a signal.
    #[error("hook {path}: {status}")]
    Status {
        /// The hook's `path`.
        path: PathBuf,
        /// How it ended.
        status: ExitStatus,
    },
    /// The hook ran longer than its `timeout` and was killed (SIGKILL).
    #[error("hook {path}: timed out after {secs} s")]
    Timeout {
        /// The hook's `path`.
        path: PathBuf,
        /// The hook's `timeout`, in seconds.
        secs: i64,
    },
    /// The hook's `timeout` is zero or negative; the spec requires it to be greater than zero.
    #[error("hook {path}: timeout must be > 0, not {secs}")]
    BadTimeout {
        /// The hook's `path`.
        path: PathBuf,
        /// The `timeout` given, in seconds.
        secs: i64,
    },
}

/// Run `hook` with `state` (JSON) on its stdin and wait for it.
///
/// A hook that exits before reading its stdin is fine (EPIPE is ignored: crun's SIGPIPE
/// problem in ../shared/notes/host.md). Stdout and stderr are the runtime's.
pub fn run(hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let timeout = match hook.timeout() {
        Some(s) if s <= 0 => return Err(HookError::BadTimeout { path, secs: s }),
        Some(s) => Some(Duration::from_secs(s.unsigned_abs())),
        None => None,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(&path);
    if let Some(arg0) = args.first() {
        cmd.arg0(arg0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped());
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        match stdin.write_all(state) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Spawn { path, source });
            }
        }
    }
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(source) => return Err(HookError::Spawn { path, source }),
        }
        if let Some(t) = timeout
            && start.elapsed() >= t
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                path,
                secs: hook.timeout().unwrap_or_default(),
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Status { path, status })
    }
}

/// Run hooks in order, stopping at the first failure.
pub fn run_all(hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run(h, state))
}
