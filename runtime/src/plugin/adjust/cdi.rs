//! `cdi-devices`: devices injected from Container Device Interface spec files
//! (github.com/cncf-tags/container-device-interface, `SPEC.md`, versions 0.3.0 to 1.0).
//!
//! A request is a fully qualified device name `VENDOR/CLASS=NAME`, e.g.
//! `vendor.com/gpu=gpu0`: `VENDOR` letters, digits, `.`, `-`, `_` (starting and ending with
//! a letter or digit), `CLASS` the same without `.`, `NAME` letters, digits, `.`, `-`, `_`,
//! `:` (starting and ending with a letter or digit). Every `*.json`, `*.yaml` and `*.yml`
//! file in the manifest's `cdi-spec-dirs` (default `/etc/cdi`, `/var/run/cdi`) is a spec:
//!
//! ```json
//! {"cdiVersion": "0.6.0", "kind": "vendor.com/gpu",
//!  "containerEdits": {"env": ["VENDOR=1"]},
//!  "devices": [{"name": "gpu0", "containerEdits": {
//!     "env": ["GPU=0"],
//!     "deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/nvidia0", "type": "c",
//!                      "major": 195, "minor": 0, "fileMode": 438, "permissions": "rw"}],
//!     "mounts": [{"hostPath": "/usr/lib/libgpu.so", "containerPath": "/usr/lib/libgpu.so",
//!                 "options": ["ro", "nosuid", "nodev", "bind"]}],
//!     "hooks": [{"hookName": "createContainer", "path": "/usr/bin/gpu-hook", "args": ["gpu-hook"]}]}}]}
//! ```
//!
//! The device found in the last directory that has it wins (CDI's priority order); two
//! files of one directory defining it is an error naming both. Files that do not parse
//! are skipped with a warning, and named in the error when the device is not found. YAML
//! is read with `yaml-rust2` (YAML 1.2, aliases unsupported) into the same model as JSON.
//!
//! Applying a device applies the spec's top-level `containerEdits`, then the device's:
//! `env` (`NAME=value`) through the env rules; `deviceNodes` through the device rules,
//! where a missing `type`, `major` or `minor` (and `fileMode`) is read from the host node
//! at `hostPath` (or `path`), and `permissions` defaults to `rwm`; `mounts` appended as
//! given (the spec files are the administrator's, so no grant is needed; paths must be
//! absolute, `type` defaults to `bind`); `hooks` through the hook rules;
//! `additionalGids` appended to `process.user.additionalGids`. `intelRdt` and
//! `netDevices` edits are refused (not supported). Each device is claimed as
//! `cdi device NAME`, and every env name, device path and mount destination it sets is
//! claimed as if the plugin had set it.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::Deserialize;
use serde_json::Value;

use super::{
    DeviceRequest, Edit, HookRequest, HookStage, MAX_LIST, PluginError, devices, env, hooks, mounts,
};
use crate::plugin::manifest::clean_absolute;

/// A CDI spec file (the fields rwasm reads; unknown ones are ignored, as CDI's own
/// library does for forward compatibility).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdiSpec {
    cdi_version: String,
    kind: String,
    #[serde(default)]
    devices: Vec<CdiDevice>,
    #[serde(default)]
    container_edits: Edits,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdiDevice {
    name: String,
    #[serde(default)]
    container_edits: Edits,
}

/// `containerEdits`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Edits {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    device_nodes: Vec<Node>,
    #[serde(default)]
    mounts: Vec<CdiMount>,
    #[serde(default)]
    hooks: Vec<CdiHook>,
    #[serde(default)]
    additional_gids: Vec<u32>,
    intel_rdt: Option<Value>,
    net_devices: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    path: String,
    host_path: Option<String>,
    #[serde(rename = "type")]
    typ: Option<String>,
    major: Option<i64>,
    minor: Option<i64>,
    file_mode: Option<u32>,
    permissions: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdiMount {
    host_path: String,
    container_path: String,
    #[serde(rename = "type")]
    typ: Option<String>,
    #[serde(default)]
    options: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdiHook {
    hook_name: String,
    path: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    timeout: Option<i32>,
}

/// Splits a fully qualified name into (kind `VENDOR/CLASS`, name).
fn parse_name(qualified: &str) -> Result<(&str, &str), String> {
    let bad = |what: &str| {
        format!("`{qualified}` is not a fully qualified CDI device name VENDOR/CLASS=NAME: {what}")
    };
    let (kind, name) = qualified.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let (vendor, class) = kind
        .split_once('/')
        .ok_or_else(|| bad("no `/` in the kind"))?;
    let edges = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
    };
    let ok = |s: &str, extra: &str| {
        edges(s)
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if !ok(vendor, ".-_") {
        return Err(bad("bad vendor"));
    }
    if !ok(class, "-_") {
        return Err(bad("bad class"));
    }
    if !ok(name, ".-_:") {
        return Err(bad("bad device name"));
    }
    Ok((kind, name))
}

/// Whether rwasm reads this `cdiVersion` (0.3.0 to 0.8.x, 1.0.x).
fn known_version(v: &str) -> bool {
    let mut parts = v.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(0)), Some(Ok(minor)), Some(Ok(_)), None) => (3..=8).contains(&minor),
        (Some(Ok(1)), Some(Ok(0)), Some(Ok(_)), None) => true,
        _ => false,
    }
}

/// The largest CDI spec file read, in bytes (real ones are a few KiB).
pub(crate) const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Reads one spec file, JSON or YAML by its extension: a regular file (opened without
/// blocking, so a FIFO planted in a spec directory cannot stall the runtime) of at most
/// [`MAX_SPEC_BYTES`].
fn read_spec(path: &Path) -> Result<CdiSpec, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot read it: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    if meta.len() > MAX_SPEC_BYTES {
        return Err(format!(
            "{} bytes is larger than the {MAX_SPEC_BYTES} bytes a CDI spec may have",
            meta.len()
        ));
    }
    let mut text = String::new();
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(format!(
            "larger than the {MAX_SPEC_BYTES} bytes a CDI spec may have"
        ));
    }
    let value: Value = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?,
        _ => {
            let docs = yaml_rust2::YamlLoader::load_from_str(&text)
                .map_err(|e| format!("invalid YAML: {e}"))?;
            match docs.as_slice() {
                [doc] => yaml_to_json(doc)?,
                _ => return Err(format!("{} YAML documents, expected one", docs.len())),
            }
        }
    };
    let spec: CdiSpec =
        serde_json::from_value(value).map_err(|e| format!("not a CDI spec: {e}"))?;
    if !known_version(&spec.cdi_version) {
        return Err(format!(
            "cdiVersion `{}` is not one rwasm reads (0.3.0 to 0.8.x, 1.0.x)",
            spec.cdi_version
        ));
    }
    Ok(spec)
}

/// A YAML node as a JSON value (mappings need string keys).
fn yaml_to_json(y: &yaml_rust2::Yaml) -> Result<Value, String> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(s.clone()), Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut map = serde_json::Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => return Err(format!("mapping key {other:?} is not a string")),
                };
                map.insert(key, yaml_to_json(v)?);
            }
            Value::Object(map)
        }
        Yaml::Null => Value::Null,
        Yaml::Alias(_) => return Err("YAML aliases are not supported".to_string()),
        Yaml::BadValue => return Err("a bad YAML value".to_string()),
    })
}

/// The CDI spec files (`*.json`, `*.yaml`, `*.yml`) of `dir`, sorted by name; none if it
/// cannot be read.
fn spec_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            )
        })
        .collect();
    files.sort();
    files
}

/// Finds device `name` of `kind` in `dirs`; returns the file and its edits (top-level,
/// then the device's).
fn find(dirs: &[PathBuf], kind: &str, name: &str) -> Result<(PathBuf, Vec<Edits>), String> {
    let mut found = None;
    let mut broken = Vec::new();
    for dir in dirs {
        let files = spec_files(dir);
        let mut here: Option<(PathBuf, Vec<Edits>)> = None;
        for file in files {
            let spec = match read_spec(&file) {
                Ok(s) => s,
                Err(reason) => {
                    tracing::warn!(file = %file.display(), "CDI spec skipped: {reason}");
                    broken.push(format!("{}: {reason}", file.display()));
                    continue;
                }
            };
            if spec.kind != kind {
                continue;
            }
            let Some(dev) = spec.devices.iter().find(|d| d.name == name) else {
                continue;
            };
            if let Some((first, _)) = &here {
                return Err(format!(
                    "{kind}={name} is defined by both {} and {}",
                    first.display(),
                    file.display()
                ));
            }
            here = Some((
                file,
                vec![spec.container_edits.clone(), dev.container_edits.clone()],
            ));
        }
        if here.is_some() {
            found = here;
        }
    }
    found.ok_or_else(|| {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let mut msg = format!("no CDI spec in {} defines {kind}={name}", dirs.join(", "));
        if !broken.is_empty() {
            msg.push_str(&format!(" (unreadable specs: {})", broken.join("; ")));
        }
        msg
    })
}

/// A device of one CDI kind, with the edits `run --gpus` applies: its spec's top-level
/// `containerEdits` then the device's, flattened.
#[derive(Debug, Clone, Default)]
pub(crate) struct KindDevice {
    /// The device name (`0`, `gpu0`, `all`).
    pub name: String,
    /// The spec file it came from.
    pub file: PathBuf,
    /// Device nodes: (container path, host path, cgroup permissions).
    pub nodes: Vec<(String, String, String)>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Bind mounts: (host path, container path, options).
    pub mounts: Vec<(String, String, Vec<String>)>,
    /// `additionalGids`.
    pub gids: Vec<u32>,
    /// OCI hooks by CDI `hookName` (`createRuntime`, `createContainer`, `startContainer`,
    /// `poststart`, `poststop`, `prestart`).
    pub hooks: Vec<(String, oci_spec::runtime::Hook)>,
}

/// Every device of `kind` in the CDI spec directories `dirs`, sorted by name; a device in
/// a later directory replaces one of the same name in an earlier one (CDI's priority).
/// Files that do not parse are skipped.
pub(crate) fn devices_of_kind(dirs: &[PathBuf], kind: &str) -> Vec<KindDevice> {
    let mut out: Vec<KindDevice> = Vec::new();
    for dir in dirs {
        let files = spec_files(dir);
        for file in files {
            let Ok(spec) = read_spec(&file) else { continue };
            if spec.kind != kind {
                continue;
            }
            for dev in &spec.devices {
                let mut d = KindDevice {
                    name: dev.name.clone(),
                    file: file.clone(),
                    ..Default::default()
                };
                for e in [&spec.container_edits, &dev.container_edits] {
                    d.env.extend(e.env.iter().cloned());
                    d.gids.extend(e.additional_gids.iter().copied());
                    for n in &e.device_nodes {
                        d.nodes.push((
                            n.path.clone(),
                            n.host_path.clone().unwrap_or_else(|| n.path.clone()),
                            n.permissions.clone().unwrap_or_else(|| "rwm".into()),
                        ));
                    }
                    for m in &e.mounts {
                        d.mounts.push((
                            m.host_path.clone(),
                            m.container_path.clone(),
                            m.options.clone(),
                        ));
                    }
                    for h in &e.hooks {
                        let mut hook = oci_spec::runtime::Hook::default();
                        hook.set_path(PathBuf::from(&h.path));
                        hook.set_args(Some(if h.args.is_empty() {
                            vec![h.path.clone()]
                        } else {
                            h.args.clone()
                        }));
                        hook.set_env((!h.env.is_empty()).then(|| h.env.clone()));
                        hook.set_timeout(h.timeout.map(i64::from));
                        d.hooks.push((h.hook_name.clone(), hook));
                    }
                }
                out.retain(|x| x.name != d.name);
                out.push(d);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Applies one plugin's `cdi-devices`.
pub(super) fn apply(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    names: Vec<String>,
) -> Result<(), PluginError> {
    e.count("cdi-devices", names.len(), MAX_LIST)?;
    for (i, qualified) in names.iter().enumerate() {
        let entry = format!("cdi-devices[{i}]");
        e.text(|| entry.clone(), qualified)?;
        let (kind, name) = parse_name(qualified).map_err(|r| e.invalid(&entry, r))?;
        e.claim(format!("cdi device {qualified}"), &entry, false)?;
        let (file, edits) =
            find(e.rules.cdi_spec_dirs, kind, name).map_err(|r| e.invalid(&entry, r))?;
        for (k, edits) in edits.into_iter().enumerate() {
            let at = format!(
                "{entry} ({}{})",
                file.display(),
                if k == 0 { " containerEdits" } else { "" }
            );
            apply_edits(e, spec, &at, edits)?;
        }
        e.did(format!(
            "injected CDI device {qualified} from {}",
            file.display()
        ));
    }
    Ok(())
}

fn apply_edits(
    e: &mut Edit<'_>,
    spec: &mut Spec,
    at: &str,
    edits: Edits,
) -> Result<(), PluginError> {
    if edits.intel_rdt.is_some() || edits.net_devices.is_some() {
        return Err(e.invalid(
            at,
            "intelRdt and netDevices edits are not supported by rwasm",
        ));
    }
    for (j, line) in edits.env.iter().enumerate() {
        let entry = format!("{at} env[{j}]");
        let Some((name, value)) = line.split_once('=') else {
            return Err(e.invalid(entry, format!("`{line}` is not NAME=value")));
        };
        env::set(e, spec, &entry, name, value)?;
    }
    for (j, n) in edits.device_nodes.into_iter().enumerate() {
        let entry = format!("{at} deviceNodes[{j}]");
        let req = node_request(&n).map_err(|r| e.invalid(&entry, r))?;
        devices::add(e, spec, &entry, req)?;
    }
    for (j, m) in edits.mounts.into_iter().enumerate() {
        let entry = format!("{at} mounts[{j}]");
        e.text(|| entry.clone(), &m.host_path)?;
        e.text(|| entry.clone(), &m.container_path)?;
        if !Path::new(&m.host_path).is_absolute() || !clean_absolute(Path::new(&m.container_path)) {
            return Err(e.invalid(
                entry,
                "hostPath and containerPath must be absolute (containerPath without `.` and `..`)",
            ));
        }
        for o in &m.options {
            e.text(|| entry.clone(), o)?;
        }
        e.claim(
            format!("mount destination {}", m.container_path),
            &entry,
            false,
        )?;
        let typ = m
            .typ
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or("bind")
            .to_string();
        mounts::push(
            e,
            spec,
            m.container_path,
            PathBuf::from(m.host_path),
            &typ,
            m.options,
        );
    }
    for (j, h) in edits.hooks.into_iter().enumerate() {
        let entry = format!("{at} hooks[{j}]");
        let stage = match h.hook_name.as_str() {
            "prestart" => HookStage::Prestart,
            "createRuntime" => HookStage::CreateRuntime,
            "createContainer" => HookStage::CreateContainer,
            "startContainer" => HookStage::StartContainer,
            "poststart" => HookStage::Poststart,
            "poststop" => HookStage::Poststop,
            other => return Err(e.invalid(entry, format!("unknown hookName `{other}`"))),
        };
        hooks::add(
            e,
            spec,
            &entry,
            HookRequest {
                stage,
                path: h.path,
                args: h.args,
                env: h.env,
                timeout: h.timeout,
            },
        )?;
    }
    if !edits.additional_gids.is_empty() {
        let Some(process) = spec.process_mut() else {
            return Err(e.invalid(at, "the spec has no process for additionalGids"));
        };
        let mut user = process.user().clone();
        let mut gids: BTreeSet<u32> = user
            .additional_gids()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        gids.extend(edits.additional_gids.iter().copied());
        user.set_additional_gids(Some(gids.into_iter().collect()));
        process.set_user(user);
        e.did(format!("added additional gids {:?}", edits.additional_gids));
    }
    Ok(())
}

/// A device request from a CDI device node, reading what it leaves out from the host.
fn node_request(n: &Node) -> Result<DeviceRequest, String> {
    let host = n.host_path.as_deref().unwrap_or(&n.path);
    let needs_host =
        n.typ.is_none() || n.major.is_none() || n.minor.is_none() || n.file_mode.is_none();
    let meta = if needs_host {
        match std::fs::metadata(host) {
            Ok(m) => Some(m),
            Err(err) if n.typ.is_none() || n.major.is_none() || n.minor.is_none() => {
                return Err(format!(
                    "type, major and minor are not all given and the host node {host} cannot be read: {err}"
                ));
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let host_type = meta.as_ref().map(|m| {
        let t = m.file_type();
        if t.is_char_device() {
            "c"
        } else if t.is_block_device() {
            "b"
        } else if t.is_fifo() {
            "p"
        } else {
            "?"
        }
    });
    let typ = match (&n.typ, host_type) {
        (Some(t), _) => t.clone(),
        (None, Some("?")) => return Err(format!("{host} is not a device node")),
        (None, Some(t)) => t.to_string(),
        (None, None) => unreachable!("metadata read above"),
    };
    let rdev = meta.as_ref().map_or(0, MetadataExt::rdev);
    let major = n
        .major
        .unwrap_or_else(|| i64::try_from(nix::sys::stat::major(rdev)).unwrap_or(-1));
    let minor = n
        .minor
        .unwrap_or_else(|| i64::try_from(nix::sys::stat::minor(rdev)).unwrap_or(-1));
    let file_mode = n
        .file_mode
        .or_else(|| meta.as_ref().map(|m| m.mode() & 0o777));
    Ok(DeviceRequest {
        path: n.path.clone(),
        typ,
        major,
        minor,
        file_mode,
        uid: n.uid,
        gid: n.gid,
        permissions: n.permissions.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::tests::{field, plugin};
    use super::super::{Adjustment, Owners, Rules, apply};
    use super::parse_name;
    use oci_spec::runtime::{LinuxDeviceType, Spec};

    fn inject(
        dirs: &[PathBuf],
        name: &str,
    ) -> Result<super::super::Outcome, crate::plugin::PluginError> {
        let p = plugin("p", vec![]);
        let rules = Rules {
            plugin: &p,
            cdi_spec_dirs: dirs,
            selection_keys: &[],
        };
        let adj = Adjustment {
            cdi_devices: vec![name.into()],
            ..Adjustment::default()
        };
        apply(&rules, &Owners::default(), adj, &Spec::default())
    }

    #[test]
    fn names() {
        assert_eq!(
            parse_name("vendor.com/gpu=gpu0"),
            Ok(("vendor.com/gpu", "gpu0"))
        );
        assert_eq!(
            parse_name("nvidia.com/gpu=all"),
            Ok(("nvidia.com/gpu", "all"))
        );
        for bad in [
            "gpu0",
            "vendor.com=gpu0",
            "vendor.com/=x",
            "/gpu=x",
            "v/c=",
            "v/c=-x",
            "v/c.d=x",
            "v./c=x",
        ] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_and_yaml_specs_inject_their_edits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"cdiVersion": "0.6.0", "kind": "example.com/dev",
                "containerEdits": {"env": ["TOP=1"]},
                "devices": [{"name": "zero", "containerEdits": {
                    "env": ["DEV=zero"],
                    "deviceNodes": [{"path": "/dev/cdizero", "hostPath": "/dev/zero"}],
                    "hooks": [{"hookName": "poststart", "path": "/bin/true"}]}}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "cdiVersion: 0.5.0\nkind: example.com/yaml\ndevices:\n  - name: one\n    containerEdits:\n      env: [\"Y=1\"]\n      mounts:\n        - hostPath: /etc/hostname\n          containerPath: /etc/cdi-hostname\n          options: [ro, bind]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.json"), "{").unwrap();
        let dirs = [dir.path().to_path_buf()];
        let out = inject(&dirs, "example.com/dev=zero").unwrap();
        let env = out.spec.process().as_ref().unwrap().env().clone().unwrap();
        assert!(
            env.contains(&"TOP=1".to_string()) && env.contains(&"DEV=zero".to_string()),
            "{env:?}"
        );
        let dev = &out
            .spec
            .linux()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap()[0];
        assert_eq!(
            (dev.typ(), dev.major(), dev.minor()),
            (LinuxDeviceType::C, 1, 5)
        );
        assert_eq!(
            out.spec
                .hooks()
                .clone()
                .unwrap()
                .poststart()
                .clone()
                .unwrap()
                .len(),
            1
        );
        let out = inject(&dirs, "example.com/yaml=one").unwrap();
        let m = out.spec.mounts().clone().unwrap();
        let last = m.last().unwrap();
        assert_eq!(
            last.destination(),
            std::path::Path::new("/etc/cdi-hostname")
        );
        assert_eq!(last.options().clone().unwrap(), ["ro", "bind"]);
        let err = field(inject(&dirs, "example.com/dev=nope").unwrap_err());
        assert_eq!(err, "cdi-devices[0]");
    }

    /// A FIFO (opened without blocking) and an oversized file in a spec directory are
    /// skipped with their reason; the good spec beside them still injects.
    #[test]
    fn fifos_and_oversized_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("good.json"),
            r#"{"cdiVersion": "0.6.0", "kind": "example.com/dev",
                "devices": [{"name": "x", "containerEdits": {"env": ["X=1"]}}]}"#,
        )
        .unwrap();
        let fifo = dir.path().join("a-fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let big = dir.path().join("b-big.yaml");
        std::fs::write(
            &big,
            vec![b'#'; usize::try_from(super::MAX_SPEC_BYTES + 1).unwrap()],
        )
        .unwrap();
        assert_eq!(
            super::read_spec(&fifo).err().as_deref(),
            Some("not a regular file")
        );
        assert!(
            super::read_spec(&big).unwrap_err().contains("larger than"),
            "{:?}",
            super::read_spec(&big).err()
        );
        let out = inject(&[dir.path().to_path_buf()], "example.com/dev=x").unwrap();
        let env = out.spec.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"X=1".to_string()), "{env:?}");
    }

    #[test]
    fn later_dirs_win_and_one_dir_defining_a_device_twice_is_an_error() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let spec = |v: &str| {
            format!(
                r#"{{"cdiVersion": "0.6.0", "kind": "x.io/c", "devices": [{{"name": "d", "containerEdits": {{"env": ["V={v}"]}}}}]}}"#
            )
        };
        std::fs::write(a.path().join("1.json"), spec("a")).unwrap();
        std::fs::write(b.path().join("1.json"), spec("b")).unwrap();
        let out = inject(&[a.path().into(), b.path().into()], "x.io/c=d").unwrap();
        assert!(
            out.spec
                .process()
                .as_ref()
                .unwrap()
                .env()
                .clone()
                .unwrap()
                .contains(&"V=b".to_string())
        );
        std::fs::write(b.path().join("2.json"), spec("c")).unwrap();
        match inject(&[a.path().into(), b.path().into()], "x.io/c=d") {
            Err(crate::plugin::PluginError::InvalidAdjustment { reason, .. }) => {
                assert!(reason.contains("defined by both"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(
            a.path().join("old.json"),
            r#"{"cdiVersion": "0.1.0", "kind": "y.io/c", "devices": []}"#,
        )
        .unwrap();
        match inject(&[a.path().into()], "y.io/c=d") {
            Err(crate::plugin::PluginError::InvalidAdjustment { reason, .. }) => {
                assert!(reason.contains("cdiVersion `0.1.0`"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
