//! The container's root filesystem: mounts from config.json, pivot_root, masked and
//! read-only paths (runtime-spec `config.md` "Root", "Mounts"; `config-linux.md`
//! "Masked Paths", "Readonly Paths", "Rootfs Mount Propagation").
//!
//! Runs in init, inside the container's mount namespace. Mount destinations are resolved
//! with `path_in_root`, so a symlink in the rootfs can never redirect a mount to the host.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{FsFlags, statvfs};
use oci_spec::runtime::{Mount, Spec};

use super::foreign_mount;
use super::mount_opts::{self, MountOptions};
use super::path_in_root::{Create, ResolveError, is_symlink_in_root, open_in_root, proc_fd_path};

/// A failure while building the root filesystem; names the path and the step.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A `mounts[].destination` is not absolute.
    #[error("mounts[].destination {0:?} must be an absolute path")]
    RelativeDestination(PathBuf),
    /// A proc or sysfs mount whose destination in the rootfs is a symlink.
    #[error(
        "mounts[].destination {dest:?}: {typ} must be mounted on an ordinary directory, not a symlink"
    )]
    Symlink {
        /// The filesystem type.
        typ: String,
        /// The destination.
        dest: PathBuf,
    },
    /// The `source` of a bind mount cannot be read.
    #[error("mounts[].source {source_path} (for {dest:?})")]
    BindSource {
        /// The destination in the container.
        dest: PathBuf,
        /// The host path.
        source_path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: io::Error,
    },
    /// A bind source in another process's mount namespace (`/proc/PID/root/PATH`) could
    /// not be cloned from there or attached (see `linux::foreign_mount`).
    #[error("cannot bind-mount {source_path} (another mount namespace's) on {dest:?}")]
    Foreign {
        /// The destination in the container.
        dest: PathBuf,
        /// The `/proc/PID/root/...` source.
        source_path: PathBuf,
        /// The failing step's error.
        #[source]
        source: io::Error,
    },
    /// A bind mount without `source`; carries the destination.
    #[error("mounts[].source: the bind mount at {0:?} needs a source")]
    NoSource(PathBuf),
    /// A mount destination cannot be resolved or created inside the rootfs.
    #[error("cannot resolve mount destination")]
    Resolve(#[from] ResolveError),
    /// A mount-related system call failed (mount, remount, mask, pivot_root, chdir, ...).
    #[error("cannot {what} {path}")]
    Sys {
        /// The step, e.g. `bind-mount`, `remount read-only`, `pivot_root into`.
        what: &'static str,
        /// The path it applied to (host path before pivot_root, container path after).
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Inspecting a file failed: a bind source, `/proc/self/mountinfo`, or a masked or
    /// read-only path (other than `ENOENT`, which skips the path).
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn sys(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(nix::Error) -> RootfsError {
    let path = path.into();
    move |source| RootfsError::Sys { what, path, source }
}

/// Make `/` a slave (or as `linux.rootfsPropagation` says) and bind the rootfs onto
/// itself so it is a mount point for pivot_root.
pub fn enter(spec: &Spec, rootfs: &Path) -> Result<OwnedFd, RootfsError> {
    let requested = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_ref())
        .map_or(MsFlags::empty(), |p| {
            mount_opts::parse(std::slice::from_ref(p)).propagation
        });
    let pre = if requested.contains(MsFlags::MS_PRIVATE) {
        MsFlags::MS_PRIVATE | MsFlags::MS_REC
    } else {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    };
    mount(None::<&str>, "/", None::<&str>, pre, None::<&str>)
        .map_err(sys("set propagation of", "/"))?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind-mount the rootfs", rootfs))?;
    open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", rootfs))
}

/// Mount every entry of `mounts`, in order.
pub fn mount_all(
    root: &OwnedFd,
    spec: &Spec,
    bundle: &Path,
    cgroupns: bool,
) -> Result<(), RootfsError> {
    for m in spec.mounts().as_deref().unwrap_or_default() {
        mount_one(root, m, bundle, cgroupns)?;
    }
    Ok(())
}

fn mount_one(root: &OwnedFd, m: &Mount, bundle: &Path, cgroupns: bool) -> Result<(), RootfsError> {
    let dest = m.destination();
    if !dest.is_absolute() {
        return Err(RootfsError::RelativeDestination(dest.clone()));
    }
    let opts = mount_opts::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("none");
    tracing::debug!(destination = %dest.display(), %typ, "mount");
    if opts.bind || typ == "bind" {
        let src = match m.source() {
            Some(s) if s.is_absolute() => s.clone(),
            Some(s) => bundle.join(s),
            None => return Err(RootfsError::NoSource(dest.clone())),
        };
        // Resolved once: the type is read from, and the mount made from, the same open
        // file, so a rename or symlink swap between the two cannot change what is bound.
        let bind_err = |source: io::Error| RootfsError::BindSource {
            dest: dest.clone(),
            source_path: src.clone(),
            source,
        };
        let src_fd = open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| bind_err(io::Error::from(e)))?;
        let meta = fs::metadata(proc_fd_path(&src_fd)).map_err(bind_err)?;
        let target = open_in_root(
            root,
            dest,
            if meta.is_dir() {
                Create::Dir
            } else {
                Create::File
            },
        )?;
        let rec = opts.flags & MsFlags::MS_REC;
        match foreign_mount::proc_root_path(&src) {
            // Another mount namespace's mount (e.g. `/proc/PID/root/dev/shm`): cloned there.
            Some((pid, path)) if foreign_mount::in_other_mount_ns(pid) => {
                foreign_mount::clone_tree(pid, &path, !rec.is_empty())
                    .and_then(|tree| foreign_mount::attach(&tree, &target))
                    .map_err(|source| RootfsError::Foreign {
                        dest: dest.clone(),
                        source_path: src.clone(),
                        source,
                    })?;
            }
            _ => mount(
                Some(&proc_fd_path(&src_fd)),
                &proc_fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND | rec,
                None::<&str>,
            )
            .map_err(sys("bind-mount", dest))?,
        }
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(root, dest, extra)?;
        }
        return propagate(root, dest, &opts);
    }
    if matches!(typ, "cgroup" | "cgroup2") {
        return mount_cgroup(root, dest, &opts, cgroupns);
    }
    if matches!(typ, "proc" | "sysfs") && is_symlink_in_root(root, dest) {
        // runc refuses this too: a symlink would put procfs wherever the image points it.
        return Err(RootfsError::Symlink {
            typ: typ.to_string(),
            dest: dest.clone(),
        });
    }
    let target = open_in_root(root, dest, Create::Dir)?;
    let source = m
        .source()
        .as_ref()
        .map_or_else(|| PathBuf::from(typ), |s| s.clone());
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    mount(
        Some(&source),
        &proc_fd_path(&target),
        Some(typ),
        opts.flags,
        data,
    )
    .map_err(sys("mount", dest))?;
    propagate(root, dest, &opts)
}

/// Bind mounts ignore flags on the first call: apply them with a bind remount, keeping
/// the flags the kernel locks (nosuid, nodev, noexec, atime) from the source.
fn remount_bind(root: &OwnedFd, dest: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    let top = open_in_root(root, dest, Create::Nothing)?;
    let path = proc_fd_path(&top);
    let locked = statvfs(&path).map_or(MsFlags::empty(), |s| vfs_to_ms(s.flags()));
    mount(
        None::<&str>,
        &path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .map_err(sys("remount", dest))
}

fn vfs_to_ms(f: FsFlags) -> MsFlags {
    let mut m = MsFlags::empty();
    for (v, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(v) {
            m |= ms;
        }
    }
    m
}

fn propagate(root: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let top = open_in_root(root, dest, Create::Nothing)?;
    mount(
        None::<&str>,
        &proc_fd_path(&top),
        None::<&str>,
        opts.propagation,
        None::<&str>,
    )
    .map_err(sys("set propagation of", dest))
}

/// One line of /proc/self/mountinfo that is a cgroup filesystem.
struct CgroupMount {
    mount_point: PathBuf,
    fstype: String,
    /// The hierarchy's controllers, e.g. `cpu,cpuacct` or `name=systemd` (v1 only).
    controllers: String,
}

fn cgroup_mounts() -> Result<Vec<CgroupMount>, RootfsError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(path).map_err(|source| RootfsError::Io {
        path: path.into(),
        source,
    })?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            let mut r = right.split_whitespace();
            let fstype = r.next()?;
            let super_opts = r.nth(1).unwrap_or("");
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let controllers = super_opts
                .split(',')
                .filter(|o| {
                    !matches!(*o, "rw" | "ro")
                        && !o.contains("nsdelegate")
                        && !o.starts_with("memory_")
                })
                .collect::<Vec<_>>()
                .join(",");
            Some(CgroupMount {
                mount_point: mount_point.into(),
                fstype: fstype.into(),
                controllers,
            })
        })
        .collect())
}

/// Own cgroup path per hierarchy from /proc/self/cgroup (`hierarchy-id:controllers:path`).
fn own_cgroup(controllers: &str, v2: bool) -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_, ctl, path) = (p.next()?, p.next()?, p.next()?);
        let hit = if v2 {
            ctl.is_empty()
        } else {
            ctl == controllers
        };
        hit.then(|| PathBuf::from(path))
    })
}

/// A `cgroup` mount: cgroup2 as one filesystem; v1 as a tmpfs holding one directory per
/// hierarchy, as runc lays it out. With a cgroup namespace each hierarchy is mounted
/// fresh (its root is the container's cgroup); without one, the container's own cgroup
/// directories are bind-mounted so the host's tree stays hidden.
fn mount_cgroup(
    root: &OwnedFd,
    dest: &Path,
    opts: &MountOptions,
    cgroupns: bool,
) -> Result<(), RootfsError> {
    let mounts = cgroup_mounts()?;
    let flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let unified_only = mounts.iter().all(|m| m.fstype == "cgroup2");
    if unified_only {
        let target = open_in_root(root, dest, Create::Dir)?;
        let host = mounts
            .first()
            .map(|m| m.mount_point.clone())
            .unwrap_or_else(|| "/sys/fs/cgroup".into());
        return mount_hierarchy(root, &target, dest, &host, "cgroup2", "", flags, cgroupns);
    }
    let target = open_in_root(root, dest, Create::Dir)?;
    mount(
        Some("tmpfs"),
        &proc_fd_path(&target),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(sys("mount tmpfs for cgroups on", dest))?;
    for m in mounts.iter().filter(|m| m.fstype == "cgroup") {
        let Some(name) = m.mount_point.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        let target = open_in_root(root, &sub, Create::Dir)?;
        mount_hierarchy(
            root,
            &target,
            &sub,
            &m.mount_point,
            "cgroup",
            &m.controllers,
            flags,
            cgroupns,
        )?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        remount_bind_tmpfs_ro(root, dest)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one hierarchy's mount, as the mount table gives it
fn mount_hierarchy(
    root: &OwnedFd,
    target: &OwnedFd,
    dest: &Path,
    host_mount: &Path,
    fstype: &str,
    controllers: &str,
    flags: MsFlags,
    cgroupns: bool,
) -> Result<(), RootfsError> {
    let at = proc_fd_path(target);
    if cgroupns {
        let data = (!controllers.is_empty()).then_some(controllers);
        return mount(Some("cgroup"), &at, Some(fstype), flags, data)
            .map_err(sys("mount cgroup on", dest));
    }
    let own = own_cgroup(controllers, fstype == "cgroup2").unwrap_or_else(|| "/".into());
    let src = host_mount.join(own.strip_prefix("/").unwrap_or(&own));
    mount(
        Some(&src),
        &at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind-mount cgroup on", dest))?;
    // Remount the new bind mount, not the directory under it.
    let top = open_in_root(root, dest, Create::Nothing)?;
    mount(
        None::<&str>,
        &proc_fd_path(&top),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        None::<&str>,
    )
    .map_err(sys("remount cgroup", dest))
}

fn remount_bind_tmpfs_ro(root: &OwnedFd, dest: &Path) -> Result<(), RootfsError> {
    let top = open_in_root(root, dest, Create::Nothing)?;
    let flags = MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(
        None::<&str>,
        &proc_fd_path(&top),
        None::<&str>,
        flags,
        Some("mode=755"),
    )
    .map_err(sys("remount read-only", dest))
}

/// pivot_root into the rootfs and detach the old root (runtime-spec: `root.path`).
pub fn pivot(root: &OwnedFd, rootfs: &Path) -> Result<(), RootfsError> {
    nix::unistd::fchdir(root.as_fd()).map_err(sys("chdir to", rootfs))?;
    nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root into", rootfs))?;
    // The old root now sits on top of the new one at ".": make sure its unmount cannot
    // propagate to the host, then detach it.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("set propagation of the old root", "/"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the old root", "/"))?;
    nix::unistd::chdir("/").map_err(sys("chdir to", "/"))
}

/// After pivot_root: the rootfs propagation `linux.rootfsPropagation` asks for.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_ref()) {
        let prop = mount_opts::parse(std::slice::from_ref(p)).propagation;
        if prop.contains(MsFlags::MS_SHARED) || prop.contains(MsFlags::MS_UNBINDABLE) {
            mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
                .map_err(sys("set propagation of", "/"))?;
        }
    }
    Ok(())
}

/// After sysctls are written (they need a writable /proc/sys, as in runc): masked and
/// read-only paths, then `root.readonly`.
pub fn protect(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(Path::new(p))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly(Path::new(p))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let locked = statvfs("/").map_or(MsFlags::empty(), |s| vfs_to_ms(s.flags()));
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None::<&str>,
        )
        .map_err(sys("remount read-only", "/"))?;
    }
    Ok(())
}

/// Hide a path: `/dev/null` over a file, an empty read-only tmpfs over a directory.
fn mask(p: &Path) -> Result<(), RootfsError> {
    let meta = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RootfsError::Io {
                path: p.into(),
                source,
            });
        }
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(sys("mask", p))
    } else if meta.file_type().is_symlink() {
        Ok(())
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys("mask", p))
    }
}

fn readonly(p: &Path) -> Result<(), RootfsError> {
    match fs::symlink_metadata(p) {
        Ok(m) if !m.file_type().is_symlink() => {}
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RootfsError::Io {
                path: p.into(),
                source,
            });
        }
    }
    mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind-mount", p))?;
    let locked = statvfs(p).map_or(MsFlags::empty(), |s| vfs_to_ms(s.flags()));
    let flags =
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked;
    mount(None::<&str>, p, None::<&str>, flags, None::<&str>).map_err(sys("remount read-only", p))
}

/// Whether a mount list bind-mounts the host's /dev (then no devices are created).
pub fn binds_dev(spec: &Spec) -> bool {
    spec.mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| {
            m.destination() == Path::new("/dev")
                && (m.typ().as_deref() == Some("bind")
                    || m.options()
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .any(|o| o == "bind" || o == "rbind"))
        })
}

/// Is `p` a character device (helper for device setup).
pub fn is_char_device(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false)
}
