//! Docker's lifecycle commands on container records: `stop`, `kill`, `rm`, `wait`.
//! They act on init through its recorded pid (checked against its start time, so a
//! reused pid is never signalled) and leave the reaping and recording to the monitor;
//! when the monitor is gone (killed), they clean up after it themselves.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::linux::signal;

use super::container::{self, EngineError};
use super::monitor::STOP_MARKER;
use super::record::{ContainerRecord, Live, RecordError, Records, RunState};
use super::state::StateStore;

/// A lifecycle command failed; names the container.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Finding or updating the record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Tearing down the OCI container.
    #[error(transparent)]
    Engine(#[from] Box<EngineError>),
    /// `kill` of a container that does not run (Docker's wording).
    #[error("cannot kill container: {name}: container {id} is not running")]
    NotRunning {
        /// The container's name.
        name: String,
        /// Its id.
        id: String,
    },
    /// `rm` without `-f` of a running container (Docker's wording).
    #[error(
        "cannot remove container \"/{0}\": container is running: stop the container before removing or force remove"
    )]
    Running(String),
    /// The signal could not be sent.
    #[error("cannot signal container {name}")]
    Signal {
        /// The container's name.
        name: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// A signal name or number that does not parse.
    #[error(transparent)]
    BadSignal(#[from] signal::BadSignal),
    /// `unpause` of a container that is not paused (Docker's wording).
    #[error("container {0} is not paused")]
    NotPaused(String),
    /// `pause` of a paused container (Docker's wording).
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    /// `pause` of a container that is not running (Docker's wording).
    #[error("container {0} is not running")]
    PauseNotRunning(String),
    /// The container's OCI state (for its cgroup) cannot be read.
    #[error(transparent)]
    State(#[from] super::state::StateError),
    /// Freezing or thawing its cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] crate::linux::cgroup::CgroupError),
    /// `wait` found the container exited while no monitor saw how.
    #[error("the exit code of container {0} is unknown: its monitor went away")]
    UnknownExit(String),
}

/// The handles the lifecycle commands need.
pub struct Lifecycle<'a> {
    /// The OCI state root.
    pub store: &'a StateStore,
    /// The container records.
    pub records: &'a Records,
    /// The compiled-plugin cache (for the poststop hooks of a container torn down here).
    pub cache_dir: &'a Path,
}

fn pause() {
    std::thread::sleep(Duration::from_millis(20));
}

impl Lifecycle<'_> {
    fn mark_stop(&self, id: &str) {
        let _ = std::fs::write(self.records.dir(id).join(STOP_MARKER), b"");
    }

    fn signal_init(&self, r: &ContainerRecord, sig: i32) -> Result<(), LifecycleError> {
        match signal::send(r.pid.unwrap_or_default(), sig) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(LifecycleError::Signal {
                name: r.name.clone(),
                source,
            }),
        }
    }

    /// `kill -s SIGNAL`: signal the init of a running container.
    pub fn kill(&self, id: &str, sig: i32) -> Result<(), LifecycleError> {
        let r = self.records.load(id)?;
        if !r.live().is_running() {
            return Err(LifecycleError::NotRunning {
                name: r.name,
                id: r.id,
            });
        }
        self.signal_init(&r, sig)
    }

    fn set_frozen(&self, r: &ContainerRecord, frozen: bool) -> Result<(), LifecycleError> {
        let oci = self.store.load(&r.id)?;
        if let Some(h) = &oci.cgroup {
            crate::linux::cgroup::Manager::from_handle(h).set_frozen(frozen)?;
        }
        Ok(())
    }

    /// `pause` (`frozen`) or `unpause`: freeze or thaw every process of the container
    /// through its cgroup (freezer), and record it.
    pub fn pause(&self, id: &str, frozen: bool) -> Result<(), LifecycleError> {
        let r = self.records.load(id)?;
        match (frozen, r.live()) {
            (true, Live::Running) | (false, Live::Paused) => {}
            (true, Live::Paused) => {
                return Err(LifecycleError::PauseNotRunning(format!(
                    "{} is already paused",
                    r.name
                )));
            }
            (true, _) => return Err(LifecycleError::PauseNotRunning(r.name)),
            (false, _) => return Err(LifecycleError::NotPaused(r.name)),
        }
        self.set_frozen(&r, frozen)?;
        self.records.update(id, |r| {
            r.state = if frozen {
                RunState::Paused
            } else {
                RunState::Running
            };
        })?;
        Ok(())
    }

    /// Thaw a paused container so that a signal just sent reaches it (Docker does the same).
    fn thaw_if_paused(&self, r: &ContainerRecord) {
        if r.live() == Live::Paused
            && let Err(e) = self.set_frozen(r, false)
        {
            tracing::warn!(container = %r.name, "cannot thaw: {}", crate::error_chain(&e));
        }
    }

    /// Wait until the monitor has recorded the end of the run (or is gone); returns the
    /// record then, `None` if it was removed meanwhile (`--rm`).
    fn settle(&self, id: &str) -> Result<Option<ContainerRecord>, LifecycleError> {
        loop {
            let r = match self.records.load(id) {
                Ok(r) => r,
                Err(RecordError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let recording = matches!(
                r.state,
                RunState::Running | RunState::Paused | RunState::Restarting
            );
            if !recording || !r.monitor_alive() {
                return Ok(Some(r));
            }
            pause();
        }
    }

    /// Clean up after a monitor that is gone: the OCI container (cgroup, state, overlay)
    /// and, when the record still says it runs, record it exited with an unknown code.
    fn orphan_cleanup(&self, r: &ContainerRecord) -> Result<(), LifecycleError> {
        if self.store.exists(&r.id) {
            container::delete(self.store, &r.id, true, self.cache_dir, None).map_err(Box::new)?;
        }
        let _ = super::storage::unmount(&self.records.dir(&r.id));
        if matches!(
            r.state,
            RunState::Running | RunState::Paused | RunState::Restarting
        ) {
            self.records.update(&r.id, |r| {
                r.state = RunState::Exited;
                r.finished_at = Some(super::state::now_rfc3339());
                r.pid = None;
                r.pid_start = None;
            })?;
        }
        Ok(())
    }

    /// `stop -t SECONDS`: the stop signal (`--stop-signal`, else SIGTERM), then SIGKILL
    /// after `timeout` (default `--stop-timeout`, else 10 s); no restart follows. Returns
    /// once the exit is recorded. Stopping a container that does not run does nothing.
    pub fn stop(&self, id: &str, timeout: Option<u32>) -> Result<(), LifecycleError> {
        let r = self.records.load(id)?;
        self.mark_stop(id);
        let live = r.live();
        if live.is_running() {
            let sig = signal::parse(r.stop_signal())?;
            let limit = Duration::from_secs(u64::from(timeout.or(r.stop_timeout).unwrap_or(10)));
            self.signal_init(&r, sig)?;
            self.thaw_if_paused(&r);
            let t = Instant::now();
            while r.init_alive() && t.elapsed() < limit {
                pause();
            }
            if r.init_alive() {
                self.signal_init(&r, libc::SIGKILL)?;
            }
        }
        if live.is_running() || live == Live::Restarting {
            if let Some(r) = self.settle(id)?
                && !r.monitor_alive()
            {
                self.orphan_cleanup(&r)?;
            }
        } else if !r.monitor_alive() {
            self.orphan_cleanup(&r)?;
        }
        Ok(())
    }

    /// `rm [-f] [-v]`: remove a container that does not run (with `force`, kill it
    /// first): its OCI container, cgroup, overlay mount, bundle, logs, record and name;
    /// its volumes are unmounted, and with `volumes` its anonymous volumes removed.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), LifecycleError> {
        let r = self.records.load(id)?;
        let live = r.live();
        if matches!(live, Live::Running | Live::Paused | Live::Restarting) && !force {
            return Err(LifecycleError::Running(r.name));
        }
        self.mark_stop(id);
        if live.is_running() {
            self.signal_init(&r, libc::SIGKILL)?;
            self.thaw_if_paused(&r);
        }
        // Let the monitor finish its round; one that hangs is killed.
        let t = Instant::now();
        while r.monitor_alive() && t.elapsed() < Duration::from_secs(10) {
            pause();
        }
        if r.monitor_alive() {
            let _ = signal::send(r.monitor_pid.unwrap_or_default(), libc::SIGKILL);
            while r.monitor_alive() {
                pause();
            }
        }
        if self.store.exists(id) {
            container::delete(self.store, id, true, self.cache_dir, None).map_err(Box::new)?;
        }
        super::storage::release(&self.records.dir(id), self.cache_dir);
        self.records.remove(id)?;
        if let Some(data_root) = self.records.dir(id).parent().and_then(Path::parent) {
            super::volume_mounts::release(data_root, self.cache_dir, id, &r.mounts, volumes);
        }
        Ok(())
    }

    /// `wait`: block until the container is not running, then its exit code. A container
    /// removed meanwhile (`--rm`) reports the last code seen, else 0 as Docker does.
    pub fn wait(&self, id: &str) -> Result<i32, LifecycleError> {
        let mut last = None;
        loop {
            let r = match self.records.load(id) {
                Ok(r) => r,
                Err(RecordError::NotFound(_)) => return Ok(last.unwrap_or(0)),
                Err(e) => return Err(e.into()),
            };
            match r.live() {
                Live::Exited(Some(c)) => return Ok(c),
                Live::Exited(None) if !r.monitor_alive() => {
                    return Err(LifecycleError::UnknownExit(r.name));
                }
                Live::Created if !r.monitor_alive() => return Ok(r.exit_code.unwrap_or(0)),
                _ => last = r.exit_code.or(last),
            }
            pause();
        }
    }
}
