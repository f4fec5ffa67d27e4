//! Docker-style container records: what `ps`, `inspect`, `logs`, `stop` and `rm` know
//! about a container made from an image, kept next to its bundle as
//! `<data-root>/containers/<id>/container.json` and written atomically (temp + rename)
//! under an advisory lock (`<id>/.lock`), since the monitor and the CLI both update it.
//!
//! Names are reserved atomically as symlinks `<data-root>/names/<name> -> <id>`; a
//! symlink whose container directory is gone is stale and may be taken over. Every
//! command resolves a container by name, full id, or unique id prefix
//! ([`Records::resolve`]), as Docker does.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::linux::proc::{Liveness, liveness};

use super::state::{StateError, write_atomic};

/// How long [`Records::load_settled`] waits for a live monitor to record its container's
/// exit (it tears down the cgroup, network and mounts first; a monitor that takes longer
/// is reported as it stands).
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// The record file inside a container's directory.
pub const RECORD_FILE: &str = "container.json";

/// Errors of the record store; each names the container or file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The name is taken by a container whose directory still exists (Docker's wording).
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The id of the container holding it.
        id: String,
    },
    /// No container has this name, id or id prefix (Docker's wording).
    #[error("No such container: {0}")]
    NotFound(String),
    /// An id prefix matches more than one container (Docker's wording).
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    /// A file operation on a record, lock or name failed.
    #[error("cannot {what} {path}")]
    Io {
        /// The operation, as a verb: `read`, `lock`, `list`, `link`, `remove`.
        what: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing a record atomically failed.
    #[error(transparent)]
    Write(#[from] StateError),
    /// A `container.json` exists but does not parse.
    #[error("corrupt container record {path}")]
    Corrupt {
        /// The record file.
        path: PathBuf,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RecordError {
    let path = path.to_path_buf();
    move |source| RecordError::Io { what, path, source }
}

/// The recorded state, as Docker names it (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Made by `create` (or a `run` whose start failed); never ran, or nothing runs now.
    Created,
    /// Its init runs (as recorded by its monitor).
    Running,
    /// Its cgroup is frozen.
    Paused,
    /// Exited; the monitor waits for the restart policy's delay.
    Restarting,
    /// Its init exited; `exit_code` says how, when the monitor saw it.
    Exited,
}

impl RunState {
    /// Docker's lowercase word for the state (`ps --filter status=`, `State.Status`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Restarting => "restarting",
            RunState::Exited => "exited",
        }
    }
}

/// `--restart`: Docker's restart policies, carried out by the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (Docker's default).
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times when `max` is not 0.
    OnFailure {
        /// `on-failure:N`'s N; 0 means no limit.
        max: u32,
    },
    /// Always restart, unless stopped by `stop` or `rm`.
    Always,
    /// Like `always`; rwasm has no daemon restart, so the two differ in name only.
    UnlessStopped,
}

impl RestartPolicy {
    /// Parse Docker's spelling: `no`, `on-failure`, `on-failure:N`, `always`, `unless-stopped`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "no" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure { max: 0 }),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(|max| RestartPolicy::OnFailure { max })
                    .map_err(|_| format!("maximum retry count must be an integer: {n:?}")),
                None => Err(format!(
                    "invalid restart policy {s:?}: use no, on-failure[:N], always or unless-stopped"
                )),
            },
        }
    }

    /// Docker's `HostConfig.RestartPolicy.Name`.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// Whether a container that exited with `code` after `restarts` restarts is restarted.
    pub fn wants_restart(self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

/// One mount of a container, as `inspect` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountRecord {
    /// `bind`, `volume` or `tmpfs`.
    pub typ: String,
    /// Host path (or volume name).
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    /// Read-write.
    pub rw: bool,
}

/// What rwasm keeps about a Docker-style container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    /// 64 hex digits; also the OCI id under the state root while it runs.
    pub id: String,
    /// Unique name, without Docker's leading `/`.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's unpacked layers, bottom first (the overlay's lower directories).
    pub layers: Vec<PathBuf>,
    /// `process.args` of the container.
    pub command: Vec<String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// The state as last recorded; [`ContainerRecord::live`] corrects it by init's liveness.
    pub state: RunState,
    /// Init's pid (host pid namespace) while it runs.
    pub pid: Option<i32>,
    /// Init's start time in clock ticks, to detect pid reuse.
    pub pid_start: Option<u64>,
    /// The process that reaps init: the monitor, or a foreground `rwasm run`.
    pub monitor_pid: Option<i32>,
    /// The monitor's start time in clock ticks.
    pub monitor_start: Option<u64>,
    /// Exit code of the last run (128+N for signal N); `None` when unknown.
    pub exit_code: Option<i32>,
    /// RFC 3339 time the last run started.
    pub started_at: Option<String>,
    /// RFC 3339 time the last run ended.
    pub finished_at: Option<String>,
    /// Why the last start failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
    /// Restarts done by the monitor under the restart policy.
    #[serde(default)]
    pub restart_count: u32,
    /// The kernel's OOM killer killed a process of the last run (its cgroup's `oom_kill`
    /// count rose): Docker's `State.OOMKilled`.
    #[serde(default)]
    pub oom_killed: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--rm`: the monitor removes everything when the container exits for good.
    #[serde(default)]
    pub auto_remove: bool,
    /// `--stop-signal`, e.g. `SIGTERM` (the default when `None`).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (default 10, as Docker's).
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    /// Published ports, Docker's `ps` form (`0.0.0.0:8080->80/tcp`).
    #[serde(default)]
    pub ports: Vec<String>,
    /// Mounts besides the standard ones.
    #[serde(default)]
    pub mounts: Vec<MountRecord>,
    /// `-l/--label KEY=VALUE`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether it was started detached (a monitor holds its stdio and writes its logs).
    #[serde(default)]
    pub detached: bool,
    /// `-i`: the container's stdin is kept open (by its monitor, for attached clients);
    /// Docker's `Config.OpenStdin`.
    #[serde(default)]
    pub open_stdin: bool,
    /// The plugin manifest given at create (`--plugins`, absolute), or `None` for the
    /// default one: the container's monitor is started with it at every start and
    /// restart, so its hook points run the plugins it was created with whatever a later
    /// `start` is given, as an OCI container keeps the hooks of its config.json.
    #[serde(default)]
    pub plugins: Option<PathBuf>,
}

/// The state a command reports: the record corrected by whether init still lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Never started, or its start failed.
    Created,
    /// Init lives.
    Running,
    /// Init lives, frozen.
    Paused,
    /// Between runs under a restart policy.
    Restarting,
    /// Init is gone; the code is `None` when nobody saw it exit (the monitor was killed).
    Exited(Option<i32>),
}

impl Live {
    /// Docker's `State.Status` word.
    pub fn word(self) -> &'static str {
        match self {
            Live::Created => "created",
            Live::Running => "running",
            Live::Paused => "paused",
            Live::Restarting => "restarting",
            Live::Exited(_) => "exited",
        }
    }

    /// Whether init runs (running or paused).
    pub fn is_running(self) -> bool {
        matches!(self, Live::Running | Live::Paused)
    }
}

fn alive(pid: Option<i32>, start: Option<u64>) -> bool {
    match (pid, start) {
        (Some(p), Some(t)) => liveness(p, t) == Liveness::Alive,
        _ => false,
    }
}

impl ContainerRecord {
    /// A record in state `created`, made now, of the container `id` named `name` running
    /// `command` from `image` (as the user named it) over its unpacked `layers`: never
    /// run, no restart policy, no stop overrides, ports, mounts or labels, not detached.
    pub fn created(
        id: String,
        name: String,
        image: String,
        layers: Vec<PathBuf>,
        command: Vec<String>,
    ) -> ContainerRecord {
        ContainerRecord {
            id,
            name,
            image,
            layers,
            command,
            created: super::state::now_rfc3339(),
            state: RunState::Created,
            pid: None,
            pid_start: None,
            monitor_pid: None,
            monitor_start: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            error: None,
            restart_count: 0,
            oom_killed: false,
            restart: RestartPolicy::No,
            auto_remove: false,
            stop_signal: None,
            stop_timeout: None,
            ports: vec![],
            mounts: vec![],
            labels: BTreeMap::new(),
            detached: false,
            open_stdin: false,
            plugins: None,
        }
    }

    /// Whether init (as recorded) is alive.
    pub fn init_alive(&self) -> bool {
        alive(self.pid, self.pid_start)
    }

    /// Whether the monitor (as recorded) is alive.
    pub fn monitor_alive(&self) -> bool {
        alive(self.monitor_pid, self.monitor_start)
    }

    /// Whether the record is in the moment between its init's exit and its live monitor's
    /// record of it (the record still says running or paused): [`live`](Self::live) would
    /// say exited with an unknown code, which the monitor is about to make known.
    pub fn exit_unrecorded(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Paused)
            && !self.init_alive()
            && self.monitor_alive()
    }

    /// The state to report: a record saying running whose init is gone is exited, with
    /// the code unknown unless recorded; a restarting record whose monitor is gone too.
    pub fn live(&self) -> Live {
        match self.state {
            RunState::Created => Live::Created,
            RunState::Exited => Live::Exited(self.exit_code),
            RunState::Running | RunState::Paused if self.init_alive() => {
                if self.state == RunState::Paused {
                    Live::Paused
                } else {
                    Live::Running
                }
            }
            RunState::Restarting if self.monitor_alive() => Live::Restarting,
            RunState::Restarting => Live::Exited(self.exit_code),
            RunState::Running | RunState::Paused => Live::Exited(None),
        }
    }

    /// The signal `stop` sends first: `--stop-signal`, else `SIGTERM`.
    pub fn stop_signal(&self) -> &str {
        self.stop_signal.as_deref().unwrap_or("SIGTERM")
    }
}

/// The records under `<data-root>/containers`, and the names under `<data-root>/names`.
#[derive(Debug, Clone)]
pub struct Records {
    containers: PathBuf,
    names: PathBuf,
}

/// An exclusive advisory lock on one container's record; released when dropped.
pub struct RecordLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

impl Records {
    /// The store under `data_root`; touches nothing on disk.
    pub fn new(data_root: &Path) -> Self {
        Records {
            containers: data_root.join("containers"),
            names: data_root.join("names"),
        }
    }

    /// The directory (bundle) of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.containers.join(id)
    }

    /// The json-file log of container `id` (Docker's `<id>-json.log`).
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    /// Whether `id` has a record.
    pub fn exists(&self, id: &str) -> bool {
        super::state::check_id(id).is_ok() && self.dir(id).join(RECORD_FILE).exists()
    }

    /// Reserve `name` for `id`, atomically; a name whose container directory is gone is
    /// taken over.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), RecordError> {
        fs::create_dir_all(&self.names).map_err(io_err("create", &self.names))?;
        let link = self.names.join(name);
        for _ in 0..2 {
            match std::os::unix::fs::symlink(id, &link) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_link(&link)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if !holder.is_empty() && holder != id && self.dir(&holder).exists() {
                        return Err(RecordError::NameInUse {
                            name: name.into(),
                            id: holder,
                        });
                    }
                    if holder == id {
                        return Ok(());
                    }
                    // Stale: its container is gone.
                    let _ = fs::remove_file(&link);
                }
                Err(e) => return Err(io_err("link", &link)(e)),
            }
        }
        Err(RecordError::NameInUse {
            name: name.into(),
            id: String::new(),
        })
    }

    /// Release `name` if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let link = self.names.join(name);
        if fs::read_link(&link).is_ok_and(|p| p.as_os_str() == id) {
            let _ = fs::remove_file(&link);
        }
    }

    /// Take the record lock of `id`.
    pub fn lock(&self, id: &str) -> Result<RecordLock, RecordError> {
        let path = self.dir(id).join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("lock", &path))?;
        let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err("lock", &path)(e.into()))?;
        Ok(RecordLock { _lock: lock })
    }

    /// Load the record of `id` (a full id).
    pub fn load(&self, id: &str) -> Result<ContainerRecord, RecordError> {
        let path = self.dir(id).join(RECORD_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RecordError::NotFound(id.into()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Corrupt { path, source })
    }

    /// [`load`](Self::load), read again (every 10 ms, for up to [`SETTLE`]) while the
    /// record is [`exit_unrecorded`](ContainerRecord::exit_unrecorded), so that a command
    /// reporting a container that has just exited reports its recorded exit code and
    /// finish time (or its restart), as Docker's daemon does, rather than "exited, code
    /// unknown". `NotFound` when the monitor removed it meanwhile (`--rm`).
    pub fn load_settled(&self, id: &str) -> Result<ContainerRecord, RecordError> {
        let t = std::time::Instant::now();
        loop {
            let r = self.load(id)?;
            if !r.exit_unrecorded() || t.elapsed() >= SETTLE {
                return Ok(r);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Write `r` atomically (the caller holds the lock, or the record is new).
    pub fn save(&self, r: &ContainerRecord) -> Result<(), RecordError> {
        let bytes = serde_json::to_vec_pretty(r).expect("records serialize");
        Ok(write_atomic(&self.dir(&r.id).join(RECORD_FILE), &bytes)?)
    }

    /// Read, change and write the record of `id` under its lock; returns the new record.
    pub fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord, RecordError> {
        let _lock = self.lock(id)?;
        let mut r = self.load(id)?;
        f(&mut r);
        self.save(&r)?;
        Ok(r)
    }

    /// Ids of every container with a record.
    pub fn ids(&self) -> Result<Vec<String>, RecordError> {
        let rd = match fs::read_dir(&self.containers) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err("list", &self.containers)(e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(RECORD_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Every record, newest first; unreadable ones are logged and skipped.
    pub fn all(&self) -> Result<Vec<ContainerRecord>, RecordError> {
        let mut v: Vec<ContainerRecord> = Vec::new();
        for id in self.ids()? {
            match self.load(&id) {
                Ok(r) => v.push(r),
                // Removed meanwhile.
                Err(RecordError::NotFound(_)) => {}
                Err(e) => tracing::warn!("{}", crate::error_chain(&e)),
            }
        }
        v.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(v)
    }

    /// The full id of the container `what` names: a name (with or without Docker's
    /// leading `/`), a full id, or a unique id prefix.
    pub fn resolve(&self, what: &str) -> Result<String, RecordError> {
        let name = what.strip_prefix('/').unwrap_or(what);
        if what.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(RecordError::NotFound(what.into()));
        }
        if self.exists(what) {
            return Ok(what.into());
        }
        if let Ok(target) = fs::read_link(self.names.join(name)) {
            let id = target.to_string_lossy().into_owned();
            if self.exists(&id) {
                return Ok(id);
            }
        }
        if what.chars().all(|c| c.is_ascii_hexdigit()) {
            let hits: Vec<String> = self
                .ids()?
                .into_iter()
                .filter(|id| id.starts_with(what))
                .collect();
            match hits.len() {
                0 => {}
                1 => return Ok(hits.into_iter().next().expect("one")),
                _ => return Err(RecordError::Ambiguous(what.into())),
            }
        }
        Err(RecordError::NotFound(what.into()))
    }

    /// Rename container `id` to `new` (atomic reservation of the new name first).
    pub fn rename(&self, id: &str, new: &str) -> Result<(), RecordError> {
        let old = self.load(id)?.name;
        if old == new {
            return Ok(());
        }
        self.reserve_name(new, id)?;
        match self.update(id, |r| r.name = new.to_string()) {
            Ok(_) => {
                self.release_name(&old, id);
                Ok(())
            }
            Err(e) => {
                self.release_name(new, id);
                Err(e)
            }
        }
    }

    /// Remove container `id`'s directory (record, logs, bundle, overlay layers) and its
    /// name. The caller has unmounted the rootfs.
    pub fn remove(&self, id: &str) -> Result<(), RecordError> {
        if let Ok(r) = self.load(id) {
            self.release_name(&r.name, id);
        }
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            detached: true,
            ..ContainerRecord::created(
                id.into(),
                name.into(),
                "busybox".into(),
                vec!["/l".into()],
                vec!["true".into()],
            )
        }
    }

    fn add(rs: &Records, id: &str, name: &str) {
        fs::create_dir_all(rs.dir(id)).unwrap();
        rs.reserve_name(name, id).unwrap();
        rs.save(&rec(id, name)).unwrap();
    }

    #[test]
    fn names_ids_and_prefixes_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        let rs = Records::new(tmp.path());
        add(&rs, "abc123", "web");
        add(&rs, "abd456", "db");
        assert_eq!(rs.resolve("web").unwrap(), "abc123");
        assert_eq!(rs.resolve("/web").unwrap(), "abc123");
        assert_eq!(rs.resolve("abc123").unwrap(), "abc123");
        assert_eq!(rs.resolve("abd").unwrap(), "abd456");
        assert!(matches!(rs.resolve("ab"), Err(RecordError::Ambiguous(_))));
        assert!(matches!(rs.resolve("zz"), Err(RecordError::NotFound(_))));
        assert_eq!(
            rs.resolve("nope").unwrap_err().to_string(),
            "No such container: nope"
        );
    }

    #[test]
    fn names_are_unique_until_removed_and_rename_moves_them() {
        let tmp = tempfile::tempdir().unwrap();
        let rs = Records::new(tmp.path());
        add(&rs, "aaa", "web");
        fs::create_dir_all(rs.dir("bbb")).unwrap();
        let e = rs.reserve_name("web", "bbb").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Conflict. The container name \"/web\" is already in use by container \"aaa\""
            ),
            "{e}"
        );
        rs.rename("aaa", "web2").unwrap();
        assert_eq!(rs.load("aaa").unwrap().name, "web2");
        rs.reserve_name("web", "bbb").unwrap();
        rs.remove("aaa").unwrap();
        rs.reserve_name("web2", "bbb").unwrap();
        assert!(rs.ids().unwrap().is_empty());
    }

    #[test]
    fn a_running_record_whose_init_is_gone_is_exited_with_unknown_code() {
        let mut r = rec("x", "x");
        r.state = RunState::Running;
        r.pid = Some(i32::MAX - 1);
        r.pid_start = Some(1);
        assert_eq!(r.live(), Live::Exited(None));
        r.state = RunState::Exited;
        r.exit_code = Some(3);
        assert_eq!(r.live(), Live::Exited(Some(3)));
    }

    #[test]
    fn restart_policies_follow_docker() {
        let p = RestartPolicy::parse("on-failure:2").unwrap();
        assert!(p.wants_restart(1, 0) && p.wants_restart(1, 1));
        assert!(!p.wants_restart(1, 2) && !p.wants_restart(0, 0));
        assert!(RestartPolicy::parse("always").unwrap().wants_restart(0, 99));
        assert!(!RestartPolicy::parse("no").unwrap().wants_restart(1, 0));
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
    }
}
