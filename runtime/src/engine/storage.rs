//! How a container's root filesystem is made from image layers: the seam a
//! `storage-driver` plugin will fill. Today one native driver, overlayfs with the layers as
//! lower directories and the bundle's `upper`/`work` as the writable layer.

use std::path::{Path, PathBuf};

use crate::linux::overlay::{OverlayError, mount_overlay, unmount};

/// Makes and releases container root filesystems from unpacked layers.
pub trait RootfsDriver {
    /// Mount (or build) at `rootfs` a writable tree of `layers` (bottom first); `bundle`
    /// is the container's directory, where the driver may keep its writable state.
    fn prepare(&self, layers: &[PathBuf], bundle: &Path, rootfs: &Path)
    -> Result<(), OverlayError>;
    /// Undo [`RootfsDriver::prepare`]; releasing an unprepared rootfs is fine.
    fn release(&self, rootfs: &Path) -> Result<(), OverlayError>;
}

/// overlayfs: `lowerdir` = the layers, `upperdir`/`workdir` = `bundle/upper`, `bundle/work`.
pub struct NativeOverlay;

impl RootfsDriver for NativeOverlay {
    fn prepare(
        &self,
        layers: &[PathBuf],
        bundle: &Path,
        rootfs: &Path,
    ) -> Result<(), OverlayError> {
        mount_overlay(layers, &bundle.join("upper"), &bundle.join("work"), rootfs)
    }

    fn release(&self, rootfs: &Path) -> Result<(), OverlayError> {
        unmount(rootfs)
    }
}
