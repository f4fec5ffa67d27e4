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

/// Mount `lowers` (read-only, bottom layer first, as an image lists its layers) under
/// `upper`/`work` at `target`. overlayfs wants the top layer first in `lowerdir=`, so the
/// list is reversed there.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), OverlayError> {
    let lower: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
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
