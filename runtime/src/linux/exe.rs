//! A handle on rwasm's own binary that a container can never write through.
//!
//! The container's init process is rwasm re-executed (see `launch`), so until it execs
//! the user process its `/proc/PID/exe` names rwasm's binary. A process in the container
//! that opens that link for writing could overwrite the host's runtime (CVE-2019-5736).
//! We therefore exec init from a read-only bind mount of the binary that is detached from
//! every mount tree right after we open it: the open file keeps the mount alive, no path
//! reaches it, and a write through `/proc/PID/exe` fails with `EROFS`. This costs a few
//! syscalls per container instead of runc 1.1's copy of the whole binary into a memfd.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

/// Failures while sealing the binary; each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum ExeError {
    /// The empty file to bind-mount onto cannot be created in the scratch directory.
    #[error("cannot create the mount point {path}")]
    MountPoint {
        /// The mount point, `<scratch_dir>/.rwasm-exe-<pid>`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The bind mount of `/proc/self/exe`, or its read-only remount, failed (needs CAP_SYS_ADMIN).
    #[error("cannot bind-mount /proc/self/exe read-only on {path}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The errno from `mount(2)`.
        #[source]
        source: nix::Error,
    },
    /// Opening the read-only bind mount `O_PATH` failed.
    #[error("cannot open the sealed binary at {path}")]
    Open {
        /// The mount point.
        path: PathBuf,
        /// The errno from `open(2)`.
        #[source]
        source: nix::Error,
    },
}

/// Open rwasm's binary through a detached read-only bind mount (module docs).
///
/// `scratch_dir` must be a directory only root can write (the state root); a temporary
/// mount point file is created in it and removed before returning. The returned fd is
/// `O_PATH | O_CLOEXEC`, fit for `execveat(fd, "", .., AT_EMPTY_PATH)`.
pub fn sealed_self_exe(scratch_dir: &Path) -> Result<OwnedFd, ExeError> {
    let point = scratch_dir.join(format!(".rwasm-exe-{}", std::process::id()));
    File::create(&point).map_err(|source| ExeError::MountPoint {
        path: point.clone(),
        source,
    })?;
    let result = seal_at(&point);
    // The mount (if any) is already detached; only the empty file is left to remove.
    let _ = fs::remove_file(&point);
    result
}

fn seal_at(point: &Path) -> Result<OwnedFd, ExeError> {
    let mount_err = |source| ExeError::Mount {
        path: point.to_path_buf(),
        source,
    };
    mount(
        Some("/proc/self/exe"),
        point,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(mount_err)?;
    let sealed = (|| {
        mount(
            None::<&str>,
            point,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(mount_err)?;
        open(point, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|source| {
            ExeError::Open {
                path: point.to_path_buf(),
                source,
            }
        })
    })();
    // Detach in every case; the open fd (if we got one) keeps the mount alive.
    let _ = umount2(point, MntFlags::MNT_DETACH);
    sealed
}

/// True when the file behind `fd` lives on a read-only mount (used by tests and checks).
pub fn is_on_readonly_mount(fd: &impl AsRawFd) -> io::Result<bool> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let st = nix::sys::statvfs::statvfs(path.as_str()).map_err(io::Error::from)?;
    Ok(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}
