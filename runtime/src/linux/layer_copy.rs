//! Applying an unpacked image layer onto a plain directory, as containers/storage's `vfs`
//! graph driver does: the copy that gives a container the tree overlayfs would show for
//! the same layers (kernel `Documentation/filesystems/overlayfs.rst`, "whiteouts and
//! opaque directories"). An unpacked layer (see `engine::image::layer`) spells a whiteout
//! as a 0:0 character device and an opaque directory as the `trusted.overlay.opaque=y`
//! xattr; both are applied here and neither is copied.
//!
//! Every other entry keeps its type, mode (set-id bits included), owner, mtime, xattrs,
//! symlink target, device number, and its hard links within the layer. The walk never
//! follows a symlink: an entry of the target that is in the way (a symlink or file where
//! the layer has a directory) is removed first, as overlayfs hides it.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{Mode, SFlag, mknod};

/// The xattr prefix of overlayfs's own attributes, which a copy does not carry.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
/// The opaque-directory xattr (`engine::image::layer::OPAQUE_XATTR`).
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// A failed step of a layer copy; names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {path}")]
pub struct CopyError {
    /// The step: `read`, `create`, `copy`, `link`, `mknod`, `chown`, `chmod`, ...
    pub what: &'static str,
    /// The file it failed on (in the layer for reads, in the target otherwise).
    pub path: PathBuf,
    /// The error of the system call.
    #[source]
    pub source: io::Error,
}

fn err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Copies layer directory `layer` onto directory `target` (which must exist), applying
/// its whiteouts and opaque directories. Returns the number of entries copied (whiteouts
/// not counted). Errors: [`CopyError`] naming the file.
pub fn apply_layer(layer: &Path, target: &Path) -> Result<u64, CopyError> {
    let mut copy = Copy {
        links: HashMap::new(),
        dirs: Vec::new(),
        count: 0,
    };
    copy.dir_entries(layer, target)?;
    // Directory times last: writing their entries changed them.
    for (dst, meta) in copy.dirs.iter().rev() {
        set_times(dst, meta, false)?;
    }
    let meta = fs::symlink_metadata(layer).map_err(err("read", layer))?;
    set_times(target, &meta, false)?;
    Ok(copy.count)
}

struct Copy {
    /// (device, inode) of a multiply-linked file of the layer -> its copy.
    links: HashMap<(u64, u64), PathBuf>,
    /// Directories made, with their source's metadata, for their times.
    dirs: Vec<(PathBuf, fs::Metadata)>,
    count: u64,
}

impl Copy {
    fn dir_entries(&mut self, src: &Path, dst: &Path) -> Result<(), CopyError> {
        let mut entries: Vec<_> = fs::read_dir(src)
            .map_err(err("read", src))?
            .collect::<Result<_, _>>()
            .map_err(err("read", src))?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for e in entries {
            let s = e.path();
            let d = dst.join(e.file_name());
            self.entry(&s, &d)?;
        }
        Ok(())
    }

    fn entry(&mut self, src: &Path, dst: &Path) -> Result<(), CopyError> {
        let meta = fs::symlink_metadata(src).map_err(err("read", src))?;
        let ft = meta.file_type();
        let existing = fs::symlink_metadata(dst).ok();
        if ft.is_char_device() && meta.rdev() == 0 {
            // A whiteout: the path is gone from the lower layers.
            if existing.is_some() {
                remove_any(dst)?;
            }
            return Ok(());
        }
        self.count += 1;
        if ft.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {
                    if xattr::get(src, OPAQUE_XATTR)
                        .map_err(err("read xattrs of", src))?
                        .is_some_and(|v| v == b"y")
                    {
                        clear_dir(dst)?;
                    }
                }
                Some(_) => {
                    remove_any(dst)?;
                    fs::create_dir(dst).map_err(err("create", dst))?;
                }
                None => fs::create_dir(dst).map_err(err("create", dst))?,
            }
            set_attrs(src, dst, &meta)?;
            self.dir_entries(src, dst)?;
            self.dirs.push((dst.to_path_buf(), meta));
            return Ok(());
        }
        if existing.is_some() {
            remove_any(dst)?;
        }
        if meta.nlink() > 1 && !ft.is_dir() {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                return fs::hard_link(first, dst).map_err(err("link", dst));
            }
            self.links.insert(key, dst.to_path_buf());
        }
        if ft.is_symlink() {
            let to = fs::read_link(src).map_err(err("read", src))?;
            std::os::unix::fs::symlink(&to, dst).map_err(err("create", dst))?;
            std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
                .map_err(err("chown", dst))?;
            copy_xattrs(src, dst)?;
            return set_times(dst, &meta, true);
        }
        if ft.is_file() {
            fs::copy(src, dst).map_err(err("copy", dst))?;
        } else {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else if ft.is_fifo() {
                SFlag::S_IFIFO
            } else {
                SFlag::S_IFSOCK
            };
            mknod(dst, kind, Mode::empty(), meta.rdev())
                .map_err(|e| err("mknod", dst)(io::Error::from(e)))?;
        }
        set_attrs(src, dst, &meta)?;
        // Never by open(2): opening a fifo would wait for a writer.
        set_times(dst, &meta, !ft.is_file())
    }
}

/// Owner first (chown clears set-id bits), then mode and xattrs.
fn set_attrs(src: &Path, dst: &Path, meta: &fs::Metadata) -> Result<(), CopyError> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(err("chown", dst))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(err("chmod", dst))?;
    copy_xattrs(src, dst)
}

fn copy_xattrs(src: &Path, dst: &Path) -> Result<(), CopyError> {
    for name in xattr::list(src).map_err(err("list xattrs of", src))? {
        use std::os::unix::ffi::OsStrExt;
        if name.as_bytes().starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        if let Some(value) = xattr::get(src, &name).map_err(err("read xattrs of", src))? {
            xattr::set(dst, &name, &value).map_err(err("set an xattr of", dst))?;
        }
    }
    Ok(())
}

fn set_times(dst: &Path, meta: &fs::Metadata, symlink: bool) -> Result<(), CopyError> {
    let atime = FileTime::from_last_access_time(meta);
    let mtime = FileTime::from_last_modification_time(meta);
    if symlink {
        filetime::set_symlink_file_times(dst, atime, mtime)
    } else {
        filetime::set_file_times(dst, atime, mtime)
    }
    .map_err(err("set the times of", dst))
}

fn remove_any(path: &Path) -> Result<(), CopyError> {
    let meta = fs::symlink_metadata(path).map_err(err("read", path))?;
    if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .map_err(err("remove", path))
}

fn clear_dir(dir: &Path) -> Result<(), CopyError> {
    for e in fs::read_dir(dir).map_err(err("read", dir))? {
        let e = e.map_err(err("read", dir))?;
        remove_any(&e.path())?;
    }
    Ok(())
}
