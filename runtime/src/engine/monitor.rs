//! The monitor of a detached container (conmon's role): rwasm re-executed in a hidden
//! mode, in its own session, parent of the container's init. It holds the container's
//! stdout and stderr pipes and writes them to the json-file log ([`super::logs`]),
//! reaps init, records the exit code and finish time, carries out the restart policy,
//! and with `--rm` removes everything once the container is done. It is not a daemon:
//! one per container, gone when its container is.
//!
//! The process waiting for the start (`run -d`, `start`) gets one [`Ready`] line on the
//! `ready` pipe once the container runs or its start failed.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::linux::proc::start_time;
use crate::linux::sync::FailureKind;
use crate::plugin::PluginSet;

use super::attach::{Clients, FRAME_STDERR, FRAME_STDOUT, Input, Server, pump_terminal};
use super::container::{self, CreateOptions, EngineError};
use super::logs::{LogError, LogWriter, pump_tee};
use super::record::{RecordError, Records, RunState};
use super::run::{RunError, mount_rootfs};
use super::state::{StateStore, now_rfc3339};

/// File in the container's directory that asks its monitor not to restart it
/// (`stop`, `rm -f`); removed when a monitor starts.
pub const STOP_MARKER: &str = "stop-requested";

/// A failure of the monitor, naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// Reading or writing the container record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Mounting the rootfs.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Create, start, wait or delete of the OCI container.
    #[error(transparent)]
    Engine(#[from] Box<EngineError>),
    /// Serving the container's terminal on the attach socket.
    #[error(transparent)]
    Attach(#[from] super::attach::AttachError),
    /// Receiving the container's terminal from its init.
    #[error("cannot receive the container's terminal")]
    Terminal(#[source] std::io::Error),
    /// Opening the log file.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Connecting the container's network.
    #[error(transparent)]
    Network(#[from] super::network::NetworkError),
    /// Making or redirecting the stdio pipes.
    #[error("cannot {0} the container's stdio")]
    Stdio(&'static str, #[source] nix::Error),
}

/// What the monitor reports to the process waiting for the container's start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    /// The container runs.
    pub ok: bool,
    /// On failure, Docker's exit code for it: 127 command not found, 126 cannot execute,
    /// 125 anything else.
    pub code: i32,
    /// On failure, the error.
    pub message: String,
}

/// What the monitor works on.
pub struct Monitor<'a> {
    /// The OCI state root.
    pub store: &'a StateStore,
    /// The container records.
    pub records: &'a Records,
    /// The container's full id.
    pub id: &'a str,
    /// The plugins its hooks run.
    pub plugins: &'a PluginSet,
    /// The compiled-plugin cache.
    pub cache_dir: &'a Path,
    /// Wait (at most 10 s) for a client on the attach socket before the first start
    /// (`run -it`, `start -a` of a container with a terminal), so it sees all the output.
    pub wait_attach: bool,
}

/// The `oom_kill` count of container `id`'s cgroup (0 when it cannot be read).
pub(super) fn oom_kills(store: &StateStore, id: &str) -> u64 {
    store
        .load(id)
        .ok()
        .and_then(|r| r.cgroup)
        .and_then(|h| crate::linux::cgroup::Manager::from_handle(&h).oom_kills())
        .unwrap_or(0)
}

/// Docker's exit code for a failed start.
fn failure_code(e: &MonitorError) -> i32 {
    let kind = match e {
        MonitorError::Engine(e) => e.failure_kind(),
        MonitorError::Run(e) => e.failure_kind(),
        _ => None,
    };
    match kind {
        Some(FailureKind::NotFound) => 127,
        Some(FailureKind::CannotExecute) => 126,
        _ => 125,
    }
}

fn send_ready(ready: &mut Option<File>, r: &Ready) {
    if let Some(mut f) = ready.take() {
        let mut line = serde_json::to_vec(r).expect("ready serializes");
        line.push(b'\n');
        let _ = f.write_all(&line);
    }
}

/// The restart delay after `n` restarts: Docker's 100 ms doubling, at most 10 s here.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << n.min(7))).min(Duration::from_secs(10))
}

impl Monitor<'_> {
    fn dir(&self) -> PathBuf {
        self.records.dir(self.id)
    }

    fn stop_requested(&self) -> bool {
        self.dir().join(STOP_MARKER).exists()
    }

    /// Run the container until it is done for good (its exit not restarted), telling
    /// `ready` about the first start; with `--rm`, remove it at the end.
    pub fn run(&self, ready: File) -> Result<(), MonitorError> {
        let mut ready = Some(ready);
        let me = std::process::id().cast_signed();
        let _ = std::fs::remove_file(self.dir().join(STOP_MARKER));
        let rec = self.records.update(self.id, |r| {
            r.monitor_pid = Some(me);
            r.monitor_start = start_time(me);
            r.error = None;
        })?;
        let log = LogWriter::open(&self.records.log_path(self.id))?;
        let mut restarts = rec.restart_count;
        let mut lingering = Vec::new();
        let result = loop {
            match self.run_once(&rec.layers, rec.open_stdin, &log, &mut ready) {
                Ok((code, clients)) => {
                    let r = self.records.update(self.id, |r| {
                        r.state = RunState::Exited;
                        r.exit_code = Some(code);
                        r.finished_at = Some(now_rfc3339());
                        r.pid = None;
                        r.pid_start = None;
                    });
                    // The exit code goes to the attached clients over the socket, recorded
                    // or not, so `--rm` cannot take it away from a slow one.
                    lingering.extend(clients.finish(Some(code)));
                    let r = r?;
                    if self.stop_requested() || !r.restart.wants_restart(code, restarts) {
                        break Ok(());
                    }
                    restarts += 1;
                    self.records.update(self.id, |r| {
                        r.state = RunState::Restarting;
                        r.restart_count = restarts;
                    })?;
                    let delay = backoff(restarts - 1);
                    let mut waited = Duration::ZERO;
                    while waited < delay && !self.stop_requested() {
                        std::thread::sleep(Duration::from_millis(20));
                        waited += Duration::from_millis(20);
                    }
                    if self.stop_requested() {
                        self.records
                            .update(self.id, |r| r.state = RunState::Exited)?;
                        break Ok(());
                    }
                }
                Err(e) => {
                    let code = failure_code(&e);
                    let message = crate::error_chain(&e);
                    let first = ready.is_some();
                    // Docker: a container whose start failed stays `created`, with the
                    // error and its code; a failed restart leaves it exited.
                    let saved = self.records.update(self.id, |r| {
                        r.state = if first {
                            RunState::Created
                        } else {
                            RunState::Exited
                        };
                        r.exit_code = Some(code);
                        r.error = Some(message.clone());
                        r.pid = None;
                        r.pid_start = None;
                    });
                    // Recorded before the report, so the caller sees the error in the record.
                    send_ready(
                        &mut ready,
                        &Ready {
                            ok: false,
                            code,
                            message,
                        },
                    );
                    saved?;
                    break Err(e);
                }
            }
        };
        // A client that missed the exit frame reads the code from the record before it may go.
        super::attach::linger(lingering, Duration::from_secs(2));
        let rec = self.records.load(self.id)?;
        if rec.auto_remove {
            super::storage::release(&self.dir(), self.cache_dir);
            self.records.remove(self.id)?;
            if let Some(data_root) = self.dir().parent().and_then(Path::parent) {
                super::volume_mounts::release(
                    data_root,
                    self.cache_dir,
                    self.id,
                    &rec.mounts,
                    true,
                );
            }
        }
        result
    }

    /// One run: mount, create with our stdio pipes (and a stdin pipe with `open_stdin`),
    /// serve the attach socket, start, wait, delete. Returns the exit code (128+N for
    /// signal N) and the clients attached, whose streams are still open.
    fn run_once(
        &self,
        layers: &[PathBuf],
        open_stdin: bool,
        log: &LogWriter,
        ready: &mut Option<File>,
    ) -> Result<(i32, Clients), MonitorError> {
        let dir = self.dir();
        mount_rootfs(layers, &dir, self.plugins, self.cache_dir)?;
        // The volumes' drivers mount them again (the last stop unmounted them).
        if let Some(data_root) = dir.parent().and_then(Path::parent) {
            let mounts = self.records.load(self.id)?.mounts;
            let mounted = super::volume_mounts::mount_at_start(
                data_root,
                self.cache_dir,
                self.plugins,
                self.id,
                &mounts,
            );
            if let Err(e) = mounted {
                let _ = super::storage::unmount(&dir);
                return Err(RunError::from(e).into());
            }
        }
        let cleanup = || {
            let _ = container::delete(
                self.store,
                self.id,
                true,
                self.cache_dir,
                Some(self.plugins),
            );
            let _ = super::storage::unmount(&dir);
        };
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC);
        let (out_r, out_w) = pipe().map_err(|e| MonitorError::Stdio("create", e))?;
        let (err_r, err_w) = pipe().map_err(|e| MonitorError::Stdio("create", e))?;
        // `-i` without a terminal: the container reads a pipe whose write end we hold for
        // attached clients (a terminal's stdin is the terminal).
        let (stdin_r, stdin_w) = if open_stdin && !super::attach::has_terminal(&dir) {
            let (r, w) = pipe().map_err(|e| MonitorError::Stdio("create", e))?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let saved_err = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| {
                MonitorError::Stdio("save", nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))
            })?;
        let devnull = File::open("/dev/null").map_err(|e| {
            MonitorError::Stdio(
                "open /dev/null for",
                nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        // init inherits fds 1 and 2: point them at the pipes while it is created, then
        // back, so that only the container holds the write ends.
        nix::unistd::dup2_stdout(&out_w).map_err(|e| MonitorError::Stdio("redirect", e))?;
        nix::unistd::dup2_stderr(&err_w).map_err(|e| MonitorError::Stdio("redirect", e))?;
        if let Some(r) = &stdin_r {
            nix::unistd::dup2_stdin(r).map_err(|e| MonitorError::Stdio("redirect", e))?;
        }
        drop((out_w, err_w, stdin_r));
        // With `process.terminal` (`run -t`), init sends the pty master on this pair.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| {
            MonitorError::Stdio(
                "create",
                nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        let theirs = std::os::fd::OwnedFd::from(theirs);
        let created = container::create(
            self.store,
            &CreateOptions {
                id: self.id,
                bundle: &dir,
                pid_file: None,
                preserve_fds: 0,
                plugins: self.plugins,
                console_socket: Some(container::ConsoleSocket::IfTerminal(&theirs)),
                prefetch: &container::RUN_POINTS,
            },
        );
        drop(theirs);
        let _ = nix::unistd::dup2_stdin(&devnull);
        let _ = nix::unistd::dup2_stdout(&devnull);
        let _ = nix::unistd::dup2_stderr(&saved_err);
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                cleanup();
                return Err(Box::new(e).into());
            }
        };
        if let Err(e) = super::network::setup(
            self.id,
            &dir,
            created.record.pid.unwrap_or_default(),
            &created.record.annotations,
            self.plugins,
            self.cache_dir,
        ) {
            cleanup();
            return Err(e.into());
        }
        let input = if created.terminal {
            match crate::linux::console::receive(&ours).map_err(MonitorError::Terminal) {
                Ok((master, _)) => Input::Terminal(std::sync::Arc::new(master)),
                Err(e) => {
                    cleanup();
                    return Err(e);
                }
            }
        } else {
            stdin_w.map_or(Input::Nothing, |w| Input::pipe(File::from(w)))
        };
        drop(ours);
        let server = match Server::bind(&dir, input.clone()) {
            Ok(s) => s,
            Err(e) => {
                cleanup();
                return Err(e.into());
            }
        };
        if self.wait_attach
            && ready.is_some()
            && let Err(e) = server.accept_first(Duration::from_secs(10))
        {
            cleanup();
            return Err(e.into());
        }
        let clients = server.clients();
        let ooms = oom_kills(self.store, self.id);
        let code = std::thread::scope(|s| {
            // However this run ends, the accept loop ends with it.
            let _close = CloseOnDrop(&server);
            s.spawn(|| server.accept_until_closed());
            let tee = |kind: u8| {
                let clients = clients.clone();
                move |b: &[u8]| clients.send(kind, b)
            };
            let (out_tee, err_tee) = (tee(FRAME_STDOUT), tee(FRAME_STDERR));
            s.spawn(move || pump_tee(File::from(out_r), "stdout", log, &out_tee));
            s.spawn(move || pump_tee(File::from(err_r), "stderr", log, &err_tee));
            if let Input::Terminal(master) = &input {
                let master = master.clone();
                let clients = clients.clone();
                s.spawn(move || pump_terminal(&master, log, &clients));
            }
            let record = match container::start(self.store, self.id, self.plugins) {
                Ok(r) => r,
                Err(e) => {
                    cleanup();
                    return Err(MonitorError::from(Box::new(e)));
                }
            };
            self.records.update(self.id, |r| {
                r.state = RunState::Running;
                r.pid = record.pid;
                r.pid_start = record.pid_start;
                r.started_at = Some(now_rfc3339());
                r.exit_code = None;
                r.finished_at = None;
                r.oom_killed = false;
            })?;
            send_ready(
                ready,
                &Ready {
                    ok: true,
                    code: 0,
                    message: String::new(),
                },
            );
            let code = container::wait_exit(&record);
            if oom_kills(self.store, self.id) > ooms {
                self.records.update(self.id, |r| r.oom_killed = true)?;
            }
            // Tears down the cgroup (killing anything left holding the pipes), so the
            // pumps reach end of file.
            cleanup();
            Ok::<_, MonitorError>(code.map_err(Box::new)?)
        })?;
        Ok((code, clients))
    }
}

/// Closes the attach socket when a run ends, however it ends.
struct CloseOnDrop<'a>(&'a Server);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}
