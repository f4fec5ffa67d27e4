//! The hidden `monitor ID` command (the monitor process of a detached container) and
//! how `run -d`/`start` launch it: `rwasm --root R --data-root D [--plugins P]
//! --log <dir>/monitor.log monitor ID`, in a new session (setsid: the calling shell's
//! hangup and job control do not reach it), stdin and stdout on /dev/null, stderr on
//! the monitor log, and a pipe on which it reports the start.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use rwasm::engine::monitor::{Monitor, Ready};
use rwasm::engine::record::Records;
use rwasm::engine::state::StateStore;

use super::{Cli, cache_dir, load_plugins};

/// The fd on which the monitor finds its ready pipe.
const READY_FD: i32 = 3;

/// `monitor ID`: run as the container's monitor until it is done for good.
pub fn monitor(cli: &Cli, id: &str, wait_attach: bool) -> anyhow::Result<i32> {
    // SAFETY: fd 3 was set up by `launch` as the write end of the ready pipe and nothing
    // else in this process owns it.
    let ready = unsafe { OwnedFd::from_raw_fd(READY_FD) };
    nix::fcntl::fcntl(
        &ready,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .context("monitor: fd 3 is not the ready pipe")?;
    let store = StateStore::open(&cli.root)?;
    let records = Records::new(&cli.data_root);
    let plugins = load_plugins(cli)?;
    Monitor {
        store: &store,
        records: &records,
        id,
        plugins: &plugins,
        cache_dir: &cache_dir(cli),
        wait_attach,
    }
    .run(std::fs::File::from(ready))?;
    Ok(0)
}

/// Launch the monitor of container `id` and wait until it reports the start; a failed
/// start is an error whose exit code follows Docker (125, 126, 127). With `attach` (a
/// container with a terminal), connect to its attach socket before it starts and return
/// the connection.
pub fn launch(cli: &Cli, id: &str, attach: bool) -> anyhow::Result<Option<UnixStream>> {
    let records = Records::new(&cli.data_root);
    let dir = records.dir(id);
    let log = dir.join("monitor.log");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let exe = std::env::current_exe().context("cannot find the rwasm executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&cli.root)
        .arg("--data-root")
        .arg(&cli.data_root)
        .arg("--log")
        .arg(&log);
    // The container's own manifest (see ContainerRecord::plugins), else ours.
    let recorded = records.load(id).ok().and_then(|r| r.plugins);
    if let Some(p) = recorded.as_ref().or(cli.plugins.as_ref()) {
        cmd.arg("--plugins").arg(p);
    }
    if cli.debug {
        cmd.arg("--debug");
    }
    cmd.arg("monitor");
    if attach {
        cmd.arg("--attach");
    }
    cmd.arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let w_raw = w.as_raw_fd();
    // SAFETY: between fork and exec the closure only calls async-signal-safe functions
    // (setsid, dup2, fcntl) and touches no memory shared with other threads.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            let ok = if w_raw == READY_FD {
                libc::fcntl(READY_FD, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(w_raw, READY_FD) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The monitor lives on in its own session; whoever is init of our pid namespace reaps
    // it once we are gone.
    let mut child = cmd
        .spawn()
        .context("cannot start the container's monitor")?;
    drop(w);
    let mut stream = None;
    // The monitor binds the socket once init sent the terminal, and waits for us.
    while attach && stream.is_none() {
        match rwasm::engine::attach::connect(&dir) {
            Ok(mut s) => {
                rwasm::engine::attach::send_window_size(&mut s)
                    .context("cannot send the window size to the monitor")?;
                stream = Some(s);
            }
            Err(_) if child.try_wait().ok().flatten().is_none() => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    drop(child);
    let mut line = String::new();
    BufReader::new(std::fs::File::from(r))
        .read_line(&mut line)
        .context("cannot read the monitor's report")?;
    if line.is_empty() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!(
            "the monitor of container {id} exited before starting it: {}",
            text.lines().last().unwrap_or("see its log")
        );
    }
    let ready: Ready = serde_json::from_str(&line).context("malformed report from the monitor")?;
    if !ready.ok {
        return Err(anyhow::Error::new(StartFailed {
            code: ready.code,
            message: ready.message,
        }));
    }
    Ok(stream)
}

/// A start the monitor reported as failed, with Docker's exit code for it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartFailed {
    /// 125, 126 or 127.
    pub code: i32,
    /// The monitor's error.
    pub message: String,
}
