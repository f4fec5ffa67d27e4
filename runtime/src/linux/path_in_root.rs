//! Resolving and creating paths inside a container's root filesystem without ever
//! leaving it.
//!
//! Every lookup goes through `openat2(2)` with `RESOLVE_IN_ROOT`, so a symlink in the
//! rootfs — absolute or full of `..` — is resolved as if the rootfs were `/`. Callers get
//! an `O_PATH` fd and act on `/proc/self/fd/N`, which names exactly that inode, so a
//! rename race between resolution and use cannot redirect a mount to a host path.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, mkdirat};

/// A failed resolution; names the path as the container would see it.
#[derive(Debug, thiserror::Error)]
#[error("{path} (inside the rootfs)")]
pub struct ResolveError {
    /// The path as the container sees it (relative to the rootfs as `/`).
    pub path: PathBuf,
    /// The errno of the failing lookup or creation (`openat2(2)`, `mkdirat(2)`, `openat(2)`),
    /// e.g. `ENOENT`, or `ELOOP` after 40 symlinks.
    #[source]
    pub source: io::Error,
}

fn err(path: &Path, e: Errno) -> ResolveError {
    ResolveError {
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

/// The kind of object to create when a path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Fail with `ENOENT`.
    Nothing,
    /// Create missing directories, the last one too.
    Dir,
    /// Create missing parent directories and an empty regular file as the last component.
    File,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Open `path` (absolute or relative, interpreted inside `root`) as an `O_PATH` fd,
/// creating what is missing as `create` says (directories 0755, files 0644).
///
/// A dangling symlink on the way (`/var/run -> /run` when `/run` is missing) is followed
/// and its target created, still inside the root; at most 40 links are followed, as the
/// kernel's own limit.
pub fn open_in_root(
    root: &impl AsFd,
    path: &Path,
    create: Create,
) -> Result<OwnedFd, ResolveError> {
    let mut rel = relative(path);
    for _ in 0..40 {
        match walk(root, &rel, create) {
            Ok(Walk::Done(fd)) => return Ok(fd),
            Ok(Walk::Dangling(next)) => rel = next,
            Err(e) => return Err(err(path, e)),
        }
    }
    Err(err(path, Errno::ELOOP))
}

enum Walk {
    Done(OwnedFd),
    /// Resolution must restart at this path (a dangling symlink was expanded).
    Dangling(PathBuf),
}

fn walk(root: &impl AsFd, rel: &Path, create: Create) -> Result<Walk, Errno> {
    match openat2(root.as_fd(), rel, how(OFlag::O_PATH)) {
        Ok(fd) => return Ok(Walk::Done(fd)),
        Err(Errno::ENOENT) if create != Create::Nothing => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<_> = rel.components().collect();
    let mut prefix = PathBuf::new();
    let mut dir: OwnedFd = openat2(root.as_fd(), ".", how(OFlag::O_PATH | OFlag::O_DIRECTORY))?;
    for (i, c) in comps.iter().enumerate() {
        let parent_prefix = prefix.clone();
        prefix.push(c);
        let last = i + 1 == comps.len();
        match openat2(root.as_fd(), &prefix, how(OFlag::O_PATH)) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // `dir` is the resolved parent; `c` is missing there, or a dangling symlink.
        let name = c.as_os_str();
        let parent = reopen_dir(&dir)?;
        if let Ok(target) = nix::fcntl::readlinkat(&parent, name) {
            let target = PathBuf::from(target);
            let base = if target.is_absolute() {
                relative(&target)
            } else {
                parent_prefix.join(target)
            };
            let rest: PathBuf = comps[i + 1..].iter().collect();
            return Ok(Walk::Dangling(base.join(rest)));
        }
        if last && create == Create::File {
            match nix::fcntl::openat(
                &parent,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            ) {
                Ok(_) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        } else {
            match mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        dir = openat2(root.as_fd(), &prefix, how(OFlag::O_PATH))?;
    }
    Ok(Walk::Done(dir))
}

/// Whether the last component of `path` (its parent resolved inside `root`) is a symlink.
pub fn is_symlink_in_root(root: &impl AsFd, path: &Path) -> bool {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let Ok(dir) = open_in_root(root, parent, Create::Nothing) else {
        return false;
    };
    nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// An `O_PATH` fd cannot be used as the dirfd of mkdirat/openat(O_CREAT) on all kernels'
/// LSMs; reopen it as a real directory fd through its own magic link.
fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        proc_fd_path(fd).as_path(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// `/proc/self/fd/N` for an fd: the path to hand to mount(2) and friends.
pub fn proc_fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `path` without its root and `.` components, `..` kept (openat2 clamps it at the root).
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        let fd = nix::fcntl::open(
            dir.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        (dir, fd)
    }

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(proc_fd_path(fd)).unwrap()
    }

    #[test]
    fn absolute_symlink_stays_inside_the_root() {
        let (dir, fd) = root();
        symlink("/etc", dir.path().join("evil")).unwrap();
        let got = open_in_root(&fd, Path::new("/evil/passwd-dir"), Create::Dir).unwrap();
        assert_eq!(real(&got), dir.path().join("etc/passwd-dir"));
        assert!(!Path::new("/etc/passwd-dir").exists());
    }

    #[test]
    fn dotdot_is_clamped_at_the_root() {
        let (dir, fd) = root();
        symlink("../../../../tmp", dir.path().join("up")).unwrap();
        let got = open_in_root(&fd, Path::new("/up/x/../../y"), Create::Dir).unwrap();
        assert!(real(&got).starts_with(dir.path()), "{:?}", real(&got));
    }

    #[test]
    fn creates_files_and_parents() {
        let (dir, fd) = root();
        let got = open_in_root(&fd, Path::new("/a/b/file"), Create::File).unwrap();
        assert_eq!(real(&got), dir.path().join("a/b/file"));
        assert!(dir.path().join("a/b/file").is_file());
        assert!(open_in_root(&fd, Path::new("/missing"), Create::Nothing).is_err());
    }
}
