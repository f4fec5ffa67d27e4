//! The cgroup v2 (unified) manager: one directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::error::CgroupError;
use super::fs;
use super::resources::{self, Current};
use super::{CgroupManager, kill_all, rmdir_tree, warn_unapplied};

/// A container's cgroup on a v2 host: one directory of the unified hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Manager {
    mount_point: PathBuf,
    dir: PathBuf,
}

impl V2Manager {
    pub(crate) fn new(mount_point: PathBuf, dir: PathBuf) -> V2Manager {
        V2Manager { mount_point, dir }
    }

    pub(crate) fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Enables in `level`'s cgroup.subtree_control every controller its cgroup.controllers
    /// offers, so the child gets their files. Best effort, as runc: all at once, else one
    /// by one; a controller that cannot be enabled (e.g. `level` has processes of its own)
    /// surfaces in apply as a field whose controller is unavailable.
    fn enable_controllers(level: &Path) -> Result<(), CgroupError> {
        let offered_path = level.join("cgroup.controllers");
        if !offered_path.exists() {
            return Ok(());
        }
        let offered = fs::read(&offered_path)?;
        let control = level.join("cgroup.subtree_control");
        let enabled = if control.exists() {
            fs::read(&control)?
        } else {
            String::new()
        };
        let enabled: Vec<&str> = enabled
            .split_whitespace()
            .map(|c| c.trim_start_matches('+'))
            .collect();
        let missing: Vec<String> = offered
            .split_whitespace()
            .filter(|c| !enabled.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // The kernel adds to the set; writing the whole set also suits a plain-file fake.
        let all: Vec<String> = enabled
            .iter()
            .map(|c| format!("+{c}"))
            .chain(missing.iter().cloned())
            .collect();
        if let Err(e) = fs::write_raw(&control, &all.join(" ")) {
            tracing::debug!(path = %control.display(), error = %e, "enabling controllers one by one");
            for c in &missing {
                if let Err(e) = fs::write_raw(&control, c) {
                    tracing::debug!(path = %control.display(), controller = %c, error = %e, "cannot enable controller");
                }
            }
        }
        Ok(())
    }

    pub(crate) fn destroy_within(&self, timeout: Duration) -> Result<(), CgroupError> {
        if !self.dir.exists() {
            tracing::debug!(dir = %self.dir.display(), "cgroup already removed");
            return Ok(());
        }
        let start = Instant::now();
        let mut pids = self.pids()?;
        if !pids.is_empty() {
            tracing::debug!(?pids, dir = %self.dir.display(), "killing what is left in the cgroup");
            // cgroup.kill (Linux 5.14) kills the whole subtree, forks included.
            let kill = self.dir.join("cgroup.kill");
            let killed_by_kernel = kill.exists() && fs::write(&kill, "1").is_ok();
            if !killed_by_kernel {
                kill_all(&pids, &self.dir)?;
            }
            loop {
                pids = self.pids()?;
                if pids.is_empty() {
                    break;
                }
                if start.elapsed() > timeout {
                    return Err(CgroupError::NotEmpty {
                        path: self.dir.clone(),
                        pids,
                        waited_ms: start.elapsed().as_millis(),
                    });
                }
                kill_all(&pids, &self.dir)?;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        rmdir_tree(&self.dir, start + timeout)
    }
}

impl CgroupManager for V2Manager {
    fn create(&self) -> Result<(), CgroupError> {
        tracing::debug!(dir = %self.dir.display(), "creating v2 cgroup");
        let rel = self
            .dir
            .strip_prefix(&self.mount_point)
            .unwrap_or(Path::new(""));
        let mut cur = self.mount_point.clone();
        for comp in rel.components() {
            Self::enable_controllers(&cur)?;
            cur.push(comp);
            fs::mkdir(&cur)?;
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        let path = self.dir.join("cgroup.procs");
        tracing::debug!(pid, path = %path.display(), "adding task");
        fs::write_raw(&path, &pid.to_string()).map_err(|source| CgroupError::AddTask {
            pid,
            path,
            source,
        })
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        vec![self.dir.join("cgroup.procs")]
    }

    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        warn_unapplied(resources, true);
        let cur = Current {
            memory_limit: None,
            swap_accounting: self.dir.join("memory.swap.max").exists(),
        };
        let writes = resources::v2_writes(resources, &cur)?;
        for w in writes {
            let path = self.dir.join(&*w.file);
            if self.dir.is_dir() && !path.exists() {
                let list = self.dir.join("cgroup.controllers");
                let offered = if list.exists() {
                    fs::read(&list)?
                } else {
                    String::new()
                };
                if !offered.split_whitespace().any(|c| c == w.controller) {
                    return Err(CgroupError::ControllerUnavailable {
                        field: w.field,
                        controller: w.controller.to_owned(),
                        reason: format!(
                            "it is not enabled for this cgroup (absent from {})",
                            list.display()
                        ),
                    });
                }
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
        let mut pids = fs::pids_recursive(&self.dir)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        self.destroy_within(super::DESTROY_TIMEOUT)
    }

    fn path(&self, _controller: &str) -> Option<PathBuf> {
        Some(self.dir.clone())
    }

    fn supports(&self, controller: &str, file: &str) -> bool {
        if self.dir.is_dir() {
            return self.dir.join(file).exists();
        }
        // Before create(): the nearest existing ancestor. The root cgroup has almost no
        // control files, so there only the controller's availability is known.
        let mut at = self.dir.as_path();
        while !at.is_dir() {
            match at.parent() {
                Some(p) => at = p,
                None => return false,
            }
        }
        if at == self.mount_point {
            let offered =
                std::fs::read_to_string(at.join("cgroup.controllers")).unwrap_or_default();
            offered.split_whitespace().any(|c| c == controller)
        } else {
            at.join(file).exists()
        }
    }
}
