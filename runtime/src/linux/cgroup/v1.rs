//! The cgroup v1 manager (also used on hybrid hosts): one directory per hierarchy.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::error::CgroupError;
use super::fs::{self, IoResultExt as _};
use super::resources::{self, Current};
use super::{CgroupManager, kill_all, rmdir_tree, warn_unapplied};

/// The container's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct V1Dir {
    /// The hierarchy's controllers, e.g. `["cpu"]`, `["cpu", "cpuacct"]`, `["name=systemd"]`.
    pub controllers: Vec<String>,
    /// The hierarchy's mount point; `dir` lies below it.
    pub mount_point: PathBuf,
    /// The container's cgroup directory in this hierarchy.
    pub dir: PathBuf,
}

/// A container's cgroup on a v1 (or hybrid) host: a directory in every mounted v1
/// hierarchy, `name=systemd` included (as runc does), the unified mount of a hybrid host
/// excluded (see [`super::Layout`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Manager {
    dirs: Vec<V1Dir>,
}

impl V1Manager {
    pub(crate) fn new(dirs: Vec<V1Dir>) -> V1Manager {
        V1Manager { dirs }
    }

    pub(crate) fn dirs(&self) -> &[V1Dir] {
        &self.dirs
    }

    /// The hierarchy holding `controller` (`systemd` also finds `name=systemd`).
    fn hierarchy(&self, controller: &str) -> Option<&V1Dir> {
        let named = format!("name={controller}");
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller || *c == named))
    }

    /// mkdir every missing level from the mount point down to the container's directory.
    fn mkdir_levels(d: &V1Dir) -> Result<Vec<PathBuf>, CgroupError> {
        let rel = d.dir.strip_prefix(&d.mount_point).unwrap_or(Path::new(""));
        let mut levels = Vec::new();
        let mut cur = d.mount_point.clone();
        for comp in rel.components() {
            cur.push(comp);
            fs::mkdir(&cur)?;
            levels.push(cur.clone());
        }
        Ok(levels)
    }

    /// A new cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems`, and adding a
    /// task to it fails with ENOSPC; fill every empty level from its parent, top down.
    fn fill_cpuset(d: &V1Dir, levels: &[PathBuf]) -> Result<(), CgroupError> {
        let mut parent = d.mount_point.clone();
        for level in levels {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let path = level.join(file);
                let now = match std::fs::read_to_string(&path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        tracing::debug!(path = %path.display(), "no cpuset file to fill");
                        continue;
                    }
                    Err(e) => return Err(e).on_read(&path),
                };
                if now.trim().is_empty() {
                    let from = fs::read(&parent.join(file))?;
                    fs::write(&path, from.trim())?;
                }
            }
            parent = level.clone();
        }
        Ok(())
    }

    /// freezer.state of the container's freezer cgroup, if there is one.
    fn freezer_state(&self) -> Option<PathBuf> {
        self.hierarchy("freezer")
            .map(|d| d.dir.join("freezer.state"))
            .filter(|p| p.exists())
    }

    /// Freezes the container so nothing forks while it is being killed. Best effort: a
    /// freezer that does not settle in 500 ms is left FREEZING (the kill still proceeds).
    fn freeze(state: &Path) -> Result<(), CgroupError> {
        fs::write(state, "FROZEN")?;
        let until = Instant::now() + Duration::from_millis(500);
        while fs::read(state)?.trim() != "FROZEN" {
            if Instant::now() > until {
                tracing::warn!(path = %state.display(), "freezer did not reach FROZEN; killing anyway");
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    pub(crate) fn destroy_within(&self, timeout: Duration) -> Result<(), CgroupError> {
        let existing: Vec<&V1Dir> = self.dirs.iter().filter(|d| d.dir.exists()).collect();
        let Some(first) = existing.first() else {
            tracing::debug!("cgroup already removed");
            return Ok(());
        };
        let start = Instant::now();
        let mut pids = self.pids()?;
        if !pids.is_empty() {
            tracing::debug!(?pids, "killing what is left in the cgroup");
            let freezer = self.freezer_state();
            let frozen = match &freezer {
                Some(state) => match Self::freeze(state) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot freeze; killing unfrozen");
                        false
                    }
                },
                None => false,
            };
            // Pids read while frozen are complete; kill them, then thaw so SIGKILL lands.
            let killed = self.pids().and_then(|p| kill_all(&p, &first.dir));
            if frozen && let Some(state) = &freezer {
                fs::write(state, "THAWED")?;
            }
            killed?;
            loop {
                pids = self.pids()?;
                if pids.is_empty() {
                    break;
                }
                if start.elapsed() > timeout {
                    return Err(CgroupError::NotEmpty {
                        path: first.dir.clone(),
                        pids,
                        waited_ms: start.elapsed().as_millis(),
                    });
                }
                kill_all(&pids, &first.dir)?;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for d in &self.dirs {
            rmdir_tree(&d.dir, start + timeout)?;
        }
        Ok(())
    }
}

impl CgroupManager for V1Manager {
    fn create(&self) -> Result<(), CgroupError> {
        for d in &self.dirs {
            tracing::debug!(dir = %d.dir.display(), controllers = ?d.controllers, "creating v1 cgroup");
            let levels = Self::mkdir_levels(d)?;
            if d.controllers.iter().any(|c| c == "cpuset") {
                Self::fill_cpuset(d, &levels)?;
            }
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            let path = d.dir.join("cgroup.procs");
            tracing::debug!(pid, path = %path.display(), "adding task");
            fs::write_raw(&path, &pid.to_string()).map_err(|source| CgroupError::AddTask {
                pid,
                path,
                source,
            })?;
        }
        Ok(())
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.dir.join("cgroup.procs"))
            .collect()
    }

    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        warn_unapplied(resources, false);
        let mem = self.hierarchy("memory");
        let swap_accounting =
            mem.is_some_and(|d| d.dir.join("memory.memsw.limit_in_bytes").exists());
        let mut memory_limit = None;
        if resources.memory().is_some()
            && let Some(d) = mem
        {
            let path = d.dir.join("memory.limit_in_bytes");
            if path.exists() {
                let text = fs::read(&path)?;
                memory_limit =
                    Some(text.trim().parse::<u64>().map_err(|_| CgroupError::Parse {
                        path: path.clone(),
                        content: text.trim().to_owned(),
                        reason: "expected a number of bytes",
                    })?);
            }
        }
        let writes = resources::v1_writes(
            resources,
            &Current {
                memory_limit,
                swap_accounting,
            },
        )?;
        for w in writes {
            let d =
                self.hierarchy(w.controller)
                    .ok_or_else(|| CgroupError::ControllerUnavailable {
                        field: w.field,
                        controller: w.controller.to_owned(),
                        reason: format!(
                            "no cgroup v1 hierarchy has it mounted (on a hybrid host it may sit \
                             on the cgroup2 mount, which rwasm's v1 layout does not join; \
                             `mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}` binds it to v1)",
                            c = w.controller
                        ),
                    })?;
            let path = d.dir.join(&*w.file);
            if d.dir.is_dir() && !path.exists() {
                return Err(CgroupError::FileUnavailable {
                    field: w.field,
                    path,
                });
            }
            fs::write_setting(&path, &w)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for d in &self.dirs {
            pids.extend(fs::pids_recursive(&d.dir)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        self.destroy_within(super::DESTROY_TIMEOUT)
    }

    fn path(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchy(controller).map(|d| d.dir.clone())
    }

    fn supports(&self, controller: &str, file: &str) -> bool {
        let Some(d) = self.hierarchy(controller) else {
            return false;
        };
        // The container's directory if it exists, else its nearest existing ancestor in the
        // hierarchy (v1 directories all carry the same control files).
        let mut at = d.dir.as_path();
        while !at.is_dir() && at != d.mount_point {
            match at.parent() {
                Some(p) => at = p,
                None => return false,
            }
        }
        at.join(file).exists()
    }
}
