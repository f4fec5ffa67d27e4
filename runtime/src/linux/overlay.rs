//! The overlay mount that gives a container from an image a writable root filesystem
//! (kernel `Documentation/filesystems/overlayfs.rst`). Storage driver plugins replace
//! this later; the core keeps the one mount call.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// A failed overlay mount or unmount; names the target.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} overlay at {target}")]
pub struct OverlayError {
    /// The operation: `mount` or `unmount`.
    pub what: &'static str,
    /// The overlay's mount point (the run's `rootfs` directory).
    pub target: PathBuf,
    /// The errno from `mount(2)` or `umount2(2)`.
    #[source]
    pub source: nix::Error,
}

/// Mount `lower` (read-only) under `upper`/`work` at `target`.
pub fn mount_overlay(
    lower: &Path,
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), OverlayError> {
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|source| OverlayError {
        what: "mount",
        target: target.into(),
        source,
    })
}

/// Unmount `target` (lazily, so a busy mount cannot block cleanup); a target that is not
/// mounted is fine.
pub fn unmount(target: &Path) -> Result<(), OverlayError> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(OverlayError {
            what: "unmount",
            target: target.into(),
            source,
        }),
    }
}
