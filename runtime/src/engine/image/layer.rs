//! Unpacking one image layer (a tar stream, plain, gzip or zstd) into its own directory,
//! as the OCI image-spec's "Applying Changesets" says and in the form overlayfs reads as a
//! lower layer: a whiteout `.wh.NAME` becomes a 0:0 character device `NAME`, an opaque
//! marker `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory (the kernel's
//! `Documentation/filesystems/overlayfs.rst`, containers/storage's overlay driver).
//!
//! Every entry keeps its type, mode, owner, mtime and PAX `SCHILY.xattr.*` attributes,
//! except overlayfs's own `trusted.overlay.*` (dropped with a warning: an image must not
//! redirect or hide paths in the overlay by itself).
//! An entry whose path is absolute, has a `..` component, or passes through a symlink
//! that the archive itself made is refused with an error naming it, and so is a whiteout
//! of `.`, `..` or nothing (`.wh..`, `.wh...`, `.wh.`): the layer directory starts empty,
//! so nothing the archive writes or removes can leave it.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use filetime::FileTime;
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::unistd::{Gid, Uid, fchownat};
use tar::EntryType;

/// The xattr overlayfs reads to make a lower directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The xattrs overlayfs reads from its layers (`trusted.overlay.opaque`, `.redirect`,
/// `.metacopy`, ...): a layer's own ones are dropped at unpacking, so that only the
/// whiteout translation above decides what overlayfs hides or redirects.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
/// The OCI whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// A layer entry that cannot be unpacked; each names the entry as the archive spells it.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The entry would land outside the layer directory.
    #[error("layer entry {entry:?} lands outside the layer directory: {reason}")]
    Escape {
        /// The entry's path (or hard link target) as the archive spells it.
        entry: String,
        /// `absolute path`, `".." component` or `path through the symlink S`.
        reason: String,
    },
    /// A hard link names a file the layer does not hold (yet).
    #[error("layer entry {entry:?} is a hard link to {target:?}, which the layer does not hold")]
    LinkTarget {
        /// The link's path.
        entry: String,
        /// Its target as the archive spells it.
        target: String,
    },
    /// A file operation for the entry failed.
    #[error("cannot {what} layer entry {entry:?}")]
    Io {
        /// The operation: `create`, `write`, `link`, `mknod`, `chown`, `chmod`, `set xattr of`, ...
        what: &'static str,
        /// The entry's path as the archive spells it.
        entry: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The tar stream itself is malformed or cannot be read (or decompressed).
    #[error("cannot read the layer archive")]
    Read(#[source] io::Error),
}

/// A reader that hashes (SHA-256) and counts everything read through it.
pub struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        use sha2::Digest as _;
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    /// Read to the end, then return `sha256:HEX` of everything read and its length in bytes.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        use sha2::Digest as _;
        io::copy(&mut self, &mut io::sink())?;
        let hex: String = self
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok((format!("sha256:{hex}"), self.count))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The stream `r` decompressed, by its magic bytes: gzip (`1f 8b`), zstd (`28 b5 2f fd`),
/// anything else as it is.
pub fn decompress<'a>(r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let head = r.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r)?)
    } else {
        Box::new(r)
    })
}

/// The relative, normal path of an entry, or why it escapes.
fn clean(raw: &[u8], entry: &str) -> Result<PathBuf, LayerError> {
    let escape = |reason: &str| LayerError::Escape {
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let p = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(escape("\"..\" component")),
            Component::RootDir | Component::Prefix(_) => return Err(escape("absolute path")),
        }
    }
    Ok(out)
}

/// Make sure every parent of `rel` under `root` is a real directory (creating missing
/// ones, mode 0755), never a symlink.
fn check_parents(root: &Path, rel: &Path, entry: &str) -> Result<(), LayerError> {
    let mut cur = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LayerError::Escape {
                    entry: entry.to_string(),
                    reason: format!(
                        "path through the symlink {}",
                        cur.strip_prefix(root).unwrap_or(&cur).display()
                    ),
                });
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(LayerError::Io {
                    what: "create the parent directory of",
                    entry: entry.to_string(),
                    source: io::Error::from(io::ErrorKind::NotADirectory),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&cur)
                    .map_err(|source| LayerError::Io {
                        what: "create the parent directory of",
                        entry: entry.to_string(),
                        source,
                    })?;
            }
            Err(source) => {
                return Err(LayerError::Io {
                    what: "inspect the parent of",
                    entry: entry.to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

use std::os::unix::fs::DirBuilderExt;

/// Remove whatever is at `path` (a directory with its contents); nothing there is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Unpack the (already decompressed) tar stream `r` into the empty directory `dest`.
/// Returns the bytes of regular-file content written (Docker's layer size).
pub fn unpack(r: impl Read, dest: &Path) -> Result<u64, LayerError> {
    let mut archive = tar::Archive::new(r);
    let mut size = 0u64;
    let mut dir_times: Vec<(PathBuf, FileTime)> = Vec::new();
    for entry in archive.entries().map_err(LayerError::Read)? {
        let mut entry = entry.map_err(LayerError::Read)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let io = |what: &'static str| {
            let entry = name.clone();
            move |source| LayerError::Io {
                what,
                entry,
                source,
            }
        };
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let rel = clean(&raw, &name)?;
        if rel.as_os_str().is_empty() {
            continue; // the layer root itself ("./")
        }
        check_parents(dest, &rel, &name)?;
        let target = dest.join(&rel);
        let base = rel.file_name().unwrap_or_default().as_bytes();
        if base == OPAQUE_MARKER.as_bytes() {
            let dir = target.parent().unwrap_or(dest);
            xattr::set(dir, OPAQUE_XATTR, b"y").map_err(io("set the opaque xattr for"))?;
            continue;
        }
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            // `.wh..` and `.wh...` would whiteout the directory itself or its parent (for
            // a top-level entry: the store's directory of every layer).
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(LayerError::Escape {
                    entry: name,
                    reason: format!("whiteout of {:?}", String::from_utf8_lossy(hidden)),
                });
            }
            let wh = target.with_file_name(OsStr::from_bytes(hidden));
            remove_any(&wh).map_err(io("replace"))?;
            mknod(&wh, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| io("make the whiteout of")(io::Error::from(e)))?;
            continue;
        }
        let header = entry.header().clone();
        let existing = fs::symlink_metadata(&target).ok();
        if !(kind == EntryType::Directory && existing.as_ref().is_some_and(|m| m.is_dir())) {
            remove_any(&target).map_err(io("replace"))?;
        }
        match kind {
            EntryType::Directory => {
                if !target.is_dir() {
                    fs::create_dir(&target).map_err(io("create"))?;
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(io("create"))?;
                size += io::copy(&mut entry, &mut f).map_err(io("write"))?;
            }
            EntryType::Symlink => {
                let to = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                symlink(OsStr::from_bytes(&to), &target).map_err(io("create the symlink"))?;
            }
            EntryType::Link => {
                let to = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                let to_name = String::from_utf8_lossy(&to).into_owned();
                let src_rel = clean(&to, &name).map_err(|e| match e {
                    LayerError::Escape { reason, .. } => LayerError::Escape {
                        entry: format!("{name} -> {to_name}"),
                        reason,
                    },
                    other => other,
                })?;
                check_parents(dest, &src_rel, &name)?;
                let src = dest.join(&src_rel);
                if fs::symlink_metadata(&src).is_err() {
                    return Err(LayerError::LinkTarget {
                        entry: name,
                        target: to_name,
                    });
                }
                fs::hard_link(&src, &target).map_err(io("link"))?;
                continue; // a hard link shares its target's metadata
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let flag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                mknod(
                    &target,
                    flag,
                    Mode::empty(),
                    makedev(u64::from(major), u64::from(minor)),
                )
                .map_err(|e| io("mknod")(io::Error::from(e)))?;
            }
            other => {
                tracing::debug!("skipping layer entry {name:?} of type {other:?}");
                continue;
            }
        }
        // Ownership first (chown clears set-id bits), then mode, xattrs and times.
        let uid = u32::try_from(header.uid().map_err(io("read the owner of"))?).unwrap_or(0);
        let gid = u32::try_from(header.gid().map_err(io("read the group of"))?).unwrap_or(0);
        fchownat(
            nix::fcntl::AT_FDCWD,
            &target,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io("chown")(io::Error::from(e)))?;
        if kind != EntryType::Symlink {
            let mode = header.mode().map_err(io("read the mode of"))? & 0o7777;
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io("chmod"))?;
        }
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(io("read the PAX headers of"))?
        {
            for ext in exts {
                let ext = ext.map_err(io("read the PAX headers of"))?;
                if let Some(attr) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    if attr.starts_with(OVERLAY_XATTR_PREFIX.as_bytes()) {
                        // overlayfs's own (opaque, redirect, metacopy...): only our
                        // whiteout translation sets them; an image's are dropped.
                        tracing::warn!(
                            entry = %name,
                            xattr = %String::from_utf8_lossy(attr),
                            "layer entry: overlayfs xattr dropped"
                        );
                        continue;
                    }
                    xattr::set(&target, OsStr::from_bytes(attr), ext.value_bytes())
                        .map_err(io("set an xattr of"))?;
                }
            }
        }
        let mtime =
            FileTime::from_unix_time(i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0), 0);
        if kind == EntryType::Directory {
            dir_times.push((target, mtime));
        } else {
            filetime::set_symlink_file_times(&target, mtime, mtime)
                .map_err(io("set the times of"))?;
        }
    }
    // Directories last, deepest first: writing their entries changed their mtimes.
    for (dir, t) in dir_times.iter().rev() {
        filetime::set_symlink_file_times(dir, *t, *t).map_err(|source| LayerError::Io {
            what: "set the times of",
            entry: dir.strip_prefix(dest).unwrap_or(dir).display().to_string(),
            source,
        })?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_kept_inside_the_layer() {
        assert_eq!(clean(b"./a/b", "e").unwrap(), Path::new("a/b"));
        assert_eq!(clean(b"./", "e").unwrap(), Path::new(""));
        let e = clean(b"a/../../x", "a/../../x").unwrap_err().to_string();
        assert_eq!(
            e,
            "layer entry \"a/../../x\" lands outside the layer directory: \"..\" component"
        );
        assert!(
            clean(b"/etc/passwd", "/etc/passwd")
                .unwrap_err()
                .to_string()
                .contains("absolute path")
        );
    }

    #[test]
    fn compression_is_recognised_by_its_magic_bytes() {
        let plain = b"plain tar bytes".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&plain[..], 1).unwrap();
        for input in [plain.clone(), gz, zst] {
            let mut out = Vec::new();
            decompress(&input[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, plain);
        }
    }
}
