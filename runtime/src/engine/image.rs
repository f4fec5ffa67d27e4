//! Images, for now: the built-in `busybox` image made from Debian's `busybox-static`,
//! or a rootfs directory given by path. (OCI image layouts, registries and layers come
//! with storage drivers.)

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the busybox binary comes from (Debian package `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// Image errors.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image name is neither a built-in image with a `rootfs/bin/sh` nor an existing
    /// directory; carries the name as given.
    #[error(
        "image {0:?} not found: the built-in image is made by `rwasm setup`; a rootfs directory may be given by path"
    )]
    NotFound(String),
    /// A file operation on the image store failed.
    #[error("cannot {what} {path}")]
    Io {
        /// The operation, as a verb: `resolve`, `create`, `chmod`, `link`, `write`, `install`.
        what: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// [`BUSYBOX`] cannot be copied or does not run `busybox --list` (missing or not static).
    #[error("{BUSYBOX} is missing or not static: install Debian's busybox-static")]
    NoBusybox,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { what, path, source }
}

/// The images under `<data-root>/images`.
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// The store under `<data_root>/images`; touches nothing on disk.
    pub fn new(data_root: &Path) -> Self {
        ImageStore {
            dir: data_root.join("images"),
        }
    }

    /// The rootfs of `image`: `busybox` (or `busybox:latest`), or a directory path.
    pub fn resolve(&self, image: &str) -> Result<PathBuf, ImageError> {
        if image.contains('/') || image.starts_with('.') {
            let p = PathBuf::from(image);
            return if p.is_dir() {
                p.canonicalize().map_err(io("resolve", &p))
            } else {
                Err(ImageError::NotFound(image.into()))
            };
        }
        let name = image.strip_suffix(":latest").unwrap_or(image);
        let rootfs = self.dir.join(name).join("rootfs");
        if rootfs.join("bin/sh").exists() {
            Ok(rootfs)
        } else {
            Err(ImageError::NotFound(image.into()))
        }
    }

    /// Build the `busybox` image (idempotent): the static binary, one relative symlink
    /// per applet, and the few files a container user expects (/etc/passwd, /etc/group).
    pub fn init_busybox(&self) -> Result<PathBuf, ImageError> {
        let image = self.dir.join("busybox");
        let rootfs = image.join("rootfs");
        if rootfs.join("bin/sh").exists() {
            return Ok(rootfs);
        }
        let tmp = self.dir.join(".busybox.tmp");
        let _ = fs::remove_dir_all(&tmp);
        let root = tmp.join("rootfs");
        for d in [
            "bin", "dev", "etc", "proc", "sys", "tmp", "root", "var/tmp", "home", "usr/bin",
            "usr/sbin", "sbin",
        ] {
            fs::create_dir_all(root.join(d)).map_err(io("create", &root.join(d)))?;
        }
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
            .map_err(io("chmod", &root))?;
        let bin = root.join("bin/busybox");
        fs::copy(BUSYBOX, &bin).map_err(|_| ImageError::NoBusybox)?;
        let out = Command::new(&bin)
            .arg("--list")
            .output()
            .map_err(|_| ImageError::NoBusybox)?;
        if !out.status.success() {
            return Err(ImageError::NoBusybox);
        }
        for applet in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|a| !a.is_empty() && *a != "busybox")
        {
            let link = root.join("bin").join(applet);
            symlink("busybox", &link).map_err(io("link", &link))?;
        }
        fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .map_err(io("write", &root.join("etc/passwd")))?;
        fs::write(
            root.join("etc/group"),
            "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
        )
        .map_err(io("write", &root.join("etc/group")))?;
        let _ = fs::remove_dir_all(&image);
        fs::rename(&tmp, &image).map_err(io("install", &image))?;
        Ok(rootfs)
    }
}
