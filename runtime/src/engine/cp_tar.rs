//! `rwasm cp CONTAINER:PATH -` and `rwasm cp - CONTAINER:DIR` (Docker's `cp` with a tar
//! stream on stdout or stdin): PATH written as a tar archive, or an archive extracted into
//! the existing directory DIR.
//!
//! The archive's entries are named as Docker names them: PATH's last name first
//! (`hosts`, `etc/passwd`, ...), or `.` for `PATH/.` and `/`. Modes, owners and mtimes
//! are kept in the headers; device nodes, fifos and sockets are left out (counted), as
//! [`super::cp`] leaves them out.
//!
//! Extraction is checked before anything is written: the archive is read twice (the
//! caller hands a seekable copy), and an entry whose path is absolute, has a `..`
//! component, or passes through a symlink the archive itself made is refused with an
//! error naming it, nothing written. Then every entry's parent is resolved inside the
//! container's root (`openat2(RESOLVE_IN_ROOT)`, the container's own symlinks followed as
//! the container sees them) and the entry is made relative to that directory's fd with
//! `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so nothing lands outside the rootfs.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};
use tar::EntryType;

use super::cp::{
    Copied, CopyOptions, CpError, Named, cerr, contents_of, is_dir_mode, list_dir,
    open_dir_nofollow, open_named, open_root, parent_in_root, remove_nondir, reopen_dir,
    set_time_at,
};
use crate::linux::path_in_root::{Create, open_in_root, proc_fd_path};

fn resolve_err(e: crate::linux::path_in_root::ResolveError) -> CpError {
    CpError::Container {
        path: e.path,
        source: e.source,
    }
}

fn write_err(e: io::Error) -> CpError {
    CpError::Tar("write", e)
}

// ---- out: container -> tar stream ----

/// Write `src` (a path inside the container whose root is the host directory `root`) as a
/// tar stream to `out`; a symlink `src` is archived as a link unless `follow_link`.
///
/// # Errors
/// [`CpError`] naming the container path that failed, or [`CpError::Tar`] when `out`
/// cannot be written.
pub fn tar_out(
    root: &Path,
    src: &Path,
    out: impl Write,
    opts: CopyOptions,
) -> Result<Copied, CpError> {
    let rootfd = open_root(root)?;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut done = Copied::default();
    if opts.follow_link || contents_of(src) || src.file_name().is_none() {
        let fd = open_in_root(&rootfd, src, Create::Nothing).map_err(resolve_err)?;
        let arc = if contents_of(src) || src.file_name().is_none() {
            PathBuf::from(".")
        } else {
            PathBuf::from(src.file_name().unwrap_or(OsStr::new(".")))
        };
        let st = fstat(&fd).map_err(cerr(src))?;
        let fd = reopen(&fd, st.st_mode).map_err(cerr(src))?;
        if let Some(fd) = fd {
            add_open(&mut b, &fd, &st, src, &arc, &mut done)?;
        } else {
            done.skipped += 1;
        }
    } else {
        let (dir, name) = parent_in_root(&rootfd, src)?;
        add_named(&mut b, &dir, &name, src, Path::new(&name), &mut done)?;
    }
    b.into_inner()
        .map_err(write_err)?
        .flush()
        .map_err(write_err)?;
    Ok(done)
}

/// A readable fd of the resolved `O_PATH` fd `fd` (a directory or a regular file);
/// `None` for anything else.
fn reopen(fd: &OwnedFd, mode: u32) -> Result<Option<OwnedFd>, Errno> {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => reopen_dir(fd).map(Some),
        libc::S_IFREG => nix::fcntl::open(
            proc_fd_path(fd).as_path(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(Some),
        _ => Ok(None),
    }
}

/// A header for `st`: type, mode, owner, mtime (size 0).
fn header(st: &FileStat, kind: EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// Archive `name` in the container directory `dir` (container path `cpath`) as `arc`.
fn add_named<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &OwnedFd,
    name: &OsStr,
    cpath: &Path,
    arc: &Path,
    done: &mut Copied,
) -> Result<(), CpError> {
    match open_named(dir, name, cpath)? {
        (st, Named::Link(link)) => {
            let mut h = header(&st, EntryType::Symlink);
            b.append_link(&mut h, arc, &link).map_err(write_err)?;
            done.entries += 1;
        }
        (st, Named::Open(fd)) => add_open(b, &fd, &st, cpath, arc, done)?,
        (_, Named::Other) => done.skipped += 1,
    }
    Ok(())
}

/// Archive the open directory or regular file `fd` (its `st`) as `arc`.
fn add_open<W: Write>(
    b: &mut tar::Builder<W>,
    fd: &OwnedFd,
    st: &FileStat,
    cpath: &Path,
    arc: &Path,
    done: &mut Copied,
) -> Result<(), CpError> {
    if is_dir_mode(st.st_mode) {
        let mut h = header(st, EntryType::Directory);
        b.append_data(&mut h, arc, io::empty()).map_err(write_err)?;
        done.entries += 1;
        let mut names = list_dir(fd).map_err(cerr(cpath))?;
        names.sort();
        for n in names {
            add_named(b, fd, &n, &cpath.join(&n), &arc.join(&n), done)?;
        }
    } else {
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let mut h = header(st, EntryType::Regular);
        h.set_size(size);
        // A file that changes while it is read still fills exactly the size in its header.
        let file = File::from(fd.try_clone().map_err(|e| CpError::Container {
            path: cpath.to_path_buf(),
            source: e,
        })?);
        let data = file.take(size).chain(io::repeat(0)).take(size);
        b.append_data(&mut h, arc, data).map_err(write_err)?;
        done.entries += 1;
        done.bytes += size;
    }
    Ok(())
}

// ---- in: tar stream -> container ----

/// An entry path made relative and checked: no root, no `..`; `.` components dropped.
fn clean(raw: &[u8]) -> Result<PathBuf, String> {
    let p = Path::new(OsStr::from_bytes(raw));
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
            Component::ParentDir => return Err("\"..\" component".into()),
        }
    }
    Ok(rel)
}

/// The first proper prefix of `rel` that is one of `links` (symlinks the archive made).
fn through_link<'a>(rel: &Path, links: &'a HashSet<PathBuf>) -> Option<&'a PathBuf> {
    rel.ancestors().skip(1).find_map(|a| links.get(a))
}

/// One entry as the extraction sees it.
struct Checked {
    rel: PathBuf,
    kind: EntryType,
    /// A hard link's target, checked like `rel`.
    link_target: Option<PathBuf>,
}

/// Check one entry against the symlinks the archive made so far (and record a new one).
fn check_entry(
    entry: &tar::Entry<'_, impl Read>,
    links: &mut HashSet<PathBuf>,
) -> Result<Option<Checked>, CpError> {
    let raw = entry.path_bytes().into_owned();
    let name = String::from_utf8_lossy(&raw).into_owned();
    let refuse = |entry: String, reason: String| CpError::Entry { entry, reason };
    let kind = entry.header().entry_type();
    if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
        return Ok(None);
    }
    let rel = clean(&raw).map_err(|r| refuse(name.clone(), r))?;
    if rel.as_os_str().is_empty() {
        return Ok(None); // the directory itself ("./")
    }
    if let Some(l) = through_link(&rel, links) {
        return Err(refuse(
            name,
            format!("path through the symlink {}", l.display()),
        ));
    }
    let mut link_target = None;
    if kind == EntryType::Link {
        let to = entry
            .link_name_bytes()
            .map(|b| b.into_owned())
            .unwrap_or_default();
        let label = format!("{name} -> {}", String::from_utf8_lossy(&to));
        let t = clean(&to).map_err(|r| refuse(label.clone(), r))?;
        if let Some(l) = through_link(&t, links) {
            return Err(refuse(
                label,
                format!("path through the symlink {}", l.display()),
            ));
        }
        link_target = Some(t);
    }
    if kind == EntryType::Symlink {
        links.insert(rel.clone());
    } else {
        links.remove(&rel);
    }
    Ok(Some(Checked {
        rel,
        kind,
        link_target,
    }))
}

/// Extract the tar stream `archive` into `dest`, an existing directory inside the
/// container whose root is the host directory `root`. Owners become root's unless
/// `archive` keeps the entries' uid/gid (`-a`).
///
/// # Errors
/// [`CpError::NotADirectory`] when `dest` is missing or not a directory;
/// [`CpError::Entry`] for an entry that would land outside `dest` (nothing is written
/// then); [`CpError::Tar`] for a malformed stream; [`CpError::Container`] naming the
/// path that could not be written.
pub fn tar_in(
    archive: &mut (impl Read + Seek),
    root: &Path,
    dest: &Path,
    opts: CopyOptions,
) -> Result<Copied, CpError> {
    let rootfd = open_root(root)?;
    let top = open_in_root(&rootfd, dest, Create::Nothing)
        .map_err(|_| CpError::NotADirectory(dest.to_path_buf()))?;
    if !fstat(&top).is_ok_and(|st| is_dir_mode(st.st_mode)) {
        return Err(CpError::NotADirectory(dest.to_path_buf()));
    }
    let read_err = |e| CpError::Tar("read", e);
    // First pass: every entry checked, nothing written.
    let mut links = HashSet::new();
    for entry in tar::Archive::new(&mut *archive)
        .entries()
        .map_err(read_err)?
    {
        check_entry(&entry.map_err(read_err)?, &mut links)?;
    }
    archive.seek(SeekFrom::Start(0)).map_err(read_err)?;
    let mut links = HashSet::new();
    let mut done = Copied::default();
    let mut dir_times = Vec::new();
    for entry in tar::Archive::new(&mut *archive)
        .entries()
        .map_err(read_err)?
    {
        let mut entry = entry.map_err(read_err)?;
        let Some(c) = check_entry(&entry, &mut links)? else {
            continue;
        };
        let cpath = dest.join(&c.rel);
        let parent = c
            .rel
            .parent()
            .map_or_else(|| dest.to_path_buf(), |p| dest.join(p));
        let name = c.rel.file_name().unwrap_or_default().to_os_string();
        let dir = open_in_root(&rootfd, &parent, Create::Dir).map_err(resolve_err)?;
        let dir = reopen_dir(&dir).map_err(cerr(&parent))?;
        let h = entry.header().clone();
        let mode = Mode::from_bits_truncate(h.mode().map_err(read_err)? & 0o7777);
        let made = match c.kind {
            EntryType::Directory => Made::Dir(make_dir(&dir, &name, mode).map_err(cerr(&cpath))?),
            EntryType::Regular | EntryType::Continuous => {
                remove_nondir(&dir, &name);
                let fd = openat(
                    &dir,
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(cerr(&cpath))?;
                let mut f = File::from(fd);
                done.bytes += io::copy(&mut entry, &mut f).map_err(|e| CpError::Container {
                    path: cpath.clone(),
                    source: e,
                })?;
                Made::File(f)
            }
            EntryType::Symlink => {
                let to = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                remove_nondir(&dir, &name);
                symlinkat(OsStr::from_bytes(&to), &dir, name.as_os_str()).map_err(cerr(&cpath))?;
                Made::Link
            }
            EntryType::Link => {
                let target = dest.join(c.link_target.as_deref().unwrap_or(Path::new("")));
                let rootfd2 = &rootfd;
                let (tdir, tname) = parent_in_root(rootfd2, &target)?;
                remove_nondir(&dir, &name);
                nix::unistd::linkat(
                    &tdir,
                    tname.as_os_str(),
                    &dir,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(cerr(&cpath))?;
                done.entries += 1;
                continue; // a hard link shares its target's metadata
            }
            _ => {
                done.skipped += 1;
                continue;
            }
        };
        let (uid, gid) = if opts.archive {
            (
                u32::try_from(h.uid().map_err(read_err)?).unwrap_or(0),
                u32::try_from(h.gid().map_err(read_err)?).unwrap_or(0),
            )
        } else {
            (0, 0)
        };
        // Ownership first (chown clears set-id bits), then the mode, through the fd.
        fchownat(
            &dir,
            name.as_os_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(cerr(&cpath))?;
        let chmod = |f: &File| {
            f.set_permissions(std::fs::Permissions::from_mode(mode.bits()))
                .map_err(|e| CpError::Container {
                    path: cpath.clone(),
                    source: e,
                })
        };
        let mtime = i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0);
        match made {
            Made::Dir(fd) => {
                chmod(&File::from(fd))?;
                dir_times.push((cpath, mtime));
            }
            Made::File(f) => {
                chmod(&f)?;
                set_time_at(&dir, &name, mtime, 0);
            }
            Made::Link => set_time_at(&dir, &name, mtime, 0),
        }
        done.entries += 1;
    }
    // Directories last, deepest first: writing their entries changed their mtimes.
    for (path, t) in dir_times.iter().rev() {
        if let Ok((dir, name)) = parent_in_root(&rootfd, path) {
            set_time_at(&dir, &name, *t, 0);
        }
    }
    Ok(done)
}

/// What an entry made, to set its owner, mode and time on.
enum Made {
    Dir(OwnedFd),
    File(File),
    Link,
}

/// The directory `name` in `dir`: kept if it is one, else made (a file or link there is
/// replaced); opened without following links.
fn make_dir(dir: &OwnedFd, name: &OsString, mode: Mode) -> Result<OwnedFd, Errno> {
    match fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_dir_mode(st.st_mode) => {}
        Ok(_) => {
            remove_nondir(dir, name);
            mkdirat(dir, name.as_os_str(), mode)?;
        }
        Err(_) => mkdirat(dir, name.as_os_str(), mode)?,
    }
    open_dir_nofollow(dir, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_relative_and_checked() {
        assert_eq!(clean(b"./a/b").unwrap(), Path::new("a/b"));
        assert_eq!(clean(b"./").unwrap(), Path::new(""));
        assert_eq!(clean(b"a/../../x").unwrap_err(), "\"..\" component");
        assert_eq!(clean(b"/etc/passwd").unwrap_err(), "absolute path");
        let links: HashSet<PathBuf> = [PathBuf::from("d/l")].into();
        assert_eq!(
            through_link(Path::new("d/l/x/y"), &links),
            Some(&PathBuf::from("d/l"))
        );
        assert_eq!(through_link(Path::new("d/l"), &links), None);
        assert_eq!(through_link(Path::new("d/m/x"), &links), None);
    }
}
