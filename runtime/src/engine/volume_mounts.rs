//! The mounts of `run`/`create` besides the standard ones: `-v NAME:/path[:ro]`,
//! `-v /host:/path[:ro]`, `-v /path` (anonymous), the image config's `Volumes`, and
//! `--tmpfs /path[:opts]`, as Docker spells and applies them (docker run reference,
//! "Volumes" and "Mount tmpfs").
//!
//! A named volume that does not exist is created with the `local` driver on first use,
//! as Docker does; a bind's host path that does not exist is created as a directory, as
//! Docker's `-v` does. Every volume is mounted through its driver for the container, and
//! [`release`] unmounts it when the container goes (and removes its anonymous volumes
//! when asked: `rm -v`, `--rm`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use super::record::MountRecord;
use super::volume::{CreateRequest, VolumeError, VolumeStore, check_name};
use crate::plugin::PluginSet;

/// One `-v`, `--tmpfs` or image volume, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A named volume, or an anonymous one when `name` is `None`.
    Volume {
        /// Volume name.
        name: Option<String>,
        /// Absolute path in the container.
        dest: String,
        /// `:ro`.
        ro: bool,
    },
    /// A bind of a host directory or file.
    Bind {
        /// Absolute host path.
        src: PathBuf,
        /// Absolute path in the container.
        dest: String,
        /// `:ro`.
        ro: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Absolute path in the container.
        dest: String,
        /// Options after the defaults `nosuid,nodev,noexec`.
        options: Vec<String>,
    },
}

impl MountSpec {
    fn dest(&self) -> &str {
        match self {
            MountSpec::Volume { dest, .. }
            | MountSpec::Bind { dest, .. }
            | MountSpec::Tmpfs { dest, .. } => dest,
        }
    }
}

fn bad(flag: &'static str, value: &str, reason: impl Into<String>) -> VolumeError {
    VolumeError::BadFlag {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Checks a container path: absolute, not `/`, without `..`.
fn check_dest(flag: &'static str, value: &str, dest: &str) -> Result<(), VolumeError> {
    if dest.is_empty() {
        return Err(bad(flag, value, "the container path is empty"));
    }
    if !dest.starts_with('/') {
        return Err(bad(
            flag,
            value,
            format!("the container path `{dest}` is not absolute"),
        ));
    }
    if Path::new(dest)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(bad(
            flag,
            value,
            format!("the container path `{dest}` holds `..`"),
        ));
    }
    if Path::new(dest)
        .components()
        .all(|c| c == Component::RootDir)
    {
        return Err(bad(flag, value, "the container path cannot be `/`"));
    }
    Ok(())
}

/// Parses `-v` (`--volume`): `/path` (anonymous volume), `NAME:/path[:OPTS]` or
/// `/host/path:/path[:OPTS]`, OPTS a comma list of `ro`, `rw`.
///
/// Errors: [`VolumeError::BadFlag`] naming the part and the reason.
pub fn parse_volume(value: &str) -> Result<MountSpec, VolumeError> {
    const FLAG: &str = "-v";
    let parts: Vec<&str> = value.split(':').collect();
    let (src, dest, opts) = match parts.as_slice() {
        [dest] => (None, *dest, None),
        [src, dest] => (Some(*src), *dest, None),
        [src, dest, opts] => (Some(*src), *dest, Some(*opts)),
        _ => {
            return Err(bad(
                FLAG,
                value,
                "expected [SOURCE:]CONTAINER_PATH[:OPTIONS]",
            ));
        }
    };
    check_dest(FLAG, value, dest)?;
    let mut ro = false;
    for o in opts.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            other => {
                return Err(bad(
                    FLAG,
                    value,
                    format!("unknown option `{other}` (use ro or rw)"),
                ));
            }
        }
    }
    let dest = dest.to_string();
    match src {
        None => Ok(MountSpec::Volume {
            name: None,
            dest,
            ro,
        }),
        Some("") => Err(bad(
            FLAG,
            value,
            "the source (volume name or host path) is empty",
        )),
        Some(s) if s.starts_with('/') => Ok(MountSpec::Bind {
            src: PathBuf::from(s),
            dest,
            ro,
        }),
        Some(s) if s.starts_with('.') || s.contains('/') => Err(bad(
            FLAG,
            value,
            format!("`{s}` is a relative host path: give an absolute one (or a volume name)"),
        )),
        Some(s) => {
            check_name(s).map_err(|e| bad(FLAG, value, e.to_string()))?;
            Ok(MountSpec::Volume {
                name: Some(s.to_string()),
                dest,
                ro,
            })
        }
    }
}

/// Parses `--mount` as Docker does: comma-separated `type=volume|bind|tmpfs` (default
/// `volume`), `source`/`src`, `destination`/`dst`/`target`, `readonly`/`ro` (bare, `true`
/// or `false`), `tmpfs-size` (bytes or a size with k/m/g), `tmpfs-mode` (octal). Unlike
/// `-v`, a bind's source must exist ("bind source path does not exist").
///
/// Errors: [`VolumeError::BadFlag`] naming the key and the reason.
pub fn parse_mount(value: &str) -> Result<MountSpec, VolumeError> {
    const FLAG: &str = "--mount";
    let (mut typ, mut src, mut dest, mut ro) = ("volume", None, None, false);
    let mut tmpfs = Vec::new();
    for field in value.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (k, v) {
            ("type", Some(t)) => typ = t,
            ("source" | "src", Some(s)) => src = Some(s),
            ("destination" | "dst" | "target", Some(d)) => dest = Some(d),
            ("readonly" | "ro", None | Some("true" | "1")) => ro = true,
            ("readonly" | "ro", Some("false" | "0")) => ro = false,
            ("tmpfs-size", Some(s)) if !s.is_empty() => tmpfs.push(format!("size={s}")),
            ("tmpfs-mode", Some(m)) if u32::from_str_radix(m, 8).is_ok() => {
                tmpfs.push(format!("mode={m}"));
            }
            _ => {
                return Err(bad(
                    FLAG,
                    value,
                    format!("unknown or malformed field `{field}`"),
                ));
            }
        }
    }
    let Some(dest) = dest else {
        return Err(bad(FLAG, value, "missing field `target`"));
    };
    check_dest(FLAG, value, dest)?;
    let dest = dest.to_string();
    match typ {
        "bind" => {
            let Some(s) = src.filter(|s| !s.is_empty()) else {
                return Err(bad(FLAG, value, "a bind needs `source`"));
            };
            if !s.starts_with('/') {
                return Err(bad(
                    FLAG,
                    value,
                    format!("bind source `{s}` is not absolute"),
                ));
            }
            if !Path::new(s).exists() {
                return Err(bad(
                    FLAG,
                    value,
                    format!("bind source path does not exist: {s}"),
                ));
            }
            Ok(MountSpec::Bind {
                src: PathBuf::from(s),
                dest,
                ro,
            })
        }
        "volume" => {
            let name = src.filter(|s| !s.is_empty());
            if let Some(n) = name {
                check_name(n).map_err(|e| bad(FLAG, value, e.to_string()))?;
            }
            Ok(MountSpec::Volume {
                name: name.map(str::to_string),
                dest,
                ro,
            })
        }
        "tmpfs" => {
            if src.is_some() {
                return Err(bad(FLAG, value, "a tmpfs takes no `source`"));
            }
            if ro {
                tmpfs.push("ro".to_string());
            }
            Ok(MountSpec::Tmpfs {
                dest,
                options: tmpfs,
            })
        }
        t => Err(bad(
            FLAG,
            value,
            format!("unknown type `{t}` (use volume, bind or tmpfs)"),
        )),
    }
}

/// Parses `--tmpfs /path[:OPTS]`, OPTS comma-separated tmpfs(5) and mount(8) options.
///
/// Errors: [`VolumeError::BadFlag`].
pub fn parse_tmpfs(value: &str) -> Result<MountSpec, VolumeError> {
    let (dest, opts) = value.split_once(':').unwrap_or((value, ""));
    check_dest("--tmpfs", value, dest)?;
    Ok(MountSpec::Tmpfs {
        dest: dest.to_string(),
        options: opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn bind(src: &Path, dest: &str, ro: bool) -> Mount {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if ro {
        options.push("ro".to_string());
    }
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(src)
        .options(options)
        .build()
        .expect("bind mount")
}

/// Resolves `specs` plus the image's `Volumes` (`image_volumes`, those not covered by a
/// spec's destination become anonymous volumes) into OCI mounts for container `id`:
/// volumes created when missing and mounted through their drivers, bind sources
/// created. Each mount done is pushed to `done` as the container record shows it, so
/// that the caller can [`release`] them if a later step fails; each volume is pushed to
/// `created` as (host path, container path), for the copy-up into the empty ones
/// ([`super::copy_up::seed`]).
///
/// Errors: a duplicate destination ([`VolumeError::BadFlag`]), a store or driver failure.
pub fn resolve(
    store: &VolumeStore,
    plugins: &PluginSet,
    id: &str,
    specs: &[MountSpec],
    image_volumes: &[String],
    done: &mut Vec<MountRecord>,
    created: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<Mount>, VolumeError> {
    let mut all = specs.to_vec();
    let mut seen = BTreeSet::new();
    for s in specs {
        let d = s.dest().trim_end_matches('/').to_string();
        if !seen.insert(d) {
            return Err(bad("-v", s.dest(), "duplicate mount point"));
        }
    }
    for v in image_volumes {
        let d = v.trim_end_matches('/');
        if !d.is_empty() && d.starts_with('/') && seen.insert(d.to_string()) {
            all.push(MountSpec::Volume {
                name: None,
                dest: d.to_string(),
                ro: false,
            });
        }
    }
    let mut mounts = Vec::new();
    for s in all {
        match s {
            MountSpec::Bind { src, dest, ro } => {
                if !src.exists() {
                    fs::create_dir_all(&src).map_err(|source| VolumeError::Io {
                        what: "create",
                        path: src.clone(),
                        source,
                    })?;
                }
                mounts.push(bind(&src, &dest, ro));
                done.push(MountRecord {
                    typ: "bind".to_string(),
                    source: src.display().to_string(),
                    destination: dest,
                    rw: !ro,
                });
            }
            MountSpec::Tmpfs { dest, options } => {
                let mut o: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).into();
                o.extend(options);
                mounts.push(
                    MountBuilder::default()
                        .destination(dest.as_str())
                        .typ("tmpfs")
                        .source("tmpfs")
                        .options(o)
                        .build()
                        .expect("tmpfs mount"),
                );
                done.push(MountRecord {
                    typ: "tmpfs".to_string(),
                    source: String::new(),
                    destination: dest,
                    rw: true,
                });
            }
            MountSpec::Volume { name, dest, ro } => {
                let anonymous = name.is_none();
                let exists = name.as_deref().is_some_and(|n| store.get(n).is_ok());
                let name = if exists {
                    name.unwrap_or_default()
                } else {
                    store
                        .create(
                            plugins,
                            CreateRequest {
                                name,
                                anonymous,
                                ..CreateRequest::default()
                            },
                        )?
                        .name
                };
                let path = match store.mount(plugins, &name, id) {
                    Ok(p) => p,
                    Err(e) => {
                        if anonymous {
                            let _ = store.remove(plugins, &name, true);
                        }
                        return Err(e);
                    }
                };
                mounts.push(bind(&path, &dest, ro));
                created.push((path.clone(), dest.clone()));
                done.push(MountRecord {
                    typ: "volume".to_string(),
                    source: name,
                    destination: dest,
                    rw: !ro,
                });
            }
        }
    }
    Ok(mounts)
}

/// Mounts the volumes among `mounts` for container `id` again (their drivers' `mount`),
/// as Docker calls `/VolumeDriver.Mount` at every start: after a stop unmounted them, a
/// tmpfs volume of the `local` driver gets its tmpfs back. A driver answers the same path
/// for a volume each time (config.json binds the path of the first mount).
///
/// Errors: a driver's failure, naming the volume; what was mounted before it is unmounted.
pub fn mount_at_start(
    data_root: &Path,
    cache_dir: &Path,
    plugins: &PluginSet,
    id: &str,
    mounts: &[MountRecord],
) -> Result<(), VolumeError> {
    let store = VolumeStore::new(data_root, cache_dir);
    let volumes: Vec<&MountRecord> = mounts.iter().filter(|m| m.typ == "volume").collect();
    for (i, m) in volumes.iter().enumerate() {
        if let Err(e) = store.mount(plugins, &m.source, id) {
            let done: Vec<MountRecord> = volumes[..i].iter().map(|m| (*m).clone()).collect();
            release(data_root, cache_dir, id, &done, false);
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts the volumes among `mounts` for container `id` (through their drivers) and,
/// with `remove_anonymous`, removes its anonymous volumes once no other container uses
/// them. Errors are logged: a container going away is never held up by a volume.
pub fn release(
    data_root: &Path,
    cache_dir: &Path,
    id: &str,
    mounts: &[MountRecord],
    remove_anonymous: bool,
) {
    let store = VolumeStore::new(data_root, cache_dir);
    let plugins = PluginSet::empty();
    for m in mounts.iter().filter(|m| m.typ == "volume") {
        if let Err(e) = store.unmount(&plugins, &m.source, id) {
            tracing::warn!(container = %id, volume = %m.source, "{}", crate::error_chain(&e));
        }
        if !remove_anonymous {
            continue;
        }
        let anonymous = store.get(&m.source).is_ok_and(|r| r.anonymous);
        if anonymous {
            let users = store.users(&m.source, Some(id)).unwrap_or_default();
            if users.is_empty()
                && let Err(e) = store.force_remove(&plugins, &m.source)
            {
                tracing::warn!(container = %id, volume = %m.source, "{}", crate::error_chain(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_parse_as_docker() {
        assert_eq!(
            parse_volume("data:/srv:ro").unwrap(),
            MountSpec::Volume {
                name: Some("data".into()),
                dest: "/srv".into(),
                ro: true
            }
        );
        assert_eq!(
            parse_volume("/tmp/x:/x").unwrap(),
            MountSpec::Bind {
                src: "/tmp/x".into(),
                dest: "/x".into(),
                ro: false
            }
        );
        assert_eq!(
            parse_volume("/anon").unwrap(),
            MountSpec::Volume {
                name: None,
                dest: "/anon".into(),
                ro: false
            }
        );
        for bad in [
            ":/x",
            "data:x",
            "x",
            "data:/",
            "a:/b:zz",
            "./rel:/x",
            "a:/b:c:d",
            "d:/a/../b",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
        let e = parse_volume(":/x").unwrap_err().to_string();
        assert!(e.contains("source"), "{e}");
        let e = parse_volume("data:rel").unwrap_err().to_string();
        assert!(e.contains("not absolute"), "{e}");
    }

    #[test]
    fn mount_flags_parse_as_docker() {
        assert_eq!(
            parse_mount("type=volume,source=data,target=/d,readonly").unwrap(),
            MountSpec::Volume {
                name: Some("data".into()),
                dest: "/d".into(),
                ro: true
            }
        );
        assert_eq!(
            parse_mount("target=/anon").unwrap(),
            MountSpec::Volume {
                name: None,
                dest: "/anon".into(),
                ro: false
            }
        );
        assert_eq!(
            parse_mount("type=bind,src=/proc,dst=/p,ro=false").unwrap(),
            MountSpec::Bind {
                src: "/proc".into(),
                dest: "/p".into(),
                ro: false
            }
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=750").unwrap(),
            MountSpec::Tmpfs {
                dest: "/t".into(),
                options: vec!["size=1m".into(), "mode=750".into()]
            }
        );
        let e = parse_mount("type=bind,src=/no/such/dir,dst=/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bind source path does not exist"), "{e}");
        for bad in [
            "type=nfs,dst=/x",
            "src=a",
            "type=tmpfs,src=x,dst=/x",
            "dst=/x,bogus=1",
            "dst=rel",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_flags_parse() {
        assert_eq!(
            parse_tmpfs("/run:size=64m,mode=1777").unwrap(),
            MountSpec::Tmpfs {
                dest: "/run".into(),
                options: vec!["size=64m".into(), "mode=1777".into()]
            }
        );
        assert!(parse_tmpfs("run").is_err());
    }
}
