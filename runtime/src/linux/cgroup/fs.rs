//! File access for cgroup and proc files: every error names its file.
//!
//! cgroup files want each value in one write(2) and never need O_CREAT (the kernel makes
//! them with the directory), so writes open an existing file and write once.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::error::CgroupError;

/// Attaches the file to an I/O result, so no cgroup error is anonymous.
pub(crate) trait IoResultExt<T> {
    /// A failed read of `path`.
    fn on_read(self, path: &Path) -> Result<T, CgroupError>;
    /// A failed write of `value` to `path`.
    fn on_write(self, path: &Path, value: &str) -> Result<T, CgroupError>;
    /// A failed mkdir of `path`.
    fn on_create(self, path: &Path) -> Result<T, CgroupError>;
    /// A failed rmdir of `path`.
    fn on_remove(self, path: &Path) -> Result<T, CgroupError>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn on_read(self, path: &Path) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
    }
    fn on_write(self, path: &Path, value: &str) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_owned(),
            source,
        })
    }
    fn on_create(self, path: &Path) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::Create {
            path: path.to_path_buf(),
            source,
        })
    }
    fn on_remove(self, path: &Path) -> Result<T, CgroupError> {
        self.map_err(|source| CgroupError::Remove {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Reads a whole cgroup or proc file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).on_read(path)
}

/// Writes `value` to an existing cgroup file in one write(2), returning the bare I/O error
/// so the caller can attach the spec field or the pid.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    tracing::debug!(path = %path.display(), value, "cgroup write");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(value.as_bytes())?;
    #[cfg(test)]
    fake::after_write(path, value);
    Ok(())
}

/// Writes one translated resource setting to `path`; a failure names the spec field,
/// the file and the value (shared by the v1 and v2 managers).
pub(crate) fn write_setting(path: &Path, w: &super::resources::Write) -> Result<(), CgroupError> {
    write_raw(path, &w.value).map_err(|source| CgroupError::Apply {
        field: w.field,
        path: path.to_path_buf(),
        value: w.value.clone(),
        source,
    })
}

/// Writes `value` to an existing cgroup file in one write(2).
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    write_raw(path, value).on_write(path, value)
}

/// Reads a `cgroup.procs` file: one pid per line.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = read(path)?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<i32>().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: l.to_owned(),
                reason: "a pid must be a decimal number",
            })
        })
        .collect()
}

/// mkdir(2) of one level; an existing directory is fine. Returns whether it was created.
pub(crate) fn mkdir(path: &Path) -> Result<bool, CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => {
            tracing::debug!(path = %path.display(), "cgroup mkdir");
            #[cfg(test)]
            fake::after_mkdir(path);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
        Err(e) => Err(e).on_create(path),
    }
}

/// rmdir(2) of one cgroup directory; a missing directory is fine (already removed).
pub(crate) fn rmdir(path: &Path) -> Result<(), CgroupError> {
    #[cfg(test)]
    fake::before_rmdir(path);
    match fs::remove_dir(path) {
        Ok(()) => {
            tracing::debug!(path = %path.display(), "cgroup rmdir");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).on_remove(path),
    }
}

/// The sub-cgroups of `dir`, deepest first, then `dir` itself: the order rmdir needs.
/// A missing `dir` gives nothing.
pub(crate) fn dirs_leaf_first(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    collect_leaf_first(dir, &mut out)?;
    Ok(out)
}

fn collect_leaf_first(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).on_read(dir),
    };
    for entry in entries {
        let entry = entry.on_read(dir)?;
        // file_type() does not follow symlinks; cgroupfs has none, a fake tree neither.
        if entry.file_type().on_read(&entry.path())?.is_dir() {
            collect_leaf_first(&entry.path(), out)?;
        }
    }
    out.push(dir.to_path_buf());
    Ok(())
}

/// The pids in `dir` and every sub-cgroup below it (a container may make its own).
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    for d in dirs_leaf_first(dir)? {
        let procs = d.join("cgroup.procs");
        match read_pids(&procs) {
            Ok(p) => pids.extend(p),
            // Removed between listing and reading: nothing left in it.
            Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pids)
}

/// A fake cgroupfs for unit tests: a plain directory tree behaves like cgroupfs on mkdir
/// (control files appear) and rmdir (they disappear), for mount points a test registered.
/// Compiled only into unit tests; real kernels and the integration tests never see it.
#[cfg(test)]
pub(crate) mod fake {
    use std::cell::RefCell;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// What a fake hierarchy's new directories contain.
    #[derive(Clone)]
    pub(crate) enum Kind {
        /// v1: these files, with this content, in every new directory.
        V1(Vec<(&'static str, &'static str)>),
        /// v2: the core files, plus each controller's files when the parent enabled the
        /// controller in its cgroup.subtree_control (as the kernel does).
        V2(Vec<(&'static str, Vec<(&'static str, &'static str)>)>),
    }

    thread_local! {
        static MOUNTS: RefCell<Vec<(PathBuf, Kind)>> = const { RefCell::new(Vec::new()) };
        static WRITES: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
    }

    /// Every successful write to a file below a registered mount on this thread, in order
    /// (a plain file keeps only the last value; append-like files such as `devices.allow`
    /// need the whole sequence).
    pub(crate) fn writes() -> Vec<(PathBuf, String)> {
        WRITES.with(|w| w.borrow().clone())
    }

    pub(super) fn after_write(path: &Path, value: &str) {
        if kind_of(path).is_some() {
            WRITES.with(|w| w.borrow_mut().push((path.to_path_buf(), value.to_owned())));
        }
    }

    /// Makes `mount` (a directory in a temp dir) behave like a cgroup mount.
    pub(crate) fn register(mount: &Path, kind: Kind) {
        MOUNTS.with(|m| m.borrow_mut().push((mount.to_path_buf(), kind)));
    }

    fn kind_of(path: &Path) -> Option<Kind> {
        MOUNTS.with(|m| {
            m.borrow()
                .iter()
                .find(|(mnt, _)| path.starts_with(mnt))
                .map(|(_, k)| k.clone())
        })
    }

    pub(super) fn after_mkdir(path: &Path) {
        let Some(kind) = kind_of(path) else { return };
        let put = |name: &str, content: &str| fs::write(path.join(name), content).unwrap();
        match kind {
            Kind::V1(files) => {
                for (name, content) in files {
                    put(name, content);
                }
                put("cgroup.procs", "");
            }
            Kind::V2(controllers) => {
                let parent = path.parent().unwrap();
                let enabled =
                    fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
                let enabled: Vec<&str> = enabled
                    .split_whitespace()
                    .map(|c| c.trim_start_matches('+'))
                    .collect();
                for f in ["cgroup.procs", "cgroup.subtree_control", "cgroup.events"] {
                    put(f, "");
                }
                put("cgroup.kill", "");
                put("cgroup.controllers", &enabled.join(" "));
                for (ctrl, files) in controllers {
                    if enabled.contains(&ctrl) {
                        for (name, content) in files {
                            put(name, content);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn before_rmdir(path: &Path) {
        if kind_of(path).is_none() {
            return;
        }
        if let Ok(entries) = fs::read_dir(path) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}
