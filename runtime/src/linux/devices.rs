//! Device nodes in the container's /dev (runtime-spec `config-linux.md`, "Devices" and
//! "Default Devices", "/dev symbolic links").

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::path_in_root::{Create, ResolveError, open_in_root, proc_fd_path};

/// A device that could not be created.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The device's path (or its parent) cannot be resolved or created inside the rootfs.
    #[error("cannot resolve device path")]
    Resolve(#[from] ResolveError),
    /// A system call on the device node failed.
    #[error("linux.devices: cannot {what} {path}")]
    Sys {
        /// The operation: `mknod`, `chown`, `open`, `symlink`, `replace`, or
        /// `bind-mount the host's` (the fallback in a user namespace, as runc does).
        what: &'static str,
        /// The device path as the container sees it, e.g. `/dev/null` (its parent for `open`).
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// A `linux.devices[].type` other than `c`, `u`, `b` or `p` (e.g. `a`, which only
    /// cgroup device rules allow).
    #[error("linux.devices: {path}: device type {typ:?} cannot be created")]
    BadType {
        /// The device path as the container sees it.
        path: PathBuf,
        /// The type given.
        typ: LinuxDeviceType,
    },
}

/// The devices every container gets (spec "Default Devices"): path, major, minor.
const DEFAULTS: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Create the default devices, then `linux.devices`, then the /dev symlinks.
///
/// In a user namespace mknod is not permitted, so each device is a bind mount of the
/// host's node at the same path, as runc does.
pub fn create_all(root: &OwnedFd, extra: &[LinuxDevice], userns: bool) -> Result<(), DeviceError> {
    for (path, major, minor) in DEFAULTS {
        if extra.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make(
            root,
            Path::new(path),
            SFlag::S_IFCHR,
            major,
            minor,
            0o666,
            0,
            0,
            userns,
        )?;
    }
    for d in extra {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            typ => {
                return Err(DeviceError::BadType {
                    path: d.path().clone(),
                    typ,
                });
            }
        };
        let mode = d.file_mode().unwrap_or(0o666);
        let (uid, gid) = (d.uid().unwrap_or(0), d.gid().unwrap_or(0));
        make(
            root,
            d.path(),
            kind,
            d.major(),
            d.minor(),
            mode,
            uid,
            gid,
            userns,
        )?;
    }
    symlinks(root)
}

#[allow(clippy::too_many_arguments)] // one device's attributes, as the spec lists them
fn make(
    root: &OwnedFd,
    path: &Path,
    kind: SFlag,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
    userns: bool,
) -> Result<(), DeviceError> {
    let sys = |what| {
        move |source| DeviceError::Sys {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    if userns {
        let target = open_in_root(root, path, Create::File)?;
        return mount(
            Some(path),
            &proc_fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys("bind-mount the host's"));
    }
    let (parent, name) = split(root, path)?;
    let dev = makedev(
        u64::try_from(major).unwrap_or(0),
        u64::try_from(minor).unwrap_or(0),
    );
    match mknodat(
        &parent,
        name.as_path(),
        kind,
        Mode::from_bits_truncate(mode),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            nix::unistd::unlinkat(
                &parent,
                name.as_path(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .map_err(sys("replace"))?;
            mknodat(
                &parent,
                name.as_path(),
                kind,
                Mode::from_bits_truncate(mode),
                dev,
            )
            .map_err(sys("mknod"))?;
        }
        Err(e) => return Err(sys("mknod")(e)),
    }
    fchownat(
        &parent,
        name.as_path(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(sys("chown"))
}

/// The parent directory (opened for real, created if missing) and the last name.
fn split(root: &OwnedFd, path: &Path) -> Result<(OwnedFd, PathBuf), DeviceError> {
    let parent_path = path.parent().unwrap_or(Path::new("/"));
    let name = PathBuf::from(path.file_name().unwrap_or_default());
    let p = open_in_root(root, parent_path, Create::Dir)?;
    let dir = nix::fcntl::open(
        proc_fd_path(&p).as_path(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| DeviceError::Sys {
        what: "open",
        path: parent_path.to_path_buf(),
        source,
    })?;
    Ok((dir, name))
}

fn symlinks(root: &OwnedFd) -> Result<(), DeviceError> {
    let links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("/proc/kcore", "/dev/core"),
        ("pts/ptmx", "/dev/ptmx"),
    ];
    for (target, link) in links {
        let (dir, name) = split(root, Path::new(link))?;
        match symlinkat(target, &dir, name.as_path()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(source) => {
                return Err(DeviceError::Sys {
                    what: "symlink",
                    path: link.into(),
                    source,
                });
            }
        }
    }
    Ok(())
}
