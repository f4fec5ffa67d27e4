//! Adjustments: the declarative spec edits plugins return, their validation against the
//! plugin's grants and the spec as it stands, and their application (STYLE.md 9).
//!
//! One plugin's [`Adjustment`] is checked and applied by [`apply`] to a copy of the spec as
//! adjusted by the plugins before it; nothing is applied unless every entry passes. Every
//! field an adjustment sets or removes is *claimed* for its plugin in [`Owners`]; a second
//! plugin claiming it is a [`PluginError::Conflict`] naming both, as in containerd NRI
//! (`pkg/api/owners.go`). Anything that breaks a rule is
//! [`PluginError::InvalidAdjustment`](super::PluginError::InvalidAdjustment) naming the
//! plugin and the field. The rules of each kind are documented in its module:
//!
//! | kind | module | claims |
//! |---|---|---|
//! | `env`, `remove-env` | [`env`] | `process.env NAME` |
//! | `annotations`, `remove-annotations` | [`annotations`] | `annotations["KEY"]` |
//! | `mounts`, `remove-mounts` | [`mounts`] | `mount destination PATH` |
//! | `devices` | [`devices`] | `linux.devices PATH` |
//! | `cdi-devices` | [`cdi`] | `cdi device NAME` and each env, device node and mount it adds |
//! | `resources` | [`resources`] | `linux.resources.FIELD` (each field, each throttled device, each page size) |
//! | `rlimits` | [`rlimits`] | `process.rlimits TYPE` |
//! | `cgroups-path` | [`process`] | `linux.cgroupsPath` |
//! | `hooks` | [`hooks`] | nothing: hooks append |
//! | `args` | [`process`] | `process.args` |
//!
//! Sizes: at most [`MAX_ENV_ENTRIES`] env entries, [`MAX_ANNOTATIONS`] annotations,
//! [`MAX_MOUNTS`] mounts with [`MAX_MOUNT_OPTIONS`] options each, [`MAX_LIST`] entries of
//! any other list, and no string longer than [`MAX_STRING_BYTES`] or holding a NUL.

mod annotations;
pub(crate) mod cdi;
mod devices;
mod env;
mod hooks;
mod mounts;
mod process;
pub(crate) mod resources;
mod rlimits;

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::Spec;

use super::manifest::PluginSpec;
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

/// Most entries of any other list one plugin may return (remove lists, devices, CDI
/// devices, rlimits, hooks, args, hook args and env, throttles, hugepage limits).
pub const MAX_LIST: usize = 1024;

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

/// Who claimed which field of the spec at one hook point: field → plugin.
#[derive(Debug, Default)]
pub(crate) struct Owners(BTreeMap<String, String>);

/// The rules of one plugin's adjustment: who asks, with which grants.
pub(crate) struct Rules<'a> {
    pub(crate) plugin: &'a PluginSpec,
    /// The top-level `cdi-spec-dirs` of the manifest.
    pub(crate) cdi_spec_dirs: &'a [PathBuf],
    /// Annotation keys that select plugins (`[plugin.match]`, and the image annotations
    /// when a plugin matches images): no plugin may set or remove them, so that one plugin
    /// cannot switch another off (or on) for a container.
    pub(crate) selection_keys: &'a [String],
}

/// One plugin's adjustment being applied: its claims and what it did.
pub(crate) struct Edit<'a> {
    rules: &'a Rules<'a>,
    owners: &'a Owners,
    /// field → the entry that claimed it (e.g. `env[2].name`), for this plugin.
    claims: BTreeMap<String, String>,
    applied: Vec<Applied>,
}

impl<'a> Edit<'a> {
    fn new(rules: &'a Rules<'a>, owners: &'a Owners) -> Edit<'a> {
        Edit {
            rules,
            owners,
            claims: BTreeMap::new(),
            applied: Vec::new(),
        }
    }

    /// The plugin's manifest name.
    pub(crate) fn plugin(&self) -> &str {
        &self.rules.plugin.name
    }

    /// An [`PluginError::InvalidAdjustment`] of this plugin.
    pub(crate) fn invalid(
        &self,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> PluginError {
        PluginError::InvalidAdjustment {
            plugin: self.plugin().to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Claims `field` for this plugin as set (`removing` false) or removed by `entry`: a
    /// field an earlier plugin claimed is a conflict; one this plugin already claimed in
    /// the same adjustment is invalid.
    pub(crate) fn claim(
        &mut self,
        field: String,
        entry: &str,
        removing: bool,
    ) -> Result<(), PluginError> {
        if let Some(first) = self.owners.0.get(&field) {
            let what = if removing {
                format!("{field} (`{}` removes what `{first}` set)", self.plugin())
            } else {
                field
            };
            return Err(PluginError::Conflict {
                field: what,
                first: first.clone(),
                second: self.plugin().to_string(),
            });
        }
        if let Some(earlier) = self.claims.get(&field) {
            return Err(self.invalid(
                entry,
                format!("{field} is already set or removed by {earlier}"),
            ));
        }
        self.claims.insert(field, entry.to_string());
        Ok(())
    }

    /// Records one applied edit.
    pub(crate) fn did(&mut self, description: String) {
        self.applied.push(Applied {
            plugin: self.plugin().to_string(),
            description,
        });
    }

    /// Checks one string: at most [`MAX_STRING_BYTES`], no NUL.
    pub(crate) fn text(&self, field: impl FnOnce() -> String, s: &str) -> Result<(), PluginError> {
        if s.len() > MAX_STRING_BYTES {
            return Err(self.invalid(
                field(),
                format!(
                    "{} bytes is longer than the limit of {MAX_STRING_BYTES}",
                    s.len()
                ),
            ));
        }
        if s.contains('\0') {
            return Err(self.invalid(field(), "contains a NUL byte"));
        }
        Ok(())
    }

    /// Checks a list's length against `max`.
    pub(crate) fn count(&self, field: &str, len: usize, max: usize) -> Result<(), PluginError> {
        if len > max {
            return Err(self.invalid(field, format!("{len} entries, at most {max} allowed")));
        }
        Ok(())
    }
}

/// What one plugin's adjustment did: the adjusted spec, the applied edits and its claims.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) spec: Spec,
    pub(crate) applied: Vec<Applied>,
    claims: Vec<String>,
}

impl Owners {
    /// Records the claims of a plugin whose adjustment was applied.
    pub(crate) fn commit(&mut self, plugin: &str, outcome: &Outcome) {
        for field in &outcome.claims {
            self.0.insert(field.clone(), plugin.to_string());
        }
    }
}

/// Validates `adj` under `rules` against `spec` (the spec as adjusted by the plugins before)
/// and the claims in `owners`, and applies it to a copy of `spec`. On error nothing is
/// applied.
pub(crate) fn apply(
    rules: &Rules<'_>,
    owners: &Owners,
    adj: Adjustment,
    spec: &Spec,
) -> Result<Outcome, PluginError> {
    let mut e = Edit::new(rules, owners);
    let mut out = spec.clone();
    env::apply(&mut e, &mut out, adj.env, adj.remove_env)?;
    annotations::apply(&mut e, &mut out, adj.annotations, adj.remove_annotations)?;
    mounts::apply(&mut e, &mut out, adj.mounts, adj.remove_mounts)?;
    devices::apply(&mut e, &mut out, adj.devices)?;
    cdi::apply(&mut e, &mut out, adj.cdi_devices)?;
    if let Some(r) = adj.resources {
        let mut current = out
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        resources::apply(&mut e, &mut current, r, true)?;
        out.linux_mut()
            .get_or_insert_with(Default::default)
            .set_resources(Some(current));
    }
    rlimits::apply(&mut e, &mut out, adj.rlimits)?;
    process::cgroups_path(&mut e, &mut out, adj.cgroups_path)?;
    hooks::apply(&mut e, &mut out, adj.hooks)?;
    process::args(&mut e, &mut out, adj.args)?;
    Ok(Outcome {
        spec: out,
        applied: e.applied,
        claims: e.claims.into_keys().collect(),
    })
}

/// Pre-update: clamps `update` (the resources `rwasm update` is about to apply) with a
/// plugin's adjustment, which may hold only `resources`, each field set where `update`
/// leaves it unset or tighter than `update` (the rules of [`resources`]; loosening needs
/// `loosen-resources`). Claims do not apply: each plugin sees the update as clamped by
/// those before it, so clamps compose. On error `update` is unchanged.
pub(crate) fn clamp_update(
    rules: &Rules<'_>,
    adj: Adjustment,
    update: &mut oci_spec::runtime::LinuxResources,
) -> Result<Vec<Applied>, PluginError> {
    let owners = Owners::default();
    let mut e = Edit::new(rules, &owners);
    let Adjustment { resources, .. } = adj.clone();
    let rest = Adjustment {
        resources: None,
        ..adj
    };
    if !rest.is_empty() {
        return Err(e.invalid(
            "adjustment",
            format!(
                "only `resources` may be returned at pre-update, not {}",
                rest.summary()
            ),
        ));
    }
    let Some(r) = resources else {
        return Ok(Vec::new());
    };
    let mut clamped = update.clone();
    resources::apply(&mut e, &mut clamped, r, false)?;
    *update = clamped;
    Ok(e.applied)
}

/// The descriptions of what `applied` holds, for logs.
#[cfg(test)]
fn descriptions(applied: &[Applied]) -> Vec<String> {
    applied.iter().map(|a| a.description.clone()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plugin::OnError;
    use crate::plugin::manifest::{DirGrant, Selector};

    /// A plugin spec for unit tests.
    pub(crate) fn plugin(name: &str, dirs: Vec<DirGrant>) -> PluginSpec {
        PluginSpec {
            name: name.to_string(),
            kind: crate::plugin::manifest::PluginKind::Hook,
            path: PathBuf::from("/x.wasm"),
            hooks: vec![crate::plugin::HookPoint::PreCreate],
            on_error: OnError::Fail,
            timeout_ms: 1000,
            memory_limit: 64 << 20,
            fuel: None,
            config: Vec::new(),
            dirs,
            order: 0,
            selector: Selector::default(),
            grant_args: false,
            loosen_resources: false,
            grant_hooks: false,
            grant_devices: false,
            sandbox: crate::plugin::manifest::SandboxGrants::default(),
            max_answer: crate::plugin::manifest::DEFAULT_MAX_ANSWER,
            network: None,
            storage_dir: None,
        }
    }

    /// Applies `adj` of `p` to `spec` with fresh owners.
    pub(crate) fn run(
        p: &PluginSpec,
        adj: Adjustment,
        spec: &Spec,
    ) -> Result<Outcome, PluginError> {
        let rules = Rules {
            plugin: p,
            cdi_spec_dirs: &[],
            selection_keys: &[],
        };
        apply(&rules, &Owners::default(), adj, spec)
    }

    /// The field of an InvalidAdjustment.
    pub(crate) fn field(e: PluginError) -> String {
        match e {
            PluginError::InvalidAdjustment { field, .. } => field,
            other => panic!("expected InvalidAdjustment, got {other:?}"),
        }
    }

    #[test]
    fn a_second_plugin_setting_or_removing_a_claimed_field_conflicts() {
        let a = plugin("a", vec![]);
        let b = plugin("b", vec![]);
        let mut owners = Owners::default();
        let rules_a = Rules {
            plugin: &a,
            cdi_spec_dirs: &[],
            selection_keys: &[],
        };
        let rules_b = Rules {
            plugin: &b,
            cdi_spec_dirs: &[],
            selection_keys: &[],
        };
        let set = Adjustment {
            env: vec![("A".into(), "1".into())],
            ..Adjustment::default()
        };
        let out = apply(&rules_a, &owners, set.clone(), &Spec::default()).unwrap();
        owners.commit("a", &out);
        assert_eq!(descriptions(&out.applied), ["set env A"]);
        match apply(&rules_b, &owners, set, &out.spec) {
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
        let remove = Adjustment {
            remove_env: vec!["A".into()],
            ..Adjustment::default()
        };
        match apply(&rules_b, &owners, remove, &out.spec) {
            Err(PluginError::Conflict {
                field,
                first,
                second,
            }) => {
                assert!(field.contains("removes what `a` set"), "{field}");
                assert_eq!((first.as_str(), second.as_str()), ("a", "b"));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn one_plugin_may_not_set_and_remove_one_variable() {
        let adj = Adjustment {
            env: vec![("A".into(), "1".into())],
            remove_env: vec!["A".into()],
            ..Adjustment::default()
        };
        assert_eq!(
            field(run(&plugin("a", vec![]), adj, &Spec::default()).unwrap_err()),
            "env[0].name"
        );
    }

    #[test]
    fn pre_update_takes_only_resources() {
        let p = plugin("a", vec![]);
        let rules = Rules {
            plugin: &p,
            cdi_spec_dirs: &[],
            selection_keys: &[],
        };
        let adj = Adjustment {
            env: vec![("A".into(), "1".into())],
            ..Adjustment::default()
        };
        let mut update = oci_spec::runtime::LinuxResources::default();
        assert_eq!(
            field(clamp_update(&rules, adj, &mut update).unwrap_err()),
            "adjustment"
        );
    }
}
