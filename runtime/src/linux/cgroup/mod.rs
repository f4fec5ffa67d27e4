//! cgroups (v1, hybrid and v2) behind one trait.
//!
//! - [`Layout`] reads which layout the host has from a mount table; nothing is assumed.
//! - [`resources`] is the one translation of `linux.resources` into controller file writes,
//!   the device allowlist included (v1 `devices.deny`/`devices.allow`; on v2 not enforced
//!   yet, which needs an eBPF program: a warning is logged instead).
//! - [`CgroupManager`] creates, fills, inspects and removes a container's cgroup;
//!   [`Manager`] dispatches to the v1 (also hybrid) or v2 implementation.
//! - [`CgroupHandle`] is what the engine keeps in a container's state to find it again.
//!
//! The cgroup root, mount table and proc cgroup file are parameters
//! ([`Manager::for_container_in`]) so unit tests run on a fake tree in a temp directory.
//! cgroups-rs is not used: its hierarchy detection reads the process's own mount table
//! and cannot be pointed at a fake one, and the rest is a few file writes.
//!
//! Ownership: a container owns its leaf directory (and any sub-cgroups created inside it);
//! destroy removes exactly that. Parents such as `rwasm/` or an engine's
//! `/kubepods/pod…` are shared with other containers and never removed, as runc leaves
//! them too: an empty directory costs nothing, and removing it would race with a sibling
//! being created.

mod error;
mod fs;
mod layout;
pub mod resources;
pub mod usage;
mod v1;
mod v2;

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use error::CgroupError;
pub use layout::{Layout, Unified, V1Hierarchy};
pub use v1::V1Manager;
pub use v2::V2Manager;

use layout::{dir_of, read_proc_cgroup};
use v1::V1Dir;

/// How long destroy waits for killed processes to leave the cgroup.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(2);

/// The parent of containers whose config.json has no `linux.cgroupsPath`.
const DEFAULT_PARENT: &str = "rwasm";

/// What the runtime does with a container's cgroup. Implemented for v1 ([`V1Manager`]) and
/// v2 ([`V2Manager`]); [`Manager`] dispatches.
pub trait CgroupManager {
    /// Creates the container's cgroup (mkdir -p) in every hierarchy. An existing directory
    /// is reused. v1: `cpuset.cpus` and `cpuset.mems` are copied from the parent into every
    /// level where they are empty (else adding a task fails with ENOSPC). v2: each ancestor
    /// enables the controllers it offers in its `cgroup.subtree_control` (best effort, as
    /// runc; a controller that could not be enabled is reported by [`apply`] for the field
    /// that needs it).
    ///
    /// [`apply`]: CgroupManager::apply
    fn create(&self) -> Result<(), CgroupError>;

    /// Moves process `pid` (host pid namespace) into the cgroup by writing
    /// `cgroup.procs` in every hierarchy.
    fn add_task(&self, pid: i32) -> Result<(), CgroupError>;

    /// The container's `cgroup.procs` file in every hierarchy (v1: one per hierarchy,
    /// v2: one), as [`add_task`] writes them.
    ///
    /// [`add_task`]: CgroupManager::add_task
    fn procs_files(&self) -> Vec<PathBuf>;

    /// Writes `resources` as translated by [`resources::v1_writes`] or
    /// [`resources::v2_writes`]: bytes for memory, microseconds for CPU quota and period,
    /// CPU shares (v1 weights; converted on v2), device numbers `MAJ:MIN`, bytes or I/O
    /// operations per second for throttles. Works for a fresh cgroup and for updates (v1
    /// memory and memory+swap are ordered against the current limit). A file this host
    /// lacks (e.g. `blkio.weight` without BFQ/CFQ) is [`CgroupError::FileUnavailable`]
    /// naming the spec field; fields not translated at all are logged at warn level
    /// ([`resources::unapplied_fields`]).
    ///
    /// The device allowlist (`linux.resources.devices`) is enforced on v1 only, through
    /// `devices.deny` and `devices.allow` (a v1 host without a devices hierarchy is
    /// [`CgroupError::ControllerUnavailable`]); on v2 it is validated, then a warning says
    /// it is not enforced (see [`resources`]).
    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError>;

    /// The processes in the cgroup and its sub-cgroups (host pids), sorted, each once.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;

    /// Kills whatever is left (v1: freeze first when a freezer hierarchy is mounted, so
    /// nothing forks meanwhile, SIGKILL every pid, thaw; v2: `cgroup.kill`, else SIGKILL
    /// each pid), waits up to 2 s for the cgroup to empty, then removes the container's
    /// directory and its sub-cgroups, leaf first, in every hierarchy. Shared parents stay.
    /// Succeeds when the cgroup is already gone. The calling process itself is never killed.
    fn destroy(&self) -> Result<(), CgroupError>;

    /// The container's directory for `controller` (v1: in the hierarchy that has it, e.g.
    /// `cpu`, `memory`, `name=systemd` or `systemd`; v2: the one directory, whatever the
    /// controller). For tests and diagnostics.
    fn path(&self, controller: &str) -> Option<PathBuf>;

    /// Whether the host offers `file` of `controller` to this container, e.g.
    /// `supports("blkio", "blkio.weight")`. Exact once [`create`] has run; before, the
    /// nearest existing ancestor is checked (v2's root only tells whether the controller
    /// is available).
    ///
    /// [`create`]: CgroupManager::create
    fn supports(&self, controller: &str, file: &str) -> bool;
}

/// A container's `cgroup.procs` files, opened for writing ahead of time so that a process
/// can move itself in later ([`ProcsFiles::join`]) from another mount or cgroup namespace,
/// where the paths no longer lead there: `exec`'s forked child joins this way, so that the
/// `rwasm exec` process waiting for it stays out of the container's cgroup (and is not
/// killed with the container's processes, as runc's and crun's exec callers are not).
#[derive(Debug)]
pub struct ProcsFiles(Vec<(PathBuf, std::fs::File)>);

impl ProcsFiles {
    /// Opens `m`'s [`procs_files`] for writing; a missing file or directory is
    /// [`CgroupError::AddTask`] with pid 0 and the file.
    ///
    /// [`procs_files`]: CgroupManager::procs_files
    pub fn open(m: &dyn CgroupManager) -> Result<Self, CgroupError> {
        m.procs_files()
            .into_iter()
            .map(
                |path| match std::fs::OpenOptions::new().write(true).open(&path) {
                    Ok(f) => Ok((path, f)),
                    Err(source) => Err(CgroupError::AddTask {
                        pid: 0,
                        path,
                        source,
                    }),
                },
            )
            .collect::<Result<_, _>>()
            .map(ProcsFiles)
    }

    /// Moves the calling process (all its threads) into the cgroup in every hierarchy:
    /// writes `0`, which `cgroup.procs` takes as "the writer" (kernel
    /// Documentation/admin-guide/cgroup-v1/cgroups.rst and cgroup-v2.rst). The error
    /// names the file; its pid is the caller's as it sees itself.
    pub fn join(&self) -> Result<(), CgroupError> {
        use std::io::Write;
        for (path, f) in &self.0 {
            let mut f = f;
            f.write_all(b"0").map_err(|source| CgroupError::AddTask {
                pid: std::process::id().cast_signed(),
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// A container's cgroup on this host: v1 (also on hybrid hosts) or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// cgroup v1 hierarchies (a v1 or hybrid host).
    V1(V1Manager),
    /// The unified hierarchy.
    V2(V2Manager),
}

/// A serde-serializable reference to a container's cgroup, kept in the container's state
/// so a later `rwasm` process finds the same directories ([`Manager::from_handle`]). The
/// format is internal to rwasm (`{"version":"v1","hierarchies":[...]}` or
/// `{"version":"v2","mount_point":...,"path":...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CgroupHandle {
    repr: HandleRepr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", deny_unknown_fields)]
enum HandleRepr {
    #[serde(rename = "v1")]
    V1 { hierarchies: Vec<V1Dir> },
    #[serde(rename = "v2")]
    V2 { mount_point: PathBuf, path: PathBuf },
}

/// `linux.cgroupsPath`, checked and split into a placement and the path below it.
enum Placement {
    /// Relative to each hierarchy's root.
    Absolute(PathBuf),
    /// Below the calling process's own cgroup.
    Relative(PathBuf),
}

fn placement(cgroups_path: Option<&str>, id: &str) -> Result<Placement, CgroupError> {
    let bad_id = |reason| CgroupError::InvalidId {
        id: id.to_owned(),
        reason,
    };
    if id.is_empty() {
        return Err(bad_id("it is empty"));
    }
    if id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(bad_id(
            "it must be one path component (no '/', not '.' or '..')",
        ));
    }
    let Some(p) = cgroups_path.filter(|p| !p.is_empty()) else {
        return Ok(Placement::Relative(Path::new(DEFAULT_PARENT).join(id)));
    };
    let bad = |reason| CgroupError::InvalidCgroupsPath {
        path: p.to_owned(),
        reason,
    };
    if !p.contains('/') && p.matches(':').count() == 2 {
        return Err(bad(
            "slice:prefix:name paths need the systemd cgroup driver, which rwasm does not have (use a path)",
        ));
    }
    if p.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    let mut rel = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(bad("'..' is not allowed")),
            Component::Prefix(_) => return Err(bad("not a Linux path")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(bad("it names no directory below the hierarchy's root"));
    }
    Ok(if p.starts_with('/') {
        Placement::Absolute(rel)
    } else {
        Placement::Relative(rel)
    })
}

impl Manager {
    /// Resolves the container's cgroup on this host (/sys/fs/cgroup, /proc/self/mountinfo,
    /// /proc/self/cgroup). Nothing is created; see [`Manager::for_container_in`].
    pub fn for_container(cgroups_path: Option<&str>, id: &str) -> Result<Manager, CgroupError> {
        Manager::for_container_in(
            Path::new("/sys/fs/cgroup"),
            Path::new("/proc/self/mountinfo"),
            Path::new("/proc/self/cgroup"),
            cgroups_path,
            id,
        )
    }

    /// Resolves the container's cgroup with an explicit cgroup root (only mounts under it
    /// count), mount table and proc cgroup file, e.g. for a fake tree. `cgroups_path` is
    /// config.json's `linux.cgroupsPath`:
    ///
    /// - absolute: relative to each hierarchy's root;
    /// - relative, or `None` (meaning `rwasm/<id>`): below the calling process's own cgroup
    ///   as `proc_cgroup` lists it — on v1 per hierarchy, as runc does; on v2 below the
    ///   *parent* of the own cgroup, as runc does, because the own cgroup holds the caller
    ///   and so cannot enable controllers for children (no internal processes).
    ///
    /// `..` components, systemd `slice:prefix:name` paths and ids that are not a single
    /// path component are refused. The layout is detected from `mountinfo`
    /// ([`Layout::detect`]); hybrid hosts get a v1 manager.
    pub fn for_container_in(
        root: &Path,
        mountinfo: &Path,
        proc_cgroup: &Path,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Manager, CgroupError> {
        let placement = placement(cgroups_path, id)?;
        let layout = Layout::detect(root, mountinfo)?;
        let own = match placement {
            Placement::Relative(_) => read_proc_cgroup(proc_cgroup)?,
            Placement::Absolute(_) => Vec::new(),
        };
        let manager = match layout {
            Layout::V1 { hierarchies } | Layout::Hybrid { hierarchies, .. } => {
                let mut dirs = Vec::with_capacity(hierarchies.len());
                for h in hierarchies {
                    let dir = match &placement {
                        Placement::Absolute(rel) => h.mount_point.join(rel),
                        Placement::Relative(rel) => {
                            let mut want: Vec<&String> = h.controllers.iter().collect();
                            want.sort();
                            let line = own.iter().find(|l| {
                                let mut have: Vec<&String> = l.controllers.iter().collect();
                                have.sort();
                                have == want
                            });
                            let line = line.ok_or_else(|| CgroupError::OwnCgroupMissing {
                                controller: h.controllers.join(","),
                                proc_cgroup: proc_cgroup.to_path_buf(),
                            })?;
                            dir_of(&h.mount_point, &h.mount_root, &line.path).join(rel)
                        }
                    };
                    dirs.push(V1Dir {
                        controllers: h.controllers,
                        mount_point: h.mount_point,
                        dir,
                    });
                }
                Manager::V1(V1Manager::new(dirs))
            }
            Layout::V2 { unified } => {
                let dir = match &placement {
                    Placement::Absolute(rel) => unified.mount_point.join(rel),
                    Placement::Relative(rel) => {
                        let line =
                            own.iter()
                                .find(|l| l.controllers.is_empty())
                                .ok_or_else(|| CgroupError::OwnCgroupMissing {
                                    controller: String::new(),
                                    proc_cgroup: proc_cgroup.to_path_buf(),
                                })?;
                        let parent = line.path.parent().unwrap_or(Path::new("/"));
                        dir_of(&unified.mount_point, &unified.mount_root, parent).join(rel)
                    }
                };
                Manager::V2(V2Manager::new(unified.mount_point, dir))
            }
        };
        tracing::debug!(?manager, "container cgroup resolved");
        Ok(manager)
    }

    /// The container's cgroup directories that exist already (in any hierarchy): a cgroup
    /// that [`CgroupManager::create`] would reuse, and whose processes
    /// [`CgroupManager::destroy`] would kill.
    pub fn existing_dirs(&self) -> Vec<PathBuf> {
        let dirs: Vec<PathBuf> = match self {
            Manager::V1(m) => m.dirs().iter().map(|d| d.dir.clone()).collect(),
            Manager::V2(m) => vec![m.dir().to_path_buf()],
        };
        dirs.into_iter().filter(|d| d.is_dir()).collect()
    }

    /// Freeze (`true`) or thaw the container's processes, as `docker pause`/`unpause`:
    /// v1 writes `FROZEN`/`THAWED` to `freezer.state`, v2 `1`/`0` to `cgroup.freeze`;
    /// then waits (at most 2 s) until the kernel reports the new state (v1
    /// `freezer.state`, v2 `frozen` in `cgroup.events`). A v1 host without a freezer
    /// hierarchy is [`CgroupError::ControllerUnavailable`].
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (file, value, done, want): (PathBuf, &str, PathBuf, &str) = match self {
            Manager::V1(_) => {
                let dir = self.path("freezer").filter(|d| d.is_dir()).ok_or_else(|| {
                    CgroupError::ControllerUnavailable {
                        field: "freezer.state",
                        controller: "freezer".into(),
                        reason: "no freezer hierarchy is mounted for this container".into(),
                    }
                })?;
                let state = dir.join("freezer.state");
                let v = if frozen { "FROZEN" } else { "THAWED" };
                (state.clone(), v, state, v)
            }
            Manager::V2(m) => (
                m.dir().join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                m.dir().join("cgroup.events"),
                if frozen { "frozen 1" } else { "frozen 0" },
            ),
        };
        fs::write(&file, value)?;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while done.exists() && !fs::read(&done)?.lines().any(|l| l.trim() == want) {
            if std::time::Instant::now() > until {
                tracing::warn!(path = %done.display(), "the cgroup did not report {want:?} within 2 s");
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer killed a process of this cgroup: `oom_kill`
    /// in v1 `memory.oom_control` or v2 `memory.events` (kernel doc cgroup-v1/memory.rst,
    /// cgroup-v2.rst); None when the file is missing or has no such line.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self {
            Manager::V1(m) => m
                .dirs()
                .iter()
                .find(|d| d.controllers.iter().any(|c| c == "memory"))?
                .dir
                .join("memory.oom_control"),
            Manager::V2(m) => m.dir().join("memory.events"),
        };
        std::fs::read_to_string(file)
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
    }

    /// The handle to keep in the container's state.
    pub fn handle(&self) -> CgroupHandle {
        let repr = match self {
            Manager::V1(m) => HandleRepr::V1 {
                hierarchies: m.dirs().to_vec(),
            },
            Manager::V2(m) => HandleRepr::V2 {
                mount_point: m.mount_point().to_path_buf(),
                path: m.dir().to_path_buf(),
            },
        };
        CgroupHandle { repr }
    }

    /// The manager for a handle from [`Manager::handle`]; reads nothing.
    pub fn from_handle(h: &CgroupHandle) -> Manager {
        match &h.repr {
            HandleRepr::V1 { hierarchies } => Manager::V1(V1Manager::new(hierarchies.clone())),
            HandleRepr::V2 { mount_point, path } => {
                Manager::V2(V2Manager::new(mount_point.clone(), path.clone()))
            }
        }
    }

    fn inner(&self) -> &dyn CgroupManager {
        match self {
            Manager::V1(m) => m,
            Manager::V2(m) => m,
        }
    }
}

impl CgroupManager for Manager {
    fn create(&self) -> Result<(), CgroupError> {
        self.inner().create()
    }
    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.inner().add_task(pid)
    }
    fn procs_files(&self) -> Vec<PathBuf> {
        self.inner().procs_files()
    }
    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        self.inner().apply(resources)
    }
    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.inner().pids()
    }
    fn destroy(&self) -> Result<(), CgroupError> {
        self.inner().destroy()
    }
    fn path(&self, controller: &str) -> Option<PathBuf> {
        self.inner().path(controller)
    }
    fn supports(&self, controller: &str, file: &str) -> bool {
        self.inner().supports(controller, file)
    }
}

/// SIGKILLs `pids` (listed in the cgroup at `dir`). Gone processes are fine; pids ≤ 0 (which
/// kill(2) would treat as process groups) and the calling process are skipped.
fn kill_all(pids: &[i32], dir: &Path) -> Result<(), CgroupError> {
    let me = std::process::id();
    for &pid in pids {
        if pid <= 0 || u32::try_from(pid).is_ok_and(|p| p == me) {
            tracing::warn!(pid, dir = %dir.display(), "not killing this pid found in the cgroup");
            continue;
        }
        tracing::debug!(pid, "SIGKILL");
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::Kill {
                    pid,
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// rmdir `dir` and its sub-cgroups, leaf first. EBUSY (the kernel still counting a task
/// that is exiting) is retried until `deadline`.
fn rmdir_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    for d in fs::dirs_leaf_first(dir)? {
        loop {
            match fs::rmdir(&d) {
                Ok(()) => break,
                Err(CgroupError::Remove { source, .. })
                    if source.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn warn_unapplied(resources: &LinuxResources, v2: bool) {
    let mut fields = resources::unapplied_fields(resources, v2);
    if let Some(i) = fields.iter().position(|f| *f == resources::DEVICES) {
        fields.remove(i);
        tracing::warn!(
            field = resources::DEVICES,
            "the device allowlist is not enforced on cgroup v2 yet (it needs a \
             BPF_CGROUP_DEVICE program): the container's device access is not restricted"
        );
    }
    if !fields.is_empty() {
        tracing::warn!(
            ?fields,
            "linux.resources fields not applied by rwasm's cgroup manager"
        );
    }
}

#[cfg(test)]
mod tests;
