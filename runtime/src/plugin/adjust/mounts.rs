//! `mounts` and `remove-mounts`: the spec's `mounts`.
//!
//! Rules for an added mount: at most [`MAX_MOUNTS`](super::MAX_MOUNTS), each with at most
//! [`MAX_MOUNT_OPTIONS`](super::MAX_MOUNT_OPTIONS) options; a bind mount (`type = "bind"`,
//! or an empty/`none` type with a `bind` or `rbind` option); the destination absolute
//! without `.`/`..`, each destination once; the source absolute, and once canonicalized
//! inside one of the plugin's `[plugin.grants] dirs` (a plugin without grants may add no
//! mounts); a read-only grant requires the `ro` option and refuses `rbind` (a bind remount
//! makes only the top mount read-only, so mounts below the granted directory would stay
//! writable); options from the allow-list
//! `bind rbind ro rw nosuid nodev noexec private rprivate slave rslave`, not both `ro` and
//! `rw`; a mount without `bind`/`rbind` gets `bind` added. Added mounts are appended.
//!
//! A removal drops every mount of the spec at that destination (a clean absolute path);
//! a destination without a mount is no error.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

use super::{Edit, MAX_LIST, MAX_MOUNT_OPTIONS, MAX_MOUNTS, MountRequest, PluginError};
use crate::plugin::manifest::{clean_absolute, normal_absolute};

const MOUNT_OPTIONS: &[&str] = &[
    "bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "private", "rprivate", "slave",
    "rslave",
];

/// Applies one plugin's mount removals, then its additions.
pub(super) fn apply(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    add: Vec<MountRequest>,
    remove: Vec<String>,
) -> Result<(), PluginError> {
    e.count("mounts", add.len(), MAX_MOUNTS)?;
    e.count("remove-mounts", remove.len(), MAX_LIST)?;
    for (i, dest) in remove.iter().enumerate() {
        let entry = format!("remove-mounts[{i}]");
        e.text(|| entry.clone(), dest)?;
        if !clean_absolute(Path::new(dest)) {
            return Err(e.invalid(
                entry,
                format!("`{dest}` is not an absolute path without `.` and `..`"),
            ));
        }
        let dest = normal_absolute(Path::new(dest));
        e.claim(format!("mount destination {dest}"), &entry, true)?;
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        let before = mounts.len();
        mounts.retain(|m| m.destination() != Path::new(&dest));
        if mounts.len() != before {
            spec.set_mounts(Some(mounts));
            e.did(format!("removed mount {dest}"));
        }
    }
    for (i, m) in add.into_iter().enumerate() {
        let (destination, source, options) = validate(e, i, m)?;
        e.claim(
            format!("mount destination {destination}"),
            &format!("mounts[{i}].destination"),
            false,
        )?;
        push(e, spec, destination, source, "bind", options);
    }
    Ok(())
}

/// Appends a mount and records it.
pub(super) fn push(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    destination: String,
    source: PathBuf,
    typ: &str,
    options: Vec<String>,
) {
    e.did(format!(
        "added {typ} mount {} -> {destination} ({})",
        source.display(),
        options.join(",")
    ));
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from(destination));
    mount.set_typ(Some(typ.to_string()));
    mount.set_source(Some(source));
    mount.set_options(Some(options));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
}

/// Checks mount `i` against the rules; returns (destination, canonical source, options).
fn validate(
    e: &Edit<'_>,
    i: usize,
    m: MountRequest,
) -> Result<(String, PathBuf, Vec<String>), PluginError> {
    let spec = e.rules.plugin;
    e.text(|| format!("mounts[{i}].destination"), &m.destination)?;
    e.text(|| format!("mounts[{i}].source"), &m.source)?;
    e.text(|| format!("mounts[{i}].type"), &m.typ)?;
    e.count(
        &format!("mounts[{i}].options"),
        m.options.len(),
        MAX_MOUNT_OPTIONS,
    )?;
    for (j, o) in m.options.iter().enumerate() {
        e.text(|| format!("mounts[{i}].options[{j}]"), o)?;
        if !MOUNT_OPTIONS.contains(&o.as_str()) {
            return Err(e.invalid(
                format!("mounts[{i}].options[{j}]"),
                format!(
                    "option `{o}` is not allowed (allowed: {})",
                    MOUNT_OPTIONS.join(" ")
                ),
            ));
        }
    }
    let has = |o: &str| m.options.iter().any(|x| x == o);
    let is_bind = has("bind") || has("rbind");
    match m.typ.as_str() {
        "bind" => {}
        "" | "none" if is_bind => {}
        t => {
            return Err(e.invalid(
                format!("mounts[{i}].type"),
                format!("only bind mounts may be added by plugins, not type `{t}`"),
            ));
        }
    }
    if has("ro") && has("rw") {
        return Err(e.invalid(format!("mounts[{i}].options"), "both `ro` and `rw`"));
    }
    if !clean_absolute(Path::new(&m.destination)) {
        return Err(e.invalid(
            format!("mounts[{i}].destination"),
            format!(
                "`{}` is not an absolute path without `.` and `..`",
                m.destination
            ),
        ));
    }
    let source = Path::new(&m.source);
    if !source.is_absolute() {
        return Err(e.invalid(
            format!("mounts[{i}].source"),
            format!("`{}` is not an absolute path", m.source),
        ));
    }
    if spec.dirs.is_empty() {
        return Err(e.invalid(
            format!("mounts[{i}].source"),
            "the plugin has no [plugin.grants] dirs, so it may add no mounts",
        ));
    }
    let canonical = std::fs::canonicalize(source).map_err(|err| {
        e.invalid(
            format!("mounts[{i}].source"),
            format!("cannot resolve `{}`: {err}", m.source),
        )
    })?;
    let grant = spec.dirs.iter().find(|g| {
        std::fs::canonicalize(&g.host)
            .map(|host| canonical.starts_with(host))
            .unwrap_or(false)
    });
    let Some(grant) = grant else {
        return Err(e.invalid(
            format!("mounts[{i}].source"),
            format!(
                "`{}` (resolved to `{}`) is outside the plugin's granted directories",
                m.source,
                canonical.display()
            ),
        ));
    };
    if !grant.writable && !has("ro") {
        return Err(e.invalid(
            format!("mounts[{i}].options"),
            format!(
                "`{}` is granted read-only, so the mount needs the `ro` option",
                grant.host.display()
            ),
        ));
    }
    if !grant.writable && has("rbind") {
        return Err(e.invalid(
            format!("mounts[{i}].options"),
            format!(
                "`{}` is granted read-only, so the mount may not be `rbind`: the mounts below it would stay writable",
                grant.host.display()
            ),
        ));
    }
    let mut options = m.options;
    if !is_bind {
        options.push("bind".to_string());
    }
    Ok((
        normal_absolute(Path::new(&m.destination)),
        canonical,
        options,
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{field, plugin, run};
    use super::super::{Adjustment, MountRequest};
    use crate::plugin::manifest::DirGrant;
    use oci_spec::runtime::Spec;

    fn mount(source: &str, dest: &str, options: &[&str]) -> Adjustment {
        Adjustment {
            mounts: vec![MountRequest {
                destination: dest.to_string(),
                source: source.to_string(),
                typ: "bind".to_string(),
                options: options.iter().map(|s| s.to_string()).collect(),
            }],
            ..Adjustment::default()
        }
    }

    #[test]
    fn rules() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("data");
        std::fs::create_dir(&inside).unwrap();
        let grant = |writable| DirGrant {
            host: dir.path().to_path_buf(),
            guest: "/g".into(),
            writable,
        };
        let ro = plugin("a", vec![grant(false)]);
        let rw = plugin("a", vec![grant(true)]);
        let s = Spec::default();
        let src = inside.to_str().unwrap();
        let out = run(&ro, mount(src, "/data", &["ro"]), &s).unwrap();
        let m = out.spec.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(m.options().clone().unwrap(), ["ro", "bind"]);
        assert_eq!(m.source().as_deref(), Some(inside.as_path()));
        assert!(run(&rw, mount(src, "/data", &["rbind"]), &s).is_ok());
        assert_eq!(
            field(run(&ro, mount(src, "/data", &["rbind", "ro"]), &s).unwrap_err()),
            "mounts[0].options"
        );
        assert_eq!(
            field(run(&ro, mount(src, "/data", &[]), &s).unwrap_err()),
            "mounts[0].options"
        );
        assert_eq!(
            field(run(&rw, mount("/etc", "/data", &[]), &s).unwrap_err()),
            "mounts[0].source"
        );
        let escape = format!("{src}/../../../etc");
        assert_eq!(
            field(run(&rw, mount(&escape, "/data", &[]), &s).unwrap_err()),
            "mounts[0].source"
        );
        assert_eq!(
            field(run(&rw, mount(src, "data", &[]), &s).unwrap_err()),
            "mounts[0].destination"
        );
        assert_eq!(
            field(run(&rw, mount(src, "/a/../b", &[]), &s).unwrap_err()),
            "mounts[0].destination"
        );
        assert_eq!(
            field(run(&rw, mount(src, "/data", &["suid"]), &s).unwrap_err()),
            "mounts[0].options[0]"
        );
        assert_eq!(
            field(run(&plugin("a", vec![]), mount(src, "/data", &[]), &s).unwrap_err()),
            "mounts[0].source"
        );
        let mut tmpfs = mount(src, "/data", &[]);
        tmpfs.mounts[0].typ = "tmpfs".into();
        assert_eq!(field(run(&rw, tmpfs, &s).unwrap_err()), "mounts[0].type");
        let mut twice = mount(src, "/data", &[]);
        twice.mounts.push(twice.mounts[0].clone());
        twice.mounts[1].destination = "//data/".into();
        assert_eq!(
            field(run(&rw, twice, &s).unwrap_err()),
            "mounts[1].destination"
        );
    }

    #[test]
    fn removal_by_destination() {
        let mut s = Spec::default();
        let before = s.mounts().as_ref().unwrap().len();
        assert!(
            s.mounts()
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.destination() == Path::new("/dev/shm"))
        );
        let adj = Adjustment {
            remove_mounts: vec!["/dev/shm".into()],
            ..Adjustment::default()
        };
        let out = run(&plugin("a", vec![]), adj, &s).unwrap();
        assert_eq!(out.spec.mounts().as_ref().unwrap().len(), before - 1);
        s = out.spec;
        assert!(
            !s.mounts()
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.destination() == Path::new("/dev/shm"))
        );
        let bad = Adjustment {
            remove_mounts: vec!["dev".into()],
            ..Adjustment::default()
        };
        assert_eq!(
            field(run(&plugin("a", vec![]), bad, &s).unwrap_err()),
            "remove-mounts[0]"
        );
    }
}
