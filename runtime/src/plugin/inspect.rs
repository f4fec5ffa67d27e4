//! What `rwasm plugin` shows and does: a summary of each plugin of a manifest (grants,
//! cache state), the inspection of a component (world, package version, exports,
//! imports), validation and precompilation of every plugin, and one hook call run
//! offline for plugin authors.
//!
//! Everything here goes through the same load and call paths as a container operation,
//! so what `validate` accepts loads in production and what `test` reports is what a
//! container would get.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Spec, State};
use serde::Serialize;
use serde_json::{Value, json};

use super::adjust::{self, Adjustment};
use super::host::{self, CacheState, Origin};
use super::manifest::{Access, PluginSpec, ROOTFS_GUEST_PATH};
use super::{Applied, HookPoint, OnError, Plugin, PluginError, PluginSet};

/// One plugin of a manifest, as `rwasm plugin ls` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// The manifest name.
    pub name: String,
    /// The manifest `kind` (`hook`, `network-driver`).
    pub kind: String,
    /// Absolute path of the component.
    pub path: PathBuf,
    /// The hook points it is registered for, in manifest order.
    pub hooks: Vec<String>,
    /// `fail` or `ignore`.
    pub on_error: String,
    /// `timeout-ms`, milliseconds.
    pub timeout_ms: u64,
    /// `memory-limit`, bytes.
    pub memory_limit: u64,
    /// `fuel`, if any.
    pub fuel: Option<u64>,
    /// `max-answer`, bytes.
    pub max_answer: u64,
    /// What it is granted.
    pub grants: GrantInfo,
    /// `cached`, `stale`, `corrupt` or `missing`; or why the component cannot be read.
    pub cache: String,
}

/// A plugin's `[plugin.grants]`, as `ls` and `inspect` print them.
#[derive(Debug, Clone, Serialize)]
pub struct GrantInfo {
    /// Preopened directories.
    pub dirs: Vec<DirInfo>,
    /// Variables of rwasm's environment passed through when set.
    pub env: Vec<String>,
    /// The container's rootfs (at `/rootfs`): `ro`, `rw`, or `None` when not granted.
    pub rootfs: Option<String>,
    /// `wasi:clocks` may be imported.
    pub clock: bool,
    /// `wasi:random` may be imported.
    pub random: bool,
    /// The adjustment grants held, of `args`, `loosen-resources`, `hooks`, `devices`.
    pub adjust: Vec<String>,
    /// A network driver's `[plugin.grants.network]`, one line:
    /// `network bridges rwasm0; subnets 10.88.0.0/16; links rwv*; nat` (absent in JSON
    /// for hooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// One preopened directory.
#[derive(Debug, Clone, Serialize)]
pub struct DirInfo {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// `ro` or `rw`.
    pub access: String,
}

impl GrantInfo {
    fn of(spec: &PluginSpec) -> GrantInfo {
        let access = |a: Access| match a {
            Access::ReadOnly => "ro".to_string(),
            Access::ReadWrite => "rw".to_string(),
        };
        GrantInfo {
            dirs: spec
                .dirs
                .iter()
                .map(|d| DirInfo {
                    host: d.host.clone(),
                    guest: d.guest.clone(),
                    access: if d.writable { "rw" } else { "ro" }.to_string(),
                })
                .collect(),
            env: spec.sandbox.env.clone(),
            rootfs: spec.sandbox.rootfs.map(access),
            clock: spec.sandbox.clock,
            random: spec.sandbox.random,
            adjust: [
                (spec.grant_args, "args"),
                (spec.loosen_resources, "loosen-resources"),
                (spec.grant_hooks, "hooks"),
                (spec.grant_devices, "devices"),
            ]
            .into_iter()
            .filter(|(held, _)| *held)
            .map(|(_, name)| name.to_string())
            .collect(),
            network: spec.network.as_ref().map(|g| {
                let none = |v: Vec<String>| {
                    if v.is_empty() {
                        "none".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                let subnets = g.subnets.iter().map(|(a, l)| format!("{a}/{l}")).collect();
                let links = g
                    .link_prefix
                    .as_ref()
                    .map_or("none".to_string(), |p| format!("{p}*"));
                format!(
                    "network bridges {}; subnets {}; links {links}{}",
                    none(g.bridges.clone()),
                    none(subnets),
                    if g.nat { "; nat" } else { "" }
                )
            }),
        }
    }

    /// One line per grant: `dir /var/log/x -> /log (rw)`, `env HTTP_PROXY`,
    /// `rootfs -> /rootfs (ro)`, `clock`, `random`, then one line per adjustment grant
    /// (`hooks`); `nothing` when there is none.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .dirs
            .iter()
            .map(|d| format!("dir {} -> {} ({})", d.host.display(), d.guest, d.access))
            .collect();
        lines.extend(self.env.iter().map(|e| format!("env {e}")));
        if let Some(a) = &self.rootfs {
            lines.push(format!("rootfs -> {ROOTFS_GUEST_PATH} ({a})"));
        }
        if self.clock {
            lines.push("clock".to_string());
        }
        if self.random {
            lines.push("random".to_string());
        }
        lines.extend(self.adjust.iter().cloned());
        lines.extend(self.network.iter().cloned());
        if lines.is_empty() {
            lines.push("nothing".to_string());
        }
        lines
    }
}

/// A component as `rwasm plugin inspect` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The manifest name, when inspected by name.
    pub name: Option<String>,
    /// The component file.
    pub path: PathBuf,
    /// The `rwasm:plugin` world its exports implement (`hook`, `network-driver`, ...),
    /// `None` when it exports none.
    pub world: Option<String>,
    /// The `rwasm:plugin` package version of those exports (`0.2.0`).
    pub wit_version: Option<String>,
    /// Export names, sorted.
    pub exports: Vec<String>,
    /// Import names, sorted.
    pub imports: Vec<String>,
    /// Its grants, when inspected by name (a bare file has none).
    pub grants: Option<GrantInfo>,
    /// Whether it loads as a hook plugin with these grants: `None` when it does, else
    /// the reason (wrong version or world, an import not granted, a link error).
    pub load_error: Option<String>,
}

/// The result of precompiling one plugin.
#[derive(Debug)]
pub struct Precompiled {
    /// The manifest name.
    pub name: String,
    /// `compiled`, `cached` or `replaced` (a corrupt entry was rebuilt), and how long
    /// it took; or the load error.
    pub result: Result<(&'static str, Duration), PluginError>,
}

/// What one hook call returned, run offline by `rwasm plugin test`.
#[derive(Debug)]
pub struct HookTest {
    /// The plugin's verdict: `Ok(adjustment as JSON)` for allow, `Err(reason)` for deny.
    pub verdict: Result<Value, String>,
    /// For an allow verdict: whether the host accepts the adjustment (what it applied,
    /// attributed), or why not.
    pub accepted: Option<Result<Vec<Applied>, PluginError>>,
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Cache => "cached",
        Origin::Compiled => "compiled",
        Origin::Replaced => "replaced",
    }
}

/// The `rwasm:plugin` world and version `exports` implement.
fn world_of(exports: &[String]) -> (Option<String>, Option<String>) {
    const WORLDS: &[(&str, &str)] = &[
        ("hooks", "hook"),
        ("network", "network-driver"),
        ("storage", "storage-driver"),
        ("volume", "volume-driver"),
    ];
    for e in exports {
        if let Some(rest) = e.strip_prefix("rwasm:plugin/") {
            let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
            if let Some((_, world)) = WORLDS.iter().find(|(i, _)| *i == iface) {
                let version = (!version.is_empty()).then(|| version.to_string());
                return (Some((*world).to_string()), version);
            }
        }
    }
    (None, None)
}

impl PluginSet {
    /// A set without plugins whose compile cache is `cache_dir`: to inspect a bare
    /// component file.
    pub fn empty_with_cache(cache_dir: &Path) -> PluginSet {
        let mut set = PluginSet::empty();
        set.cache_dir = cache_dir.to_path_buf();
        set
    }

    fn host(&self) -> Result<&host::Host, PluginError> {
        self.host_or_new().map_err(|cause| PluginError::Unloadable {
            plugin: String::new(),
            cause,
        })
    }

    /// Every plugin of the manifest with its grants and cache state, in manifest order.
    pub fn plugins_info(&self) -> Result<Vec<PluginInfo>, PluginError> {
        let host = self.host()?;
        Ok(self
            .plugins
            .iter()
            .map(|p| {
                let s = &p.spec;
                let cache = match host.cache_state(&s.path, &self.cache_dir) {
                    Ok(CacheState::Cached) => "cached".to_string(),
                    Ok(CacheState::Stale) => "stale".to_string(),
                    Ok(CacheState::Corrupt) => "corrupt".to_string(),
                    Ok(CacheState::Missing) => "missing".to_string(),
                    Err(e) => format!("unreadable: {}", crate::error_chain(&e)),
                };
                PluginInfo {
                    name: s.name.clone(),
                    kind: s.kind.as_str().to_string(),
                    path: s.path.clone(),
                    hooks: s.hooks.iter().map(|h| h.to_string()).collect(),
                    on_error: match s.on_error {
                        OnError::Fail => "fail",
                        OnError::Ignore => "ignore",
                    }
                    .to_string(),
                    timeout_ms: s.timeout_ms,
                    memory_limit: s.memory_limit,
                    fuel: s.fuel,
                    max_answer: s.max_answer,
                    grants: GrantInfo::of(s),
                    cache,
                }
            })
            .collect())
    }

    /// Inspects the plugin named `name` in this manifest; [`PluginError::UnknownPlugin`]
    /// when it has none of that name. The component is compiled (or taken from the cache)
    /// but not run.
    pub fn inspect_plugin(&self, name: &str) -> Result<Inspection, PluginError> {
        let plugin = self
            .plugin(name)
            .ok_or_else(|| PluginError::UnknownPlugin {
                name: name.to_string(),
            })?;
        self.inspect(name, Some(plugin), plugin.spec.path.clone())
    }

    /// Inspects the component file `path`, as a plugin of no manifest (default grants).
    /// The component is compiled (or taken from the cache) but not run.
    pub fn inspect_file(&self, path: &Path) -> Result<Inspection, PluginError> {
        self.inspect(&path.display().to_string(), None, path.to_path_buf())
    }

    fn inspect(
        &self,
        target: &str,
        plugin: Option<&Plugin>,
        path: PathBuf,
    ) -> Result<Inspection, PluginError> {
        let host = self.host()?;
        let unloadable = |cause| PluginError::Unloadable {
            plugin: target.to_string(),
            cause,
        };
        let names = host
            .interfaces_of(&path, &self.cache_dir)
            .map_err(unloadable)?;
        let (world, wit_version) = world_of(&names.exports);
        let load_error = match plugin {
            Some(p) => host.load_any(&p.spec, &self.cache_dir).err(),
            None => {
                let mut spec = PluginSpec::for_file(&path);
                if world.as_deref() == Some("network-driver") {
                    spec.kind = super::manifest::PluginKind::NetworkDriver;
                    spec.network = Some(super::manifest::NetworkGrant::default());
                } else if world.as_deref() == Some("storage-driver") {
                    spec.kind = super::manifest::PluginKind::StorageDriver;
                } else if world.as_deref() == Some("volume-driver") {
                    spec.kind = super::manifest::PluginKind::VolumeDriver;
                } else {
                    spec.hooks = vec![HookPoint::PreCreate];
                }
                host.load_any(&spec, &self.cache_dir).err()
            }
        }
        .map(|cause| cause.to_string());
        Ok(Inspection {
            name: plugin.map(|p| p.spec.name.clone()),
            path,
            world,
            wit_version,
            exports: names.exports,
            imports: names.imports,
            grants: plugin.map(|p| GrantInfo::of(&p.spec)),
            load_error,
        })
    }

    /// Load phase of every plugin (read, compile or load from the cache, check version,
    /// world and imports against the grants, link), then its configure phase with its
    /// manifest config, grants and limits on a throwaway instance (configure has no side
    /// effects by contract, STYLE.md 8; a plugin without hook points is not configured),
    /// without running any hook: every error, in manifest order.
    pub fn validate(&self) -> Vec<PluginError> {
        let host = match self.host() {
            Ok(host) => host,
            Err(e) => return vec![e],
        };
        self.plugins
            .iter()
            .filter_map(|p| {
                if !matches!(p.spec.kind, super::manifest::PluginKind::Hook) {
                    return host.load_any(&p.spec, &self.cache_dir).err().map(|cause| {
                        PluginError::Unloadable {
                            plugin: p.spec.name.clone(),
                            cause,
                        }
                    });
                }
                let loaded = match host.load(&p.spec, &self.cache_dir) {
                    Ok((loaded, _)) => loaded,
                    Err(cause) => {
                        return Some(PluginError::Unloadable {
                            plugin: p.spec.name.clone(),
                            cause,
                        });
                    }
                };
                let point = p.spec.hooks.first().copied()?;
                host.configure(&loaded, &p.spec)
                    .err()
                    .map(|(phase, cause)| PluginError::Failed {
                        plugin: p.spec.name.clone(),
                        point,
                        phase,
                        cause,
                    })
            })
            .collect()
    }

    /// Fills the compile cache for every plugin, reporting whether each was compiled or
    /// already cached and how long its load took.
    pub fn precompile(&self) -> Vec<Precompiled> {
        let host = match self.host() {
            Ok(host) => host,
            Err(e) => {
                return vec![Precompiled {
                    name: String::new(),
                    result: Err(e),
                }];
            }
        };
        self.plugins
            .iter()
            .map(|p| {
                let started = Instant::now();
                let result = host
                    .load_any(&p.spec, &self.cache_dir)
                    .map(|origin| (origin_name(origin), started.elapsed()))
                    .map_err(|cause| PluginError::Unloadable {
                        plugin: p.spec.name.clone(),
                        cause,
                    });
                Precompiled {
                    name: p.spec.name.clone(),
                    result,
                }
            })
            .collect()
    }

    /// Runs the plugin `name` once at `point` with `state` and `spec`, as a container
    /// operation would (but with `on-error = "fail"`, so that failures show), and
    /// reports its verdict and whether the host accepts its adjustment.
    ///
    /// The plugin is called twice: once to capture its raw answer, once through the
    /// production path of `point` (validation, merge, application to a copy of `spec`).
    pub fn test_hook(
        &self,
        name: &str,
        point: HookPoint,
        state: &State,
        spec: &Spec,
    ) -> Result<HookTest, PluginError> {
        let Some(manifest) = &self.manifest else {
            return Err(PluginError::UnknownPlugin {
                name: name.to_string(),
            });
        };
        let mut alone = PluginSet::load(manifest, &self.cache_dir)?;
        alone.plugins.retain(|p| p.spec.name == name);
        let Some(plugin) = alone.plugins.first_mut() else {
            return Err(PluginError::UnknownPlugin {
                name: name.to_string(),
            });
        };
        plugin.spec.on_error = OnError::Fail;
        plugin.spec.hooks = vec![point];
        let call = host::Call::new(point, state, spec, None)?;
        let adjustment = match alone.call_one(&alone.plugins[0], point, &call) {
            Ok(adjustment) => adjustment,
            Err(PluginError::Denied { reason, .. }) => {
                return Ok(HookTest {
                    verdict: Err(reason),
                    accepted: None,
                });
            }
            Err(e) => return Err(e),
        };
        let json = adjustment_json(&adjustment);
        // What the host makes of that one answer, by the rules of a real run (the plugin
        // is not called a second time).
        let selection_keys = self.selection_keys();
        let rules = adjust::Rules {
            plugin: &alone.plugins[0].spec,
            cdi_spec_dirs: &alone.cdi_spec_dirs,
            selection_keys: &selection_keys,
        };
        let accepted = match point {
            HookPoint::PreCreate => {
                adjust::apply(&rules, &adjust::Owners::default(), adjustment, spec)
                    .map(|outcome| outcome.applied)
            }
            HookPoint::PreUpdate => {
                let mut update = spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.resources().clone())
                    .unwrap_or_default();
                let rules = adjust::Rules {
                    selection_keys: &[],
                    ..rules
                };
                adjust::clamp_update(&rules, adjustment, &mut update)
            }
            _ if adjustment.is_empty() => Ok(Vec::new()),
            other => Err(PluginError::InvalidAdjustment {
                plugin: name.to_string(),
                field: "adjustment".to_string(),
                reason: format!(
                    "only pre-create may adjust the spec, but {other} returned {}",
                    adjustment.summary()
                ),
            }),
        };
        Ok(HookTest {
            verdict: Ok(json),
            accepted: Some(accepted),
        })
    }
}

impl PluginSpec {
    /// A spec with the manifest's defaults for a bare component file.
    fn for_file(path: &Path) -> PluginSpec {
        PluginSpec {
            name: "file".to_string(),
            kind: super::manifest::PluginKind::Hook,
            path: path.to_path_buf(),
            hooks: Vec::new(),
            on_error: OnError::Fail,
            timeout_ms: super::manifest::DEFAULT_TIMEOUT_MS,
            memory_limit: super::manifest::DEFAULT_MEMORY_LIMIT,
            fuel: None,
            config: Vec::new(),
            dirs: Vec::new(),
            sandbox: super::manifest::SandboxGrants::default(),
            max_answer: super::manifest::DEFAULT_MAX_ANSWER,
            order: 0,
            selector: super::manifest::Selector::default(),
            grant_args: false,
            loosen_resources: false,
            grant_hooks: false,
            grant_devices: false,
            network: None,
            storage_dir: None,
        }
    }
}

/// The adjustment as JSON, with the WIT record's field names; empty fields left out.
fn adjustment_json(a: &Adjustment) -> Value {
    let pairs = |list: &[(String, String)]| -> Value {
        list.iter()
            .map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>()
            .into()
    };
    let mut out = serde_json::Map::new();
    let mut put = |key: &str, value: Value| {
        let empty = match &value {
            Value::Array(a) => a.is_empty(),
            Value::Null => true,
            _ => false,
        };
        if !empty {
            out.insert(key.to_string(), value);
        }
    };
    put("env", pairs(&a.env));
    put("remove-env", json!(a.remove_env));
    put("annotations", pairs(&a.annotations));
    put("remove-annotations", json!(a.remove_annotations));
    put(
        "mounts",
        a.mounts
            .iter()
            .map(|m| {
                json!({"destination": m.destination, "source": m.source, "type": m.typ, "options": m.options})
            })
            .collect::<Vec<_>>()
            .into(),
    );
    put("remove-mounts", json!(a.remove_mounts));
    put(
        "devices",
        a.devices
            .iter()
            .map(|d| {
                json!({"path": d.path, "type": d.typ, "major": d.major, "minor": d.minor,
                    "file-mode": d.file_mode, "uid": d.uid, "gid": d.gid,
                    "permissions": d.permissions})
            })
            .collect::<Vec<_>>()
            .into(),
    );
    put("cdi-devices", json!(a.cdi_devices));
    put(
        "resources",
        a.resources.as_ref().map_or(Value::Null, |r| {
            json!({
                "memory": r.memory.as_ref().map(|m| json!({"limit": m.limit, "reservation": m.reservation, "swap": m.swap})),
                "cpu": r.cpu.as_ref().map(|c| json!({"shares": c.shares, "quota": c.quota, "period": c.period, "cpus": c.cpus, "mems": c.mems})),
                "pids-limit": r.pids_limit,
                "block-io": r.block_io.as_ref().map(|b| json!({
                    "weight": b.weight,
                    "throttle-read-bps": b.throttle_read_bps,
                    "throttle-write-bps": b.throttle_write_bps,
                    "throttle-read-iops": b.throttle_read_iops,
                    "throttle-write-iops": b.throttle_write_iops,
                })),
                "hugepage-limits": r.hugepage_limits,
            })
        }),
    );
    put(
        "rlimits",
        a.rlimits
            .iter()
            .map(|r| json!({"type": r.typ, "hard": r.hard, "soft": r.soft}))
            .collect::<Vec<_>>()
            .into(),
    );
    put("cgroups-path", json!(a.cgroups_path));
    put(
        "hooks",
        a.hooks
            .iter()
            .map(|h| {
                json!({"stage": format!("{:?}", h.stage), "path": h.path, "args": h.args,
                    "env": h.env, "timeout": h.timeout})
            })
            .collect::<Vec<_>>()
            .into(),
    );
    put("args", json!(a.args));
    Value::Object(out)
}

/// Parses a hook point name for the CLI, with the list of valid ones in the error.
pub fn parse_hook_point(name: &str) -> Result<HookPoint, String> {
    name.parse().map_err(|_| {
        format!(
            "unknown hook point `{name}`, expected one of: {}",
            HookPoint::ALL.map(|p| p.as_str()).join(", ")
        )
    })
}
