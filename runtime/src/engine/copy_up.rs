//! Docker's volume copy-up: a new, empty volume mounted at a path that holds content in
//! the image starts as a copy of that content (ownership, modes, symlinks kept), as
//! `docker run -v NAME:/path` does for a volume it creates ("Populate a volume using a
//! container", Docker's storage/volumes docs).
//!
//! The image path is resolved inside the container's merged rootfs without leaving it
//! (`linux::path_in_root`: symlinks are followed as the container would see them), and
//! the copy never follows a symlink: links are copied as links.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::Path;

use super::volume::VolumeError;
use crate::linux::path_in_root::{Create, open_in_root, proc_fd_path};

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VolumeError {
    let path = path.to_path_buf();
    move |source| VolumeError::Io { what, path, source }
}

/// Copies the image's `dest` (a path in the container, resolved inside `rootfs`) into
/// the volume directory `volume` when `dest` is a directory there and `volume` is empty.
/// Returns how many entries were copied (0 when there was nothing to copy).
///
/// Errors: I/O naming the file; device nodes, fifos and sockets are skipped.
pub fn seed(rootfs: &Path, dest: &str, volume: &Path) -> Result<u64, VolumeError> {
    let root = fs::File::open(rootfs).map_err(io_err("open", rootfs))?;
    let Ok(fd) = open_in_root(&root, Path::new(dest), Create::Nothing) else {
        return Ok(0);
    };
    let src = proc_fd_path(&fd);
    let meta = fs::metadata(&src).map_err(io_err("stat", Path::new(dest)))?;
    if !meta.is_dir() {
        return Ok(0);
    }
    let empty = fs::read_dir(volume)
        .map_err(io_err("list", volume))?
        .next()
        .is_none();
    if !empty {
        return Ok(0);
    }
    let n = copy_dir(&src, volume)?;
    fs::set_permissions(volume, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err("chmod", volume))?;
    lchown(volume, Some(meta.uid()), Some(meta.gid())).map_err(io_err("chown", volume))?;
    Ok(n)
}

fn copy_dir(src: &Path, dst: &Path) -> Result<u64, VolumeError> {
    let mut n = 0;
    for entry in fs::read_dir(src).map_err(io_err("list", src))? {
        let entry = entry.map_err(io_err("list", src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(io_err("stat", &from))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).map_err(io_err("create", &to))?;
            n += copy_dir(&from, &to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_err("chmod", &to))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(io_err("read link", &from))?;
            symlink(&target, &to).map_err(io_err("create link", &to))?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(io_err("copy to", &to))?;
        } else {
            tracing::debug!(path = %from.display(), "copy-up skips a special file");
            continue;
        }
        lchown(&to, Some(meta.uid()), Some(meta.gid())).map_err(io_err("chown", &to))?;
        if ft.is_file() {
            // chown clears set-id bits: set the mode again.
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_err("chmod", &to))?;
        }
        n += 1;
    }
    Ok(n)
}
