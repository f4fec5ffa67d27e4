//! `rwasm cp`: copying files between the host and a container's root filesystem, with
//! Docker's rules (`docker cp`, "Copy files/folders between a container and the local
//! filesystem"):
//!
//! - a source directory is copied recursively; `SRC/.` copies its contents;
//! - an existing destination directory receives the source under its own name; a missing
//!   destination is created as a copy of the source (its parent must exist); a destination
//!   ending in `/` must be a directory;
//! - modes and mtimes are kept; ownership becomes root's (copy in) or the caller's (copy
//!   out) unless `archive` keeps the source's uid/gid (`-a`);
//! - a symlink source is copied as a link unless `follow_link` (`-L`);
//! - set-user/group-ID bits are dropped on the host side unless `archive` keeps the owner.
//!
//! The container side is walked through file descriptors only: the top path is resolved
//! with `openat2(RESOLVE_IN_ROOT)`, every name below it is opened with `O_NOFOLLOW`
//! relative to its parent's fd, so no symlink in the container can lead the copy out of
//! its rootfs. Device nodes, fifos and sockets are skipped (counted in [`Copied`]).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fchmodat, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};

use crate::linux::path_in_root::{Create, open_in_root, proc_fd_path};

/// A failed copy; names the path as the side it is on sees it.
#[derive(Debug, thiserror::Error)]
pub enum CpError {
    /// A path in the container could not be resolved, read or written.
    #[error("{path} in the container")]
    Container {
        /// The path inside the container.
        path: PathBuf,
        /// The failing syscall's error.
        #[source]
        source: io::Error,
    },
    /// A host path could not be read or written.
    #[error("{path}")]
    Host {
        /// The host path.
        path: PathBuf,
        /// The failing syscall's error.
        #[source]
        source: io::Error,
    },
    /// Docker's rule broken: a directory onto a file, or a file onto `DIR/` that is missing.
    #[error("{0}")]
    Rule(String),
    /// `cp - CONTAINER:DIR`: DIR is missing or not a directory.
    #[error("{0} in the container is not a directory")]
    NotADirectory(PathBuf),
    /// An entry of a tar stream given to `cp -` that would land outside its directory.
    #[error("tar entry {entry:?} is refused: {reason}")]
    Entry {
        /// The entry's path (or `path -> link target`) as the archive spells it.
        entry: String,
        /// `absolute path`, `".." component` or `path through the symlink S`.
        reason: String,
    },
    /// The tar stream itself could not be read or written.
    #[error("cannot {0} the tar stream")]
    Tar(&'static str, #[source] io::Error),
}

/// Options of `rwasm cp` (Docker's `-a` and `-L`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Keep the source's uid/gid (`-a, --archive`).
    pub archive: bool,
    /// Copy what a symlink source points to (`-L, --follow-link`), resolved in its root.
    pub follow_link: bool,
}

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Regular files, directories and symlinks written.
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
    /// Device nodes, fifos and sockets left out.
    pub skipped: u64,
}

pub(super) fn cerr(path: &Path) -> impl Fn(Errno) -> CpError + '_ {
    move |e| CpError::Container {
        path: path.to_path_buf(),
        source: io::Error::from(e),
    }
}

fn herr(path: &Path) -> impl Fn(io::Error) -> CpError + '_ {
    move |e| CpError::Host {
        path: path.to_path_buf(),
        source: e,
    }
}

pub(super) fn open_root(root: &Path) -> Result<OwnedFd, CpError> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| CpError::Host {
        path: root.to_path_buf(),
        source: io::Error::from(e),
    })
}

/// Whether `p` asks for "the contents of": it ends in `/.`.
pub(super) fn contents_of(p: &Path) -> bool {
    p.as_os_str().as_bytes().ends_with(b"/.") || p.as_os_str() == "."
}

fn ends_with_slash(p: &Path) -> bool {
    p.as_os_str().as_bytes().ends_with(b"/")
}

/// The directory fd of `path`'s parent inside `root` and its last name; `/` has none.
pub(super) fn parent_in_root(root: &OwnedFd, path: &Path) -> Result<(OwnedFd, OsString), CpError> {
    let name = path
        .file_name()
        .ok_or_else(|| CpError::Rule(format!("{}: not a file or directory name", path.display())))?
        .to_os_string();
    let parent = path.parent().unwrap_or(Path::new("/"));
    let fd = open_in_root(root, parent, Create::Nothing).map_err(|e| CpError::Container {
        path: e.path,
        source: e.source,
    })?;
    Ok((reopen_dir(&fd).map_err(cerr(parent))?, name))
}

pub(super) fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        proc_fd_path(fd).as_path(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

pub(super) fn is_dir_mode(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

// ---- out: container -> host ----

/// Copy `src` (a path inside the container whose root is the host directory `root`) to
/// the host path `dest`.
///
/// # Errors
/// [`CpError`] naming the container or host path that failed, or the Docker rule broken.
pub fn copy_out(
    root: &Path,
    src: &Path,
    dest: &Path,
    opts: CopyOptions,
) -> Result<Copied, CpError> {
    let rootfd = open_root(root)?;
    let src_fd = if opts.follow_link || contents_of(src) || src.file_name().is_none() {
        let fd = open_in_root(&rootfd, src, Create::Nothing).map_err(|e| CpError::Container {
            path: e.path,
            source: e.source,
        })?;
        Source::Whole(fd)
    } else {
        let (dir, name) = parent_in_root(&rootfd, src)?;
        Source::Named(dir, name)
    };
    let st = match &src_fd {
        Source::Whole(fd) => fstat(fd),
        Source::Named(dir, name) => fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW),
    }
    .map_err(cerr(src))?;
    let src_is_dir = is_dir_mode(st.st_mode);
    let target = host_target(src, dest, src_is_dir)?;
    let mut done = Copied::default();
    match (&src_fd, src_is_dir && contents_of(src)) {
        (Source::Whole(fd), true) => {
            match std::fs::create_dir(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && target.is_dir() => {}
                Err(e) => return Err(herr(&target)(e)),
            }
            let dir = reopen_dir(fd).map_err(cerr(src))?;
            out_children(&dir, src, &target, opts, &mut done)?;
        }
        // A followed link, or the root: copy through the resolved fd itself.
        (Source::Whole(fd), false) => out_entry_fd(fd, src, &target, opts, &mut done)?,
        (Source::Named(dir, name), _) => {
            out_entry(dir, name, src, &target, opts, &mut done)?;
        }
    }
    Ok(done)
}

enum Source {
    /// The source itself, resolved (links followed).
    Whole(OwnedFd),
    /// The source's parent directory and its name there (a link stays a link).
    Named(OwnedFd, OsString),
}

/// Docker's destination rule on the host side.
fn host_target(src: &Path, dest: &Path, src_is_dir: bool) -> Result<PathBuf, CpError> {
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => {
            if src_is_dir && contents_of(src) {
                Ok(dest.to_path_buf())
            } else {
                let name = src.file_name().unwrap_or(OsStr::new("root"));
                Ok(dest.join(name))
            }
        }
        Ok(_) if src_is_dir => Err(CpError::Rule(format!(
            "cannot copy a directory to a file: {} is a file",
            dest.display()
        ))),
        Ok(_) => Ok(dest.to_path_buf()),
        Err(_) if ends_with_slash(dest) && !src_is_dir => Err(CpError::Rule(format!(
            "{}: no such directory",
            dest.display()
        ))),
        Err(_) => {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(CpError::Host {
                    path: parent.to_path_buf(),
                    source: io::Error::from(io::ErrorKind::NotFound),
                });
            }
            Ok(dest.to_path_buf())
        }
    }
}

/// A name in a container directory, looked at without following it (the walk step of
/// both copies out: to the host here, to a tar stream in [`super::cp_tar`]).
pub(super) enum Named {
    /// A symlink, with its target.
    Link(OsString),
    /// A directory or regular file, opened read-only with `O_NOFOLLOW`.
    Open(OwnedFd),
    /// A device node, fifo or socket: left out.
    Other,
}

/// Stat `name` in the container directory `dir` (container path `cpath`) without
/// following it, and read its link or open it.
pub(super) fn open_named(
    dir: &OwnedFd,
    name: &OsStr,
    cpath: &Path,
) -> Result<(FileStat, Named), CpError> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(cerr(cpath))?;
    let named = match SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) {
        SFlag::S_IFLNK => Named::Link(readlinkat(dir, name).map_err(cerr(cpath))?),
        SFlag::S_IFDIR | SFlag::S_IFREG => Named::Open(
            openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(cerr(cpath))?,
        ),
        _ => Named::Other,
    };
    Ok((st, named))
}

fn out_entry(
    dir: &OwnedFd,
    name: &OsStr,
    cpath: &Path,
    target: &Path,
    opts: CopyOptions,
    done: &mut Copied,
) -> Result<(), CpError> {
    match open_named(dir, name, cpath)? {
        (st, Named::Link(link)) => {
            let _ = std::fs::remove_file(target);
            std::os::unix::fs::symlink(&link, target).map_err(herr(target))?;
            if opts.archive {
                let _ = std::os::unix::fs::lchown(target, Some(st.st_uid), Some(st.st_gid));
            }
            done.entries += 1;
        }
        (_, Named::Open(fd)) => out_entry_fd(&fd, cpath, target, opts, done)?,
        (_, Named::Other) => done.skipped += 1,
    }
    Ok(())
}

/// Copy the open file or directory `fd` (container path `cpath`) to `target`.
fn out_entry_fd(
    fd: &OwnedFd,
    cpath: &Path,
    target: &Path,
    opts: CopyOptions,
    done: &mut Copied,
) -> Result<(), CpError> {
    let st = fstat(fd).map_err(cerr(cpath))?;
    // Set-user/group-ID bits of container files are not carried onto the host unless the
    // owner is kept too (-a): a copy owned by the caller must not become a setuid binary.
    let mode = st.st_mode & if opts.archive { 0o7777 } else { 0o1777 };
    if is_dir_mode(st.st_mode) {
        match std::fs::create_dir(target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && target.is_dir() => {}
            Err(e) => return Err(herr(target)(e)),
        }
        let dir = reopen_dir(fd).map_err(cerr(cpath))?;
        out_children(&dir, cpath, target, opts, done)?;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))
            .map_err(herr(target))?;
    } else if st.st_mode & libc::S_IFMT == libc::S_IFREG {
        let real = nix::fcntl::open(
            proc_fd_path(fd).as_path(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(cerr(cpath))?;
        let mut from = File::from(real);
        let _ = std::fs::remove_file(target);
        let mut to = File::create(target).map_err(herr(target))?;
        done.bytes += io::copy(&mut from, &mut to).map_err(herr(target))?;
        to.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(herr(target))?;
    } else {
        done.skipped += 1;
        return Ok(());
    }
    if opts.archive {
        std::os::unix::fs::chown(target, Some(st.st_uid), Some(st.st_gid)).map_err(herr(target))?;
    }
    set_host_mtime(target, st.st_mtime, st.st_mtime_nsec);
    done.entries += 1;
    Ok(())
}

fn out_children(
    dir: &OwnedFd,
    cpath: &Path,
    target: &Path,
    opts: CopyOptions,
    done: &mut Copied,
) -> Result<(), CpError> {
    for name in list_dir(dir).map_err(cerr(cpath))? {
        out_entry(
            dir,
            &name,
            &cpath.join(&name),
            &target.join(&name),
            opts,
            done,
        )?;
    }
    Ok(())
}

pub(super) fn list_dir(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let d = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for e in d.into_iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

fn set_host_mtime(target: &Path, sec: i64, nsec: i64) {
    let t = nix::sys::time::TimeSpec::new(sec, nsec);
    let _ = nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        target,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

// ---- in: host -> container ----

/// Copy the host path `src` to `dest`, a path inside the container whose root is the
/// host directory `root`.
///
/// # Errors
/// [`CpError`] naming the host or container path that failed, or the Docker rule broken.
pub fn copy_in(src: &Path, root: &Path, dest: &Path, opts: CopyOptions) -> Result<Copied, CpError> {
    let rootfd = open_root(root)?;
    let meta = if opts.follow_link {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(herr(src))?;
    let src_is_dir = meta.is_dir();
    // Docker's rule, on the container side.
    let existing = open_in_root(&rootfd, dest, Create::Nothing).ok();
    let existing_dir = existing
        .as_ref()
        .and_then(|fd| fstat(fd).ok())
        .is_some_and(|st| is_dir_mode(st.st_mode));
    let mut done = Copied::default();
    if existing_dir {
        let dir = reopen_dir(existing.as_ref().expect("checked")).map_err(cerr(dest))?;
        if src_is_dir && contents_of(src) {
            in_children(src, &dir, dest, opts, &mut done)?;
        } else {
            let name = src.file_name().unwrap_or(OsStr::new("root"));
            in_entry(src, &meta, &dir, name, &dest.join(name), opts, &mut done)?;
        }
        return Ok(done);
    }
    if existing.is_some() && src_is_dir {
        return Err(CpError::Rule(format!(
            "cannot copy a directory to a file: {} is a file in the container",
            dest.display()
        )));
    }
    if existing.is_none() && ends_with_slash(dest) && !src_is_dir {
        return Err(CpError::Rule(format!(
            "{}: no such directory in the container",
            dest.display()
        )));
    }
    let (dir, name) = parent_in_root(&rootfd, dest)?;
    if src_is_dir && contents_of(src) {
        mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o755))
            .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
            .map_err(cerr(dest))?;
        let sub = open_dir_nofollow(&dir, &name).map_err(cerr(dest))?;
        in_children(src, &sub, dest, opts, &mut done)?;
    } else {
        in_entry(src, &meta, &dir, &name, dest, opts, &mut done)?;
    }
    Ok(done)
}

pub(super) fn open_dir_nofollow(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn in_children(
    src: &Path,
    dir: &OwnedFd,
    cpath: &Path,
    opts: CopyOptions,
    done: &mut Copied,
) -> Result<(), CpError> {
    for e in std::fs::read_dir(src).map_err(herr(src))? {
        let e = e.map_err(herr(src))?;
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).map_err(herr(&p))?;
        let name = e.file_name();
        in_entry(&p, &meta, dir, &name, &cpath.join(&name), opts, done)?;
    }
    Ok(())
}

/// Write host `src` as `name` in the container directory `dir` (container path `cpath`).
fn in_entry(
    src: &Path,
    meta: &std::fs::Metadata,
    dir: &OwnedFd,
    name: &OsStr,
    cpath: &Path,
    opts: CopyOptions,
    done: &mut Copied,
) -> Result<(), CpError> {
    let mode = Mode::from_bits_truncate(meta.mode() & 0o7777);
    let ft = meta.file_type();
    if ft.is_symlink() {
        let link = std::fs::read_link(src).map_err(herr(src))?;
        remove_nondir(dir, name);
        symlinkat(link.as_path(), dir, name).map_err(cerr(cpath))?;
    } else if ft.is_dir() {
        match mkdirat(dir, name, mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(cerr(cpath)(e)),
        }
        let sub = open_dir_nofollow(dir, name).map_err(cerr(cpath))?;
        in_children(src, &sub, cpath, opts, done)?;
        fchmodat(&sub, ".", mode, FchmodatFlags::FollowSymlink).map_err(cerr(cpath))?;
    } else if ft.is_file() {
        remove_nondir(dir, name);
        let fd = openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            mode,
        )
        .map_err(cerr(cpath))?;
        let mut to = File::from(fd);
        let mut from = File::open(src).map_err(herr(src))?;
        done.bytes += io::copy(&mut from, &mut to).map_err(|e| CpError::Container {
            path: cpath.to_path_buf(),
            source: e,
        })?;
        to.set_permissions(std::fs::Permissions::from_mode(mode.bits()))
            .map_err(|e| CpError::Container {
                path: cpath.to_path_buf(),
                source: e,
            })?;
    } else {
        done.skipped += 1;
        return Ok(());
    }
    let (uid, gid) = if opts.archive {
        (meta.uid(), meta.gid())
    } else {
        (0, 0)
    };
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(cerr(cpath))?;
    set_time_at(dir, name, meta.mtime(), meta.mtime_nsec());
    done.entries += 1;
    Ok(())
}

/// Set the access and modification times of `name` in the container directory `dir`
/// without following it (best effort: a link's times may not be settable).
pub(super) fn set_time_at(dir: &OwnedFd, name: &OsStr, sec: i64, nsec: i64) {
    let t = nix::sys::time::TimeSpec::new(sec, nsec);
    let _ = nix::sys::stat::utimensat(
        dir,
        name,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

/// Remove `name` in `dir` unless it is a directory (a file or link is replaced, as tar
/// extraction does).
pub(super) fn remove_nondir(dir: &OwnedFd, name: &OsStr) {
    let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
}
