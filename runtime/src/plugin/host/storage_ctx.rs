//! The `storage-host` capability of one storage driver call: every request checked, then
//! done by mount(2) or `linux::layer_copy`.
//!
//! | request field | allowed when |
//! |---|---|
//! | `target` (mount, unmount, copy-layer) | an existing path under the driver's state directory (not the directory itself) |
//! | `source` (bind), overlay `lowerdir=` entries | a layer of the current call (or a path inside one), or a path under the state directory |
//! | overlay `upperdir=`, `workdir=` | under the state directory |
//! | `layer` (copy-layer) | a layer of the current call |
//! | kind | `overlay`, `bind`, `tmpfs` (the WIT enum has no other) |
//! | options | `ro rw nosuid nodev noexec noatime relatime`; overlay `lowerdir= upperdir= workdir= index=off`; tmpfs `size= mode= nr_inodes=` |
//!
//! A bind mount whose source is a layer (or inside one), or lies on a read-only mount, is
//! read-only whatever its options say, and an explicit `rw` for it is refused: layers
//! are shared by every container and image that uses them, so no driver may gain a
//! writable view of one, neither directly nor by binding again (or remounting) a
//! read-only bind it made earlier. An overlay `upperdir=` on such a bind fails in the
//! kernel (`EROFS`).
//!
//! Paths are resolved with every symlink followed (`canonicalize`) and then checked, so
//! a symlink or `..` that leads out of the allowed trees is refused; the guest is blocked
//! in the host call meanwhile and cannot swap the path between check and use. The host
//! mounts the resolved path. A refused request is an `invalid-input` error naming the
//! field.

use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};

use super::net_ctx::NetRefusal;

type R<T> = Result<T, NetRefusal>;

fn refused<T>(msg: impl Into<String>) -> R<T> {
    Err(NetRefusal::Refused(msg.into()))
}

/// The mount types a driver may ask for (`storage-host.mount-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountKind {
    Overlay,
    Bind,
    Tmpfs,
}

/// The state of one storage driver call.
pub(crate) struct StorageCtx {
    /// The driver's state directory, canonical.
    state_dir: PathBuf,
    /// The layer directories of this call, canonical.
    layers: Vec<PathBuf>,
    /// Targets this call mounted, in order (for the host's clean-up after a failure).
    pub(crate) mounted: Vec<PathBuf>,
}

impl StorageCtx {
    /// A call of a driver owning `state_dir`, handed `layers` (both must exist).
    pub(crate) fn new(state_dir: &Path, layers: &[PathBuf]) -> std::io::Result<StorageCtx> {
        Ok(StorageCtx {
            state_dir: state_dir.canonicalize()?,
            layers: layers
                .iter()
                .map(|l| l.canonicalize())
                .collect::<Result<_, _>>()?,
            mounted: Vec::new(),
        })
    }

    /// `path` resolved; refused unless absolute and existing.
    fn resolve(field: &str, path: &str) -> R<PathBuf> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return refused(format!("{field} `{path}` is not an absolute path"));
        }
        match p.canonicalize() {
            Ok(c) => Ok(c),
            Err(e) => refused(format!("{field} `{path}` cannot be resolved: {e}")),
        }
    }

    fn under_state(&self, c: &Path) -> bool {
        c != self.state_dir && c.starts_with(&self.state_dir)
    }

    /// A target under the state directory.
    pub(crate) fn target(&self, field: &str, path: &str) -> R<PathBuf> {
        let c = Self::resolve(field, path)?;
        if !self.under_state(&c) {
            return refused(format!(
                "{field} `{path}` is not under the driver's directory {}",
                self.state_dir.display()
            ));
        }
        Ok(c)
    }

    /// A source: a layer of this call (or inside one), or under the state directory.
    fn source(&self, field: &str, path: &str) -> R<PathBuf> {
        let c = Self::resolve(field, path)?;
        if self.under_state(&c) || self.layers.iter().any(|l| c.starts_with(l)) {
            return Ok(c);
        }
        refused(format!(
            "{field} `{path}` is neither a layer of this call nor under the driver's \
             directory {}",
            self.state_dir.display()
        ))
    }

    /// A layer of this call, exactly.
    pub(crate) fn layer(&self, field: &str, path: &str) -> R<PathBuf> {
        let c = Self::resolve(field, path)?;
        if self.layers.contains(&c) {
            return Ok(c);
        }
        refused(format!("{field} `{path}` is not a layer of this call"))
    }

    /// Why a bind of the resolved `source` must be read-only (`is a layer of this call`,
    /// `lies on a read-only mount`); `None` when it may be writable.
    fn read_only_source(&self, source: &Path) -> R<Option<&'static str>> {
        if self.layers.iter().any(|l| source.starts_with(l)) {
            return Ok(Some("is a layer of this call"));
        }
        // ST_RDONLY is the mount's own read-only flag (or its file system's), so a
        // read-only bind of a layer made earlier under the state directory is caught.
        let st = statvfs(source)
            .map_err(|e| NetRefusal::Failed(format!("cannot statvfs {}: {e}", source.display())))?;
        Ok(st
            .flags()
            .contains(FsFlags::ST_RDONLY)
            .then_some("lies on a read-only mount"))
    }

    /// Checks and performs one mount.
    pub(crate) fn mount(
        &mut self,
        kind: MountKind,
        source: Option<&str>,
        target: &str,
        options: &[String],
    ) -> R<()> {
        let target = self.target("target", target)?;
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        let mut rw_asked = None;
        for (i, opt) in options.iter().enumerate() {
            let field = format!("options[{i}]");
            let (key, value) = opt.split_once('=').unwrap_or((opt.as_str(), ""));
            match (kind, key) {
                (_, "ro") => {
                    flags |= MsFlags::MS_RDONLY;
                    rw_asked = None;
                }
                (_, "rw") => {
                    flags &= !MsFlags::MS_RDONLY;
                    rw_asked = Some(field);
                }
                (_, "nosuid") => flags |= MsFlags::MS_NOSUID,
                (_, "nodev") => flags |= MsFlags::MS_NODEV,
                (_, "noexec") => flags |= MsFlags::MS_NOEXEC,
                (_, "noatime") => flags |= MsFlags::MS_NOATIME,
                (_, "relatime") => flags |= MsFlags::MS_RELATIME,
                (MountKind::Overlay, "lowerdir") => {
                    let mut dirs = Vec::new();
                    for (j, d) in value.split(':').enumerate() {
                        let c = self.source(&format!("{field} lowerdir[{j}]"), d)?;
                        dirs.push(checked_option_path(&field, &c)?);
                    }
                    data.push(format!("lowerdir={}", dirs.join(":")));
                }
                (MountKind::Overlay, "upperdir" | "workdir") => {
                    let c = self.target(&format!("{field} {key}"), value)?;
                    data.push(format!("{key}={}", checked_option_path(&field, &c)?));
                }
                (MountKind::Overlay, "index") if value == "off" => data.push(opt.clone()),
                (MountKind::Tmpfs, "size" | "mode" | "nr_inodes")
                    if !value.is_empty()
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'%') =>
                {
                    data.push(opt.clone());
                }
                _ => return refused(format!("{field} `{opt}` is not allowed for this mount")),
            }
        }
        let (fstype, src) = match kind {
            MountKind::Overlay => ("overlay", PathBuf::from("overlay")),
            MountKind::Tmpfs => ("tmpfs", PathBuf::from("tmpfs")),
            MountKind::Bind => {
                let Some(s) = source else {
                    return refused("source is missing: a bind mount needs one");
                };
                let src = self.source("source", s)?;
                if let Some(why) = self.read_only_source(&src)? {
                    if let Some(field) = rw_asked {
                        return refused(format!(
                            "{field} `rw` is not allowed: source `{s}` {why}, so its bind \
                             mounts are read-only"
                        ));
                    }
                    flags |= MsFlags::MS_RDONLY;
                }
                ("", src)
            }
        };
        if kind == MountKind::Overlay && !(data.iter().any(|d| d.starts_with("lowerdir="))) {
            return refused("options lack `lowerdir=`: an overlay mount needs its layers");
        }
        let data = data.join(",");
        let result = if kind == MountKind::Bind {
            mount(
                Some(&src),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .and_then(|()| {
                // A bind mount takes its flags in a remount (mount(2), "MS_BIND").
                if flags.is_empty() {
                    return Ok(());
                }
                mount(
                    None::<&str>,
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
                    None::<&str>,
                )
                .inspect_err(|_| {
                    let _ = umount2(&target, MntFlags::MNT_DETACH);
                })
            })
        } else {
            mount(
                Some(&src),
                &target,
                Some(fstype),
                flags,
                Some(data.as_str()),
            )
        };
        result.map_err(|e| {
            NetRefusal::Failed(format!(
                "cannot mount {fstype} at {}: {e}",
                target.display()
            ))
        })?;
        self.mounted.push(target);
        Ok(())
    }

    /// Checks and performs one unmount (lazily; not mounted is fine).
    pub(crate) fn unmount(&mut self, target: &str) -> R<()> {
        let target = self.target("target", target)?;
        match umount2(&target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) => {
                self.mounted.retain(|m| m != &target);
                Ok(())
            }
            Err(e) => Err(NetRefusal::Failed(format!(
                "cannot unmount {}: {e}",
                target.display()
            ))),
        }
    }

    /// Checks and performs `remove`: refused while a mount lies at or below the target
    /// (`/proc/self/mountinfo`), so a bound layer can never be deleted through it. A
    /// target that does not exist is not an error.
    pub(crate) fn remove(&mut self, target: &str) -> R<()> {
        if std::fs::symlink_metadata(target).is_err() {
            return Ok(());
        }
        let target = self.target("target", target)?;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| NetRefusal::Failed(format!("cannot read /proc/self/mountinfo: {e}")))?;
        if let Some(m) = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mountinfo)
            .find(|m| Path::new(m).starts_with(&target))
        {
            return refused(format!(
                "target `{}` has a mount at {m}: unmount it first",
                target.display()
            ));
        }
        let done = if target.is_dir() {
            std::fs::remove_dir_all(&target)
        } else {
            std::fs::remove_file(&target)
        };
        done.map_err(|e| NetRefusal::Failed(format!("cannot remove {}: {e}", target.display())))
    }

    /// Checks and performs `copy-layer`.
    pub(crate) fn copy_layer(&mut self, layer: &str, target: &str) -> R<u64> {
        let layer = self.layer("layer", layer)?;
        let target = self.target("target", target)?;
        if !target.is_dir() {
            return refused(format!("target `{}` is not a directory", target.display()));
        }
        crate::linux::layer_copy::apply_layer(&layer, &target)
            .map_err(|e| NetRefusal::Failed(crate::error_chain(&e)))
    }
}

/// A resolved path as overlayfs option text: refused when it holds a character that the
/// option syntax gives a meaning (`,` `:` `\`), or is not a plain path.
fn checked_option_path(field: &str, p: &Path) -> R<String> {
    let s = p.display().to_string();
    if s.contains([',', ':', '\\'])
        || p.components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return refused(format!("{field}: path `{s}` cannot be an overlay option"));
    }
    Ok(s)
}

/// A mountinfo path field with its octal escapes (`\040` for a space) decoded.
fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts `targets` (last first); errors are logged. The host's clean-up after a
/// failed `prepare`.
pub(crate) fn unmount_all(targets: &[PathBuf]) {
    for t in targets.iter().rev() {
        match umount2(t, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => tracing::warn!(target = %t.display(), "cannot unmount: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_state_dir_and_layers_are_refused() {
        let tmp = std::env::temp_dir().join(format!("rwasm-sctx-{}", std::process::id()));
        let state = tmp.join("state");
        let layer = tmp.join("layer");
        std::fs::create_dir_all(state.join("c/rootfs")).unwrap();
        std::fs::create_dir_all(&layer).unwrap();
        std::os::unix::fs::symlink("/etc", state.join("c/escape")).unwrap();
        let ctx = StorageCtx::new(&state, std::slice::from_ref(&layer)).unwrap();
        let t = |p: &Path| ctx.target("target", &p.display().to_string());
        assert!(t(&state.join("c/rootfs")).is_ok());
        for bad in [
            state.clone(),
            state.join("c/escape"),
            state.join("c/../../layer"),
        ] {
            assert!(t(&bad).is_err(), "{}", bad.display());
        }
        assert!(ctx.source("source", &layer.display().to_string()).is_ok());
        assert!(ctx.source("source", "/etc").is_err());
        let layer_c = layer.canonicalize().unwrap();
        assert_eq!(
            ctx.read_only_source(&layer_c.join("sub")).unwrap(),
            Some("is a layer of this call")
        );
        let rootfs = state.join("c/rootfs").canonicalize().unwrap();
        assert_eq!(ctx.read_only_source(&rootfs).unwrap(), None);
        assert!(
            ctx.layer("layer", &state.join("c").display().to_string())
                .is_err()
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
