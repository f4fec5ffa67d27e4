//! Adjustments: the declarative spec edits plugins return, their validation, the merge of
//! several plugins' edits and their application to the spec (STYLE.md 9).
//!
//! Rules a plugin's answer must follow (anything else is
//! [`PluginError::InvalidAdjustment`](super::PluginError::InvalidAdjustment)):
//!
//! - at most [`MAX_ENV_ENTRIES`] env entries, [`MAX_ANNOTATIONS`] annotations,
//!   [`MAX_MOUNTS`] mounts with [`MAX_MOUNT_OPTIONS`] options each, and no string longer
//!   than [`MAX_STRING_BYTES`];
//! - env names non-empty, without `=` or NUL, values without NUL, each name once;
//! - annotation keys non-empty, without NUL, each key once;
//! - mounts are bind mounts (`type = "bind"`, or an empty/`none` type with a `bind` or
//!   `rbind` option); the destination is absolute without `.`/`..`; the source is absolute,
//!   and once canonicalized lies inside one of the plugin's `[plugin.grants] dirs` (a plugin
//!   without grants may add no mounts); a read-only grant requires the `ro` option; options
//!   come from the allow-list `bind rbind ro rw nosuid nodev noexec private rprivate slave
//!   rslave`; a mount without `bind`/`rbind` gets `bind` added; each destination once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

use super::manifest::{PluginSpec, clean_absolute};
use super::{Applied, PluginError};

/// Most env entries one plugin may return.
pub const MAX_ENV_ENTRIES: usize = 1024;
/// Most annotations one plugin may return.
pub const MAX_ANNOTATIONS: usize = 1024;
/// Most mounts one plugin may return.
pub const MAX_MOUNTS: usize = 256;
/// Most options one mount may carry.
pub const MAX_MOUNT_OPTIONS: usize = 16;
/// Longest string (env name or value, annotation key or value, path, option, reason) a
/// plugin may return, in bytes (64 KiB).
pub const MAX_STRING_BYTES: usize = 64 << 10;

const MOUNT_OPTIONS: &[&str] = &[
    "bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "private", "rprivate", "slave",
    "rslave",
];

/// What a plugin asked for, in plain Rust types mirroring the WIT `adjustment` record
/// (the host module converts from WIT; nothing here is validated yet).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Adjustment {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) remove_env: Vec<String>,
    pub(crate) annotations: Vec<(String, String)>,
    pub(crate) remove_annotations: Vec<String>,
    pub(crate) mounts: Vec<MountRequest>,
    pub(crate) remove_mounts: Vec<String>,
    pub(crate) devices: Vec<DeviceRequest>,
    pub(crate) cdi_devices: Vec<String>,
    pub(crate) resources: Option<ResourcesRequest>,
    pub(crate) rlimits: Vec<RlimitRequest>,
    pub(crate) cgroups_path: Option<String>,
    pub(crate) hooks: Vec<HookRequest>,
    pub(crate) args: Option<Vec<String>>,
}

impl Adjustment {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Adjustment::default()
    }

    /// A short account of what the adjustment holds, e.g. `2 env entries, 1 mount`.
    pub(crate) fn summary(&self) -> String {
        let counts = [
            (self.env.len(), "env entries"),
            (self.remove_env.len(), "env removals"),
            (self.annotations.len(), "annotations"),
            (self.remove_annotations.len(), "annotation removals"),
            (self.mounts.len(), "mounts"),
            (self.remove_mounts.len(), "mount removals"),
            (self.devices.len(), "devices"),
            (self.cdi_devices.len(), "CDI devices"),
            (usize::from(self.resources.is_some()), "resources"),
            (self.rlimits.len(), "rlimits"),
            (usize::from(self.cgroups_path.is_some()), "cgroups path"),
            (self.hooks.len(), "OCI hooks"),
            (usize::from(self.args.is_some()), "args"),
        ];
        let parts: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if parts.is_empty() {
            "nothing".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// A mount a plugin asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MountRequest {
    pub(crate) destination: String,
    pub(crate) source: String,
    pub(crate) typ: String,
    pub(crate) options: Vec<String>,
}

/// A device node a plugin asked for (WIT `device`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeviceRequest {
    pub(crate) path: String,
    pub(crate) typ: String,
    pub(crate) major: i64,
    pub(crate) minor: i64,
    pub(crate) file_mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) permissions: String,
}

/// `linux.resources` a plugin asked for (WIT `resources`); `None` fields are left alone.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ResourcesRequest {
    pub(crate) memory: Option<MemoryRequest>,
    pub(crate) cpu: Option<CpuRequest>,
    pub(crate) pids_limit: Option<i64>,
    pub(crate) block_io: Option<BlockIoRequest>,
    /// (page size such as `2MB`, limit in bytes).
    pub(crate) hugepage_limits: Vec<(String, u64)>,
}

/// WIT `memory`, bytes.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct MemoryRequest {
    pub(crate) limit: Option<i64>,
    pub(crate) reservation: Option<i64>,
    pub(crate) swap: Option<i64>,
}

/// WIT `cpu`: shares, quota and period in microseconds, cpuset lists.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct CpuRequest {
    pub(crate) shares: Option<u64>,
    pub(crate) quota: Option<i64>,
    pub(crate) period: Option<u64>,
    pub(crate) cpus: Option<String>,
    pub(crate) mems: Option<String>,
}

/// One throttle entry: (major, minor, rate).
pub(crate) type ThrottleRequest = (i64, i64, u64);

/// WIT `block-io`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct BlockIoRequest {
    pub(crate) weight: Option<u16>,
    pub(crate) throttle_read_bps: Vec<ThrottleRequest>,
    pub(crate) throttle_write_bps: Vec<ThrottleRequest>,
    pub(crate) throttle_read_iops: Vec<ThrottleRequest>,
    pub(crate) throttle_write_iops: Vec<ThrottleRequest>,
}

/// WIT `rlimit`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RlimitRequest {
    pub(crate) typ: String,
    pub(crate) hard: u64,
    pub(crate) soft: u64,
}

/// The OCI hook list a [`HookRequest`] goes to (config.md, "POSIX-platform Hooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookStage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

/// WIT `oci-hook`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HookRequest {
    pub(crate) stage: HookStage,
    pub(crate) path: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) timeout: Option<i32>,
}

/// A validated adjustment, attributed to its plugin.
#[derive(Debug)]
pub(crate) struct Valid {
    plugin: String,
    env: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    mounts: Vec<ValidMount>,
}

#[derive(Debug)]
struct ValidMount {
    destination: String,
    source: PathBuf,
    options: Vec<String>,
}

fn invalid(plugin: &str, field: impl Into<String>, reason: impl Into<String>) -> PluginError {
    PluginError::InvalidAdjustment {
        plugin: plugin.to_string(),
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_len(plugin: &str, field: &dyn Fn() -> String, s: &str) -> Result<(), PluginError> {
    if s.len() > MAX_STRING_BYTES {
        return Err(invalid(
            plugin,
            field(),
            format!(
                "{} bytes is longer than the limit of {MAX_STRING_BYTES}",
                s.len()
            ),
        ));
    }
    if s.contains('\0') {
        return Err(invalid(plugin, field(), "contains a NUL byte"));
    }
    Ok(())
}

/// Checks a plugin's adjustment against the rules of this module.
pub(crate) fn validate(spec: &PluginSpec, adj: Adjustment) -> Result<Valid, PluginError> {
    let p = spec.name.as_str();
    if adj.env.len() > MAX_ENV_ENTRIES {
        return Err(invalid(
            p,
            "env",
            format!(
                "{} entries, at most {MAX_ENV_ENTRIES} allowed",
                adj.env.len()
            ),
        ));
    }
    if adj.annotations.len() > MAX_ANNOTATIONS {
        return Err(invalid(
            p,
            "annotations",
            format!(
                "{} entries, at most {MAX_ANNOTATIONS} allowed",
                adj.annotations.len()
            ),
        ));
    }
    if adj.mounts.len() > MAX_MOUNTS {
        return Err(invalid(
            p,
            "mounts",
            format!("{} entries, at most {MAX_MOUNTS} allowed", adj.mounts.len()),
        ));
    }

    // TODO(issue 3): kinds the merge does not apply yet are refused, not dropped.
    let unsupported = [
        ("remove-env", adj.remove_env.is_empty()),
        ("remove-annotations", adj.remove_annotations.is_empty()),
        ("remove-mounts", adj.remove_mounts.is_empty()),
        ("devices", adj.devices.is_empty()),
        ("cdi-devices", adj.cdi_devices.is_empty()),
        ("resources", adj.resources.is_none()),
        ("rlimits", adj.rlimits.is_empty()),
        ("cgroups-path", adj.cgroups_path.is_none()),
        ("hooks", adj.hooks.is_empty()),
        ("args", adj.args.is_none()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, empty)| !empty) {
        return Err(invalid(p, *field, "not supported by this rwasm yet"));
    }

    let mut seen = BTreeMap::new();
    for (i, (name, value)) in adj.env.iter().enumerate() {
        check_len(p, &|| format!("env[{i}].name"), name)?;
        check_len(p, &|| format!("env[{i}].value"), value)?;
        if name.is_empty() {
            return Err(invalid(p, format!("env[{i}].name"), "empty variable name"));
        }
        if name.contains('=') {
            return Err(invalid(
                p,
                format!("env[{i}].name"),
                format!("variable name `{name}` contains `=`"),
            ));
        }
        if let Some(first) = seen.insert(name.as_str(), i) {
            return Err(invalid(
                p,
                format!("env[{i}].name"),
                format!("`{name}` is already set by env[{first}]"),
            ));
        }
    }

    let mut seen = BTreeMap::new();
    for (i, (key, value)) in adj.annotations.iter().enumerate() {
        check_len(p, &|| format!("annotations[{i}].key"), key)?;
        check_len(p, &|| format!("annotations[{i}].value"), value)?;
        if key.is_empty() {
            return Err(invalid(
                p,
                format!("annotations[{i}].key"),
                "empty annotation key",
            ));
        }
        if let Some(first) = seen.insert(key.as_str(), i) {
            return Err(invalid(
                p,
                format!("annotations[{i}].key"),
                format!("`{key}` is already set by annotations[{first}]"),
            ));
        }
    }

    let mut mounts = Vec::with_capacity(adj.mounts.len());
    let mut seen = BTreeMap::new();
    for (i, m) in adj.mounts.into_iter().enumerate() {
        let vm = validate_mount(spec, i, m)?;
        if let Some(first) = seen.insert(vm.destination.clone(), i) {
            return Err(invalid(
                p,
                format!("mounts[{i}].destination"),
                format!(
                    "`{}` is already the destination of mounts[{first}]",
                    vm.destination
                ),
            ));
        }
        mounts.push(vm);
    }

    Ok(Valid {
        plugin: spec.name.clone(),
        env: adj.env,
        annotations: adj.annotations,
        mounts,
    })
}

fn validate_mount(spec: &PluginSpec, i: usize, m: MountRequest) -> Result<ValidMount, PluginError> {
    let p = spec.name.as_str();
    check_len(p, &|| format!("mounts[{i}].destination"), &m.destination)?;
    check_len(p, &|| format!("mounts[{i}].source"), &m.source)?;
    check_len(p, &|| format!("mounts[{i}].type"), &m.typ)?;
    if m.options.len() > MAX_MOUNT_OPTIONS {
        return Err(invalid(
            p,
            format!("mounts[{i}].options"),
            format!(
                "{} options, at most {MAX_MOUNT_OPTIONS} allowed",
                m.options.len()
            ),
        ));
    }
    for (j, o) in m.options.iter().enumerate() {
        check_len(p, &|| format!("mounts[{i}].options[{j}]"), o)?;
        if !MOUNT_OPTIONS.contains(&o.as_str()) {
            return Err(invalid(
                p,
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
            return Err(invalid(
                p,
                format!("mounts[{i}].type"),
                format!("only bind mounts may be added by plugins, not type `{t}`"),
            ));
        }
    }
    if has("ro") && has("rw") {
        return Err(invalid(
            p,
            format!("mounts[{i}].options"),
            "both `ro` and `rw`",
        ));
    }
    if !clean_absolute(Path::new(&m.destination)) {
        return Err(invalid(
            p,
            format!("mounts[{i}].destination"),
            format!(
                "`{}` is not an absolute path without `.` and `..`",
                m.destination
            ),
        ));
    }
    let source = Path::new(&m.source);
    if !source.is_absolute() {
        return Err(invalid(
            p,
            format!("mounts[{i}].source"),
            format!("`{}` is not an absolute path", m.source),
        ));
    }
    if spec.dirs.is_empty() {
        return Err(invalid(
            p,
            format!("mounts[{i}].source"),
            "the plugin has no [plugin.grants] dirs, so it may add no mounts",
        ));
    }
    let canonical = std::fs::canonicalize(source).map_err(|e| {
        invalid(
            p,
            format!("mounts[{i}].source"),
            format!("cannot resolve `{}`: {e}", m.source),
        )
    })?;
    let grant = spec.dirs.iter().find(|g| {
        std::fs::canonicalize(&g.host)
            .map(|host| canonical.starts_with(host))
            .unwrap_or(false)
    });
    let Some(grant) = grant else {
        return Err(invalid(
            p,
            format!("mounts[{i}].source"),
            format!(
                "`{}` (resolved to `{}`) is outside the plugin's granted directories",
                m.source,
                canonical.display()
            ),
        ));
    };
    if !grant.writable && !has("ro") {
        return Err(invalid(
            p,
            format!("mounts[{i}].options"),
            format!(
                "`{}` is granted read-only, so the mount needs the `ro` option",
                grant.host.display()
            ),
        ));
    }
    let mut options = m.options;
    if !is_bind {
        options.push("bind".to_string());
    }
    Ok(ValidMount {
        destination: m.destination,
        source: canonical,
        options,
    })
}

/// The merge of several plugins' validated adjustments, in manifest order.
#[derive(Debug, Default)]
pub(crate) struct Merge {
    env: Vec<(String, String, String)>,
    annotations: Vec<(String, String, String)>,
    mounts: Vec<(ValidMount, String)>,
    env_owner: BTreeMap<String, String>,
    annotation_owner: BTreeMap<String, String>,
    mount_owner: BTreeMap<String, String>,
}

impl Merge {
    /// Adds one plugin's edits; a field another plugin already set is a conflict.
    pub(crate) fn add(&mut self, v: Valid) -> Result<(), PluginError> {
        // Check everything first so that a conflict leaves the merge unchanged.
        for (name, _) in &v.env {
            if let Some(first) = self.env_owner.get(name) {
                return Err(PluginError::Conflict {
                    field: format!("process.env {name}"),
                    first: first.clone(),
                    second: v.plugin.clone(),
                });
            }
        }
        for (key, _) in &v.annotations {
            if let Some(first) = self.annotation_owner.get(key) {
                return Err(PluginError::Conflict {
                    field: format!("annotations[{key:?}]"),
                    first: first.clone(),
                    second: v.plugin.clone(),
                });
            }
        }
        for m in &v.mounts {
            if let Some(first) = self.mount_owner.get(&m.destination) {
                return Err(PluginError::Conflict {
                    field: format!("mount destination {}", m.destination),
                    first: first.clone(),
                    second: v.plugin.clone(),
                });
            }
        }
        for (name, value) in v.env {
            self.env_owner.insert(name.clone(), v.plugin.clone());
            self.env.push((name, value, v.plugin.clone()));
        }
        for (key, value) in v.annotations {
            self.annotation_owner.insert(key.clone(), v.plugin.clone());
            self.annotations.push((key, value, v.plugin.clone()));
        }
        for m in v.mounts {
            self.mount_owner
                .insert(m.destination.clone(), v.plugin.clone());
            self.mounts.push((m, v.plugin.clone()));
        }
        Ok(())
    }

    /// Applies the merged edits to `spec`: env replace-or-append in `process.env`,
    /// annotations insert, mounts append. Env values are not repeated in the descriptions
    /// (they may be secrets).
    pub(crate) fn apply(self, spec: &mut Spec) -> Result<Vec<Applied>, PluginError> {
        let mut applied = Vec::new();
        if !self.env.is_empty() {
            let Some(process) = spec.process_mut() else {
                let (_, _, plugin) = &self.env[0];
                return Err(invalid(
                    plugin,
                    "env",
                    "the spec has no process to set variables for",
                ));
            };
            let mut env = process.env().clone().unwrap_or_default();
            for (name, value, plugin) in self.env {
                let prefix = format!("{name}=");
                let entry = format!("{name}={value}");
                let description = if let Some(slot) = env
                    .iter_mut()
                    .find(|e| e.starts_with(&prefix) || **e == name)
                {
                    *slot = entry;
                    format!("replaced env {name}")
                } else {
                    env.push(entry);
                    format!("set env {name}")
                };
                applied.push(Applied {
                    plugin,
                    description,
                });
            }
            process.set_env(Some(env));
        }
        if !self.annotations.is_empty() {
            let mut annotations = spec.annotations().clone().unwrap_or_default();
            for (key, value, plugin) in self.annotations {
                let description = if annotations.insert(key.clone(), value).is_some() {
                    format!("replaced annotation {key}")
                } else {
                    format!("set annotation {key}")
                };
                applied.push(Applied {
                    plugin,
                    description,
                });
            }
            spec.set_annotations(Some(annotations));
        }
        if !self.mounts.is_empty() {
            let mut mounts = spec.mounts().clone().unwrap_or_default();
            for (m, plugin) in self.mounts {
                let description = format!(
                    "added bind mount {} -> {} ({})",
                    m.source.display(),
                    m.destination,
                    m.options.join(",")
                );
                let mut mount = Mount::default();
                mount.set_destination(PathBuf::from(&m.destination));
                mount.set_typ(Some("bind".to_string()));
                mount.set_source(Some(m.source));
                mount.set_options(Some(m.options));
                mounts.push(mount);
                applied.push(Applied {
                    plugin,
                    description,
                });
            }
            spec.set_mounts(Some(mounts));
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::OnError;
    use crate::plugin::manifest::DirGrant;

    fn spec(name: &str, dirs: Vec<DirGrant>) -> PluginSpec {
        PluginSpec {
            name: name.to_string(),
            path: PathBuf::from("/x.wasm"),
            hooks: vec![crate::plugin::HookPoint::PreCreate],
            on_error: OnError::Fail,
            timeout_ms: 1000,
            memory_limit: 64 << 20,
            fuel: None,
            config: Vec::new(),
            dirs,
            sandbox: crate::plugin::manifest::SandboxGrants::default(),
            max_answer: crate::plugin::manifest::DEFAULT_MAX_ANSWER,
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Adjustment {
        Adjustment {
            env: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Adjustment::default()
        }
    }

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

    fn field(e: PluginError) -> String {
        match e {
            PluginError::InvalidAdjustment { field, .. } => field,
            other => panic!("expected InvalidAdjustment, got {other:?}"),
        }
    }

    #[test]
    fn env_rules() {
        let s = spec("a", vec![]);
        assert!(validate(&s, env(&[("A", "1"), ("B", "")])).is_ok());
        assert_eq!(
            field(validate(&s, env(&[("", "1")])).unwrap_err()),
            "env[0].name"
        );
        assert_eq!(
            field(validate(&s, env(&[("A=B", "1")])).unwrap_err()),
            "env[0].name"
        );
        assert_eq!(
            field(validate(&s, env(&[("A", "x\0")])).unwrap_err()),
            "env[0].value"
        );
        assert_eq!(
            field(validate(&s, env(&[("A", "1"), ("A", "2")])).unwrap_err()),
            "env[1].name"
        );
        let many: Vec<(String, String)> = (0..=MAX_ENV_ENTRIES)
            .map(|i| (format!("V{i}"), String::new()))
            .collect();
        let adj = Adjustment {
            env: many,
            ..Adjustment::default()
        };
        assert_eq!(field(validate(&s, adj).unwrap_err()), "env");
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        assert_eq!(
            field(validate(&s, env(&[("A", long.as_str())])).unwrap_err()),
            "env[0].value"
        );
    }

    #[test]
    fn mount_rules() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("data");
        std::fs::create_dir(&inside).unwrap();
        let ro = spec(
            "a",
            vec![DirGrant {
                host: dir.path().to_path_buf(),
                guest: "/g".into(),
                writable: false,
            }],
        );
        let rw = spec(
            "a",
            vec![DirGrant {
                host: dir.path().to_path_buf(),
                guest: "/g".into(),
                writable: true,
            }],
        );
        let src = inside.to_str().unwrap();
        let v = validate(&ro, mount(src, "/data", &["ro"])).unwrap();
        assert_eq!(v.mounts[0].options, vec!["ro", "bind"]);
        assert!(validate(&rw, mount(src, "/data", &["rbind"])).is_ok());
        assert_eq!(
            field(validate(&ro, mount(src, "/data", &[])).unwrap_err()),
            "mounts[0].options"
        );
        assert_eq!(
            field(validate(&rw, mount("/etc", "/data", &[])).unwrap_err()),
            "mounts[0].source"
        );
        let escape = format!("{src}/../../../etc");
        assert_eq!(
            field(validate(&rw, mount(&escape, "/data", &[])).unwrap_err()),
            "mounts[0].source"
        );
        assert_eq!(
            field(validate(&rw, mount(src, "data", &[])).unwrap_err()),
            "mounts[0].destination"
        );
        assert_eq!(
            field(validate(&rw, mount(src, "/a/../b", &[])).unwrap_err()),
            "mounts[0].destination"
        );
        assert_eq!(
            field(validate(&rw, mount(src, "/data", &["suid"])).unwrap_err()),
            "mounts[0].options[0]"
        );
        assert_eq!(
            field(validate(&spec("a", vec![]), mount(src, "/data", &[])).unwrap_err()),
            "mounts[0].source"
        );
        let mut tmpfs = mount(src, "/data", &[]);
        tmpfs.mounts[0].typ = "tmpfs".into();
        assert_eq!(field(validate(&rw, tmpfs).unwrap_err()), "mounts[0].type");
    }

    #[test]
    fn merge_conflicts_and_apply() {
        let mut m = Merge::default();
        m.add(validate(&spec("a", vec![]), env(&[("A", "1"), ("PATH", "/x")])).unwrap())
            .unwrap();
        match m.add(validate(&spec("b", vec![]), env(&[("A", "2")])).unwrap()) {
            Err(PluginError::Conflict {
                field,
                first,
                second,
            }) => {
                assert_eq!(
                    (field.as_str(), first.as_str(), second.as_str()),
                    ("process.env A", "a", "b")
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let mut s = Spec::default();
        let applied = m.apply(&mut s).unwrap();
        let env = s.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"A=1".to_string()));
        assert!(env.contains(&"PATH=/x".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
        assert_eq!(applied.len(), 2);
        assert_eq!(applied[1].description, "replaced env PATH");
    }
}
