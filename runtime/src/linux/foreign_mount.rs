//! Bind mounts whose source lies in another process's mount namespace, named through
//! that process's root: `/proc/PID/root/PATH`. Docker's `--ipc container:X` binds X's
//! `/dev/shm` into the new container this way (the engine names
//! `/proc/X_INIT/root/dev/shm`).
//!
//! The kernel refuses `mount(MS_BIND)` of a mount that is not in the caller's mount
//! namespace (`EINVAL`, `mount(2)`), so the tree is cloned from inside that namespace:
//! `setns(2)` into it, `open_tree(2)` with `OPEN_TREE_CLONE` (a detached copy of the
//! mount, same filesystem: what one container writes the other sees), `setns(2)` back,
//! then `move_mount(2)` attaches the copy onto the destination. `setns` of a mount
//! namespace needs a process that shares its filesystem information with nobody: init,
//! single-threaded, before `pivot_root`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::sched::{CloneFlags, setns};

/// `OPEN_TREE_CLONE` (`linux/mount.h`): a detached copy of the mount instead of an
/// `O_PATH` fd of it.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `MOVE_MOUNT_F_EMPTY_PATH`: the tree to move is the `from` fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
/// `MOVE_MOUNT_T_EMPTY_PATH`: the destination is the `to` fd itself.
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// Splits `/proc/PID/root/PATH` into `PID` and `/PATH` (`None` for any other path).
pub fn proc_root_path(p: &Path) -> Option<(i32, PathBuf)> {
    let mut c = p.components();
    if c.next() != Some(Component::RootDir) || c.next() != Some(Component::Normal("proc".as_ref()))
    {
        return None;
    }
    let pid: i32 = c.next()?.as_os_str().to_str()?.parse().ok()?;
    if c.next() != Some(Component::Normal("root".as_ref())) {
        return None;
    }
    Some((pid, Path::new("/").join(c.as_path())))
}

/// Whether process `pid` lives in another mount namespace than ours (false when either
/// namespace file cannot be read: the plain bind mount then reports the error).
pub fn in_other_mount_ns(pid: i32) -> bool {
    let ns = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (ns("/proc/self/ns/mnt"), ns(&format!("/proc/{pid}/ns/mnt"))) {
        (Some(ours), Some(theirs)) => ours != theirs,
        _ => false,
    }
}

/// A detached copy of the mount at `path` in the mount namespace of process `pid`
/// (with the mounts below it when `recursive`), made from inside that namespace. On
/// return, success or not, the caller is back in its own mount namespace and working
/// directory (its root becomes that namespace's root: call it before `pivot_root`).
///
/// Errors: opening a namespace file; `setns(2)` (`EINVAL` when the caller shares its
/// filesystem information, e.g. has threads; `EPERM` without `CAP_SYS_ADMIN` over the
/// namespace); `open_tree(2)` (the path does not exist there, `ENOSYS` before Linux 5.2).
pub fn clone_tree(pid: i32, path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let ours = File::open("/proc/self/ns/mnt")?;
    let cwd = File::open(".")?;
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))?;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    setns(&theirs, CloneFlags::CLONE_NEWNS).map_err(io::Error::from)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC.cast_unsigned();
    if recursive {
        flags |= libc::AT_RECURSIVE.cast_unsigned();
    }
    // SAFETY: open_tree(2) reads the NUL-terminated `c_path`, which outlives the call, and
    // returns a new fd or -1; it touches no memory of ours otherwise.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    let opened = if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        let raw = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        // SAFETY: `raw` is the new fd open_tree(2) just returned; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    };
    // Back home whatever happened; failing that, we must not go on in their namespace.
    setns(&ours, CloneFlags::CLONE_NEWNS).map_err(io::Error::from)?;
    nix::unistd::fchdir(cwd.as_fd()).map_err(io::Error::from)?;
    opened
}

/// Attach the detached tree `tree` (from [`clone_tree`]) onto the directory or file
/// `target` (an `O_PATH` fd of it).
pub fn attach(tree: &OwnedFd, target: &impl AsRawFd) -> io::Result<()> {
    let empty = c"";
    // SAFETY: move_mount(2) reads the two NUL-terminated empty paths (static) and the two
    // fds, which stay open for the call; it writes no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_root_paths_split_into_pid_and_path() {
        assert_eq!(
            proc_root_path(Path::new("/proc/42/root/dev/shm")),
            Some((42, PathBuf::from("/dev/shm")))
        );
        assert_eq!(
            proc_root_path(Path::new("/proc/7/root")),
            Some((7, PathBuf::from("/")))
        );
        for other in [
            "/proc/self/root/dev/shm",
            "/proc/42/cwd/x",
            "/dev/shm",
            "proc/42/root/x",
        ] {
            assert_eq!(proc_root_path(Path::new(other)), None, "{other}");
        }
        assert!(!in_other_mount_ns(
            i32::try_from(std::process::id()).unwrap()
        ));
    }
}
