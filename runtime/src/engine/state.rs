//! The state store: one directory per container under the state root (`--root`,
//! default `/run/rwasm`), holding `state.json`, the final `config.json` and the start
//! socket. Files are written atomically (temp file, rename).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{ContainerState, State};
use serde::{Deserialize, Serialize};

use crate::linux::cgroup::CgroupHandle;
use crate::linux::proc::{Liveness, liveness};

/// The runtime-spec version rwasm implements.
pub const OCI_VERSION: &str = "1.2.0";

/// Errors of the state store; each names the container or file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The id fails [`check_id`] (runc's rule); carries the id as given.
    #[error(
        "container id {0:?} is invalid: use 1-255 characters from [A-Za-z0-9_.-], not starting with '.'"
    )]
    BadId(String),
    /// [`StateStore::claim`] found the container's directory already there.
    #[error("container {0} already exists")]
    Exists(String),
    /// The container has no `state.json` under the state root.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A file operation under the state root failed.
    #[error("cannot {what} {path}")]
    Io {
        /// The operation, as a verb: `create`, `read`, `write`, `remove`, `list`.
        what: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A `state.json` exists but does not parse as a [`Record`].
    #[error("corrupt state file {path}")]
    Corrupt {
        /// The `state.json` file.
        path: PathBuf,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io { what, path, source }
}

/// What rwasm keeps about one container (the OCI state plus what later commands need).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The runtime-spec version of the state (`ociVersion`), [`OCI_VERSION`] when written.
    pub oci_version: String,
    /// The container id (runtime-spec `state.id`), unique under the state root.
    pub id: String,
    /// The last status recorded by a command; see [`Record::status`] for the live one.
    pub status: ContainerState,
    /// Init's pid in the runtime's pid namespace.
    pub pid: Option<i32>,
    /// Init's start time in clock ticks (`/proc/PID/stat` field 22), to detect pid reuse.
    pub pid_start: Option<u64>,
    /// The bundle directory, absolute and canonical (runtime-spec `state.bundle`).
    pub bundle: PathBuf,
    /// The container's root filesystem on the host, absolute and canonical (`root.path` resolved).
    pub rootfs: PathBuf,
    /// The spec's annotations after the pre-create plugins ran (runtime-spec `state.annotations`).
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// The user owning the container, as runc's `state` shows it; always `root` for now.
    pub owner: String,
    /// Where the container's cgroup lives, so later commands find it; `None` until create has chosen it.
    pub cgroup: Option<CgroupHandle>,
    /// The plugin manifest the container was created with (start/delete use it too).
    pub plugins: Option<PathBuf>,
    /// `start` ran the user process.
    #[serde(default)]
    pub started: bool,
}

impl Record {
    /// The live status: the recorded one, corrected by whether init is still alive.
    pub fn status(&self) -> ContainerState {
        let alive = match (self.pid, self.pid_start) {
            (Some(pid), Some(t)) => liveness(pid, t) == Liveness::Alive,
            _ => false,
        };
        match (alive, self.status) {
            (false, ContainerState::Creating) if self.pid.is_none() => ContainerState::Creating,
            (false, _) => ContainerState::Stopped,
            (true, ContainerState::Creating) => ContainerState::Creating,
            (true, _) if self.started => ContainerState::Running,
            (true, _) => ContainerState::Created,
        }
    }

    /// The runtime-spec state (`state` command output, hook stdin) with a given status.
    pub fn oci_state(&self, status: ContainerState) -> State {
        let mut s = State::default();
        s.set_version(self.oci_version.clone());
        s.set_id(self.id.clone());
        s.set_status(status);
        s.set_pid(if status == ContainerState::Stopped {
            None
        } else {
            self.pid
        });
        s.set_bundle(self.bundle.clone());
        s.set_annotations(Some(self.annotations.clone()));
        s
    }
}

/// Validate a container id (runc's rule: `^[\w+-\.]+$`, plus no leading dot).
pub fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_string()))
    }
}

/// The state root.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    /// Open (and create, mode 0700) the state root.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_err("create", root))?;
        Ok(StateStore {
            root: root.to_path_buf(),
        })
    }

    /// The state root directory, as given to [`StateStore::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Whether container `id` has a directory (possibly a half-created one without state).
    pub fn exists(&self, id: &str) -> bool {
        self.dir(id).exists()
    }

    /// Claim `id` by creating its directory; fails if another create got there first.
    pub fn claim(&self, id: &str) -> Result<PathBuf, StateError> {
        check_id(id)?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(id.into()))
            }
            Err(e) => Err(io_err("create", &dir)(e)),
        }
    }

    /// Load the record of `id`.
    pub fn load(&self, id: &str) -> Result<Record, StateError> {
        check_id(id)?;
        let path = self.dir(id).join("state.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.into()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Write the record atomically.
    pub fn save(&self, r: &Record) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(r).expect("records serialize");
        write_atomic(&self.dir(&r.id).join("state.json"), &bytes)
    }

    /// Remove the container's directory (idempotent).
    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &dir)(e)),
        }
    }

    /// Ids of every container with a state file, sorted.
    pub fn list(&self) -> Result<Vec<String>, StateError> {
        let mut ids: Vec<String> = fs::read_dir(&self.root)
            .map_err(io_err("list", &self.root))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Write `bytes` to `path` so a reader sees the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let result = (|| {
        // No fsync: the rename already makes readers see the old or the new file, and
        // container state does not outlive a reboot (the processes it describes do not).
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err("write", path))
}

/// Now as RFC 3339 (UTC, nanoseconds), as runc's `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["a", "web-1", "x_y.z", "0123456789abcdef"] {
            check_id(ok).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "../x", "sp ace", "ü"] {
            assert!(check_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn claim_save_load_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(&tmp.path().join("root")).unwrap();
        store.claim("c1").unwrap();
        assert!(matches!(store.claim("c1"), Err(StateError::Exists(_))));
        let r = Record {
            oci_version: OCI_VERSION.into(),
            id: "c1".into(),
            status: ContainerState::Created,
            pid: None,
            pid_start: None,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            annotations: HashMap::new(),
            created: now_rfc3339(),
            owner: "root".into(),
            cgroup: None,
            plugins: None,
            started: false,
        };
        store.save(&r).unwrap();
        assert_eq!(store.load("c1").unwrap().bundle, PathBuf::from("/b"));
        assert_eq!(
            store.load("c1").unwrap().status(),
            ContainerState::Stopped,
            "no pid: stopped"
        );
        assert_eq!(store.list().unwrap(), vec!["c1".to_string()]);
        store.remove("c1").unwrap();
        assert!(matches!(store.load("c1"), Err(StateError::NotFound(_))));
    }
}
